//! A run's result as the JSON object `paddockd run` prints (and the daemon
//! will put in `result`). Output that is not UTF-8 travels as `*_base64`.

use base64::Engine;
use serde_json::{json, Map, Value};

use paddock_runtimes::RunReport;

/// Output as a JSON string: moved, not copied, when it is UTF-8 (outputs
/// run to 16 MiB, and the daemon builds answers on its event loop).
fn put_bytes(m: &mut Map<String, Value>, key: &str, bytes: Vec<u8>) {
    match String::from_utf8(bytes) {
        Ok(s) => {
            m.insert(key.into(), Value::String(s));
        }
        Err(e) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(e.as_bytes());
            m.insert(format!("{key}_base64"), Value::String(b64));
        }
    }
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// The result object (the report's outputs move into it).
pub fn to_json(r: RunReport) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(r.status.as_str()));
    m.insert("exit_code".into(), json!(r.exit_code));
    m.insert("signal".into(), json!(r.signal));
    put_bytes(&mut m, "stdout", r.stdout);
    put_bytes(&mut m, "stderr", r.stderr);
    m.insert("stdout_truncated".into(), json!(r.stdout_truncated));
    m.insert("stderr_truncated".into(), json!(r.stderr_truncated));
    if let Some(o) = r.output {
        put_bytes(&mut m, "output", o);
        m.insert("output_truncated".into(), json!(r.output_truncated));
    }
    if let Some(e) = &r.output_error {
        m.insert("output_error".into(), json!(e));
    }
    m.insert("wall_ms".into(), json!(ms(r.wall)));
    m.insert("wall_us".into(), json!(r.wall.as_micros() as u64));
    m.insert("cpu_user_ms".into(), json!(ms(r.cpu_user)));
    m.insert("cpu_system_ms".into(), json!(ms(r.cpu_system)));
    m.insert("memory_peak_bytes".into(), json!(r.memory_peak_bytes));
    m.insert("limit".into(), json!(r.limit.map(|l| l.as_str())));
    m.insert("host_uid".into(), json!(r.host_uid));
    m.insert("landlock".into(), json!(r.landlock.map(|l| l.as_str())));
    m.insert(
        "error".into(),
        match &r.error {
            None => Value::Null,
            Some(e) => json!({ "step": e.step, "errno": e.errno, "message": e.message }),
        },
    );
    m.insert(
        "wasm_error".into(),
        match &r.wasm_error {
            None => Value::Null,
            Some(e) => json!({ "kind": e.kind, "message": e.message }),
        },
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_runtimes::{StartError, Status};
    use std::time::Duration;

    #[test]
    fn result_json_non_utf8_output_is_base64_and_hostile_text_is_escaped() {
        let mut r = RunReport::failed(
            100_001,
            Duration::from_millis(3),
            StartError {
                step: "exec".into(),
                errno: Some(2),
                message: "x".into(),
            },
        );
        r.status = Status::Exited;
        r.stdout = b"\xff\x00".to_vec();
        r.stderr = b"\"}\n{\"ok\":true}\x1b[31m".to_vec();
        let v = to_json(r);
        assert_eq!(v["stdout_base64"], "/wA=");
        assert!(v.get("stdout").is_none());
        let line = serde_json::to_string(&v).unwrap();
        assert!(!line.contains('\n'), "one line: {line}");
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["stderr"], "\"}\n{\"ok\":true}\x1b[31m");
        assert_eq!(back["error"]["step"], "exec");
        assert_eq!(back["status"], "exited");
    }
}
