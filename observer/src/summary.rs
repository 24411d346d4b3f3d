//! `summary.txt` and `summary.json`: the same ordered key/value facts about a run, for people and
//! for programs.
use std::io;

use serde_json::{Map, Value};

use crate::out_dir::OutDir;

/// Ordered `key: value` facts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    entries: Vec<(String, Value)>,
}

impl Summary {
    pub fn put(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.entries.push((key.into(), value.into()));
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.entries {
            // Values may hold names a program chose: one fact stays one line.
            let v = match v {
                Value::String(s) => crate::decode::escape_controls(s).into_owned(),
                other => other.to_string(),
            };
            out.push_str(&format!("{k}: {v}\n"));
        }
        out
    }

    pub fn to_json(&self) -> String {
        let map: Map<String, Value> = self.entries.iter().cloned().collect();
        crate::rundir::json_text(&Value::Object(map)).expect("plain values serialize")
    }

    pub fn write(&self, dir: &OutDir) -> io::Result<()> {
        dir.write(crate::rundir::SUMMARY_TXT, self.to_text())?;
        dir.write(crate::rundir::SUMMARY_JSON, self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_carry_the_same_facts_in_order() {
        let mut s = Summary::default();
        s.put("command", "sleep 1");
        s.put("events_dropped", 0);
        assert_eq!(s.to_text(), "command: sleep 1\nevents_dropped: 0\n");
        assert_eq!(s.to_json(), "{\n  \"command\": \"sleep 1\",\n  \"events_dropped\": 0\n}\n");
    }
}
