//! LD1: an invocation storm against concurrency 8 and queue 64.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::{json, Value};

#[test]
fn load_storm_gets_one_answer_each_fast_busy_and_fast_stats() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config(
        "[limits]\nconcurrency = 8\nqueue = 64\n",
    ));
    d.deploy_ok(
        "nap",
        &crate::sleep_policy("0.2", "concurrency = 8\ntimeout_ms = 30000"),
        &[],
    );
    let sock = d.socket();
    let go = std::sync::Arc::new(std::sync::Barrier::new(31));
    let handles: Vec<_> = (0..30)
        .map(|t| {
            let sock = sock.clone();
            let go = go.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&sock);
                let mut batch = Vec::new();
                for i in 0..10 {
                    batch.extend_from_slice(
                        format!("{{\"id\":\"{t}-{i}\",\"op\":\"invoke\",\"function\":\"nap\"}}\n")
                            .as_bytes(),
                    );
                }
                go.wait();
                let sent = Instant::now();
                c.write_bytes(&batch).expect("write");
                let mut got: Vec<(Value, Duration)> = Vec::new();
                for _ in 0..10 {
                    let v = c.recv_within(Duration::from_secs(60));
                    got.push((v, sent.elapsed()));
                }
                assert_eq!(
                    c.recv_line(Duration::from_millis(100)),
                    Recv::Timeout,
                    "extra answer"
                );
                got
            })
        })
        .collect();
    go.wait();
    std::thread::sleep(Duration::from_millis(150));
    let mut stats_ms = Vec::new();
    let mut sc = d.client();
    for i in 0..5 {
        let t = Instant::now();
        let v = sc.call(&json!({"id": i, "op": "stats"}));
        stats_ms.push(t.elapsed());
        assert_eq!(v["ok"], true);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    let mut busy_slow = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for h in handles {
        for (v, took) in h.join().expect("client") {
            let id = v["id"].as_str().expect("id").to_string();
            match code(&v) {
                None => {
                    assert_eq!(v["result"]["status"], "exited", "{v}");
                    ok += 1;
                }
                Some("busy") => {
                    assert!(v["error"]["retry_after_ms"].as_u64().is_some(), "{v}");
                    busy += 1;
                    if took > Duration::from_millis(100) {
                        busy_slow.push(took);
                    }
                }
                Some(_) => panic!("unexpected answer {v}"),
            }
            assert!(by_id.insert(id, v).is_none(), "two answers for one id");
        }
    }
    assert_eq!(by_id.len(), 300);
    assert_eq!(ok + busy, 300);
    assert!(ok >= 64, "only {ok} ran");
    assert!(busy > 0, "nothing was busy");
    busy_slow.sort();
    assert!(
        busy_slow.is_empty(),
        "{} busy answers took over 100 ms (max {:?})",
        busy_slow.len(),
        busy_slow.last()
    );
    let worst = stats_ms.iter().max().expect("stats");
    assert!(
        *worst < Duration::from_millis(100),
        "stats took {worst:?} under load ({stats_ms:?})"
    );
}
