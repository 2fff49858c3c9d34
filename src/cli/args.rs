//! Arguments that several commands share, and what they resolve to: an experiment
//! with its overrides, and where its runs train.

use anyhow::Result;
use geosr::config::experiment::{parse_grid, point_label, VariantSpec};
use geosr::config::layers::{cli_layers, env_layers, env_warnings};
use geosr::config::{ConfigError, Experiment, Layer, RunSpec};

use super::backend::{CpuBackend, NO_CUDA};
use super::exit::Usage;

#[derive(clap::Args, Clone)]
pub struct Overrides {
    /// Override a config key for every run, e.g. --set model.mask.gamma=0.6 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl Overrides {
    /// The override layers, from the environment (`GEOSR_SECTION__KEY`) and from `--set`.
    pub fn layers(&self) -> Result<(Vec<Layer>, Vec<Layer>), ConfigError> {
        for warning in env_warnings(std::env::vars()) {
            eprintln!("warning: {warning}");
        }
        Ok((env_layers(std::env::vars())?, cli_layers(&self.set)?))
    }
}

#[derive(clap::Args, Clone)]
pub struct ExperimentArgs {
    /// Experiment name (experiments/NAME.toml) or path.
    pub experiment: String,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Add a sweep axis without editing the file, e.g. --grid model.mask.gamma=0.2,0.4,0.6
    /// (repeatable: axes multiply). Its runs, table and figure are kept apart from the
    /// file's own, under EXPERIMENT+grid.KEY=V1_V2; give the same --grid to `table`,
    /// `status` or `plot` to see them.
    #[arg(long = "grid", value_name = "KEY=V1,V2,..")]
    pub grid: Vec<String>,
    /// One of the experiment's [[controls]]: every run with the control's keys set, as
    /// --set would do (a --set still wins). `table --controls` shows them all.
    #[arg(long = "control", value_name = "NAME")]
    pub control: Option<String>,
}

/// An experiment with the override layers every one of its runs gets.
pub struct Loaded {
    pub exp: Experiment,
    pub env: Vec<Layer>,
    /// The `--control` layer first (when one is named), then the `--set` ones.
    pub sets: Vec<Layer>,
    pub control: Option<String>,
}

impl ExperimentArgs {
    /// Loads the experiment, with a warning for each override that replaces what a
    /// variant sets itself.
    pub fn load(&self) -> Result<Loaded> {
        let grid = self.grid.iter().map(|g| parse_grid(g)).collect::<Result<Vec<_>, _>>().map_err(Usage)?;
        let (mut exp, notes) = Experiment::load(&self.experiment)?.with_grid(&grid)?;
        for note in notes {
            eprintln!("note: {note}");
        }
        let (env, mut sets) = self.overrides.layers()?;
        // Runs, tables and figures of an experiment run under overrides or a control are
        // kept apart from the plain experiment's: they are named EXPERIMENT-CONTROL+key=value.
        let own: Vec<&Layer> = env.iter().chain(&sets).collect();
        exp.name = output_name(&exp.name, self.control.as_deref(), &own);
        if let Some(name) = &self.control {
            sets.insert(0, exp.control_layer(name)?);
            // Every table, figure and page of a control names it: they are often read
            // alone, away from the command that made them.
            exp.file.title = format!("{} (control `{name}`)", exp.file.title);
        }
        for warning in exp.override_warnings(&env, &sets) {
            eprintln!("warning: {warning}");
        }
        Ok(Loaded { exp, env, sets, control: self.control.clone() })
    }
}

impl ExperimentArgs {
    /// These arguments as given; with `all` (`--controls`), for the experiment itself and
    /// then once for each of its [[controls]], refused for a file without controls, where
    /// the flag would silently do nothing more.
    pub fn conditions(&self, all: bool) -> Result<Vec<ExperimentArgs>> {
        if !all {
            return Ok(vec![self.clone()]);
        }
        let exp = Experiment::load(&self.experiment)?;
        no_controls(&exp)?;
        let base = ExperimentArgs { control: None, ..self.clone() };
        let each = exp.control_names().into_iter().map(|name| ExperimentArgs { control: Some(name.to_string()), ..self.clone() });
        Ok(std::iter::once(base).chain(each).collect())
    }
}

/// `--controls` on a file without controls, where the flag would silently do nothing.
pub fn no_controls(exp: &Experiment) -> Result<(), ConfigError> {
    if exp.file.controls.is_empty() {
        return Err(ConfigError::Experiment {
            path: exp.path.clone(),
            message: "--controls: this experiment has no [[controls]]; add one (name, about, set) or drop the flag".into(),
        });
    }
    Ok(())
}

impl Loaded {
    /// The `--set` layers, without the control's.
    pub fn own_sets(&self) -> &[Layer] {
        if self.control.is_some() { &self.sets[1..] } else { &self.sets[..] }
    }

    pub fn plan(&self) -> Result<Vec<RunSpec>, ConfigError> {
        self.exp.plan(&self.env, &self.sets)
    }

    /// The experiment's other plans under the same overrides: the file as written
    /// (`None`, when a control is shown), then each control not shown.
    pub fn other_plans(&self) -> Vec<(Option<String>, Result<Vec<RunSpec>, ConfigError>)> {
        let plan = |extra: Option<Layer>| {
            let layers: Vec<Layer> = extra.into_iter().chain(self.own_sets().iter().cloned()).collect();
            self.exp.plan(&self.env, &layers)
        };
        let mut out = Vec::new();
        if self.control.is_some() {
            out.push((None, plan(None)));
        }
        for name in self.exp.control_names().into_iter().filter(|n| self.control.as_deref() != Some(*n)) {
            out.push((Some(name.to_string()), self.exp.control_layer(name).and_then(|layer| plan(Some(layer)))));
        }
        out
    }

    /// [`Self::other_plans`] as the notes on stray runs use them; a control that these
    /// overrides make invalid is left out.
    pub fn elsewhere(&self) -> Vec<geosr::report::stray::Elsewhere> {
        use geosr::report::stray::Elsewhere;
        let ids = |plan: Vec<RunSpec>| plan.into_iter().flat_map(|s| [s.id, s.legacy_id]).collect();
        self.other_plans()
            .into_iter()
            .filter_map(|(control, plan)| {
                let ids = ids(plan.ok()?);
                Some(match control {
                    None => Elsewhere { what: "the experiment as written".into(), how: "drop --control".into(), ids },
                    Some(name) => Elsewhere { what: format!("control `{name}`"), how: format!("add --control {name}"), ids },
                })
            })
            .collect()
    }

    /// The file as written (this plan) and each of its controls, for the side-by-side
    /// view of their claims; empty when the file has no controls or a control is shown.
    pub fn conditions(&self, plan: &[RunSpec], reference: bool) -> Result<Vec<geosr::report::controls::Condition>> {
        use geosr::report::controls::Condition;
        if self.control.is_some() || self.exp.file.controls.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = vec![Condition::new(&self.exp, None, plan, reference)?];
        for (control, other) in self.other_plans() {
            out.push(Condition::new(&self.exp, control.as_deref(), &other?, reference)?);
        }
        Ok(out)
    }
}

/// Which of an experiment's runs a command takes: `run` and `sweep` share it.
#[derive(clap::Args, Clone, Default)]
pub struct Selection {
    /// Only this row (repeatable): a variant's label, which takes every sweep point of it,
    /// or a row's label as `geosr plan` lists it (`geosr_gamma0.4_beta0.5`).
    #[arg(long)]
    pub variant: Vec<String>,
    /// Only this seed (repeatable); one of the experiment's `seeds`.
    #[arg(long, allow_negative_numbers = true, value_parser = seed_value)]
    pub seed: Vec<u64>,
}

/// A `--seed`: `-1` is a bad seed, not an unknown flag.
fn seed_value(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| format!("expected a seed, a whole number 0 or more (one of the experiment's `seeds`), got {text:?}"))
}

impl Selection {
    /// Refuses a label or seed the experiment does not have: a typo would otherwise
    /// select nothing and look like a sweep with nothing left to do.
    pub fn check(&self, exp: &Experiment) -> Result<(), ConfigError> {
        let rows = exp.row_labels();
        for label in &self.variant {
            if exp.variant(label).is_none() && !rows.contains(label) {
                let labels: Vec<&str> = exp.file.variants.iter().map(|v| v.label.as_str()).collect();
                let mut message = format!("--variant {label}: no variant `{label}`; expected one of {labels:?}");
                if rows.len() > labels.len() {
                    message.push_str(&format!(" or one of their rows {rows:?}"));
                }
                return Err(ConfigError::Experiment { path: exp.path.clone(), message });
            }
        }
        for s in &self.seed {
            if !exp.file.seeds.contains(s) {
                return Err(ConfigError::Experiment {
                    path: exp.path.clone(),
                    message: format!("--seed {s}: expected one of the experiment's seeds {:?}", exp.file.seeds),
                });
            }
        }
        Ok(())
    }

    /// Whether any run of the variant labelled `label` may be selected: the variants
    /// that cannot are left unresolved (see [`Experiment::plan_variants`]).
    pub fn keeps_variant(&self, exp: &Experiment, label: &str) -> bool {
        let points = exp.sweep_points();
        self.variant.is_empty()
            || self.variant.iter().any(|v| v == label || points.iter().any(|p| *v == point_label(label, p)))
    }

    pub fn keeps(&self, spec: &RunSpec) -> bool {
        (self.variant.is_empty() || self.variant.iter().any(|v| *v == spec.variant || *v == spec.label))
            && (self.seed.is_empty() || self.seed.contains(&spec.seed))
    }

    pub fn is_all(&self) -> bool {
        self.variant.is_empty() && self.seed.is_empty()
    }
}

/// The variant labelled `label`, or an error that lists the labels there are.
pub fn variant<'a>(exp: &'a Experiment, label: &str) -> Result<&'a VariantSpec, ConfigError> {
    exp.variant(label).ok_or_else(|| {
        let labels: Vec<&str> = exp.file.variants.iter().map(|v| v.label.as_str()).collect();
        ConfigError::Experiment { path: exp.path.clone(), message: format!("no variant `{label}`; expected one of {labels:?}") }
    })
}

/// Where runs train.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// `cpu` or `cuda:N` (the latter needs a build with --features cuda); `sweep` and
    /// `reproduce` with --jobs also take `cuda:0,1,2,3` and give each job its own GPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU backend.
    #[arg(long, value_enum, default_value_t = CpuBackend::default())]
    pub backend: CpuBackend,
}

impl Target {
    /// Refuses a bad `--device` before anything runs, not in every child a sweep starts.
    pub fn check(&self) -> Result<(), Usage> {
        parse_device(&self.device).map(drop)
    }
}

/// Where a run trains: a [`Target`], or data parallel on several GPUs.
#[derive(clap::Args)]
pub struct RunTarget {
    #[command(flatten)]
    pub target: Target,
    /// Train each run data parallel on these GPUs, e.g. `0,1,2,3`: every batch is
    /// split across them and their gradients summed on the first, which also
    /// evaluates. Needs a build with --features cuda.
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "device")]
    pub devices: Vec<usize>,
}

impl RunTarget {
    pub fn check(&self) -> Result<(), Usage> {
        self.target.check()?;
        if !self.devices.is_empty() && !cfg!(feature = "cuda") {
            return Err(Usage(format!("--devices: {NO_CUDA}")));
        }
        Ok(())
    }
}

/// `--device`: the CPU, one GPU, or a list of GPUs (one per parallel job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(Vec<usize>),
}

/// A GPU on a build without CUDA is refused here, with how to get one that has it.
pub fn parse_device(device: &str) -> Result<Device, Usage> {
    let bad = || Usage(format!("--device {device}: expected cpu, cuda:N or cuda:N,M,... (e.g. cuda:0)"));
    let device_kind = match device.trim() {
        "cpu" => Device::Cpu,
        d => {
            let list = d.strip_prefix("cuda:").ok_or_else(bad)?;
            let ids = list.split(',').map(|i| i.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>().map_err(|_| bad())?;
            Device::Cuda(ids)
        }
    };
    if matches!(device_kind, Device::Cuda(_)) && !cfg!(feature = "cuda") {
        return Err(Usage(format!("--device {device}: {NO_CUDA}")));
    }
    Ok(device_kind)
}

/// The name of an experiment under a control and override layers (the control's own
/// layer not among them): `EXPERIMENT-CONTROL+key=value+...`, shortened with a hash
/// past 80 characters.
fn output_name(exp_name: &str, control: Option<&str>, layers: &[&Layer]) -> String {
    let mut parts: Vec<String> = Vec::new();
    // A control is named by its name (below), not by the keys it sets.
    for layer in layers {
        for (key, value) in geosr::config::layers::flatten(&layer.data) {
            if !geosr::runs::identity::never_changes_a_run(&key) {
                let text = geosr::config::layers::value_to_string(&value);
                let slug: String = format!("{key}={}", text.trim_matches('"'))
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || ".=-_".contains(c) { c } else { '_' })
                    .collect();
                parts.push(slug);
            }
        }
    }
    let name = match control {
        Some(control) => format!("{exp_name}-{control}"),
        None => exp_name.to_string(),
    };
    if parts.is_empty() {
        return name;
    }
    let joined = parts.join("+");
    if joined.len() <= 80 {
        format!("{name}+{joined}")
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(joined.as_bytes());
        let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("{name}+{}-{hash}", &joined[..60])
    }
}
