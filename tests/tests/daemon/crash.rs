//! CR1/CR2: the daemon killed mid-run, and a damaged registry at start-up.

use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::{require_root, HostSnapshot};
use serde_json::json;

use crate::{sandbox_pids_under, still_sandboxed};

/// CR1 at the row's scale: 20 sandboxes running when the daemon is killed
/// (two functions, since a function's concurrency ceiling is 16).
#[test]
fn crash_kill9_kills_sandboxes_and_restart_recovers() {
    require_root();
    // Host-wide mounts and sandbox zombies are compared.
    let _x = integration_tests::exclusive();
    const RUNNING: usize = 20;
    let before = HostSnapshot::take();
    let mut d = TestDaemon::with(DaemonOpts::config("[limits]\nconcurrency = 24\n"));
    for name in ["sleepy", "sleepy2"] {
        d.deploy_ok(
            name,
            &crate::sleep_policy("30", "concurrency = 10\ntimeout_ms = 30000"),
            &[],
        );
    }
    d.deploy_sh("one", "echo one\n", "");
    d.deploy_sh("two", "echo two\n", "");
    let mut clients: Vec<Client> = (0..RUNNING).map(|_| d.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let f = if i % 2 == 0 { "sleepy" } else { "sleepy2" };
        c.send(&json!({"id": i, "op": "invoke", "function": f}));
    }
    let mut pids = Vec::new();
    let all = integration_tests::eventually(Duration::from_secs(20), || {
        pids = sandbox_pids_under(d.pid());
        d.stats()["in_flight"] == RUNNING && pids.len() >= RUNNING
    });
    assert!(
        all,
        "{RUNNING} sandboxes not running: {:?} {}",
        pids,
        d.stats()
    );
    let cgroups = d.run_cgroups();
    assert!(
        cgroups.len() >= RUNNING,
        "run cgroups not seen: {cgroups:?}"
    );
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
    for n in ["sleepy", "sleepy2", "one", "two"] {
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
    // Orphaned by the kill, the dead sandboxes were reaped (no zombie with a
    // sandbox uid), and the host's mounts are as they were.
    let reaped = integration_tests::eventually(Duration::from_secs(3), || {
        integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS).is_empty()
            && d.zombie_descendants().is_empty()
    });
    assert!(
        reaped,
        "zombies: sandbox uids {:?}, under the daemon {:?}",
        integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS),
        d.zombie_descendants()
    );
    assert!(d.stop().is_some_and(|s| s.success()), "{}", d.stderr());
    assert_eq!(HostSnapshot::take().mounts, before.mounts, "mounts changed");
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
