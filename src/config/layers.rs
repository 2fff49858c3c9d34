//! Layered composition of a run's configuration, last layer wins:
//! built-in defaults < `configs/*.toml` named by the experiment < the experiment's
//! own `[config]` table < variant overrides < sweep point < `GEOSR_SECTION__KEY`
//! environment variables < `--set key=value` flags.
//!
//! Each layer is checked on its own for unknown keys before merging, so an error
//! names the file (or variable, or flag) that introduced the typo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::schema::Config;
use super::validate;
use super::ConfigError;

/// One named source of configuration values.
#[derive(Debug, Clone)]
pub struct Layer {
    /// What a user sees as the origin of a value, e.g. `configs/static.toml`.
    pub name: String,
    pub data: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

impl Layer {
    pub fn defaults() -> Layer {
        let data = Serialized::defaults(Config::default())
            .data()
            .expect("the default config serializes")
            .remove(&Profile::Default)
            .unwrap_or_default();
        Layer { name: "default".into(), data }
    }

    /// A TOML file, which must exist.
    pub fn file(path: &Path, referenced_by: &str) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::MissingFile {
            path: path.to_path_buf(),
            referenced_by: referenced_by.to_string(),
            reason: e.to_string(),
        })?;
        Layer::toml_text(&path.display().to_string(), &text)
    }

    pub fn toml_text(name: &str, text: &str) -> Result<Layer, ConfigError> {
        let data = Toml::string(text)
            .data()
            .map_err(|e| ConfigError::Parse { origin: name.to_string(), message: e.to_string() })?
            .remove(&Profile::Default)
            .unwrap_or_default();
        Ok(Layer { name: name.to_string(), data })
    }

    /// A TOML table whose keys may be nested tables or dotted strings.
    pub fn table(name: &str, table: &toml::Table) -> Result<Layer, ConfigError> {
        let mut nested = toml::Table::new();
        for (key, value) in table {
            insert_dotted(&mut nested, key, value.clone());
        }
        let data = Serialized::defaults(nested)
            .data()
            .map_err(|e| ConfigError::Parse { origin: name.to_string(), message: e.to_string() })?
            .remove(&Profile::Default)
            .unwrap_or_default();
        Ok(Layer { name: name.to_string(), data })
    }

    /// A single `key=value` assignment, the value read as TOML (a bare word is a string).
    pub fn assignment(name: &str, key: &str, raw: &str) -> Result<Layer, ConfigError> {
        let key = key.trim();
        if key.is_empty() || !key.split('.').all(|p| !p.is_empty()) {
            return Err(ConfigError::Parse {
                origin: name.to_string(),
                message: format!("`{key}` is not a dotted key such as model.mask.gamma"),
            });
        }
        let value = parse_value(raw);
        let mut table = toml::Table::new();
        insert_dotted(&mut table, key, value);
        Layer::table(name, &table)
    }
}

/// Reads a command-line or environment value as TOML when it parses as one
/// (numbers, booleans, arrays, quoted strings) and as a plain string otherwise.
pub fn parse_value(raw: &str) -> toml::Value {
    let raw = raw.trim();
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut cur = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            match (cur.get_mut(part), value) {
                (Some(toml::Value::Table(existing)), toml::Value::Table(new)) => {
                    for (k, v) in new {
                        insert_dotted(existing, &k, v);
                    }
                }
                (_, value) => {
                    cur.insert(part.to_string(), value);
                }
            }
            return;
        }
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
}

/// Layers from the process environment: `GEOSR_MODEL__MASK__GAMMA=0.6` sets
/// `model.mask.gamma`. Variables without `__` are not configuration.
pub fn env_layers(vars: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Layer>, ConfigError> {
    let mut found: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with("GEOSR_") && k.contains("__"))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(var, raw)| {
            let key = var["GEOSR_".len()..].to_lowercase().replace("__", ".");
            Layer::assignment(&format!("env {var}"), &key, &raw)
        })
        .collect()
}

/// Warnings for `GEOSR_*` variables that are not configuration (no `__` between
/// section and key), which would otherwise be ignored without a word.
pub fn env_warnings(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut out: Vec<String> = vars
        .into_iter()
        // GEOSR_STORE is the run store's place (`--store`), not a config key.
        .filter(|(k, _)| k.starts_with("GEOSR_") && !k.contains("__") && k != crate::runs::store::STORE_ENV)
        .map(|(k, _)| {
            let guess = k["GEOSR_".len()..].to_uppercase().replacen('_', "__", 1);
            format!("{k} is not read: config variables are GEOSR_<SECTION>__<KEY>, e.g. GEOSR_{guess}")
        })
        .collect();
    out.sort();
    out
}

/// Layers from `--set key=value` flags.
pub fn cli_layers(sets: &[String]) -> Result<Vec<Layer>, ConfigError> {
    sets.iter()
        .map(|s| {
            let name = format!("--set {s}");
            let (key, raw) = s.split_once('=').ok_or_else(|| ConfigError::Parse {
                origin: name.clone(),
                message: "expected KEY=VALUE, e.g. model.mask.gamma=0.6".into(),
            })?;
            Layer::assignment(&name, key, raw)
        })
        .collect()
}

/// Flattens a dict into dotted leaf keys.
pub fn flatten(dict: &Dict) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, dict: &Dict, out: &mut BTreeMap<String, Value>) {
        for (k, v) in dict {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                Value::Dict(_, d) => walk(&key, d, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", dict, &mut out);
    out
}

/// The closest known key to `key`, if any is close enough to be a likely typo.
fn suggest(key: &str, known: &[&String]) -> Option<String> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    known
        .iter()
        .map(|k| {
            let k_leaf = k.rsplit('.').next().unwrap_or(k);
            let score = strsim::jaro_winkler(key, k).max(strsim::jaro_winkler(leaf, k_leaf) - 0.05);
            (score, *k)
        })
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

/// Rejects keys the schema does not know, naming the layer and suggesting the closest key.
fn check_keys(layer: &Layer, known: &BTreeMap<String, Value>) -> Result<(), ConfigError> {
    let known_keys: Vec<&String> = known.keys().collect();
    for (key, value) in flatten(&layer.data) {
        if let Some(default) = known.get(&key) {
            // Fixed-size lists (the token grids) would otherwise be cut to size silently.
            if let (Value::Array(_, want), Value::Array(_, got)) = (default, &value) {
                if !want.is_empty() && want.len() != got.len() {
                    return Err(ConfigError::Invalid {
                        origin: layer.name.clone(),
                        key,
                        value: value_to_string(&value),
                        expected: format!("a list of exactly {} values, like {}", want.len(), value_to_string(default)),
                    });
                }
            }
            continue;
        }
        // A scalar where the schema has a table, e.g. `model.mask = "random"`.
        let prefix = format!("{key}.");
        if known.keys().any(|k| k.starts_with(&prefix)) {
            return Err(ConfigError::Invalid {
                origin: layer.name.clone(),
                key,
                value: value_to_string(&value),
                expected: "a table of keys, not a single value".into(),
            });
        }
        return Err(ConfigError::UnknownKey {
            origin: layer.name.clone(),
            suggestion: suggest(&key, &known_keys),
            key,
        });
    }
    Ok(())
}

pub fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => {
            let n = *n;
            n.to_u128()
                .map(|u| u.to_string())
                .or_else(|| n.to_i128().map(|i| i.to_string()))
                .or_else(|| n.to_f64().map(|f| f.to_string()))
                .unwrap_or_else(|| format!("{n:?}"))
        }
        Value::Empty(..) => "empty".into(),
        Value::Dict(..) => "a table".into(),
        Value::Array(_, a) => format!("[{}]", a.iter().map(value_to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// A resolved configuration together with where each key came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    /// Dotted key -> (value as text, layer that set it).
    pub provenance: BTreeMap<String, (String, String)>,
}

/// Merges the layers in order (last wins), extracts the typed config and validates it.
pub fn resolve(layers: &[Layer]) -> Result<Resolved, ConfigError> {
    let defaults = Layer::defaults();
    let known = flatten(&defaults.data);
    let mut figment = Figment::new();
    for layer in layers {
        check_keys(layer, &known)?;
        figment = figment.merge(layer.clone());
    }
    let config: Config = figment.extract().map_err(|e| type_error(&figment, e))?;
    let provenance_of = |key: &str| {
        figment.find_metadata(key).map(|m| m.name.to_string()).unwrap_or_else(|| "default".into())
    };
    validate::check(&config, &provenance_of)?;
    let resolved_values = flatten(
        &Serialized::defaults(&config).data().expect("config serializes")[&Profile::Default],
    );
    let provenance = resolved_values
        .into_iter()
        .map(|(k, v)| {
            let src = provenance_of(&k);
            (k, (value_to_string(&v), src))
        })
        .collect();
    Ok(Resolved { config, provenance })
}

fn type_error(figment: &Figment, e: figment::Error) -> ConfigError {
    let e = e.into_iter().next().expect("figment errors are never empty");
    let key = e.path.join(".");
    let source = figment
        .find_metadata(&key)
        .map(|m| m.name.to_string())
        .or_else(|| e.metadata.as_ref().map(|m| m.name.to_string()))
        .unwrap_or_else(|| "configuration".into());
    let value = figment
        .find_value(&key)
        .map(|v| value_to_string(&v))
        .unwrap_or_else(|_| "?".into());
    use figment::error::Kind;
    let expected = match &e.kind {
        Kind::InvalidType(_, exp) | Kind::InvalidValue(_, exp) | Kind::InvalidLength(_, exp) => exp.clone(),
        Kind::UnknownVariant(_, variants) => format!("one of {}", variants.join(", ")),
        other => other.to_string(),
    };
    ConfigError::Invalid { origin: source, key, value, expected }
}

/// Path of a named layer: `static` -> `configs/static.toml`, `data/static` -> `configs/data/static.toml`.
pub fn layer_path(configs_dir: &Path, name: &str) -> PathBuf {
    let configs_dir = configs_dir.strip_prefix(".").unwrap_or(configs_dir);
    let file = if name.ends_with(".toml") { name.to_string() } else { format!("{name}.toml") };
    configs_dir.join(file)
}
