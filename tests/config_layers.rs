//! Layering precedence, provenance, validation errors and run-id stability.

mod common;

use common::Project;
use geosr::config::layers::{cli_layers, env_layers};
use geosr::config::{ConfigError, Experiment};

fn env(pairs: &[(&str, &str)]) -> Vec<geosr::config::Layer> {
    env_layers(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

fn sets(s: &[&str]) -> Vec<geosr::config::Layer> {
    cli_layers(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
}

/// Every layer sets `model.mask.gamma`; each later layer must win, and the
/// provenance must name it.
#[test]
fn each_layer_overrides_the_previous_and_is_named() {
    let p = Project::new();
    p.write("configs/one.toml", "[model.mask]\ngamma = 0.1\nbeta = 0.11\n[train]\nlr = 0.5\n");
    p.write("configs/two.toml", "[model.mask]\ngamma = 0.2\n");
    let exp = p.write(
        "experiments/x.toml",
        r#"
title = "x"
layers = ["one", "two"]
[config]
model.mask.gamma = 0.3
data.train_size = 77
[[variants]]
label = "a"
set = { "model.mask.gamma" = 0.4, "train.epochs" = 3 }
"#,
    );
    let exp = Experiment::load(exp.to_str().unwrap()).unwrap();
    let v = &exp.file.variants[0];
    let point = vec![];
    let gamma = |env_l: &[geosr::config::Layer], cli_l: &[geosr::config::Layer]| {
        let spec = exp.run_spec(v, &point, 0, env_l, cli_l).unwrap();
        (spec.resolved.config.model.mask.gamma, spec.resolved.provenance["model.mask.gamma"].1.clone(), spec)
    };
    let (g, src, spec) = gamma(&[], &[]);
    assert_eq!(g, 0.4);
    assert!(src.contains("[variant a]"), "{src}");
    // Untouched layers keep their values and names.
    assert_eq!(spec.resolved.config.model.mask.beta, 0.11);
    assert!(spec.resolved.provenance["model.mask.beta"].1.ends_with("one.toml"));
    assert_eq!(spec.resolved.config.data.train_size, 77);
    assert!(spec.resolved.provenance["data.train_size"].1.contains("[config]"));
    assert_eq!(spec.resolved.config.train.lr, 0.5);
    assert_eq!(spec.resolved.provenance["data.frames"].1, "default");

    let (g, src, _) = gamma(&env(&[("GEOSR_MODEL__MASK__GAMMA", "0.5")]), &[]);
    assert_eq!(g, 0.5);
    assert_eq!(src, "env GEOSR_MODEL__MASK__GAMMA");

    let (g, src, _) = gamma(&env(&[("GEOSR_MODEL__MASK__GAMMA", "0.5")]), &sets(&["model.mask.gamma=0.6"]));
    assert_eq!(g, 0.6);
    assert_eq!(src, "--set model.mask.gamma=0.6");

    // Without the variant's override the experiment table wins over the files.
    let exp2 = Experiment::load(p.write("experiments/y.toml", "title='y'\nlayers=['one','two']\n[[variants]]\nlabel='b'\n").to_str().unwrap()).unwrap();
    let spec = exp2.run_spec(&exp2.file.variants[0], &vec![], 0, &[], &[]).unwrap();
    assert_eq!(spec.resolved.config.model.mask.gamma, 0.2);
    assert!(spec.resolved.provenance["model.mask.gamma"].1.ends_with("two.toml"));
}

#[test]
fn env_without_double_underscore_is_not_config() {
    assert!(env(&[("GEOSR_LOG", "debug"), ("PATH", "/bin")]).is_empty());
}

fn error_for(files: &[(&str, &str)], exp_text: &str, sets_: &[&str]) -> ConfigError {
    let p = Project::new();
    for (rel, text) in files {
        p.write(rel, text);
    }
    let path = p.write("experiments/e.toml", exp_text);
    let exp = match Experiment::load(path.to_str().unwrap()) {
        Ok(e) => e,
        Err(e) => return e,
    };
    exp.plan(&[], &sets(sets_)).expect_err("expected a validation error")
}

const ONE_VARIANT: &str = "title='e'\n[[variants]]\nlabel='a'\n";

#[test]
fn unknown_key_names_file_and_suggests() {
    let e = error_for(&[("configs/m.toml", "[model.mask]\ngama = 0.5\n")], "title='e'\nlayers=['m']\n[[variants]]\nlabel='a'\n", &[]);
    let msg = e.to_string();
    assert!(msg.contains("m.toml"), "{msg}");
    assert!(msg.contains("model.mask.gama"), "{msg}");
    assert!(msg.contains("did you mean `model.mask.gamma`"), "{msg}");
}

#[test]
fn unknown_key_in_variant_override_is_named() {
    let e = error_for(&[], "title='e'\n[[variants]]\nlabel='a'\nset={'train.learning_rate'=0.1}\n", &[]);
    let msg = e.to_string();
    assert!(msg.contains("[variant a]") && msg.contains("train.learning_rate"), "{msg}");
}

#[test]
fn wrong_type_names_key_value_and_expectation() {
    let e = error_for(&[("configs/t.toml", "[train]\nbatch_size = \"big\"\n")], "title='e'\nlayers=['t']\n[[variants]]\nlabel='a'\n", &[]);
    let msg = e.to_string();
    assert!(msg.contains("t.toml") && msg.contains("train.batch_size") && msg.contains("\"big\""), "{msg}");
    assert!(msg.contains("expected"), "{msg}");
}

#[test]
fn unknown_enum_value_lists_choices() {
    let e = error_for(&[], ONE_VARIANT, &["model.fusion=gatd"]);
    let msg = e.to_string();
    assert!(msg.contains("--set model.fusion=gatd") && msg.contains("model.fusion"), "{msg}");
    assert!(msg.contains("gated_qformer"), "{msg}");
}

#[test]
fn gamma_and_beta_outside_unit_interval() {
    for (set, key) in [("model.mask.gamma=1.5", "model.mask.gamma"), ("model.mask.beta=-0.1", "model.mask.beta")] {
        let msg = error_for(&[], ONE_VARIANT, &[set]).to_string();
        assert!(msg.contains(key) && msg.contains("[0, 1]"), "{msg}");
        assert!(msg.contains(&format!("--set {set}")), "{msg}");
    }
}

#[test]
fn negative_number_weight() {
    let msg = error_for(&[], ONE_VARIANT, &["train.number_weight=-1"]).to_string();
    assert!(msg.contains("train.number_weight") && msg.contains(">= 0"), "{msg}");
}

#[test]
fn grounding_needs_a_weight_and_synthetic_scenes() {
    let msg = error_for(&[], ONE_VARIANT, &["model.grounding=-0.5"]).to_string();
    assert!(msg.contains("model.grounding") && msg.contains(">= 0"), "{msg}");
    let features = ["model.grounding=0.3", "data.source='features'", "data.features.train='t'", "data.features.eval='e'"];
    let msg = error_for(&[], ONE_VARIANT, &features).to_string();
    assert!(msg.contains("model.grounding") && msg.contains("features"), "{msg}");
    // Motion grounding extends the heads, so it needs them, and a scene that moves.
    let msg = error_for(&[], ONE_VARIANT, &["model.grounding_motion=true", "data.bench='dynamic'"]).to_string();
    assert!(msg.contains("model.grounding_motion") && msg.contains("model.grounding = 0"), "{msg}");
    let msg = error_for(&[], ONE_VARIANT, &["model.grounding_motion=true", "model.grounding=1"]).to_string();
    assert!(msg.contains("model.grounding_motion") && msg.contains("dynamic"), "{msg}");
}

#[test]
fn appearance_cues_need_category_channels() {
    let features = ["model.geometry_cues='appearance'", "data.source='features'", "data.features.train='t'", "data.features.eval='e'"];
    let msg = error_for(&[], ONE_VARIANT, &features).to_string();
    assert!(msg.contains("model.geometry_cues") && msg.contains("features"), "{msg}");
    let msg = error_for(&[], ONE_VARIANT, &["model.geometry_cues='colour'"]).to_string();
    assert!(msg.contains("geometry_cues") && msg.contains("appearance"), "{msg}");
}

#[test]
fn unknown_subtask_lists_the_benchmarks_keys() {
    let msg = error_for(&[], ONE_VARIANT, &["data.subtasks=['abs_distance', 'room_area']"]).to_string();
    assert!(msg.contains("data.subtasks") && msg.contains("room_area"), "{msg}");
    assert!(msg.contains("room_size") && msg.contains("route_plan"), "{msg}");
}

#[test]
fn zero_bottleneck_length() {
    let msg = error_for(&[], ONE_VARIANT, &["model.bottleneck_len=0"]).to_string();
    assert!(msg.contains("model.bottleneck_len") && msg.contains("L_B"), "{msg}");
}

#[test]
fn topk_needs_geometry_and_a_qformer_branch() {
    let msg = error_for(&[], ONE_VARIANT, &["model.mask.kind=topk", "model.geometry=none", "model.fusion=none"]).to_string();
    assert!(msg.contains("model.mask.kind") && msg.contains("geometry"), "{msg}");
    let msg = error_for(&[], ONE_VARIANT, &["model.mask.kind=topk", "model.fusion=gated"]).to_string();
    assert!(msg.contains("model.mask.kind") && msg.contains("QFormer"), "{msg}");
}

#[test]
fn fusion_without_geometry() {
    let msg = error_for(&[], ONE_VARIANT, &["model.geometry=none", "model.fusion=additive"]).to_string();
    assert!(msg.contains("model.fusion") && msg.contains("model.geometry"), "{msg}");
}

#[test]
fn missing_config_file_names_file_and_experiment() {
    let msg = error_for(&[], "title='e'\nlayers=['nope']\n[[variants]]\nlabel='a'\n", &[]).to_string();
    assert!(msg.contains("nope.toml") && msg.contains("e.toml"), "{msg}");
}

#[test]
fn malformed_set_flag() {
    let e = cli_layers(&["model.mask.gamma".to_string()]).unwrap_err();
    assert!(e.to_string().contains("KEY=VALUE"));
}

#[test]
fn run_id_ignores_key_order_formatting_and_output_dir() {
    let p = Project::new();
    p.write("configs/a.toml", "[model.mask]\ngamma = 0.6\nbeta = 0.4\n[train]\nlr = 0.01\n");
    p.write("configs/b.toml", "[train]\nlr=1e-2\n\n\n[model]\nmask.beta=0.4\nmask.gamma=0.60\n");
    let id = |layer: &str, extra: &[&str]| {
        let text = format!("title='e'\nlayers=['{layer}']\n[[variants]]\nlabel='a'\n");
        let path = p.write(&format!("experiments/{layer}.toml"), &text);
        Experiment::load(path.to_str().unwrap()).unwrap().plan(&[], &sets(extra)).unwrap()[0].id.clone()
    };
    let a = id("a", &[]);
    assert_eq!(a, id("b", &[]));
    assert_eq!(a, id("a", &["output.results_dir=elsewhere"]));
    // Keys added later keep older runs' ids at their neutral values, and only there.
    assert_eq!(a, id("a", &["train.number_weight=1.0", "data.subtasks=[]", "model.grounding=0.0", "model.grounding_motion=false"]));
    assert_eq!(a, id("a", &["model.geometry_cues='none'"]));
    assert_ne!(a, id("a", &["model.geometry_cues='position'"]));
    // Cues on geometry that nothing reads change nothing.
    let blind = ["model.geometry='none'", "model.fusion='none'", "model.mask.kind='random'"];
    assert_eq!(id("a", &blind), id("a", &[&blind[..], &["model.geometry_cues='appearance'"]].concat()));
    assert_ne!(a, id("a", &["model.grounding=0.3"]));
    assert_ne!(a, id("a", &["train.number_weight=2.0"]));
    assert_ne!(a, id("a", &["data.subtasks=['room_size']"]));
    assert_ne!(a, id("a", &["model.mask.gamma=0.7"]));
    assert_eq!(a.len(), 10);
}

#[test]
fn plan_expands_variants_grid_zip_and_seeds() {
    let p = Project::new();
    let path = p.write(
        "experiments/s.toml",
        r#"
title = "s"
seeds = [0, 1]
[config]
model = { fusion = "gated_qformer", mask = { kind = "topk" } }
[[variants]]
label = "a"
[[variants]]
label = "b"
set = { "model.fusion" = "qformer" }
[sweep.grid]
"model.bottleneck_len" = [4, 8]
[[sweep.zip]]
"model.mask.gamma" = [0.8, 0.6, 0.8]
"model.mask.beta" = [0.5, 0.5, 0.7]
"#,
    );
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let runs = exp.plan(&[], &[]).unwrap();
    assert_eq!(runs.len(), 2 * 2 * 3 * 2);
    let ids: std::collections::HashSet<_> = runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), runs.len(), "every run differs");
    // Zipped keys move together: never gamma 0.6 with beta 0.7.
    assert!(runs.iter().all(|r| !(r.resolved.config.model.mask.gamma == 0.6 && r.resolved.config.model.mask.beta == 0.7)));
    assert!(runs.iter().any(|r| r.label == "b_bottleneck_len8_gamma0.6_beta0.5"), "{:?}", runs.iter().map(|r| &r.label).collect::<Vec<_>>());
}

#[test]
fn zip_lists_of_unequal_length_are_rejected() {
    let e = error_for(&[], "title='e'\n[[variants]]\nlabel='a'\n[[sweep.zip]]\n'model.mask.gamma'=[0.1,0.2]\n'model.mask.beta'=[0.1]\n", &[]);
    assert!(e.to_string().contains("sweep.zip[0]"), "{e}");
}

#[test]
fn plan_resolves_each_row_once_yet_matches_resolving_every_run() {
    let p = common::Project::new();
    p.write(
        "experiments/multi.toml",
        r#"
title = "multi"
seeds = [0, 7, 3]
[[variants]]
label = "a"
[[variants]]
label = "e"
set = { "model.mask.kind" = "none", "model.fusion" = "additive" }
[sweep.grid]
"model.mask.gamma" = [0.6, 0.8]
"#,
    );
    let exp = geosr::config::Experiment::load(p.path().join("experiments/multi.toml").to_str().unwrap()).unwrap();
    let check = |cli: &[geosr::config::Layer]| {
        let plan = exp.plan(&[], cli).unwrap();
        assert_eq!(plan.len(), 2 * 2 * 3);
        for spec in &plan {
            let v = exp.variant(&spec.variant).unwrap();
            let full = exp.run_spec(v, &spec.sweep, spec.seed, &[], cli).unwrap();
            assert_eq!(spec.id, full.id, "{} seed {}", spec.label, spec.seed);
            assert_eq!(spec.resolved.provenance, full.resolved.provenance);
            assert_eq!(spec.label, full.label);
        }
        plan
    };
    let plan = check(&[]);
    let seeds: Vec<u64> = plan.iter().map(|r| r.resolved.config.train.seed).collect();
    assert_eq!(&seeds[..3], &[0, 7, 3]);
    // `--set train.seed=5` would make every seed of a row one run: refused, naming the key.
    let err = exp.plan(&[], &geosr::config::layers::cli_layers(&["train.seed=5".into()]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("--set train.seed=5") && err.contains("seeds = [0, 7, 3]"), "{err}");
}

#[test]
fn the_default_configs_run_id_is_stable() {
    // Stored runs are found by id: a change here makes every stored run look unfinished
    // and retrains it. Add new keys to `runs::ADDED_KEYS` with their neutral value instead.
    // Only a new `data::SYNTHETIC_VERSION` (new scenes) should change it (3: "3ddd0fa1de").
    assert_eq!(geosr::runs::run_id(&geosr::config::Config::default()), "3ddd0fa1de");
}

/// A control is `--set` under a name: its runs are the very runs (ids) the same
/// `--set` gives, so runs trained either way are found both ways, and a `--set` on
/// top of it still wins.
#[test]
fn a_control_trains_the_runs_its_keys_would_as_set() {
    let p = Project::new();
    let text = "title='e'\nseeds=[0,1]\n[[variants]]\nlabel='a'\n[[variants]]\nlabel='b'\nset={'model.mask.kind'='none'}\n\
                [[controls]]\nname='lean'\nset={'model.grounding'=0, 'model.mask.gamma'=0.3}\n";
    let path = p.write("experiments/e.toml", text);
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let control = exp.control_layer("lean").unwrap();
    assert!(control.name.contains("e.toml") && control.name.contains("lean"), "{}", control.name);
    let ids = |plan: Vec<geosr::config::RunSpec>| plan.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let by_control = ids(exp.plan(&[], &[control.clone()]).unwrap());
    assert_eq!(by_control, ids(exp.plan(&[], &sets(&["model.grounding=0", "model.mask.gamma=0.3"])).unwrap()));
    assert_ne!(by_control, ids(exp.plan(&[], &[]).unwrap()));
    let on_top = exp.plan(&[], &[vec![control], sets(&["model.mask.gamma=0.4"])].concat()).unwrap();
    assert!(on_top.iter().all(|r| r.resolved.config.model.mask.gamma == 0.4 && r.resolved.config.model.grounding == 0.0));
    let e = exp.control("heavy").unwrap_err().to_string();
    assert!(e.contains("e.toml") && e.contains("no control `heavy`") && e.contains("\"lean\""), "{e}");
}

#[test]
fn a_bad_control_is_refused_naming_the_file_the_control_and_the_key() {
    let base = "title='e'\nseeds=[0,1]\n[[variants]]\nlabel='a'\n[sweep.grid]\n'model.mask.gamma'=[0.2,0.4]\n";
    let axis = error_for(&[], &format!("{base}[[controls]]\nname='x'\nset={{'model.mask.gamma'=0.3}}\n"), &[]).to_string();
    assert!(axis.contains("e.toml") && axis.contains("controls: x") && axis.contains("`model.mask.gamma`, a sweep axis"), "{axis}");
    let seed = error_for(&[], &format!("{base}[[controls]]\nname='x'\nset={{'train.seed'=3}}\n"), &[]).to_string();
    assert!(seed.contains("controls: x") && seed.contains("`train.seed`"), "{seed}");
    let twice = error_for(&[], &format!("{base}[[controls]]\nname='x'\nset={{'model.grounding'=0}}\n[[controls]]\nname='x'\nset={{'model.grounding'=1}}\n"), &[]);
    assert!(twice.to_string().contains("control `x` appears twice"), "{twice}");
    let empty = error_for(&[], &format!("{base}[[controls]]\nname='x'\nset={{}}\n"), &[]);
    assert!(empty.to_string().contains("control `x`: `set` is empty"), "{empty}");
    let spaced = error_for(&[], &format!("{base}[[controls]]\nname='no grounding'\nset={{'model.grounding'=0}}\n"), &[]);
    assert!(spaced.to_string().contains("control name `no grounding`"), "{spaced}");
    // A key the schema does not have is refused when the control is planned, naming it.
    let p = Project::new();
    let path = p.write("experiments/e.toml", &format!("{base}[[controls]]\nname='x'\nset={{'model.grounding_weight'=0}}\n"));
    let exp = Experiment::load(path.to_str().unwrap()).unwrap();
    let e = exp.plan(&[], &[exp.control_layer("x").unwrap()]).unwrap_err().to_string();
    assert!(e.contains("controls: x") && e.contains("model.grounding_weight"), "{e}");
}
