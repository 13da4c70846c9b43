//! Lifecycle through the daemon: timeouts that ignore SIGTERM, grandchildren
//! holding stdout, the memory limit.

use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::require_root;

#[test]
fn life_sigterm_ignoring_function_times_out_fast() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_sh(
        "stubborn",
        "trap '' TERM\necho started\nsleep 30\n",
        "timeout_ms = 300\nkill_grace_ms = 200",
    );
    let t = Instant::now();
    let v = d.invoke("stubborn", "");
    let took = t.elapsed();
    let r = &v["result"];
    assert_eq!(r["status"], "timeout", "{v}");
    assert_eq!(r["limit"], "timeout", "{v}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    assert!(
        took >= Duration::from_millis(300),
        "answered before the timeout: {took:?}"
    );
}

#[test]
fn life_request_timeout_lowers_the_policy_timeout() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok("sleepy", crate::SLEEPY, &[]);
    let t = Instant::now();
    let v = d.client().call(&serde_json::json!(
        {"id": 1, "op": "invoke", "function": "sleepy", "timeout_ms": 200}
    ));
    assert_eq!(v["result"]["status"], "timeout", "{v}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn life_grandchild_holding_stdout_does_not_delay_the_answer() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_sh("bg1", "sleep 30 &\necho hi\n", "");
    d.deploy_sh("bg2", "(sleep 30 &)\necho hi\n", "");
    d.deploy_sh("bg3", "sh -c 'sleep 30 >&2 &'\necho hi\n", "");
    for f in ["bg1", "bg2", "bg3"] {
        let t = Instant::now();
        let v = d.invoke(f, "");
        let took = t.elapsed();
        assert_eq!(v["result"]["status"], "exited", "{f}: {v}");
        assert_eq!(v["result"]["stdout"], "hi\n", "{f}: {v}");
        assert!(
            took < Duration::from_secs(3),
            "{f}: answered after {took:?}"
        );
    }
}

#[test]
fn life_memory_over_limit_is_oom() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok(
        "hog",
        "runtime = \"native\"\ncommand = [\"/usr/bin/python3\", \"-c\", \"x = b'a' * (200 << 20)\"]\n\n[limits]\nmemory = \"32MiB\"\n",
        &[],
    );
    let v = d.invoke("hog", "");
    let r = &v["result"];
    assert_eq!(r["status"], "oom", "{v}");
    assert_eq!(r["limit"], "memory", "{v}");
    // The daemon is unharmed.
    assert_eq!(d.invoke("hello-python", "{}")["result"]["status"], "exited");
}
