//! Experiment files (`experiments/*.toml`): one file per paper table or figure.
//! An experiment names its config layers, its variants (with the paper's
//! check-mark columns), optional sweep axes and the seeds; [`Experiment::plan`]
//! expands it into the runs it stands for.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::layers::{self, Layer, Resolved};
use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Config layers under `configs/`, applied in order after the defaults.
    #[serde(default)]
    pub layers: Vec<String>,
    /// The experiment's own settings, applied after its layers.
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The paper's numbers for this table, relative to the repository root.
    #[serde(default)]
    pub reference: Option<String>,
    /// Check-mark column names, in the paper's order (e.g. "Geo. Mask.").
    #[serde(default)]
    pub marks: Vec<String>,
    /// Metric columns in the paper's order (subtask names, then Avg.).
    #[serde(default)]
    pub columns: Vec<String>,
    /// The paper's claims as comparisons between rows, e.g. "a > b".
    #[serde(default)]
    pub claims: Vec<String>,
    pub variants: Vec<VariantSpec>,
    #[serde(default)]
    pub sweep: SweepSpec,
    /// The whole experiment again with a few keys changed, to test whether its claims
    /// depend on them.
    #[serde(default)]
    pub controls: Vec<ControlSpec>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Row label, e.g. "a".
    pub label: String,
    /// A longer human name, e.g. "GeoSR (full)".
    #[serde(default)]
    pub name: String,
    /// The check-mark columns this row ticks.
    #[serde(default)]
    pub marks: Vec<String>,
    /// Overrides, as dotted keys or nested tables.
    #[serde(default)]
    pub set: toml::Table,
}

/// A control (`[[controls]]`): every run of the experiment with `set` on top, as
/// `--set` would do, under a name. `--control NAME` trains or shows it, and
/// `table --controls` puts every control's claims beside the experiment's own, which
/// is how a reader sees which claims hold only because of a setting (an auxiliary
/// loss, a built-in train/evaluation shift).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSpec {
    /// E.g. "no-grounding"; letters, digits, '-', '_' or '.'.
    pub name: String,
    /// What the control takes away, and why it matters.
    #[serde(default)]
    pub about: String,
    /// The keys it changes, as dotted keys or nested tables.
    pub set: toml::Table,
}

/// Sweep axes. `grid` keys form a cartesian product; each `zip` group's keys
/// move together (all lists of one group have the same length).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default)]
    pub grid: toml::Table,
    #[serde(default)]
    pub zip: Vec<toml::Table>,
}

/// A parsed claim `left > right` (a claim written with `<` is stored flipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub text: String,
    pub better: String,
    pub worse: String,
}

pub fn parse_claim(text: &str) -> Option<Claim> {
    let (l, r, flip) = if let Some((l, r)) = text.split_once('>') {
        (l, r, false)
    } else {
        let (l, r) = text.split_once('<')?;
        (l, r, true)
    };
    let (l, r) = (l.trim().to_string(), r.trim().to_string());
    if l.is_empty() || r.is_empty() {
        return None;
    }
    let (better, worse) = if flip { (r, l) } else { (l, r) };
    Some(Claim { text: text.trim().to_string(), better, worse })
}

/// One point of the sweep: the keys it sets, in a stable order.
pub type SweepPoint = Vec<(String, toml::Value)>;

#[derive(Debug, Clone)]
pub struct Experiment {
    /// The results folder name: the file stem, with `-CONTROL`, `+key=value` or
    /// `+grid...` when shown under a control, overrides or a grid.
    pub name: String,
    pub path: PathBuf,
    /// Folder holding `configs/` (the parent of the experiment's folder).
    pub root: PathBuf,
    pub file: ExperimentFile,
}

/// One run an experiment expands to.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub experiment: String,
    pub variant: String,
    /// Variant label plus the sweep point, e.g. `a` or `a_gamma0.6`.
    pub label: String,
    pub sweep: SweepPoint,
    /// The run's training seed: `train.seed` of its resolved config (the experiment's
    /// seed unless an override set it), so folder names and table rows never disagree
    /// with what trained.
    pub seed: u64,
    pub resolved: Resolved,
    pub id: String,
    /// The id under the rule before inert keys were canonicalized (see
    /// [`crate::runs::identity`]); equal to `id` for most configs.
    pub legacy_id: String,
}

impl RunSpec {
    /// Folder name under `results/runs/<experiment>/`.
    pub fn dir_name(&self) -> String {
        format!("{}-s{}-{}", self.label, self.seed, self.id)
    }
}

impl Experiment {
    /// Loads `experiments/NAME.toml` or a path to an experiment file.
    pub fn load(arg: &str) -> Result<Experiment, ConfigError> {
        let candidate = PathBuf::from(arg);
        let path = if candidate.extension().is_some() || candidate.exists() {
            candidate
        } else {
            PathBuf::from("experiments").join(format!("{arg}.toml"))
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Experiment {
            path: path.clone(),
            message: format!("cannot read experiment file: {e}"),
        })?;
        let file: ExperimentFile = toml::from_str(&text).map_err(|e| ConfigError::Experiment {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into());
        let root = path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let exp = Experiment { name, path, root, file };
        exp.check()?;
        Ok(exp)
    }

    /// The experiment with sweep axes added from the command line (`--grid KEY=V1,V2`,
    /// like Hydra's multirun): a key the file already sweeps gets these values instead.
    /// The result is another experiment: its name gets a `+grid...` suffix, so its runs'
    /// entries, tables and figures are kept apart from the file's own. Each claim is asked
    /// at every point of the new axes (`a > b` becomes `a_gamma0.2 > b_gamma0.2`, ...);
    /// returns the notes a user should read (replaced axes, claims that no longer apply).
    pub fn with_grid(mut self, axes: &[(String, Vec<toml::Value>)]) -> Result<(Experiment, Vec<String>), ConfigError> {
        if axes.is_empty() {
            return Ok((self, Vec::new()));
        }
        let mut notes = Vec::new();
        let mut slug_parts = Vec::new();
        for (i, (key, values)) in axes.iter().enumerate() {
            if values.is_empty() {
                return Err(self.err(format!("--grid {key}=: expected one or more comma-separated values")));
            }
            // Each of these made rows that are one run under several labels, or lost an axis.
            if axes[..i].iter().any(|(k, _)| k == key) {
                return Err(self.err(format!("--grid {key} is given twice: give all its values in one, e.g. --grid {key}=V1,V2")));
            }
            if key == "train.seed" {
                return Err(self.err(
                    "--grid train.seed: the seeds are the experiment's `seeds` list (each run's seed is set from it, \
                     after the grid), so every point would be the same runs; change `seeds` in the file, or pick seeds \
                     with --seed"
                        .to_string(),
                ));
            }
            if crate::runs::identity::never_changes_a_run(key) {
                return Err(self.err(format!(
                    "--grid {key}: `{key}` never changes a run, so every point would be the same run under another \
                     label; set it for all runs with --set {key}=VALUE"
                )));
            }
            if self.file.sweep.zip.iter().any(|g| g.contains_key(key)) {
                return Err(self.err(format!(
                    "--grid {key}: `{key}` moves with other keys in a [[sweep.zip]] group of this file; change it there"
                )));
            }
            let shown: Vec<String> = values.iter().map(grid_value_text).collect();
            if let Some(old) = self.file.sweep.grid.get(key) {
                notes.push(format!("--grid {key}: replaces the file's values {old} with [{}]", shown.join(", ")));
            }
            self.file.sweep.grid.insert(key.clone(), toml::Value::Array(values.clone()));
            // No commas: the name is a folder, a `runs --experiment` value and a
            // TensorBoard run name, where a comma reads as a list.
            slug_parts.push(format!("{key}={}", shown.join("_")));
        }
        let joined: String = slug_parts
            .join("+")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || ".=-_".contains(c) { c } else { '_' })
            .collect();
        self.name = if joined.len() <= 80 {
            format!("{}+grid.{joined}", self.name)
        } else {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(joined.as_bytes());
            let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
            format!("{}+grid.{}-{hash}", self.name, &joined[..60])
        };
        let rows = self.row_labels();
        let mut claims = Vec::new();
        for text in &self.file.claims {
            let Some(claim) = parse_claim(text) else {
                claims.push(text.clone());
                continue;
            };
            if rows.contains(&claim.better) && rows.contains(&claim.worse) {
                claims.push(text.clone());
                continue;
            }
            // The same comparison at each point: rows that share what follows the labels.
            let at_points: Vec<String> = rows
                .iter()
                .filter_map(|r| r.strip_prefix(claim.better.as_str()).filter(|rest| rest.starts_with('_')))
                .filter(|rest| rows.contains(&format!("{}{rest}", claim.worse)))
                .map(|rest| format!("{}{rest} > {}{rest}", claim.better, claim.worse))
                .collect();
            if at_points.is_empty() {
                notes.push(format!("claim {text:?} names rows the grid removed; it is not checked"));
            }
            claims.extend(at_points);
        }
        self.file.claims = claims;
        self.check()?;
        Ok((self, notes))
    }

    fn err(&self, message: String) -> ConfigError {
        ConfigError::Experiment { path: self.path.clone(), message }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.file.variants.is_empty() {
            return Err(self.err("no [[variants]]: an experiment needs at least one row".into()));
        }
        if self.file.seeds.is_empty() {
            return Err(self.err("`seeds` is empty: expected at least one seed".into()));
        }
        let mut seeds = std::collections::HashSet::new();
        if let Some(twice) = self.file.seeds.iter().find(|s| !seeds.insert(**s)) {
            return Err(self.err(format!(
                "`seeds` = {:?} lists seed {twice} twice: expected distinct seeds (one run each)",
                self.file.seeds
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for v in &self.file.variants {
            if v.label.is_empty() || !v.label.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(self.err(format!(
                    "variant label `{}`: expected letters, digits, '-', '_' or '.'",
                    v.label
                )));
            }
            if !seen.insert(&v.label) {
                return Err(self.err(format!("variant label `{}` appears twice", v.label)));
            }
            for m in &v.marks {
                if !self.file.marks.contains(m) {
                    return Err(self.err(format!(
                        "variant `{}` ticks mark `{m}`, expected one of the experiment's marks {:?}",
                        v.label, self.file.marks
                    )));
                }
            }
        }
        for (key, value) in &self.file.sweep.grid {
            if !value.as_array().is_some_and(|a| !a.is_empty()) {
                return Err(self.err(format!("sweep.grid.{key}: expected a non-empty list of values")));
            }
        }
        for (i, group) in self.file.sweep.zip.iter().enumerate() {
            let lens: Vec<usize> = group.values().map(|v| v.as_array().map_or(0, Vec::len)).collect();
            if lens.is_empty() || lens.contains(&0) || lens.iter().any(|&l| l != lens[0]) {
                return Err(self.err(format!(
                    "sweep.zip[{i}]: expected lists of one common, non-zero length, found lengths {lens:?}"
                )));
            }
        }
        // Tables group runs by row label: two rows with one label would be averaged together.
        let mut rows = std::collections::HashSet::new();
        if let Some(twice) = self.row_labels().into_iter().find(|l| !rows.insert(l.clone())) {
            return Err(self.err(format!(
                "two rows get the label `{twice}` (sweep values are written into labels with characters other than \
                 letters, digits, '.' and '-' replaced by '_'): expected values that read differently"
            )));
        }
        let mut axes = std::collections::HashSet::new();
        for key in self.sweep_axes() {
            if !axes.insert(key.clone()) {
                return Err(self.err(format!("sweep key `{key}` appears in more than one sweep axis")));
            }
        }
        self.check_controls()?;
        self.check_claims()
    }

    /// Each control has a distinct name that can stand in a command line and sets at
    /// least one key, which is neither a sweep axis nor the seed (see `check_overrides`).
    fn check_controls(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for c in &self.file.controls {
            if c.name.is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
                return Err(self.err(format!("control name `{}`: expected letters, digits, '-', '_' or '.'", c.name)));
            }
            if !names.insert(&c.name) {
                return Err(self.err(format!("control `{}` appears twice", c.name)));
            }
            if c.set.is_empty() {
                return Err(self.err(format!("control `{}`: `set` is empty; expected the keys the control changes", c.name)));
            }
            self.check_overrides(std::iter::once(&self.control_layer(&c.name)?))?;
        }
        Ok(())
    }

    /// The names of the experiment's controls, in file order.
    /// The results folders of this experiment's other forms: the file's own name, and
    /// that name under any control, overrides or grid (`table3`, `table3-no-shift`,
    /// `table3+train.lr=0.01`, ...), as folder names under `results/runs/` may be.
    pub fn is_own_folder(&self, folder: &str) -> bool {
        let base = self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(rest) = folder.strip_prefix(&base) else { return false };
        let rest = self.control_names().into_iter().find_map(|c| rest.strip_prefix(&format!("-{c}"))).unwrap_or(rest);
        rest.is_empty() || rest.starts_with('+')
    }

    pub fn control_names(&self) -> Vec<&str> {
        self.file.controls.iter().map(|c| c.name.as_str()).collect()
    }

    /// The control called `name`, or an error that lists the controls there are.
    pub fn control(&self, name: &str) -> Result<&ControlSpec, ConfigError> {
        self.file.controls.iter().find(|c| c.name == name).ok_or_else(|| {
            let names = self.control_names();
            if names.is_empty() {
                self.err(format!("no control `{name}`: this experiment has no [[controls]]"))
            } else {
                self.err(format!("no control `{name}`; expected one of {names:?}"))
            }
        })
    }

    /// The override layer the control called `name` adds to every run.
    pub fn control_layer(&self, name: &str) -> Result<Layer, ConfigError> {
        let c = self.control(name)?;
        Layer::table(&format!("{} [controls: {}]", self.path.display(), c.name), &c.set)
    }

    /// Each claim must parse as `row > row` (or `<`) and name rows the experiment has.
    fn check_claims(&self) -> Result<(), ConfigError> {
        let labels = self.row_labels();
        for text in &self.file.claims {
            let Some(claim) = parse_claim(text) else {
                return Err(self.err(format!(
                    "claim {text:?}: expected two row labels compared with > or <, e.g. \"a > b\""
                )));
            };
            for side in [&claim.better, &claim.worse] {
                if !labels.contains(side) {
                    return Err(self.err(format!("claim {text:?} names row `{side}`, expected one of {labels:?}")));
                }
            }
        }
        Ok(())
    }

    /// The rows a table of this experiment has: each variant's label with each sweep point.
    pub fn row_labels(&self) -> Vec<String> {
        let points = self.sweep_points();
        self.file.variants.iter().flat_map(|v| points.iter().map(|p| point_label(&v.label, p))).collect()
    }

    /// Every key a sweep axis sets, as written (dotted).
    pub fn sweep_axes(&self) -> Vec<String> {
        self.file.sweep.grid.keys().chain(self.file.sweep.zip.iter().flat_map(|g| g.keys())).cloned().collect()
    }

    pub fn configs_dir(&self) -> PathBuf {
        self.root.join("configs")
    }

    pub fn variant(&self, label: &str) -> Option<&VariantSpec> {
        self.file.variants.iter().find(|v| v.label == label)
    }

    /// Every point of the sweep (a single empty point when there is no sweep).
    pub fn sweep_points(&self) -> Vec<SweepPoint> {
        let mut points: Vec<SweepPoint> = vec![Vec::new()];
        for (key, values) in &self.file.sweep.grid {
            let values = values.as_array().cloned().unwrap_or_default();
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut q = p.clone();
                        q.push((key.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        for group in &self.file.sweep.zip {
            let len = group.values().next().and_then(|v| v.as_array()).map_or(0, Vec::len);
            let rows: Vec<SweepPoint> = (0..len)
                .map(|i| group.iter().map(|(k, v)| (k.clone(), v.as_array().expect("checked")[i].clone())).collect())
                .collect();
            points = points
                .into_iter()
                .flat_map(|p| {
                    rows.iter().map(move |r| {
                        let mut q = p.clone();
                        q.extend(r.iter().cloned());
                        q
                    })
                })
                .collect();
        }
        points
    }

    /// The layers of one run, in precedence order (last wins).
    pub fn layers_for(
        &self,
        variant: &VariantSpec,
        point: &SweepPoint,
        seed: u64,
        env: &[Layer],
        cli: &[Layer],
    ) -> Result<Vec<Layer>, ConfigError> {
        let exp = self.path.display().to_string();
        let mut out = vec![Layer::defaults()];
        for name in &self.file.layers {
            out.push(Layer::file(&layers::layer_path(&self.configs_dir(), name), &exp)?);
        }
        if !self.file.config.is_empty() {
            out.push(Layer::table(&format!("{exp} [config]"), &self.file.config)?);
        }
        if !variant.set.is_empty() {
            out.push(Layer::table(&format!("{exp} [variant {}]", variant.label), &variant.set)?);
        }
        for (key, value) in point {
            let mut t = toml::Table::new();
            t.insert(key.clone(), value.clone());
            out.push(Layer::table(&format!("{exp} [sweep {key}={value}]"), &t)?);
        }
        let mut t = toml::Table::new();
        t.insert("train.seed".into(), toml::Value::Integer(seed as i64));
        out.push(Layer::table(&format!("{exp} [seeds]"), &t)?);
        out.extend(env.iter().cloned());
        out.extend(cli.iter().cloned());
        Ok(out)
    }

    /// Expands variants x sweep points x seeds into runs, resolving and validating each.
    ///
    /// Seeds differ only in `train.seed`, so each row is resolved once, with its first
    /// seed, and copied for the others with the seed patched in (10,000 runs of 1,000
    /// rows: a tenth of the work). When a later layer (environment, `--set`) overrides
    /// `train.seed`, the seeds layer sets nothing and the copies stay as they are, as
    /// a full resolution would leave them.
    pub fn plan(&self, env: &[Layer], cli: &[Layer]) -> Result<Vec<RunSpec>, ConfigError> {
        self.plan_variants(env, cli, |_| true)
    }

    /// [`Self::plan`] for the variants whose label `keep` accepts; the others are not
    /// resolved, so an override that only they reject (`--set model.fusion=gated` with
    /// `--variant a`, next to a no-geometry variant) does not stop the chosen ones.
    pub fn plan_variants(&self, env: &[Layer], cli: &[Layer], keep: impl Fn(&str) -> bool) -> Result<Vec<RunSpec>, ConfigError> {
        self.check_overrides(env.iter().chain(cli))?;
        let mut runs = Vec::new();
        // Where each run sits in the experiment: (variant, sweep point, the experiment's seed).
        let mut places: Vec<(&VariantSpec, SweepPoint, u64)> = Vec::new();
        let seeds_layer = format!("{} [seeds]", self.path.display());
        for variant in self.file.variants.iter().filter(|v| keep(&v.label)) {
            for point in self.sweep_points() {
                places.extend(self.file.seeds.iter().map(|&seed| (variant, point.clone(), seed)));
                let first = self.run_spec(variant, &point, self.file.seeds[0], env, cli)?;
                let set_by_seeds = first.resolved.provenance.get("train.seed").is_some_and(|(value, source)| {
                    *source == seeds_layer && *value == self.file.seeds[0].to_string()
                });
                let others: Vec<RunSpec> = self.file.seeds[1..]
                    .iter()
                    .map(|&seed| {
                        let mut resolved = first.resolved.clone();
                        if set_by_seeds {
                            resolved.config.train.seed = seed;
                            resolved.provenance.insert("train.seed".into(), (seed.to_string(), seeds_layer.clone()));
                        }
                        let (id, legacy_id) = crate::runs::run_ids(&resolved.config);
                        RunSpec { seed: resolved.config.train.seed, resolved, id, legacy_id, ..first.clone() }
                    })
                    .collect();
                runs.push(first);
                runs.extend(others);
            }
        }
        self.check_distinct(&runs, &places, env, cli)?;
        Ok(runs)
    }

    /// Refuses overrides of what the experiment itself varies from run to run: a sweep
    /// axis (every point would train one value under its own label) and, with several
    /// seeds, `train.seed` (every seed would be one run).
    fn check_overrides<'a>(&self, overrides: impl Iterator<Item = &'a Layer>) -> Result<(), ConfigError> {
        let axes = self.sweep_axes();
        for layer in overrides {
            for key in layers::flatten(&layer.data).into_keys() {
                if axes.contains(&key) {
                    let values: Vec<String> = self.sweep_points().iter().filter_map(|p| p.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())).collect();
                    return Err(self.err(format!(
                        "{} overrides `{key}`, a sweep axis of this experiment (values {}): every point would \
                         train with one value under its own label. Drop the override, or change the sweep in the file",
                        layer.name,
                        values.join(", ")
                    )));
                }
                if key == "train.seed" && self.file.seeds.len() > 1 {
                    return Err(self.err(format!(
                        "{} sets `train.seed`, which this experiment sets per run from `seeds = {:?}`: its {} seeds \
                         would be one run trained under {} labels. Drop the override (`geosr run --seed N` picks \
                         seeds), or change `seeds` in the file",
                        layer.name,
                        self.file.seeds,
                        self.file.seeds.len(),
                        self.file.seeds.len()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Refuses a plan in which overrides made distinct runs of the experiment one run
    /// (one id), whichever key did it. Runs that share an id without any override are
    /// one run by design (a variant that does not read a swept key, see
    /// [`crate::runs::identity`]) and stay.
    fn check_distinct(&self, runs: &[RunSpec], places: &[(&VariantSpec, SweepPoint, u64)], env: &[Layer], cli: &[Layer]) -> Result<(), ConfigError> {
        let mut by_id: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, r) in runs.iter().enumerate() {
            by_id.entry(r.id.as_str()).or_default().push(i);
        }
        for (id, group) in by_id.into_iter().filter(|(_, g)| g.len() > 1) {
            // The id each would have without the overrides; `None` where that config is invalid.
            let plain: Vec<Option<String>> = group
                .iter()
                .map(|&i| {
                    let (variant, point, seed) = &places[i];
                    self.run_spec(variant, point, *seed, &[], &[]).ok().map(|s| s.id)
                })
                .collect();
            if plain.iter().all(|p| p.is_some() && *p == plain[0]) {
                continue;
            }
            let names: Vec<String> = group.iter().map(|&i| format!("{} seed {}", runs[i].label, places[i].2)).collect();
            let layers: Vec<&str> = env.iter().chain(cli).map(|l| l.name.as_str()).collect();
            return Err(self.err(format!(
                "the overrides {} make {} distinct runs of this experiment one run (id {id}): {}. \
                 Drop the override that sets what tells them apart",
                layers.join(", "),
                group.len(),
                names.join(", ")
            )));
        }
        Ok(())
    }

    /// Warnings for overrides that replace a value a variant sets itself: the row keeps
    /// its label (and its name in the paper) but trains something else.
    pub fn override_warnings(&self, env: &[Layer], cli: &[Layer]) -> Vec<String> {
        let mut out = Vec::new();
        for variant in &self.file.variants {
            let Ok(own) = Layer::table("variant", &variant.set) else { continue };
            let own = layers::flatten(&own.data);
            for layer in env.iter().chain(cli) {
                for (key, value) in layers::flatten(&layer.data) {
                    if let Some(mine) = own.get(&key).filter(|mine| **mine != value) {
                        out.push(format!(
                            "{} replaces what variant `{}` sets (`{key}` = {}); its row keeps the label `{}`",
                            layer.name,
                            variant.label,
                            layers::value_to_string(mine),
                            variant.label
                        ));
                    }
                }
            }
        }
        out
    }

    pub fn run_spec(
        &self,
        variant: &VariantSpec,
        point: &SweepPoint,
        seed: u64,
        env: &[Layer],
        cli: &[Layer],
    ) -> Result<RunSpec, ConfigError> {
        let resolved = layers::resolve(&self.layers_for(variant, point, seed, env, cli)?).map_err(|e| {
            ConfigError::Variant { path: self.path.clone(), variant: variant.label.clone(), source: Box::new(e) }
        })?;
        let (id, legacy_id) = crate::runs::run_ids(&resolved.config);
        Ok(RunSpec {
            experiment: self.name.clone(),
            variant: variant.label.clone(),
            label: point_label(&variant.label, point),
            sweep: point.clone(),
            seed: resolved.config.train.seed,
            resolved,
            id,
            legacy_id,
        })
    }
}

/// A `--grid` argument `KEY=V1,V2,...`: each value read as TOML (`0.6`, `true`, `"x"`),
/// or as text when it is not TOML (`random`).
pub fn parse_grid(text: &str) -> Result<(String, Vec<toml::Value>), String> {
    let (key, values) = text
        .split_once('=')
        .ok_or_else(|| format!("--grid {text}: expected KEY=V1,V2,... (e.g. model.mask.gamma=0.2,0.4,0.6)"))?;
    let key = key.trim();
    if key.is_empty() || values.trim().is_empty() {
        return Err(format!("--grid {text}: expected KEY=V1,V2,... (e.g. model.mask.gamma=0.2,0.4,0.6)"));
    }
    // Values are split at commas, which an array or table has inside it.
    if values.contains(['[', '{']) {
        return Err(format!(
            "--grid {text}: --grid takes plain values (numbers, strings, booleans) split at commas, not arrays or tables; \
             sweep `{key}` with a [sweep.grid] (or [[sweep.zip]]) entry in the experiment file instead"
        ));
    }
    let values = values
        .split(',')
        .map(|v| {
            let v = v.trim();
            toml::from_str::<toml::Table>(&format!("v = {v}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(v.to_string()))
        })
        .collect();
    Ok((key.to_string(), values))
}

fn grid_value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `a` plus a slug of the sweep point: `a_gamma0.6_beta0.5`.
pub fn point_label(variant: &str, point: &SweepPoint) -> String {
    let mut label = variant.to_string();
    for (key, value) in point {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        let v = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let slug: String = format!("{leaf}{v}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        label.push('_');
        label.push_str(&slug);
    }
    label
}
