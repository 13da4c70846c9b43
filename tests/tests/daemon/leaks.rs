//! Serial: nothing a daemon did survives it (cgroups, mounts, processes).

use std::time::Duration;

use integration_tests::daemon::*;
use integration_tests::*;
use serde_json::json;

#[test]
fn leaks_daemon_runs_leave_the_host_as_found() {
    require_root();
    let _x = exclusive();
    // Every other test's daemon is gone now: none of their sandboxes may remain.
    // (Killed ones may stay zombies for a moment until init reaps them.)
    let none = eventually(Duration::from_secs(3), || {
        sandbox_processes(SANDBOX_UIDS).is_empty()
    });
    assert!(
        none,
        "sandbox processes left by earlier tests: {:?}",
        sandbox_processes(SANDBOX_UIDS)
    );
    let prefix = format!("paddockt{}x", std::process::id());
    let stale: Vec<String> = paddock_cgroups()
        .into_iter()
        .filter(|c| c.contains(&prefix))
        .collect();
    assert!(
        stale.is_empty(),
        "run cgroups left by earlier daemons: {stale:?}"
    );
    let before = HostSnapshot::take();
    {
        let mut d = TestDaemon::start();
        d.deploy_ok("sleepy", crate::SLEEPY, &[]);
        assert_eq!(d.invoke("hello-python", "{}")["result"]["status"], "exited");
        let mut c = d.client();
        c.send(&json!({"id": 1, "op": "invoke", "function": "sleepy", "timeout_ms": 200}));
        c.send(&json!({"id": 2, "op": "invoke", "function": "sleepy"}));
        c.send(&json!({"id": 3, "op": "invoke", "function": "sleepy"}));
        assert_eq!(c.recv()["result"]["status"], "timeout");
        drop(c);
        let mut c = d.client();
        c.send(&json!({"id": 4, "op": "invoke", "function": "sleepy"}));
        std::thread::sleep(Duration::from_millis(300));
        d.kill9();
        d.restart();
        assert_eq!(d.invoke("hello-python", "{}")["result"]["status"], "exited");
        assert!(d.stop().is_some_and(|s| s.success()));
    }
    let ok = eventually(Duration::from_secs(2), || HostSnapshot::take() == before);
    assert!(
        ok,
        "host state changed: before {before:?} after {:?}",
        HostSnapshot::take()
    );
}
