//! Finished runs of an experiment that a plan does not include: what `table`,
//! `status` and `plot` say when they find nothing under the plan's ids while runs
//! trained with other settings (a `--set` at training time) sit in the folder.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use crate::config::layers::{flatten, value_to_string, Layer};
use crate::config::{Experiment, RunSpec};

/// One line per stored run of `exp` outside `plan`, naming the keys in which its
/// config differs from the planned run of the same label and seed (or label), and
/// the `--set` flags that would bring it in; at most `limit` lines and a count.
pub fn unplanned_runs(exp: &Experiment, plan: &[RunSpec], limit: usize) -> Vec<String> {
    let Some(first) = plan.first() else { return Vec::new() };
    let folder = PathBuf::from(&first.resolved.config.output.results_dir).join("runs").join(&exp.name);
    let planned: HashSet<&str> = plan.iter().flat_map(|s| [s.id.as_str(), s.legacy_id.as_str()]).collect();
    let Ok(entries) = std::fs::read_dir(&folder) else { return Vec::new() };
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut lines = Vec::new();
    let mut more = 0;
    for name in names.iter().filter(|n| !n.starts_with('.')) {
        // `<label>-s<seed>-<id>`: labels may hold '-', ids and seeds never do.
        let mut parts = name.rsplitn(3, '-');
        let (Some(id), Some(seed), Some(label)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if planned.contains(id) {
            continue;
        }
        let dir = folder.join(name);
        let status = crate::runs::RunDir { path: dir.clone() }
            .read_manifest()
            .ok()
            .flatten()
            .map_or("no manifest".to_string(), |m| format!("{:?}", m.status).to_lowercase());
        if lines.len() >= limit {
            more += 1;
            continue;
        }
        let seed: Option<u64> = seed.strip_prefix('s').and_then(|s| s.parse().ok());
        let twin = plan
            .iter()
            .find(|s| s.label == label && Some(s.seed) == seed)
            .or_else(|| plan.iter().find(|s| s.label == label));
        let differs = match (twin, stored_config(&dir)) {
            (Some(spec), Some(stored)) => describe(spec, &stored),
            (None, _) => format!("no row `{label}` in this experiment now"),
            (_, None) => "its config.toml cannot be read".into(),
        };
        lines.push(format!("{name} ({status}) is not in this plan: {differs}"));
    }
    if more > 0 {
        lines.push(format!("... and {more} more under {}", folder.display()));
    }
    lines
}

/// A stored run's config as dotted key -> value text.
fn stored_config(dir: &std::path::Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("config.toml")).ok()?;
    let layer = Layer::toml_text("config.toml", &text).ok()?;
    Some(flatten(&layer.data).into_iter().map(|(k, v)| (k, value_to_string(&v))).collect())
}

/// "it has train.lr = 0.003 where the plan has 0.001; add --set train.lr=0.003 to show it".
fn describe(spec: &RunSpec, stored: &BTreeMap<String, String>) -> String {
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
    if keys.is_empty() {
        return "same settings, another generator version or id rule".into();
    }
    let shown: Vec<String> = keys.iter().take(4).map(|(k, v, p)| format!("{k} = {v} where the plan has {p}")).collect();
    let flags: Vec<String> = keys.iter().map(|(k, v, _)| format!("--set {k}={v}")).collect();
    let extra = if keys.len() > 4 { format!(" (and {} more keys)", keys.len() - 4) } else { String::new() };
    format!("it has {}{extra}; add {} to show it", shown.join(", "), flags.join(" "))
}
