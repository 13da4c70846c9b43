//! CR1/CR2: the daemon killed mid-run, and a damaged registry at start-up.

use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

use crate::{sandbox_pids_under, still_sandboxed};

#[test]
fn crash_kill9_kills_sandboxes_and_restart_recovers() {
    require_root();
    let mut d = TestDaemon::start();
    d.deploy_ok(
        "sleepy",
        &crate::sleep_policy("30", "concurrency = 8\ntimeout_ms = 30000"),
        &[],
    );
    d.deploy_sh("one", "echo one\n", "");
    d.deploy_sh("two", "echo two\n", "");
    let mut clients: Vec<Client> = (0..5).map(|_| d.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&json!({"id": i, "op": "invoke", "function": "sleepy"}));
    }
    let mut pids = Vec::new();
    let all = integration_tests::eventually(Duration::from_secs(5), || {
        pids = sandbox_pids_under(d.pid());
        d.stats()["in_flight"] == 5 && pids.len() >= 5
    });
    assert!(all, "5 sandboxes not running: {:?} {}", pids, d.stats());
    assert!(!d.run_cgroups().is_empty(), "run cgroups not seen");
    d.kill9();
    let t = Instant::now();
    let gone =
        integration_tests::eventually(Duration::from_secs(1), || still_sandboxed(&pids).is_empty());
    let survivors = still_sandboxed(&pids);
    let after = t.elapsed();
    // Do not leave them to the other tests (they are ours: descendants of our daemon).
    for p in &survivors {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    for c in &mut clients {
        assert!(
            c.wait_eof(Duration::from_secs(2)),
            "client not disconnected"
        );
    }
    assert!(
        d.socket().exists(),
        "the stale socket should still be there before restart"
    );
    d.restart();
    let names: Vec<String> = d.client().call(&json!({"id": 1, "op": "list"}))["result"]
        ["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str().map(String::from))
        .collect();
    for n in ["sleepy", "one", "two"] {
        assert!(names.contains(&n.to_string()), "{n} lost: {names:?}");
    }
    assert_eq!(d.invoke("one", "")["result"]["stdout"], "one\n");
    assert_eq!(d.invoke("two", "")["result"]["stdout"], "two\n");
    assert!(
        d.run_cgroups().is_empty(),
        "cgroups left: {:?}",
        d.run_cgroups()
    );
    let v = d
        .client()
        .call(&json!({"id": 2, "op": "invoke", "function": "sleepy", "timeout_ms": 100}));
    assert_eq!(v["result"]["status"], "timeout", "{v}");
    // Checked last so that the rest runs (and the restart reaps cgroups) either way.
    assert!(
        gone,
        "sandboxes {survivors:?} outlived the kill -9 of the daemon by {after:?}"
    );
}

#[test]
fn crash_corrupt_registry_entries_are_reported_and_good_ones_kept() {
    require_root();
    let mut d = TestDaemon::start();
    for n in ["good", "garbled", "truncated"] {
        d.deploy_sh(n, &format!("echo {n}\n"), "");
    }
    d.stop().expect("stopped");
    let fdir = d.state_dir().join("functions");
    std::fs::write(fdir.join("garbled/current"), b"\xff\x00garbage\n").expect("write");
    let pol = fdir.join("truncated/v1/truncated.toml");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&pol)
        .expect("truncate");
    d.restart();
    let err = d.stderr();
    assert!(err.contains("garbled"), "garbled not reported: {err}");
    assert!(err.contains("truncated"), "truncated not reported: {err}");
    assert_eq!(d.invoke("good", "")["result"]["stdout"], "good\n");
    for n in ["garbled", "truncated"] {
        let v = d.invoke(n, "");
        assert_eq!(code(&v), Some("unknown_function"), "{n}: {v}");
    }
    // Only the pointer is damaged: v1 itself is intact and must not be
    // deleted (an admin repairs `current`); versions are never reused.
    let kept = fdir.join("garbled/v1/garbled.toml").exists();
    let version = d.deploy_sh("garbled", "echo fixed\n", "");
    assert_eq!(d.invoke("garbled", "")["result"]["stdout"], "fixed\n");
    assert!(
        kept,
        "the daemon deleted garbled/v1 (intact; only its pointer was bad) at start-up"
    );
    assert!(
        version >= 2,
        "version {version} reused after the damaged v1"
    );
}
