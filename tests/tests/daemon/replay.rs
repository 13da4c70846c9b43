//! Every example exchange in docs/protocol.md is a fixture under
//! tests/fixtures/protocol/; here each one is replayed against a fresh daemon
//! serving policies/examples, and every answer must match the documented one
//! (the string "<any>" stands for values that differ between runs).

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::Value;

fn fixtures() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/protocol");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/protocol")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    v.sort();
    v
}

/// `want` with "<any>" wildcards, anywhere.
fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::String(s), _) if s == "<any>" => true,
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len()
                && w.iter()
                    .all(|(k, wv)| g.get(k).is_some_and(|gv| matches(wv, gv)))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        _ => want == got,
    }
}

#[test]
fn replay_every_documented_exchange_gets_the_documented_answers() {
    require_root();
    let files = fixtures();
    assert!(files.len() >= 9, "one fixture per op at least: {files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
            .collect();
        let (responses, requests): (Vec<Value>, Vec<Value>) =
            lines.into_iter().partition(|v| v.get("ok").is_some());
        let d = TestDaemon::start();
        let mut c = d.client();
        let mut batch = Vec::new();
        for r in &requests {
            batch.extend(serde_json::to_vec(r).unwrap());
            batch.push(b'\n');
        }
        c.write_bytes(&batch).expect("write requests");
        let mut got: HashMap<String, Value> = HashMap::new();
        for _ in 0..responses.len() {
            let v = c.recv_within(Duration::from_secs(20));
            got.insert(v["id"].to_string(), v);
        }
        for want in &responses {
            let id = want["id"].to_string();
            let g = got
                .get(&id)
                .unwrap_or_else(|| panic!("{}: no answer for id {id}", f.display()));
            assert!(
                matches(want, g),
                "{}: id {id}\n want {want}\n  got {g}",
                f.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;
    use serde_json::json;

    #[test]
    fn replay_wildcard_matches_any_value_but_keys_must_agree() {
        assert!(matches(
            &json!({"a": "<any>", "b": 1}),
            &json!({"a": [1], "b": 1})
        ));
        assert!(!matches(
            &json!({"a": "<any>"}),
            &json!({"a": 1, "extra": 2})
        ));
        assert!(!matches(&json!({"b": 1}), &json!({"b": 2})));
    }
}
