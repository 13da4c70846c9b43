//! The registry half of the dispatcher: up to 8 request lines through the
//! protocol parser, each `deploy` and `remove` carried out on a registry in
//! a scratch state directory (hostile names, file names, base64, policies).
//! Never a panic; every refusal is a typed error that makes one JSON answer
//! line; a deploy that succeeds is what `get` returns, a removed function
//! is gone; and what the registry holds afterwards is exactly what a fresh
//! registry loads from the directory (nothing acknowledged is lost, nothing
//! refused is left to come back).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use paddock_policies::DaemonConfig;
use paddock_supervisor::protocol::{self, Request};
use paddock_supervisor::registry::Registry;
use serde_json::Value;

/// A config whose functions directory is empty and whose state directory
/// is this process's own, on tmpfs where there is one (deploys fsync).
fn config() -> &'static DaemonConfig {
    static C: OnceLock<DaemonConfig> = OnceLock::new();
    C.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        let root = base.join(format!("paddock-fuzz-registry-{}", std::process::id()));
        let mut c = DaemonConfig::embedded_default();
        c.functions_dir = root.join("functions");
        c.state_dir = root.join("state");
        std::fs::create_dir_all(&c.functions_dir).expect("scratch functions dir");
        c
    })
}

fn held(r: &Registry) -> Vec<(String, u64)> {
    r.all()
        .map(|f| (f.prepared.policy.name.to_string(), f.version))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let c = config();
    let _ = std::fs::remove_dir_all(&c.state_dir);
    let mut reg = Registry::new(c);
    assert!(reg.load(c).is_empty());
    for line in data.split(|b| *b == b'\n').take(8) {
        let (id, req) = protocol::parse(line);
        let answer = match req {
            Ok(Request::Deploy(d)) => {
                match reg.deploy(&d.function, &d.policy, &d.files, &d.executable, c) {
                    Ok(f) => {
                        let now = reg.get(&d.function).expect("a deployed function is there");
                        assert_eq!(now.version, f.version);
                        protocol::ok_line(&id, serde_json::json!({"version": f.version}))
                    }
                    Err(e) => protocol::err_line(&id, &e),
                }
            }
            Ok(Request::Remove(r)) => match reg.remove(&r.function) {
                Ok(()) => {
                    assert!(reg.get(&r.function).is_none(), "removed, still there");
                    protocol::ok_line(&id, Value::Null)
                }
                Err(e) => protocol::err_line(&id, &e),
            },
            Ok(_) => continue,
            Err(e) => protocol::err_line(&id, &e),
        };
        assert_eq!(answer.iter().filter(|b| **b == b'\n').count(), 1);
        let v: Value = serde_json::from_slice(&answer).expect("answer is JSON");
        assert!(v.get("ok").is_some());
    }
    let mut again = Registry::new(c);
    let problems = again.load(c);
    assert!(problems.is_empty(), "reload: {problems:?}");
    assert_eq!(held(&reg), held(&again), "memory and disk disagree");
});
