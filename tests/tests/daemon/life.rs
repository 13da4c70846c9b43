//! Lifecycle through the daemon: timeouts that ignore SIGTERM, grandchildren
//! holding stdout, the memory limit; admission (queued deadlines, FIFO and
//! round-robin queues, per-function concurrency).

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

/// The ids of the next `n` answers on `c`, in arrival order.
fn answer_ids(c: &mut Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let v = c.recv_within(Duration::from_secs(20));
            assert_eq!(v["result"]["status"], "exited", "{v}");
            v["id"].as_str().expect("string id").to_owned()
        })
        .collect()
}

#[test]
fn life_queues_are_fifo_per_function_and_served_round_robin() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config("[limits]\nconcurrency = 1\n"));
    d.deploy_ok("gate", &crate::sleep_policy("1", ""), &[]);
    d.deploy_sh("fa", "echo a\n", "timeout_ms = 20000");
    d.deploy_sh("fb", "echo b\n", "timeout_ms = 20000");
    let mut c = d.client();
    c.send(&serde_json::json!({"id": "gate", "op": "invoke", "function": "gate"}));
    let running =
        integration_tests::eventually(Duration::from_secs(5), || d.stats()["in_flight"] == 1);
    assert!(running, "{}", d.stderr());
    // All of fa's first, then all of fb's: served alternately all the same.
    for id in ["a1", "a2", "a3", "b1", "b2", "b3"] {
        let f = if id.starts_with('a') { "fa" } else { "fb" };
        c.send(&serde_json::json!({"id": id, "op": "invoke", "function": f}));
    }
    let order = answer_ids(&mut c, 7);
    assert_eq!(order[0], "gate", "{order:?}");
    let rest = &order[1..];
    let of = |p: char| -> Vec<&str> {
        rest.iter()
            .filter(|i| i.starts_with(p))
            .map(String::as_str)
            .collect()
    };
    assert_eq!(of('a'), ["a1", "a2", "a3"], "fa not FIFO: {order:?}");
    assert_eq!(of('b'), ["b1", "b2", "b3"], "fb not FIFO: {order:?}");
    for w in rest.windows(2) {
        assert_ne!(
            w[0].as_bytes()[0],
            w[1].as_bytes()[0],
            "one function served twice in a row while the other waited: {order:?}"
        );
    }
}

#[test]
fn life_per_function_concurrency_below_the_global_limit_is_enforced() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config("[limits]\nconcurrency = 4\n"));
    d.deploy_ok("solo", &crate::sleep_policy("0.5", "concurrency = 1"), &[]);
    let mut c = d.client();
    for id in 0..3 {
        c.send(&serde_json::json!({"id": id, "op": "invoke", "function": "solo"}));
    }
    // While they run, never more than one at once and the rest queued; the
    // global limit leaves room for another function meanwhile.
    let mut max_in_flight = 0;
    let mut saw_queued = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(800) {
        let s = d.stats();
        max_in_flight = max_in_flight.max(s["in_flight"].as_u64().unwrap_or(0));
        saw_queued = saw_queued.max(s["queued"].as_u64().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let other = d.invoke("hello-python", "{}");
    assert_eq!(other["result"]["status"], "exited", "{other}");
    assert!(
        other["result"]["queue_ms"]
            .as_u64()
            .is_some_and(|q| q < 200),
        "another function waited for solo's slot: {other}"
    );
    let mut queue_ms: Vec<u64> = (0..3)
        .map(|_| {
            let v = c.recv_within(Duration::from_secs(10));
            assert_eq!(v["result"]["status"], "exited", "{v}");
            v["result"]["queue_ms"].as_u64().expect("queue_ms")
        })
        .collect();
    queue_ms.sort_unstable();
    assert_eq!(max_in_flight, 1, "solo ran more than once at a time");
    assert!(saw_queued >= 1, "nothing of solo was ever queued");
    // Served one after another: each waited for the ones before it.
    assert!(queue_ms[1] >= 400, "{queue_ms:?}");
    assert!(queue_ms[2] >= 800, "{queue_ms:?}");
}
