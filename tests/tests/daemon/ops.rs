//! The ops of protocol v1 on their good paths: hello, list, describe, invoke
//! (STDIO, FILE, node), cancel, deploy/redeploy/remove, reload and SIGHUP,
//! stats, and out-of-order answers to pipelined requests; a 2 MiB STDIO
//! round trip, the function environment, python over FILE, cancel scope.

use std::time::{Duration, Instant};

use base64::Engine as _;
use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

use crate::{sleep_policy, SLEEPY};

#[test]
fn ops_hello_names_protocol_and_ops() {
    require_root();
    let d = TestDaemon::start();
    let v = d.client().call(&json!({"id": 1, "op": "hello"}));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["id"], 1);
    assert_eq!(v["result"]["protocol"], 1);
    let ops: Vec<&str> = v["result"]["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .filter_map(|o| o.as_str())
        .collect();
    for op in [
        "hello", "invoke", "cancel", "list", "describe", "deploy", "remove", "reload", "stats",
    ] {
        assert!(ops.contains(&op), "{op} missing from {v}");
    }
}

#[test]
fn ops_list_and_describe_show_the_examples() {
    require_root();
    let d = TestDaemon::start();
    let mut c = d.client();
    let v = c.call(&json!({"id": "l", "op": "list"}));
    assert_eq!(v["id"], "l");
    let names: Vec<&str> = v["result"]["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for n in ["hello-python", "hello-node", "wordcount-sh", "echo-wat"] {
        assert!(names.contains(&n), "{n} not listed: {v}");
    }
    let v = c.call(&json!({"id": 2, "op": "describe", "function": "hello-python"}));
    assert_eq!(v["ok"], true, "{v}");
    let r = &v["result"];
    assert_eq!(r["name"], "hello-python");
    assert_eq!(r["protocol"], "stdio");
    assert_eq!(r["origin"], "config");
    assert_eq!(r["limits"]["timeout_ms"], 5000);
    assert_eq!(r["limits"]["memory_bytes"], 128u64 << 20);
    assert_eq!(r["command"], json!(["/usr/bin/python3", "/fn/handler.py"]));
    let v = c.call(&json!({"id": 3, "op": "describe", "function": "nope"}));
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
}

#[test]
fn ops_invoke_stdio_python_and_node_greet() {
    require_root();
    let d = TestDaemon::start();
    for f in ["hello-python", "hello-node"] {
        let v = d.invoke(f, r#"{"name":"Ada"}"#);
        assert_eq!(v["ok"], true, "{f}: {v}");
        let r = &v["result"];
        assert_eq!(r["status"], "exited", "{f}: {v}");
        assert_eq!(r["exit_code"], 0, "{f}: {v}");
        let out: serde_json::Value =
            serde_json::from_str(r["stdout"].as_str().expect("stdout")).expect("json stdout");
        assert_eq!(out, json!({"greeting": "Hello, Ada!"}), "{f}");
        assert_eq!(r["function"], f);
        assert_eq!(r["version"], 1);
        assert!(r["execution_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let v = d.invoke("hello-python", r#"{"name":"Ada"}"#);
    assert_eq!(v["result"]["stdout"], "{\"greeting\": \"Hello, Ada!\"}\n");
}

#[test]
fn ops_invoke_file_protocol_counts_words() {
    require_root();
    let d = TestDaemon::start();
    let v = d.invoke("wordcount-sh", "one two\nthree\n");
    assert_eq!(v["ok"], true, "{v}");
    let r = &v["result"];
    assert_eq!(r["status"], "exited", "{v}");
    let out: serde_json::Value =
        serde_json::from_str(r["output"].as_str().expect("output")).expect("json output");
    assert_eq!(out, json!({"lines": 2, "words": 3, "bytes": 14}), "{v}");
    assert_eq!(r["output_truncated"], false);
}

#[test]
fn ops_cancel_running_invoke_answers_cancelled() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok("sleepy", SLEEPY, &[]);
    let mut c = d.client();
    c.send(&json!({"id": "run", "op": "invoke", "function": "sleepy"}));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let v = c.call(&json!({"id": "c", "op": "cancel", "request": "run"}));
    assert_eq!(v["id"], "c", "{v}");
    assert_eq!(v["result"], json!({"cancelled": true}), "{v}");
    let v = c.recv_within(Duration::from_secs(3));
    assert_eq!(v["id"], "run", "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["result"]["status"], "cancelled", "{v}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        t.elapsed()
    );
    // Nothing left to cancel now.
    let v = c.call(&json!({"id": "c2", "op": "cancel", "request": "run"}));
    assert_eq!(v["result"], json!({"cancelled": false}), "{v}");
}

#[test]
fn ops_deploy_redeploy_remove_cycle() {
    require_root();
    let d = TestDaemon::start();
    let v1 = d.deploy_sh("greet", "echo v1\n", "");
    assert_eq!(v1, 1);
    let v = d.invoke("greet", "");
    assert_eq!(v["result"]["stdout"], "v1\n", "{v}");
    assert_eq!(v["result"]["version"], 1);
    let v2 = d.deploy_sh("greet", "echo v2\n", "");
    assert_eq!(v2, 2);
    let v = d.invoke("greet", "");
    assert_eq!(v["result"]["stdout"], "v2\n", "{v}");
    assert_eq!(v["result"]["version"], 2);
    let mut c = d.client();
    let v = c.call(&json!({"id": 1, "op": "describe", "function": "greet"}));
    assert_eq!(v["result"]["origin"], "deployed", "{v}");
    assert_eq!(v["result"]["version"], 2, "{v}");
    let v = c.call(&json!({"id": 2, "op": "remove", "function": "greet"}));
    assert_eq!(v["result"], json!({"removed": true}), "{v}");
    let v = d.invoke("greet", "");
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
    let v = c.call(&json!({"id": 3, "op": "remove", "function": "greet"}));
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
    // A config function cannot be replaced or removed over the socket.
    let v = c.call(&json!({"id": 4, "op": "remove", "function": "hello-python"}));
    assert_eq!(code(&v), Some("forbidden"), "{v}");
}

#[test]
fn ops_reload_and_sighup_pick_up_new_policies() {
    require_root();
    let d = TestDaemon::start();
    let pol = "runtime = \"native\"\ncommand = [\"/bin/echo\", \"dropped\"]\n";
    std::fs::write(d.functions_dir().join("dropped.toml"), pol).expect("write");
    let v = d.invoke("dropped", "");
    assert_eq!(code(&v), Some("unknown_function"), "before reload: {v}");
    let v = d.client().call(&json!({"id": 1, "op": "reload"}));
    assert_eq!(v["ok"], true, "{v}");
    let examples = std::fs::read_dir(examples_dir())
        .expect("examples")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(v["result"]["functions"], examples + 1, "{v}");
    let v = d.invoke("dropped", "");
    assert_eq!(v["result"]["stdout"], "dropped\n", "{v}");

    std::fs::write(d.functions_dir().join("hupped.toml"), pol).expect("write");
    d.signal(libc::SIGHUP);
    let ok = integration_tests::eventually(Duration::from_secs(3), || {
        d.invoke("hupped", "")["ok"] == true
    });
    assert!(ok, "SIGHUP did not load hupped.toml: {}", d.stderr());
}

#[test]
fn ops_stats_count_outcomes_and_latency() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok(
        "fails",
        "runtime = \"native\"\ncommand = [\"/bin/false\"]\n",
        &[],
    );
    for _ in 0..3 {
        assert_eq!(d.invoke("hello-python", "{}")["result"]["status"], "exited");
    }
    assert_eq!(d.invoke("fails", "")["result"]["exit_code"], 1);
    let s = d.stats();
    assert_eq!(s["totals"]["hello-python"]["exited"], 3, "{s}");
    assert_eq!(s["totals"]["fails"]["exited"], 1, "{s}");
    assert_eq!(s["outcomes"]["exited"], 4, "{s}");
    assert_eq!(s["in_flight"], 0, "{s}");
    assert_eq!(s["queued"], 0, "{s}");
    assert_eq!(s["latency_ms"]["count"], 4, "{s}");
    for p in ["p50", "p90", "p99"] {
        assert!(
            s["latency_ms"][p].as_f64().is_some_and(|x| x > 0.0),
            "{p}: {s}"
        );
    }
}

#[test]
fn ops_pipelined_fast_answer_overtakes_slow() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok("slow", &sleep_policy("1", ""), &[]);
    d.deploy_ok(
        "fast",
        "runtime = \"native\"\ncommand = [\"/bin/echo\", \"fast\"]\n",
        &[],
    );
    let mut c = d.client();
    let two = b"{\"id\":\"slow-1\",\"op\":\"invoke\",\"function\":\"slow\"}\n{\"id\":\"fast-2\",\"op\":\"invoke\",\"function\":\"fast\"}\n";
    c.write_bytes(two).expect("write");
    let first = c.recv();
    let second = c.recv();
    assert_eq!(first["id"], "fast-2", "fast answer not first: {first}");
    assert_eq!(first["result"]["stdout"], "fast\n");
    assert_eq!(second["id"], "slow-1", "{second}");
    assert_eq!(second["result"]["status"], "exited", "{second}");
}

#[test]
fn ops_two_mib_payload_through_cat_comes_back_byte_identical() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok(
        "cat",
        "runtime = \"native\"\ncommand = [\"/bin/cat\"]\n\n[limits]\noutput = \"4MiB\"\n",
        &[],
    );
    // Not UTF-8, so it travels as base64 both ways; larger than any pipe buffer.
    let mut payload = Vec::with_capacity(2 << 20);
    let mut x: u32 = 0x9e37_79b9;
    while payload.len() < 2 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        payload.extend_from_slice(&x.to_le_bytes());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let v = d.client().call(&json!({
        "id": 1, "op": "invoke", "function": "cat", "input_base64": b64.encode(&payload)
    }));
    let r = &v["result"];
    assert_eq!(
        r["status"],
        "exited",
        "{}",
        &v.to_string()[..500.min(v.to_string().len())]
    );
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["stdout_truncated"], false);
    let out = bytes_field(r, "stdout").expect("stdout");
    assert_eq!(out.len(), payload.len(), "length differs");
    assert!(out == payload, "the bytes differ");
}

#[test]
fn ops_function_environment_has_ids_timeout_name_and_passthrough() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok(
        "envy",
        &sh_policy("", "env_passthrough = [\"GREETING\"]"),
        &[(
            "h.sh",
            b"printf '%s\\n' \"$EXECUTION_ID\" \"$TRACE_ID\" \"$TIMEOUT_MS\" \"$FUNCTION_NAME\" \"$GREETING\"\n",
            true,
        )],
    );
    let v = d.client().call(&json!({
        "id": 1, "op": "invoke", "function": "envy", "trace_id": "trace-42",
        "timeout_ms": 1234, "env": {"GREETING": "hi there"}
    }));
    let r = &v["result"];
    assert_eq!(r["status"], "exited", "{v}");
    let out = r["stdout"].as_str().expect("stdout");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out:?}");
    assert_eq!(Some(lines[0]), r["execution_id"].as_str(), "EXECUTION_ID");
    assert_eq!(lines[1], "trace-42", "TRACE_ID");
    assert_eq!(lines[2], "1234", "TIMEOUT_MS is the lowered timeout");
    assert_eq!(lines[3], "envy", "FUNCTION_NAME");
    assert_eq!(lines[4], "hi there", "the passed-through key");
    // Without a trace id or a lower timeout: empty, and the policy's.
    let v = d.invoke("envy", "");
    let out = v["result"]["stdout"].as_str().expect("stdout").to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "", "{out:?}");
    assert_eq!(lines[2], "5000", "{out:?}");
    assert_eq!(lines[4], "", "{out:?}");
    assert_ne!(
        Some(lines[0]),
        r["execution_id"].as_str(),
        "execution ids repeat"
    );
}

#[test]
fn ops_python_function_over_the_file_protocol() {
    require_root();
    let d = TestDaemon::start();
    let script = b"import json, os\n\
with open(os.environ['INPUT_FILE'], 'rb') as f:\n    data = json.load(f)\n\
with open(os.environ['OUTPUT_FILE'], 'w') as f:\n    json.dump({'upper': data['text'].upper()}, f)\n\
print('logged')\n";
    d.deploy_ok(
        "pyfile",
        "runtime = \"native\"\nprotocol = \"file\"\ncommand = [\"/usr/bin/python3\", \"/fn/h.py\"]\nenv = { PYTHONDONTWRITEBYTECODE = \"1\" }\n",
        &[("h.py", script, false)],
    );
    let v = d.invoke("pyfile", r#"{"text":"file protocol"}"#);
    let r = &v["result"];
    assert_eq!(r["status"], "exited", "{v}");
    assert_eq!(r["exit_code"], 0, "{v}");
    let out: serde_json::Value =
        serde_json::from_str(r["output"].as_str().expect("output")).expect("json output");
    assert_eq!(out, json!({"upper": "FILE PROTOCOL"}), "{v}");
    assert_eq!(r["output_truncated"], false, "{v}");
    assert_eq!(r["stdout"], "logged\n", "{v}");
}

#[test]
fn ops_cancel_from_another_connection_does_not_cancel() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok("sleepy", &sleep_policy("2", ""), &[]);
    let mut owner = d.client();
    owner.send(&json!({"id": "run", "op": "invoke", "function": "sleepy"}));
    let started =
        integration_tests::eventually(Duration::from_secs(5), || d.stats()["in_flight"] == 1);
    assert!(started, "{}", d.stderr());
    let mut other = d.client();
    let v = other.call(&json!({"id": "c", "op": "cancel", "request": "run"}));
    assert_eq!(v["result"], json!({"cancelled": false}), "{v}");
    // The other connection's own invoke under the same id is its own.
    let v = other.call(&json!({"id": "run", "op": "invoke", "function": "hello-python"}));
    assert_eq!(v["result"]["status"], "exited", "{v}");
    let v = owner.recv_within(Duration::from_secs(10));
    assert_eq!(v["id"], "run", "{v}");
    assert_eq!(
        v["result"]["status"], "exited",
        "cancelled from elsewhere: {v}"
    );
    assert_eq!(v["result"]["exit_code"], 0, "{v}");
}
