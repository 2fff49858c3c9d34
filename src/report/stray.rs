//! Finished runs of an experiment that a plan does not include: what `table`,
//! `status` and `plot` say when they find nothing under the plan's ids while runs
//! trained with other settings (a `--set` at training time) sit in the folder.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use crate::config::layers::{flatten, value_to_string, Layer};
use crate::config::{Experiment, RunSpec};

/// Another plan of the experiment that stored runs may belong to: one of its
/// `[[controls]]`, or the file as written while a control is shown.
pub struct Elsewhere {
    /// E.g. "control `no-shift`".
    pub what: String,
    /// E.g. "add --control no-shift".
    pub how: String,
    pub ids: HashSet<String>,
}

/// The stored runs of `exp` outside `plan`, one line per way they differ from it:
/// the plan in `elsewhere` they belong to, or else the keys in which a run's config
/// differs from the planned run of the same label and seed (or label) and the `--set`
/// flags that would bring it in. Runs that differ alike (a whole table trained with
/// another `--set`) share one line with their count, rows and seeds; at most `limit`
/// lines and a count of the rest.
pub fn unplanned_runs(exp: &Experiment, plan: &[RunSpec], elsewhere: &[Elsewhere], limit: usize) -> Vec<String> {
    let Some(first) = plan.first() else { return Vec::new() };
    // Runs trained under a control or overrides are listed in folders of their own
    // (`table3-no-shift`, `table3+train.lr=0.01`); all of them are the experiment's.
    let runs = PathBuf::from(&first.resolved.config.output.results_dir).join("runs");
    let planned: HashSet<&str> = plan.iter().flat_map(|s| [s.id.as_str(), s.legacy_id.as_str()]).collect();
    let Ok(folders) = std::fs::read_dir(&runs) else { return Vec::new() };
    let mut folders: Vec<String> =
        folders.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|f| exp.is_own_folder(f)).collect();
    folders.sort();
    let mut names: Vec<(PathBuf, String)> = Vec::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(runs.join(&folder)) else { continue };
        let mut here: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        here.sort();
        names.extend(here.into_iter().map(|n| (runs.join(&folder), n)));
    }
    // How the runs differ -> (folder names, statuses, rows, seeds), in the order first met.
    let mut groups: Vec<(String, Group)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (folder, name) in names.iter().filter(|(_, n)| !n.starts_with('.')) {
        // `<label>-s<seed>-<id>`: labels may hold '-', ids and seeds never do.
        let mut parts = name.rsplitn(3, '-');
        let (Some(id), Some(seed), Some(label)) = (parts.next(), parts.next(), parts.next()) else { continue };
        // A run linked under two of the folders is one run.
        if planned.contains(id) || !seen.insert(id.to_string()) {
            continue;
        }
        let dir = folder.join(name);
        let status = crate::runs::RunDir { path: dir.clone() }
            .read_manifest()
            .ok()
            .flatten()
            .map_or("no manifest".to_string(), |m| format!("{:?}", m.status).to_lowercase());
        let seed: Option<u64> = seed.strip_prefix('s').and_then(|s| s.parse().ok());
        let twin = plan
            .iter()
            .find(|s| s.label == label && Some(s.seed) == seed)
            .or_else(|| plan.iter().find(|s| s.label == label));
        let differs = if let Some(e) = elsewhere.iter().find(|e| e.ids.contains(id)) {
            Differs::Elsewhere { what: e.what.clone(), how: e.how.clone() }
        } else {
            match (twin, stored_config(&dir)) {
                (Some(spec), Some(stored)) => describe(spec, &stored),
                (None, _) => Differs::Note(format!("no row `{label}` in this experiment now")),
                (_, None) => Differs::Note("its config.toml cannot be read".into()),
            }
        };
        let key = differs.text(false);
        let at = match groups.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                groups.push((key, Group { differs, names: Vec::new(), statuses: BTreeMap::new(), rows: Vec::new(), seeds: BTreeSet::new() }));
                groups.len() - 1
            }
        };
        let group = &mut groups[at].1;
        group.names.push(name.clone());
        *group.statuses.entry(status).or_default() += 1;
        if !group.rows.iter().any(|r| r == label) {
            group.rows.push(label.to_string());
        }
        group.seeds.extend(seed);
    }
    let mut lines: Vec<String> = groups.iter().take(limit).map(|(_, g)| g.line()).collect();
    if groups.len() > limit {
        let more: usize = groups[limit..].iter().map(|(_, g)| g.names.len()).sum();
        lines.push(format!("... and {more} more under {}", runs.display()));
    }
    lines
}

struct Group {
    differs: Differs,
    names: Vec<String>,
    statuses: BTreeMap<String, usize>,
    rows: Vec<String>,
    seeds: BTreeSet<u64>,
}

impl Group {
    fn line(&self) -> String {
        if let [name] = self.names.as_slice() {
            let status = self.statuses.keys().next().map_or("", String::as_str);
            return format!("{name} ({status}) is not in this plan: {}", self.differs.text(false));
        }
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        format!(
            "{} runs ({}; rows {}; seeds {}) are not in this plan: {}",
            self.names.len(),
            statuses.join(", "),
            self.rows.join(", "),
            seeds.join(", "),
            self.differs.text(true)
        )
    }
}

/// How a stored run differs from its planned twin.
enum Differs {
    /// (key, stored value, planned value) for each key that differs.
    Keys(Vec<(String, String, String)>),
    Same,
    Note(String),
    /// The runs of another plan of the experiment, and how to show them.
    Elsewhere { what: String, how: String },
}

impl Differs {
    /// "it has train.lr = 0.003 where the plan has 0.001; add --set train.lr=0.003 to show it",
    /// or of several runs, "they have ...; ... to show them".
    fn text(&self, plural: bool) -> String {
        let keys = match self {
            Differs::Keys(keys) => keys,
            Differs::Same => return "same settings, another generator version or id rule".into(),
            Differs::Note(note) => return note.clone(),
            Differs::Elsewhere { what, how } => {
                let (belong, them) = if plural { ("they belong", "them") } else { ("it belongs", "it") };
                return format!("{belong} to {what}; {how} to show {them}");
            }
        };
        let shown: Vec<String> = keys.iter().take(4).map(|(k, v, p)| format!("{k} = {v} where the plan has {p}")).collect();
        let flags: Vec<String> = keys.iter().map(|(k, v, _)| format!("--set {k}={v}")).collect();
        let extra = if keys.len() > 4 { format!(" (and {} more keys)", keys.len() - 4) } else { String::new() };
        let (has, them) = if plural { ("they have", "them") } else { ("it has", "it") };
        format!("{has} {}{extra}; add {} to show {them}", shown.join(", "), flags.join(" "))
    }
}

/// A stored run's config as dotted key -> value text.
fn stored_config(dir: &std::path::Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    let layer = Layer::toml_text("config.toml", &text).ok()?;
    Some(flatten(&layer.data).into_iter().map(|(k, v)| (k, value_to_string(&v))).collect())
}

/// The keys in which a stored run's config differs from the planned run `spec`.
fn describe(spec: &RunSpec, stored: &BTreeMap<String, String>) -> Differs {
    let mut keys = Vec::new();
    for (key, value) in stored {
        if key.starts_with("output.") {
            continue;
        }
        match spec.resolved.provenance.get(key) {
            Some((planned, _)) if planned == value => {}
            Some((planned, _)) => keys.push((key.clone(), value.clone(), planned.clone())),
            None => keys.push((key.clone(), value.clone(), "unset".into())),
        }
    }
    if keys.is_empty() { Differs::Same } else { Differs::Keys(keys) }
}
