//! Load, soak and faults (issue 8): mixed invocations at twice the configured
//! capacity, idle connections at a low fd limit, and the daemon killed at
//! random points during deploys and invocations.
//!
//! Short by default, for CI. Long mode: `PADDOCK_SOAK_INVOCATIONS=20000
//! PADDOCK_CRASH_ROUNDS=100 cargo test -p integration-tests --features
//! root-tests --test daemon soak -- --nocapture`.

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::{require_root, HostSnapshot};
use serde_json::{json, Value};

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (name, script, extra [limits], the statuses it may end with)
const MIX: [(&str, &str, &str, &[&str]); 6] = [
    ("ok", "echo ok\n", "", &["exited"]),
    (
        "slow",
        "sleep 5\n",
        "timeout_ms = 150\nkill_grace_ms = 50",
        &["timeout"],
    ),
    (
        "oom",
        "exec /usr/bin/python3 -c 'x = bytearray(64 << 20); print(len(x))'\n",
        "memory = \"16MiB\"",
        &["oom"],
    ),
    (
        "flood",
        "exec yes\n",
        "output = \"4KiB\"",
        &["signaled", "exited"],
    ),
    ("crash", "kill -SEGV $$\n", "", &["signaled"]),
    (
        "bomb",
        "f() { f | f & }; f; sleep 1\n",
        "pids = 8\ntimeout_ms = 300\nkill_grace_ms = 50",
        &["timeout", "exited", "signaled"],
    ),
];

#[test]
fn soak_mixed_invocations_at_twice_capacity_each_get_one_answer_and_nothing_leaks() {
    require_root();
    // Host-wide counts (mounts, cgroups, sandbox processes) are compared: no
    // other test's sandbox may come or go meanwhile.
    let _x = integration_tests::exclusive();
    let total = env_usize("PADDOCK_SOAK_INVOCATIONS", 600);
    let concurrency = 4;
    let clients = 2 * concurrency;
    let d = TestDaemon::with(DaemonOpts::config(&format!(
        "[limits]\nconcurrency = {concurrency}\nqueue = 16\n"
    )));
    for (name, script, limits, _) in MIX {
        d.deploy_sh(name, script, limits);
    }
    // Warm up, then measure the baseline the end is compared with.
    for (name, ..) in MIX {
        d.invoke(name, "");
    }
    let before = HostSnapshot::take();
    let fds_before = d.fd_count();
    let rss_before = d.rss_kib();
    let started = Instant::now();
    let per_client = total / clients;
    let socket = d.socket();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut cl = Client::connect(&socket);
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for i in 0..per_client {
                    let (name, _, _, allowed) = MIX[(c + i) % MIX.len()];
                    let id = format!("{c}-{i}");
                    cl.send(&json!({"id": id, "op": "invoke", "function": name}));
                    let v = cl.recv_within(Duration::from_secs(30));
                    assert_eq!(v["id"], json!(id), "one answer per request, in turn: {v}");
                    let key = if v["ok"] == true {
                        let st = v["result"]["status"].as_str().unwrap_or("?").to_string();
                        assert!(allowed.contains(&st.as_str()), "{name}: {v}");
                        st
                    } else {
                        assert_eq!(code(&v), Some("busy"), "{v}");
                        "busy".into()
                    };
                    *counts.entry(key).or_default() += 1;
                }
                // Nothing extra arrives: exactly one answer per request.
                assert!(
                    matches!(cl.recv_line(Duration::from_millis(200)), Recv::Timeout),
                    "extra answer"
                );
                counts
            })
        })
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for h in handles {
        for (k, v) in h.join().expect("client thread") {
            *counts.entry(k).or_default() += v;
        }
    }
    let answered: usize = counts.values().sum();
    assert_eq!(answered, per_client * clients);
    eprintln!(
        "soak: {answered} invocations in {:?}: {counts:?}",
        started.elapsed()
    );
    let settled = integration_tests::eventually(Duration::from_secs(10), || {
        d.stats()["in_flight"] == 0 && HostSnapshot::take().sandbox_pids.is_empty()
    });
    assert!(settled, "runs did not settle: {}", d.stats());
    let after = HostSnapshot::take();
    assert_eq!(after.mounts, before.mounts, "mounts leaked");
    assert_eq!(after.cgroups, before.cgroups, "cgroups leaked");
    assert!(
        after.sandbox_pids.is_empty(),
        "processes left: {:?}",
        after.sandbox_pids
    );
    // The test's own stats connections close asynchronously.
    let fds_back =
        integration_tests::eventually(Duration::from_secs(5), || d.fd_count() <= fds_before);
    assert!(
        fds_back,
        "daemon fds leaked: {} now, {fds_before} before",
        d.fd_count()
    );
    let rss_after = d.rss_kib();
    assert!(
        rss_after < rss_before + 16 * 1024,
        "daemon RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    let tmp_left: Vec<_> = walk(&d.state_dir())
        .into_iter()
        .filter(|p| p.contains(".tmp"))
        .collect();
    assert!(tmp_left.is_empty(), "temp files left: {tmp_left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path().display().to_string());
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            }
        }
    }
    out
}

#[test]
fn soak_idle_connections_at_a_low_fd_limit_do_not_lock_others_out() {
    require_root();
    let d = TestDaemon::with(DaemonOpts {
        nofile: Some(128),
        idle_timeout_ms: Some(1500),
        ..Default::default()
    });
    let fds_before = d.fd_count();
    // Far more idle clients than the daemon has fds.
    let idle: Vec<UnixStream> = (0..400)
        .filter_map(|_| UnixStream::connect(d.socket()).ok())
        .collect();
    assert!(idle.len() > 128, "only {} connected", idle.len());
    // A working client still gets served promptly (the longest-idle are evicted).
    let t = Instant::now();
    let v = d.invoke("hello-python", "{\"name\":\"Ada\"}");
    assert_eq!(
        v["result"]["stdout"], "{\"greeting\": \"Hello, Ada!\"}\n",
        "{v}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "served after {:?}",
        t.elapsed()
    );
    // Idle connections are closed after the idle timeout and every fd comes back.
    let freed =
        integration_tests::eventually(Duration::from_secs(10), || d.fd_count() <= fds_before);
    assert!(freed, "daemon holds {} fds, had {fds_before}", d.fd_count());
    drop(idle);
}

#[test]
fn soak_daemon_killed_at_random_points_loses_no_deployed_function() {
    require_root();
    // Checks that no sandbox process is left anywhere on the host.
    let _x = integration_tests::exclusive();
    let rounds = env_usize("PADDOCK_CRASH_ROUNDS", 6);
    let mut d = TestDaemon::start();
    // The latest version each function is known to have been deployed at.
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..rounds {
        let socket = d.socket();
        let worker = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let Ok(s) = UnixStream::connect(&socket) else {
                return acks;
            };
            let mut c = Client::from_stream(s);
            for i in 0..200u64 {
                let name = format!("f{}", i % 4);
                let script = format!("echo {name}-{round}-{i}\n");
                let req = deploy_req(
                    i,
                    &name,
                    &sh_policy("", ""),
                    &[("h.sh", script.as_bytes(), true)],
                );
                c.send(&req);
                match c.recv_line(Duration::from_secs(5)) {
                    Recv::Line(line) => {
                        let v: Value = serde_json::from_slice(&line).expect("JSON answer");
                        if v["ok"] != true {
                            return acks;
                        }
                        acks.push((
                            name.clone(),
                            v["result"]["version"].as_u64().unwrap(),
                            script,
                        ));
                    }
                    _ => return acks, // the daemon died mid-request
                }
                c.send(&json!({"id": format!("i{i}"), "op": "invoke", "function": name}));
                if !matches!(c.recv_line(Duration::from_secs(5)), Recv::Line(_)) {
                    return acks;
                }
            }
            acks
        });
        std::thread::sleep(Duration::from_millis(20 + rnd(300)));
        d.kill9();
        let acks = worker.join().expect("worker");
        for (name, v, _) in &acks {
            acked.insert(name.clone(), *v);
        }
        d.restart();
        // Every acknowledged deploy survived: the live version is that one or a
        // later one whose deploy was under way, and it runs its own script.
        let list = d.client().call(&json!({"id": 1, "op": "list"}));
        let live: BTreeMap<String, u64> = list["result"]["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["version"].as_u64().unwrap(),
                )
            })
            .collect();
        for (name, v) in &acked {
            let got = live.get(name).copied();
            assert!(
                got.is_some_and(|g| g >= *v),
                "round {round}: {name} acked v{v}, live {got:?}"
            );
            let out = d.invoke(name, "");
            let stdout = out["result"]["stdout"].as_str().unwrap_or("").to_string();
            assert!(
                stdout.starts_with(&format!("{name}-")),
                "round {round}: {name} corrupt: {out}"
            );
        }
        assert!(
            integration_tests::sandbox_processes(integration_tests::SANDBOX_UIDS).is_empty()
                || integration_tests::eventually(Duration::from_secs(2), || {
                    integration_tests::sandbox_processes(integration_tests::SANDBOX_UIDS).is_empty()
                }),
            "round {round}: sandboxes outlived the daemon"
        );
    }
    // No half-written deploy is left behind after the last restart settles.
    d.stop();
    let tmp_left: Vec<_> = walk(&d.state_dir())
        .into_iter()
        .filter(|p| p.contains(".tmp"))
        .collect();
    assert!(tmp_left.is_empty(), "temp files left: {tmp_left:?}");
}
