//! A catalog of bad inputs: configs, overrides, environment variables, experiment
//! files, launch arguments, stored runs, prediction files and precomputed features.
//! Each must exit 2 with a message that names the file (or flag, or variable), the
//! key or value at fault and what was expected, and write nothing at all.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::Project;

static TINY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    common::tiny_experiment(
        "[0, 1]",
        "steps = 4",
        "[[variants]]\nlabel = \"a\"\n\n[[variants]]\nlabel = \"f\"\n\
         set = { \"model.mask.kind\" = \"none\", \"model.fusion\" = \"none\", \"model.geometry\" = \"none\" }\n",
    )
});

/// One bad input: the files it needs besides `experiments/tiny.toml`, the command,
/// extra environment, and what the error must say.
struct Case {
    name: &'static str,
    /// (path in the project, contents); `experiments/tiny.toml` defaults to [`TINY`].
    files: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    needles: Vec<String>,
}

fn case(name: &'static str, args: &[&str], needles: &[&str]) -> Case {
    Case {
        name,
        files: Vec::new(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

impl Case {
    fn file(mut self, path: &str, text: &str) -> Case {
        self.files.push((path.into(), text.as_bytes().to_vec()));
        self
    }
    fn env(mut self, key: &'static str, value: &str) -> Case {
        self.env.push((key, value.into()));
        self
    }
    /// A `--set` on `run`: the config is refused before anything is written.
    fn set(name: &'static str, assignment: &str, needles: &[&str]) -> Case {
        case(name, &["run", "tiny", "--set", assignment], needles)
    }
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// Runs every case in a fresh project and returns the failures.
fn check(cases: Vec<Case>) -> Vec<String> {
    let mut problems = Vec::new();
    for c in &cases {
        let p = Project::new();
        p.write("experiments/tiny.toml", &TINY);
        for (path, bytes) in &c.files {
            let full = p.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
        let before = snapshot(p.path());
        let mut cmd = common::geosr_in(p.path());
        cmd.args(&c.args);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) {
            problems.push(format!("{}: exit {:?}, expected 2; stderr: {stderr}", c.name, out.status.code()));
        }
        for needle in &c.needles {
            if !stderr.contains(needle.as_str()) {
                problems.push(format!("{}: the message does not say {needle:?}: {stderr}", c.name));
            }
        }
        let after = snapshot(p.path());
        if before != after {
            let new: Vec<&PathBuf> = after.keys().filter(|k| before.get(*k) != after.get(*k)).collect();
            problems.push(format!("{}: wrote {new:?}", c.name));
        }
    }
    problems
}

fn assert_all(cases: Vec<Case>, at_least: usize) {
    assert!(cases.len() >= at_least, "{} cases", cases.len());
    let problems = check(cases);
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn bad_config_values_are_refused_by_key() {
    let cases = vec![
        Case::set("gamma above 1", "model.mask.gamma=1.5", &["--set model.mask.gamma=1.5", "model.mask.gamma", "1.5", "[0, 1]"]),
        Case::set("beta below 0", "model.mask.beta=-0.1", &["model.mask.beta", "-0.1", "[0, 1]"]),
        Case::set("gamma NaN", "model.mask.gamma=nan", &["model.mask.gamma", "NaN", "[0, 1]"]),
        Case::set("no bottleneck tokens", "model.bottleneck_len=0", &["model.bottleneck_len", "L_B >= 1"]),
        Case::set("fusion without geometry", "model.geometry=none", &["variant `a`", "model.fusion", "\"gated\"", "\"none\""]),
        Case::set("top-k without a QFormer", "model.mask.kind=topk", &["variant `a`", "model.mask.kind", "QFormer"]),
        Case::set("heads not dividing the width", "model.backbone.heads=3", &["model.backbone.heads", "3", "divisor of the width 32"]),
        Case::set("no fusion heads", "model.fusion_heads=0", &["model.fusion_heads", "positive divisor"]),
        Case::set("no geometry channels", "model.geometry_channels=0", &["model.geometry_channels", "at least 1"]),
        Case::set("empty training split", "data.train_size=0", &["data.train_size", "positive integer"]),
        Case::set("empty evaluation split", "data.eval_size=0", &["data.eval_size", "positive integer"]),
        Case::set("no frames", "data.frames=0", &["data.frames", "positive integer"]),
        Case::set("two objects", "data.objects=2", &["data.objects", "2", "at least 3"]),
        Case::set("an empty grid", "data.vision_grid=[0, 4]", &["data.vision_grid", "[0, 4]", "two positive sizes"]),
        Case::set("a 3-D vision grid", "data.vision_grid=[4, 4, 4]", &["data.vision_grid", "[4, 4, 4]", "exactly 2 values"]),
        Case::set("a 1-D geometry grid", "data.geometry_grid=[4]", &["data.geometry_grid", "[4]", "exactly 2 values"]),
        Case::set("shortcut above 1", "data.shortcut.train=2", &["data.shortcut.train", "2", "[0, 1]"]),
        Case::set("negative geometry noise", "data.geometry_noise=-1", &["data.geometry_noise", "-1", ">= 0"]),
        Case::set("NaN geometry noise", "data.geometry_noise=nan", &["data.geometry_noise", "NaN", ">= 0"]),
        Case::set("geometry dropout above 1", "data.geometry_dropout=1.5", &["data.geometry_dropout", "1.5", "probability in [0, 1]"]),
        Case::set("negative geometry outliers", "data.geometry_outliers=-0.1", &["data.geometry_outliers", "-0.1", "probability in [0, 1]"]),
        Case::set("a constant gate above 1", "model.gate_alpha=2", &["model.gate_alpha", "2", "[0, 1]"]),
        case("top-k with a gate control", &["run", "tiny", "--set", "model.mask.kind=topk", "--set", "model.fusion=additive_ln"], &["model.mask.kind", "QFormer"]),
        Case::set("unknown subtask", "data.subtasks=[\"nope\"]", &["data.subtasks", "\"nope\"", "abs_distance"]),
        Case::set("features without folders", "data.source=features", &["data.features.train", "a folder of precomputed features"]),
        Case::set("zero learning rate", "train.lr=0", &["train.lr", "0", "positive learning rate"]),
        Case::set("negative learning rate", "train.lr=-1", &["train.lr", "-1", "positive learning rate"]),
        Case::set("negative weight decay", "train.weight_decay=-1", &["train.weight_decay", "-1", ">= 0"]),
        Case::set("no batch", "train.batch_size=0", &["train.batch_size", "positive integer"]),
        Case::set("log every 0 steps", "train.log_every=0", &["train.log_every", "positive integer"]),
        Case::set("checkpoint every 0 steps", "train.checkpoint_every=0", &["train.checkpoint_every", "positive integer"]),
        case("no epochs and no steps", &["run", "tiny", "--set", "train.steps=0", "--set", "train.epochs=0"], &["train.epochs", "at least 1 epoch"]),
        Case::set("negative number weight", "train.number_weight=-1", &["train.number_weight", "-1", ">= 0"]),
        Case::set("negative grounding weight", "model.grounding=-1", &["model.grounding", "-1", ">= 0"]),
        Case::set("zero MLP ratio", "model.mlp_ratio=0", &["model.mlp_ratio", "0", "positive integer"]),
        Case::set("unknown mask kind", "model.mask.kind=sometimes", &["model.mask.kind", "sometimes", "random"]),
        Case::set("unknown optimizer", "train.optimizer=sgd", &["train.optimizer", "sgd", "adamw"]),
        Case::set("a word for a number", "train.lr=abc", &["train.lr", "abc", "f64"]),
        Case::set("a typo in a key", "model.mask.gama=0.3", &["--set model.mask.gama=0.3", "model.mask.gama", "did you mean `model.mask.gamma`"]),
        Case::set("a value where a table goes", "model.mask=random", &["model.mask", "a table of keys"]),
        Case::set("zero eval batch", "eval.batch_size=0", &["eval.batch_size", "positive integer"]),
        case("no = in --set", &["run", "tiny", "--set", "model.mask.gamma"], &["--set model.mask.gamma", "KEY=VALUE"]),
        case("an empty key part", &["run", "tiny", "--set", "model..gamma=1"], &["model..gamma", "dotted key"]),
    ];
    assert_all(cases, 43);
}

#[test]
fn bad_environment_variables_are_refused_by_name() {
    let sweep = format!("{}\n[[sweep.zip]]\n\"model.mask.gamma\" = [0.8, 0.6]\n", *TINY);
    let cases = vec![
        case("a typo in a variable", &["run", "tiny"], &["env GEOSR_MODEL__MASK__GAMA", "did you mean `model.mask.gamma`"]).env("GEOSR_MODEL__MASK__GAMA", "0.3"),
        case("a bad value in a variable", &["run", "tiny"], &["env GEOSR_TRAIN__LR", "train.lr", "-1", "positive"]).env("GEOSR_TRAIN__LR", "-1"),
        case("a seed variable across seeds", &["sweep", "tiny"], &["env GEOSR_TRAIN__SEED", "train.seed", "seeds = [0, 1]"]).env("GEOSR_TRAIN__SEED", "5"),
        case("a variable on a sweep axis", &["sweep", "tiny"], &["env GEOSR_MODEL__MASK__GAMMA", "model.mask.gamma", "sweep axis"])
            .env("GEOSR_MODEL__MASK__GAMMA", "0.3")
            .file("experiments/tiny.toml", &sweep),
        case("an unknown section", &["plan", "tiny"], &["env GEOSR_TRIAN__LR", "trian.lr"]).env("GEOSR_TRIAN__LR", "0.1"),
    ];
    assert_all(cases, 5);
}

#[test]
fn bad_experiment_files_are_refused_by_file() {
    let tiny = TINY.as_str();
    let exp = |text: &str| case("", &["plan", "tiny"], &[]).file("experiments/tiny.toml", text);
    let with = |name: &'static str, text: &str, needles: &[&str]| {
        let mut c = exp(text);
        c.name = name;
        c.needles = needles.iter().map(|s| s.to_string()).collect();
        c.needles.push("experiments/tiny.toml".into());
        c
    };
    let cases = vec![
        case("a missing experiment", &["plan", "nope"], &["experiments/nope.toml", "cannot read"]),
        with("invalid TOML", "title = \n", &["string"]),
        with("an unknown top-level key", &format!("titel = \"x\"\n{}", *TINY), &["unknown field `titel`"]),
        with("no variants", "title = \"t\"\nvariants = []\n", &["at least one row"]),
        with("no seeds", &TINY.replace("seeds = [0, 1]", "seeds = []"), &["`seeds` is empty"]),
        with("a seed twice", &TINY.replace("seeds = [0, 1]", "seeds = [0, 0]"), &["`seeds` = [0, 0]", "twice", "distinct"]),
        with("a label twice", &TINY.replace("label = \"f\"", "label = \"a\""), &["`a` appears twice"]),
        with("a label with a space", &TINY.replace("label = \"f\"", "label = \"f g\""), &["`f g`", "letters, digits"]),
        with("an unknown mark", &TINY.replace("label = \"f\"", "label = \"f\"\nmarks = [\"Geo.\"]"), &["`Geo.`", "marks"]),
        with("a claim on an unknown row", &TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nclaims = [\"a > z\"]"), &["\"a > z\"", "`z`", "[\"a\", \"f\"]"]),
        with("a malformed claim", &TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nclaims = [\"a = f\"]"), &["\"a = f\"", "> or <"]),
        with("a claim with >=", &TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nclaims = [\"a >= f\"]"), &["\"a >= f\"", "`= f`"]),
        with("a grid key without a list", &format!("{tiny}\n[sweep.grid]\n\"model.mask.gamma\" = 0.5\n"), &["sweep.grid.model.mask.gamma", "non-empty list"]),
        with("zip lists of unequal length", &format!("{tiny}\n[[sweep.zip]]\n\"model.mask.gamma\" = [0.1, 0.2]\n\"model.mask.beta\" = [0.1]\n"), &["sweep.zip[0]", "[2, 1]"]),
        with(
            "one key on two axes",
            &format!("{tiny}\n[sweep.grid]\n\"model.mask.gamma\" = [0.5]\n[[sweep.zip]]\n\"model.mask.gamma\" = [0.1, 0.2]\n"),
            &["`model.mask.gamma`", "more than one sweep axis"],
        ),
        with("two rows with one label", &format!("{tiny}\n[sweep.grid]\n\"train.lr\" = [0.001, 0.001]\n"), &["two rows get the label `a_lr0.001`", "values that read differently"]),
        with("a missing layer", &TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nlayers = [\"nope\"]"), &["configs/nope.toml", "named by"]),
        with("a typo in a variant", &TINY.replace("label = \"f\"\nset = {", "label = \"f\"\nset = { \"model.fuson\" = \"none\","), &["[variant f]", "model.fuson", "model.fusion"]),
        with("an invalid sweep value", &format!("{tiny}\n[sweep.grid]\n\"model.mask.gamma\" = [0.5, 2.0]\n"), &["model.mask.gamma", "2", "[0, 1]"]),
    ];
    let mut cases = cases;
    cases.push(
        case("a bad value in a layer file", &["plan", "tiny"], &["configs/bad.toml", "data.objects", "2", "at least 3"])
            .file("configs/bad.toml", "[data]\nobjects = 2\n")
            .file("experiments/tiny.toml", &TINY.replace("seeds = [0, 1]", "seeds = [0, 1]\nlayers = [\"bad\"]")),
    );
    assert_all(cases, 20);
}

#[test]
fn bad_launch_arguments_are_refused_before_anything_is_written() {
    let cases = vec![
        case("an unknown device", &["run", "tiny", "--device", "gpu"], &["--device gpu", "expected cpu, cuda:N"]),
        case("a device typo in a parallel sweep", &["sweep", "tiny", "--jobs", "2", "--device", "gpu0"], &["--device gpu0", "expected cpu"]),
        case("a GPU without CUDA", &["sweep", "tiny", "--device", "cuda:0"], &["--device cuda:0", "without CUDA", "--features cuda"]),
        case("data parallel without CUDA", &["run", "tiny", "--devices", "0,1"], &["--devices", "without CUDA"]),
        case("Slurm without sbatch", &["sweep", "tiny", "--launcher", "slurm"], &["sbatch", "Slurm installed"]).env("PATH", "/nonexistent"),
        case("zero timed steps", &["speed", "tiny", "--steps", "0"], &["--steps 0", "at least 1"]),
        case("zero timed steps under the old name", &["bench", "tiny", "--steps", "0"], &["--steps 0", "at least 1", "`geosr bench` is now `geosr speed`"]),
        case("zero jobs", &["sweep", "tiny", "--jobs", "0"], &["--jobs 0", "at least 1"]),
        case("an unknown variant", &["run", "tiny", "--variant", "z"], &["experiments/tiny.toml", "no variant `z`", "[\"a\", \"f\"]"]),
        case("a seed not in the experiment", &["run", "tiny", "--seed", "9"], &["--seed 9", "[0, 1]"]),
        case("an index past the plan", &["run-index", "tiny", "--index", "99"], &["--index 99", "4 runs"]),
        case("a run that changed since submission", &["run-index", "tiny", "--index", "0", "--expect-id", "0000000000"], &["0000000000", "was submitted"]),
        case("an unknown row", &["config", "show", "tiny", "--label", "nope"], &["--label nope", "no such row", "[\"a\", \"f\"]"]),
        case("an unknown backend", &["run", "tiny", "--backend", "cuda"], &["--backend", "cuda"]),
        case("an unknown command", &["trian", "tiny"], &["trian"]),
        case("a run id that does not exist", &["diff", "0000000000", "1111111111"], &["no run `0000000000`", "results"]),
        case("an ambiguous run id", &["diff", "abc", "abc1"], &["ambiguous", "x-s0-abc1234567", "y-s0-abc1999999"])
            .file("results/runs/x/x-s0-abc1234567/config.toml", "")
            .file("results/runs/y/y-s0-abc1999999/config.toml", ""),
    ];
    assert_all(cases, 16);
}

#[test]
fn bad_prediction_files_are_refused_by_line() {
    let score = |name: &'static str, text: &str, needles: &[&str]| {
        let mut c = case(name, &["score", "--bench", "vsi", "p.jsonl"], needles).file("p.jsonl", text);
        c.needles.push("p.jsonl".into());
        c
    };
    let good = r#"{"question_type": "object_counting", "prediction": "3", "ground_truth": "3"}"#;
    let cases = vec![
        case("a missing file", &["score", "--bench", "vsi", "none.jsonl"], &["none.jsonl", "cannot read"]),
        score("invalid JSON", &format!("{good}\n{{oops\n"), &[":2:", "invalid JSON"]),
        score("an unknown question type", r#"{"question_type": "counting", "prediction": "3", "ground_truth": "3"}"#, &[":1:", "\"counting\"", "object_counting"]),
        score("a negative ground truth", r#"{"question_type": "object_counting", "prediction": "3", "ground_truth": -2}"#, &[":1:", "\"-2\"", "positive"]),
        score("a zero ground truth", r#"{"question_type": "room_size_estimation", "prediction": "0", "ground_truth": 0}"#, &[":1:", "\"0\"", "positive"]),
        score("a word for a number", r#"{"question_type": "object_counting", "prediction": "3", "ground_truth": "three"}"#, &[":1:", "\"three\"", "not a number"]),
        score("a choice answer that is no letter", r#"{"question_type": "route_planning", "prediction": "A", "ground_truth": "chair"}"#, &[":1:", "\"chair\"", "option letters"]),
        score("no prediction field", r#"{"question_type": "object_counting", "ground_truth": "3"}"#, &[":1:", "`prediction`"]),
        score("an empty file", "\n\n", &["no predictions"]),
        score("an id twice", &format!("{}\n{}\n", good.replace('{', "{\"id\": 1, "), good.replace('{', "{\"id\": 1, ")), &[":2:", "duplicate id \"1\""]),
        case("an unknown benchmark", &["score", "--bench", "vsx", "p.jsonl"], &["vsx", "vsi"]).file("p.jsonl", good),
    ];
    assert_all(cases, 11);
}

/// Precomputed features are checked in full (every record, every features file, both
/// splits' layouts, the subtask filter) before a run starts or writes anything.
#[test]
fn bad_precomputed_features_are_refused_before_training() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let feat = |name: &'static str, train: &str, eval: &str, extra: &str, needles: &[&str]| {
        let text = format!(
            r#"
title = "tiny"
[config]
data = {{ source = "features", bench = "dynamic", features = {{ train = "{train}", eval = "{eval}" }}{extra} }}
model = {{ geometry = "features", fusion = "gated", mask = {{ kind = "none" }} }}
train = {{ steps = 2, batch_size = 4, warmup_steps = 1 }}
[[variants]]
label = "a"
"#
        );
        case(name, &["run", "tiny"], needles).file("experiments/tiny.toml", &text)
    };
    let dsr = fixtures.join("dsr").display().to_string();
    let vsi = fixtures.join("vsi").display().to_string();
    // A copy of the DSR fixture with one thing changed, under the project.
    let copy = |edit: &dyn Fn(&mut BTreeMap<String, Vec<u8>>)| {
        let mut files = BTreeMap::new();
        for entry in walk(&fixtures.join("dsr")) {
            let rel = entry.strip_prefix(fixtures.join("dsr")).unwrap().display().to_string();
            files.insert(rel, std::fs::read(&entry).unwrap());
        }
        edit(&mut files);
        files
    };
    let with_copy = |c: Case, files: BTreeMap<String, Vec<u8>>| {
        let mut c = c;
        for (rel, bytes) in files {
            c.files.push((format!("feat/{rel}"), bytes));
        }
        c
    };
    let mut cases = vec![
        feat("a missing folder", "nowhere", "nowhere", "", &["nowhere/meta.json", "cannot read"]),
        feat("a benchmark mismatch", &vsi, &vsi, "", &["meta.json", "bench", "data.bench is Dynamic"]),
        feat("a filter that leaves no questions", &dsr, &dsr, ", subtasks = [\"nope\"]", &["data.subtasks", "\"nope\""]),
        feat("an evaluation split of another layout", &dsr, "feat", "", &["feat/meta.json", "`geometry_channels` is 5", "is 3"]),
        feat("an empty split", "feat", "feat", "", &["feat/questions.jsonl", "no questions"]),
        feat("a record with an unknown type", "feat", "feat", "", &["feat/questions.jsonl:1", "unknown question_type"]),
        feat("a record without its features file", "feat", "feat", "", &["feat/questions.jsonl:1", "does not exist"]),
        feat("grounding targets on features", &dsr, &dsr, "", &["model.grounding", "features"]),
    ];
    // Only the last case sets model.grounding.
    let last = cases.last_mut().unwrap();
    last.args.extend(["--set".into(), "model.grounding=1".into()]);
    cases[3] = with_copy(
        std::mem::replace(&mut cases[3], case("", &[], &[])),
        copy(&|f| {
            // A consistent split of one question whose geometry tokens have 5 channels, not 3.
            let meta = String::from_utf8(f["meta.json"].clone()).unwrap().replace("\"geometry_channels\": 3", "\"geometry_channels\": 5");
            assert!(meta.contains("\"geometry_channels\": 5"));
            f.insert("meta.json".into(), meta.into_bytes());
            let q = String::from_utf8(f["questions.jsonl"].clone()).unwrap();
            f.insert("questions.jsonl".into(), format!("{}\n", q.lines().next().unwrap()).into_bytes());
            f.retain(|k, _| !k.starts_with("features/"));
            f.insert("features/dsr-001.safetensors".into(), features_file(&[8, 3], &[4, 5]));
        }),
    );
    cases[4] = with_copy(std::mem::replace(&mut cases[4], case("", &[], &[])), copy(&|f| {
        f.insert("questions.jsonl".into(), b"\n".to_vec());
    }));
    cases[5] = with_copy(std::mem::replace(&mut cases[5], case("", &[], &[])), copy(&|f| {
        let q = String::from_utf8(f["questions.jsonl"].clone()).unwrap();
        let first = q.lines().next().unwrap().to_string();
        let bad = first.replacen("\"question_type\":\"", "\"question_type\":\"x", 1).replacen("\"question_type\": \"", "\"question_type\": \"x", 1);
        f.insert("questions.jsonl".into(), q.replacen(&first, &bad, 1).into_bytes());
    }));
    cases[6] = with_copy(std::mem::replace(&mut cases[6], case("", &[], &[])), copy(&|f| {
        let first = f.keys().find(|k| k.starts_with("features/")).unwrap().clone();
        let q = String::from_utf8(f["questions.jsonl"].clone()).unwrap();
        // Drop the features file of the first record.
        let id_line = q.lines().next().unwrap();
        let id: serde_json::Value = serde_json::from_str(id_line).unwrap();
        let name = format!("features/{}.safetensors", id["id"].as_str().map(str::to_string).unwrap_or_else(|| id["id"].to_string()));
        f.remove(&name).or_else(|| f.remove(&first));
    }));
    // Each case's name was replaced along with it; give them back.
    for (c, name) in cases.iter_mut().zip(["a missing folder", "a benchmark mismatch", "a filter that leaves no questions", "an evaluation split of another layout", "an empty split", "a record with an unknown type", "a record without its features file", "grounding targets on features"]) {
        c.name = name;
    }
    assert_all(cases, 8);
}

/// A safetensors file with zero-filled f32 tensors `vision` and `geometry` of these shapes.
fn features_file(vision: &[usize], geometry: &[usize]) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let data = |shape: &[usize]| vec![0u8; 4 * shape.iter().product::<usize>()];
    let (v, g) = (data(vision), data(geometry));
    let tensors = [
        ("vision", TensorView::new(Dtype::F32, vision.to_vec(), &v).unwrap()),
        ("geometry", TensorView::new(Dtype::F32, geometry.to_vec(), &g).unwrap()),
    ];
    safetensors::serialize(tensors, None).unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A `GEOSR_*` variable that is not configuration is named in a warning, not ignored.
#[test]
fn a_variable_that_is_not_configuration_is_named() {
    let p = Project::new();
    p.write("experiments/tiny.toml", &TINY);
    common::geosr_in(p.path())
        .args(["plan", "tiny"])
        .env("GEOSR_TRAIN_LR", "0.1")
        .assert()
        .success()
        .stderr(predicates::str::contains("GEOSR_TRAIN_LR is not read").and(predicates::str::contains("GEOSR_TRAIN__LR")));
}

use predicates::prelude::PredicateBooleanExt;
