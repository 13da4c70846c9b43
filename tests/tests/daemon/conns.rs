//! Connections: slowloris (DP5), clients that never read or vanish (DP7).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

use crate::{sandbox_pids_under, still_sandboxed, SLEEPY};

#[test]
fn conn_slowloris_clients_are_closed_and_others_served() {
    require_root();
    let d = TestDaemon::with(DaemonOpts {
        idle_timeout_ms: Some(1000),
        ..Default::default()
    });
    let mut slow: Vec<Option<UnixStream>> = (0..50)
        .map(|_| {
            let s = UnixStream::connect(d.socket()).expect("connect");
            s.set_write_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            Some(s)
        })
        .collect();
    let start = Instant::now();
    let payload = b"{\"id\":1,\"op\":\"hello\",\"pad\":\"";
    let mut i = 0;
    let mut served = None;
    while start.elapsed() < Duration::from_secs(4) && slow.iter().any(Option::is_some) {
        for s in slow.iter_mut() {
            let closed = match s {
                Some(st) => st.write_all(&[payload[i % payload.len()]]).is_err(),
                None => false,
            };
            if closed {
                *s = None;
            }
        }
        i += 1;
        if served.is_none() {
            let t = Instant::now();
            let v = d.invoke("hello-python", r#"{"name":"Ada"}"#);
            assert_eq!(v["result"]["status"], "exited", "{v}");
            served = Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let open = slow.iter().filter(|s| s.is_some()).count();
    assert_eq!(
        open,
        0,
        "{open} slowloris clients still open after {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "closing took {:?}",
        start.elapsed()
    );
    let served = served.expect("normal client");
    assert!(
        served < Duration::from_secs(2),
        "normal client waited {served:?}"
    );
}

#[test]
fn conn_non_reading_client_is_dropped_and_slots_are_freed() {
    require_root();
    let d = TestDaemon::with(DaemonOpts {
        write_timeout_ms: Some(1000),
        ..Default::default()
    });
    d.deploy_sh(
        "mib",
        "head -c 1048576 /dev/zero | tr '\\0' a\n",
        "output = \"1MiB\"",
    );
    let mut lazy = d.client();
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(
            format!("{{\"id\":{i},\"op\":\"invoke\",\"function\":\"mib\"}}\n").as_bytes(),
        );
    }
    lazy.write_bytes(&batch).expect("write");
    // Never read: the daemon must give up on us.
    lazy.stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let closed = integration_tests::eventually(Duration::from_secs(15), || {
        // A write fails once the daemon closed its end.
        lazy.stream.write_all(b"\n").is_err()
    });
    assert!(
        closed,
        "the non-reading connection was not closed: {}",
        d.stderr()
    );
    let freed = integration_tests::eventually(Duration::from_secs(10), || {
        let s = d.stats();
        s["in_flight"] == 0 && s["queued"] == 0
    });
    assert!(freed, "slots not freed: {}", d.stats());
    let v = d.invoke("mib", "");
    assert_eq!(v["result"]["status"], "exited", "{}", v["result"]["status"]);
    assert_eq!(
        bytes_field(&v["result"], "stdout").map(|o| o.len()),
        Some(1 << 20)
    );
}

#[test]
fn conn_client_vanishing_mid_run_gets_its_sandbox_reaped() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok("sleepy", SLEEPY, &[]);
    let mut c = d.client();
    c.send(&json!({"id": 1, "op": "invoke", "function": "sleepy"}));
    let mut pids = Vec::new();
    let seen = integration_tests::eventually(Duration::from_secs(3), || {
        pids = sandbox_pids_under(d.pid());
        !pids.is_empty()
    });
    assert!(seen, "the sandbox was not seen running");
    drop(c);
    let t = Instant::now();
    let reaped =
        integration_tests::eventually(Duration::from_secs(2), || still_sandboxed(&pids).is_empty());
    assert!(
        reaped,
        "sandbox pids {:?} survive their client",
        still_sandboxed(&pids)
    );
    let ok = integration_tests::eventually(Duration::from_secs(2), || d.stats()["in_flight"] == 0);
    assert!(ok, "in_flight did not return to 0: {}", d.stats());
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(d.stats()["outcomes"]["cancelled"], 1, "{}", d.stats());
}

#[test]
fn conn_half_closed_client_still_gets_every_answer() {
    // `echo req | socat - UNIX-CONNECT:...` shuts its sending side at once.
    require_root();
    let d = TestDaemon::start();
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        b"{\"id\":1,\"op\":\"invoke\",\"function\":\"hello-python\",\"input\":\"{\\\"name\\\":\\\"Ada\\\"}\"}\n{\"id\":2,\"op\":\"hello\"}\n",
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut all = String::new();
    std::io::Read::read_to_string(&mut s, &mut all).expect("daemon closes after answering");
    let answers: Vec<serde_json::Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(answers.len(), 2, "{all}");
    let invoke = answers
        .iter()
        .find(|a| a["id"] == json!(1))
        .expect("invoke answered");
    assert_eq!(
        invoke["result"]["stdout"], "{\"greeting\": \"Hello, Ada!\"}\n",
        "{invoke}"
    );
    assert!(answers
        .iter()
        .any(|a| a["id"] == json!(2) && a["ok"] == json!(true)));
}

/// DP7 at the row's scale: 100 runs of 1 MiB output whose clients never
/// read (100 connections, one invocation each, over two functions so that
/// all fit the queues). Every run completes and the daemon keeps serving;
/// it holds at most one answer per connection (each asked once), so its
/// peak RSS stays within 100 × 1 MiB plus 8 slots' output and answers plus
/// 16 MiB. When the clients vanish with their answers unread (the daemon's
/// next writes get EPIPE: no SIGPIPE death), every fd and slot is freed, and
/// the memory is: a second round of 100 peaks no higher than the first
/// (+16 MiB), where kept answers would add another 100 MiB.
#[test]
fn conn_hundred_non_reading_clients_of_1_mib_outputs_are_freed_and_rss_stays_bounded() {
    require_root();
    const CLIENTS: usize = 100;
    const MIB: usize = 1 << 20;
    let d = TestDaemon::with(DaemonOpts {
        write_timeout_ms: Some(60_000),
        ..Default::default()
    });
    let data = vec![b'a'; MIB];
    for f in ["mib-a", "mib-b"] {
        d.deploy_ok(
            f,
            "runtime = \"native\"\ncommand = [\"/bin/cat\", \"/fn/out.txt\"]\n\n[limits]\nconcurrency = 8\ntimeout_ms = 30000\noutput = \"1MiB\"\n",
            &[("out.txt", &data, false)],
        );
    }
    let v = d.invoke("mib-a", "");
    assert_eq!(
        bytes_field(&v["result"], "stdout").map(|o| o.len()),
        Some(MIB)
    );
    let pid = d.pid();
    let fds_start = d.fd_count();
    let rss_start = d.rss_kib();
    let mut exited = 1;
    let mut round = |n: usize| {
        d.reset_peak_rss();
        let lazy: Vec<Client> = (0..CLIENTS)
            .map(|i| {
                let mut c = d.client();
                let f = if i % 2 == 0 { "mib-a" } else { "mib-b" };
                c.send(&json!({"id": i, "op": "invoke", "function": f}));
                c
            })
            .collect();
        exited += CLIENTS;
        let done = integration_tests::eventually(Duration::from_secs(90), || {
            let s = d.stats();
            s["in_flight"] == 0
                && s["queued"] == 0
                && s["outcomes"]["exited"].as_u64() == Some(exited as u64)
        });
        assert!(
            done,
            "round {n}: the 100 runs did not all complete: {}",
            d.stats()
        );
        let peak = d.peak_rss_kib();
        // Gone without reading: the daemon's pending writes fail, it lives on.
        drop(lazy);
        let freed =
            integration_tests::eventually(Duration::from_secs(10), || d.fd_count() <= fds_start);
        assert!(
            freed,
            "round {n}: daemon holds {} fds, had {fds_start}",
            d.fd_count()
        );
        let s = d.stats();
        assert_eq!(
            (&s["in_flight"], &s["queued"]),
            (&json!(0), &json!(0)),
            "{s}"
        );
        assert_eq!(s["outcomes"]["exited"], exited as u64, "round {n}: {s}");
        assert_eq!(d.pid(), pid);
        peak
    };
    let first = round(1);
    let bound = rss_start + ((CLIENTS + 2 * 8) * (MIB + 4096) / 1024) as u64 + 16 * 1024;
    assert!(
        first <= bound,
        "daemon RSS peaked at {first} KiB, over {bound} KiB ({rss_start} KiB at start)"
    );
    let second = round(2);
    eprintln!(
        "100 unread 1 MiB answers: RSS {rss_start} KiB at start, peaks {first} and {second} KiB"
    );
    assert!(
        second <= first + 16 * 1024,
        "the second round peaked at {second} KiB, the first at {first} KiB: answers kept"
    );
    let v = d.invoke("mib-b", "");
    assert_eq!(v["result"]["status"], "exited", "{}", v["result"]["status"]);
    assert_eq!(
        bytes_field(&v["result"], "stdout").map(|o| o.len()),
        Some(MIB)
    );
}
