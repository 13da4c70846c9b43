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

#[test]
fn life_queued_invoke_times_out_at_its_deadline_while_the_slot_stays_busy() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config("[limits]\nconcurrency = 1\n"));
    d.deploy_ok("long", &crate::sleep_policy("3", ""), &[]);
    d.deploy_sh("quick", "echo quick\n", "");
    let mut c = d.client();
    c.send(&serde_json::json!({"id": "long", "op": "invoke", "function": "long"}));
    // The long run holds the only slot before the short one arrives.
    let running =
        integration_tests::eventually(Duration::from_secs(5), || d.stats()["in_flight"] == 1);
    assert!(running, "the long run never started: {}", d.stderr());
    let t = Instant::now();
    let v = c.call(&serde_json::json!(
        {"id": "q", "op": "invoke", "function": "quick", "timeout_ms": 300}
    ));
    let took = t.elapsed();
    assert_eq!(v["id"], "q", "the long run answered first: {v}");
    let r = &v["result"];
    assert_eq!(r["status"], "timeout", "{v}");
    assert_eq!(r["limit"], "timeout", "{v}");
    assert_eq!(r["exit_code"], serde_json::Value::Null, "{v}");
    assert_eq!(r["wall_ms"], 0, "it never ran: {v}");
    let queued = r["queue_ms"].as_u64().expect("queue_ms");
    assert!(
        (300..1500).contains(&queued),
        "queue_ms {queued} is not the wait"
    );
    assert!(
        took < Duration::from_millis(1500),
        "a queued invocation with a 300 ms deadline was answered after {took:?}"
    );
    // The long run is unaffected and ends normally.
    let v = c.recv_within(Duration::from_secs(10));
    assert_eq!(v["id"], "long", "{v}");
    assert_eq!(v["result"]["status"], "exited", "{v}");
    assert_eq!(v["result"]["exit_code"], 0, "{v}");
    let s = d.stats();
    assert_eq!(s["totals"]["quick"]["timeout"], 1, "{s}");
    assert_eq!(s["queued"], 0, "{s}");
}
