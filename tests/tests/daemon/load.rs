//! LD1: an invocation storm against concurrency 8 and queue 64; RS1 from
//! the daemon's side: a fork bomb does not slow `stats` or a neighbour.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::{eventually, require_root};
use serde_json::{json, Value};

/// The storm's output per run, and its cap.
const OUT: usize = 256 << 10;

/// An answer with its stdout replaced by its length: the client reads as
/// fast as it can (parsing every long JSON string in a debug build would
/// slow the clients down, and the daemon would hold answers for them).
fn small(line: &[u8]) -> Value {
    const KEY: &[u8] = b"\"stdout\":\"";
    let Some(at) = line.windows(KEY.len()).position(|w| w == KEY) else {
        return serde_json::from_slice(line).expect("JSON answer");
    };
    let start = at + KEY.len();
    // Only 'a's were written: the string ends at the first quote.
    let len = line[start..]
        .iter()
        .position(|b| *b == b'"')
        .expect("end of stdout");
    let mut short = line[..at].to_vec();
    short.extend_from_slice(format!("\"stdout\":{len}").as_bytes());
    short.extend_from_slice(&line[start + len + 1..]);
    serde_json::from_slice(&short).expect("JSON answer")
}

/// LD1 at the row's scale: 2000 invocations at once (100 clients, each
/// pipelining 20) against concurrency 8 and queue 64. A run's work is cheap
/// (`cat` of a 256 KiB file), so the storm is the daemon's, not the
/// sandboxes'. Every request gets exactly one answer; `busy` comes with
/// retry_after_ms and at once (within 200 ms of the batch: the daemon first
/// reads all 2000 lines, ~50 ms in a debug build, while a request that
/// waited for the queue would be answered only as the ~1 s storm drains);
/// `stats` answers in under 100 ms throughout; and the daemon's peak RSS
/// stays within what its slots hold: 8 runs' output and their answers
/// (2 × 8 × 256 KiB) plus 8 MiB for the 2000 request lines, 100
/// connections and allocator slack. Holding the answers of the whole storm
/// would take 18 MiB more.
#[test]
fn load_storm_gets_one_answer_each_fast_busy_and_fast_stats() {
    require_root();
    const CLIENTS: usize = 100;
    const EACH: usize = 20;
    const CONCURRENCY: usize = 8;
    let d = TestDaemon::with(DaemonOpts::config(&format!(
        "[limits]\nconcurrency = {CONCURRENCY}\nqueue = 64\n"
    )));
    let data = vec![b'a'; OUT];
    d.deploy_ok(
        "burst",
        "runtime = \"native\"\ncommand = [\"/bin/cat\", \"/fn/out.txt\"]\n\n[limits]\nconcurrency = 8\ntimeout_ms = 30000\noutput = \"256KiB\"\n",
        &[("out.txt", &data, false)],
    );
    // Warm up, then measure from here.
    let v = d.invoke("burst", "");
    assert_eq!(
        bytes_field(&v["result"], "stdout").map(|o| o.len()),
        Some(OUT),
        "{}",
        v["result"]["status"]
    );
    let rss_start = d.rss_kib();
    d.reset_peak_rss();
    let sock = d.socket();
    let go = std::sync::Arc::new(std::sync::Barrier::new(CLIENTS + 1));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let sock = sock.clone();
            let go = go.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&sock);
                let mut batch = Vec::new();
                for i in 0..EACH {
                    batch.extend_from_slice(
                        format!(
                            "{{\"id\":\"{t}-{i}\",\"op\":\"invoke\",\"function\":\"burst\"}}\n"
                        )
                        .as_bytes(),
                    );
                }
                go.wait();
                let sent = Instant::now();
                c.write_bytes(&batch).expect("write");
                let mut got: Vec<(Value, Duration)> = Vec::new();
                for _ in 0..EACH {
                    let Recv::Line(line) = c.recv_line(Duration::from_secs(120)) else {
                        panic!("no answer");
                    };
                    got.push((small(&line), sent.elapsed()));
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
    let storm = Instant::now();
    // `stats` every 50 ms while the storm lasts.
    let mut stats_ms = Vec::new();
    let mut sc = d.client();
    while stats_ms.len() < 5 || !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let v = sc.call(&json!({"id": stats_ms.len(), "op": "stats"}));
        stats_ms.push(t.elapsed());
        assert_eq!(v["ok"], true, "{v}");
        assert!(
            storm.elapsed() < Duration::from_secs(180),
            "the storm does not end"
        );
    }
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    let mut busy_ms = Vec::new();
    let (mut ok, mut busy) = (0, 0);
    for h in handles {
        for (v, took) in h.join().expect("client") {
            let id = v["id"].as_str().expect("id").to_string();
            match code(&v) {
                None => {
                    assert_eq!(v["result"]["status"], "exited", "{v}");
                    assert_eq!(v["result"]["stdout"], OUT, "{v}");
                    ok += 1;
                }
                Some("busy") => {
                    assert!(v["error"]["retry_after_ms"].as_u64().is_some(), "{v}");
                    busy += 1;
                    busy_ms.push(took);
                }
                Some(_) => panic!("unexpected answer {v}"),
            }
            assert!(by_id.insert(id, v).is_none(), "two answers for one id");
        }
    }
    let peak = d.peak_rss_kib();
    busy_ms.sort();
    stats_ms.sort();
    eprintln!(
        "storm: {ok} ran, {busy} busy in {:?}; busy answers p50 {:?} max {:?}; stats max {:?} of {}; RSS {rss_start} KiB at start, peak {peak} KiB",
        storm.elapsed(),
        busy_ms.get(busy_ms.len() / 2),
        busy_ms.last(),
        stats_ms.last(),
        stats_ms.len()
    );
    assert_eq!(by_id.len(), CLIENTS * EACH);
    assert_eq!(ok + busy, CLIENTS * EACH);
    assert!(ok >= 64, "only {ok} ran");
    assert!(busy > 0, "nothing was busy");
    let slow = busy_ms
        .iter()
        .filter(|t| **t > Duration::from_millis(200))
        .count();
    assert_eq!(
        slow,
        0,
        "{slow} busy answers took over 200 ms (max {:?})",
        busy_ms.last()
    );
    let worst = stats_ms.last().expect("stats");
    assert!(
        *worst < Duration::from_millis(100),
        "stats took {worst:?} under load"
    );
    let bound = rss_start + (2 * CONCURRENCY * OUT / 1024) as u64 + 8 * 1024;
    assert!(
        peak <= bound,
        "daemon RSS peaked at {peak} KiB, over {bound} KiB ({rss_start} KiB at start + 2 × {CONCURRENCY} slots × {OUT} B + 8 MiB)"
    );
}

/// Sum of `max` in the pids.events of the daemon's run cgroups: how often
/// a fork was refused at pids.max.
fn pids_max_hits(d: &TestDaemon) -> u64 {
    d.run_cgroups()
        .iter()
        .filter_map(|c| std::fs::read_to_string(format!("{c}/pids.events")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.strip_prefix("max ")?.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// Whether one of the daemon's run cgroups is at its pids.max now.
fn pids_saturated(d: &TestDaemon) -> bool {
    d.run_cgroups().iter().any(|c| {
        let read = |f: &str| {
            std::fs::read_to_string(format!("{c}/{f}"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        matches!((read("pids.current"), read("pids.max")), (Some(cur), Some(max)) if cur >= max)
    })
}

/// RS1 from the daemon's side, with the row's bomb: while `:(){ :|:& };:`
/// holds its sandbox at pids.max (bash retries a refused fork instead of
/// exiting, so the bomb stays), `stats` answers in under 100 ms and a
/// neighbour function runs and answers correctly; the bomb ends at its
/// timeout, and its cgroup and processes go with it.
#[test]
fn load_fork_bomb_at_its_pids_limit_leaves_stats_fast_and_a_neighbour_served() {
    require_root();
    let d = TestDaemon::start();
    // The shell itself becomes `sleep` (exec needs no new pid) until the
    // timeout; bash's own warnings about refused forks go to /dev/null.
    let bomb = ":(){ :|:& };: 2>/dev/null\nexec sleep 30\n";
    d.deploy_ok(
        "bomb",
        "runtime = \"native\"\ncommand = [\"/bin/bash\", \"/fn/h.sh\"]\n\n[limits]\npids = 16\ntimeout_ms = 8000\nkill_grace_ms = 100\n",
        &[("h.sh", bomb.as_bytes(), true)],
    );
    d.deploy_sh("calm", "echo calm\n", "");
    assert_eq!(d.invoke("calm", "")["result"]["stdout"], "calm\n");
    let mut b = d.client();
    b.send(&json!({"id": "bomb", "op": "invoke", "function": "bomb"}));
    let hit = eventually(Duration::from_secs(4), || {
        pids_max_hits(&d) > 0 && pids_saturated(&d)
    });
    if !hit {
        let cgroups = d.run_cgroups();
        let v = b.recv_within(Duration::from_secs(10));
        panic!("the bomb never reached pids.max: cgroups {cgroups:?}, bomb {v}");
    }
    let mut stats_ms = Vec::new();
    let mut sc = d.client();
    for i in 0..10 {
        let t = Instant::now();
        let v = sc.call(&json!({"id": i, "op": "stats"}));
        stats_ms.push(t.elapsed());
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["result"]["in_flight"], 1, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..3 {
        let t = Instant::now();
        let v = d.invoke("calm", "");
        assert_eq!(v["result"]["status"], "exited", "neighbour: {v}");
        assert_eq!(v["result"]["exit_code"], 0, "neighbour: {v}");
        assert_eq!(v["result"]["stdout"], "calm\n", "neighbour: {v}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "neighbour answered after {:?}",
            t.elapsed()
        );
    }
    // All of that happened while the bomb still held every pid it may have
    // (a bash of the bomb can be between a refused fork and its retry at
    // the instant of one read: the check allows a second for it).
    let held = eventually(Duration::from_secs(1), || pids_saturated(&d));
    assert!(held, "the bomb let go of pids.max");
    let worst = stats_ms.iter().max().expect("stats");
    assert!(
        *worst < Duration::from_millis(100),
        "stats took {worst:?} during the bomb ({stats_ms:?})"
    );
    let v = b.recv_within(Duration::from_secs(10));
    assert_eq!(v["id"], "bomb", "{v}");
    assert_eq!(v["result"]["status"], "timeout", "{v}");
    let gone = eventually(Duration::from_secs(3), || {
        d.run_cgroups().is_empty() && crate::sandbox_pids_under(d.pid()).is_empty()
    });
    assert!(
        gone,
        "after the bomb: cgroups {:?}, processes {:?}",
        d.run_cgroups(),
        crate::sandbox_pids_under(d.pid())
    );
    assert_eq!(d.stats()["in_flight"], 0);
}
