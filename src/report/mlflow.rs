//! Stored runs in MLflow (`geosr runs ... --mlflow URI`): each run logged to a tracking
//! server through its REST API, so `mlflow ui` browses, filters and charts geosr's runs.
//!
//! One MLflow experiment per geosr experiment (`geosr/table3`); one MLflow run per geosr
//! run, found again by its `geosr.run_id` tag, so pushing twice leaves one run. Params
//! are the resolved config's keys, metrics the scalars TensorBoard gets
//! ([`super::tensorboard::run_scalars`]: loss, learning rate, curve points, final
//! scores), tags the provenance.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::tensorboard::run_scalars;
use crate::runs::query::{Field, RunRecord};

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error("MLflow at {uri}: {message}")]
    Server { uri: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::runs::StoreError),
}

/// What happened to one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Logged as a new MLflow run (its id).
    New(String),
    /// The server already has it (its id); nothing was logged again.
    Already(String),
}

/// MLflow's limits on one `log-batch` call.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
const MAX_TAGS: usize = 100;
/// MLflow refuses longer param values.
const MAX_PARAM_LEN: usize = 6000;

/// A tracking server.
pub struct Client {
    uri: String,
    agent: ureq::Agent,
    experiments: BTreeMap<String, String>,
}

impl Client {
    /// A client of the server at `uri` (`http://host:port`), checked with one request.
    pub fn connect(uri: &str) -> Result<Client, MlflowError> {
        let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30)).build();
        let client = Client { uri: uri.trim_end_matches('/').to_string(), agent, experiments: BTreeMap::new() };
        client.call("GET", "experiments/search?max_results=1", None)?;
        Ok(client)
    }

    fn err(&self, message: impl Into<String>) -> MlflowError {
        MlflowError::Server { uri: self.uri.clone(), message: message.into() }
    }

    /// One REST call; `Ok(None)` for a resource the server says does not exist.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Option<Value>, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.uri);
        let request = self.agent.request(method, &url);
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => r.into_json::<Value>().map(Some).map_err(|e| self.err(format!("{path}: unreadable answer: {e}"))),
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                if text.contains("RESOURCE_DOES_NOT_EXIST") {
                    return Ok(None);
                }
                Err(self.err(format!("{path}: HTTP {code}: {}", text.trim())))
            }
            Err(e) => Err(self.err(format!("{path}: {e}"))),
        }
    }

    fn post(&self, path: &str, body: Value) -> Result<Value, MlflowError> {
        self.call("POST", path, Some(body))?.ok_or_else(|| self.err(format!("{path}: no such resource")))
    }

    /// The id of the MLflow experiment `name`, made if need be.
    fn experiment(&mut self, name: &str) -> Result<String, MlflowError> {
        if let Some(id) = self.experiments.get(name) {
            return Ok(id.clone());
        }
        let query = format!("experiments/get-by-name?experiment_name={}", encode(name));
        let id = match self.call("GET", &query, None)? {
            Some(v) => v["experiment"]["experiment_id"].as_str().map(str::to_string),
            None => self.post("experiments/create", json!({ "name": name }))?["experiment_id"].as_str().map(str::to_string),
        }
        .ok_or_else(|| self.err(format!("no id for experiment {name}")))?;
        self.experiments.insert(name.to_string(), id.clone());
        Ok(id)
    }

    /// Logs one stored run, unless the server has it already.
    pub fn push(&mut self, record: &RunRecord) -> Result<Pushed, MlflowError> {
        let text = |k: &str| record.get(k).map(Field::text).unwrap_or_default();
        let run_id = text("run.id");
        let experiment = text("run.experiment").split(',').next().unwrap_or_default().to_string();
        let experiment_id = self.experiment(&format!("geosr/{}", if experiment.is_empty() { "unlinked" } else { &experiment }))?;
        let filter = format!("tags.`geosr.run_id` = '{run_id}'");
        let found = self.post("runs/search", json!({ "experiment_ids": [experiment_id], "filter": filter, "max_results": 1 }))?;
        if let Some(id) = found["runs"][0]["info"]["run_id"].as_str() {
            return Ok(Pushed::Already(id.to_string()));
        }

        let scalars = run_scalars(&record.dir)?;
        let start_ms = scalars.first().map_or(0, |s| (s.wall_time * 1000.0) as i64);
        let name = format!("{}-s{}-{run_id}", text("run.label").split(',').next().unwrap_or_default(), text("run.seed"));
        let mut tags: Vec<Value> = vec![json!({ "key": "mlflow.runName", "value": name })];
        for (key, value) in &record.fields {
            if let Some(short) = key.strip_prefix("run.").filter(|k| *k != "folder") {
                tags.push(json!({ "key": format!("geosr.{short}"), "value": value.text() }));
            } else if key.starts_with("tags.") {
                tags.push(json!({ "key": key, "value": value.text() }));
            }
        }
        let created = self.post("runs/create", json!({ "experiment_id": experiment_id, "run_name": name, "start_time": start_ms }))?;
        let id = created["run"]["info"]["run_id"].as_str().ok_or_else(|| self.err("runs/create gave no run id"))?.to_string();

        let params: Vec<Value> = record
            .fields
            .iter()
            .filter(|(k, _)| !k.starts_with("run.") && !k.starts_with("metrics.") && !k.starts_with("tags."))
            .map(|(k, v)| {
                let value: String = v.text().chars().take(MAX_PARAM_LEN).collect();
                json!({ "key": k, "value": value })
            })
            .collect();
        let metrics: Vec<Value> = scalars
            .iter()
            .filter(|s| s.value.is_finite())
            .map(|s| json!({ "key": s.tag, "value": s.value, "timestamp": (s.wall_time * 1000.0) as i64, "step": s.step }))
            .collect();
        for chunk in params.chunks(MAX_PARAMS) {
            self.post("runs/log-batch", json!({ "run_id": id, "params": chunk }))?;
        }
        for chunk in tags.chunks(MAX_TAGS) {
            self.post("runs/log-batch", json!({ "run_id": id, "tags": chunk }))?;
        }
        for chunk in metrics.chunks(MAX_METRICS) {
            self.post("runs/log-batch", json!({ "run_id": id, "metrics": chunk }))?;
        }
        let status = match text("run.status").as_str() {
            "done" => "FINISHED",
            "failed" | "damaged" => "FAILED",
            "running" => "RUNNING",
            _ => "KILLED",
        };
        let end_ms = scalars.last().map_or(start_ms, |s| (s.wall_time * 1000.0) as i64);
        self.post("runs/update", json!({ "run_id": id, "status": status, "end_time": end_ms }))?;
        // The geosr id last: a push cut short is found as missing and logged again whole.
        self.post("runs/set-tag", json!({ "run_id": id, "key": "geosr.run_id", "value": run_id }))?;
        Ok(Pushed::New(id))
    }
}

/// `name` for a URL's query string.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_encoded_for_a_query_string() {
        assert_eq!(super::encode("geosr/table3 x+y"), "geosr%2Ftable3%20x%2By");
    }
}
