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

/// (name, script, extra [limits], the statuses it may end with). `dep` is
/// redeployed over and over while the soak runs (its script echoes its
/// deploy number).
const MIX: [(&str, &str, &str, &[&str]); 7] = [
    ("ok", "echo ok\n", "", &["exited"]),
    ("dep", "echo dep-0\n", "", &["exited"]),
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
    // Warm up, then measure the baseline the end is compared with (once
    // the last warm-up's init has exited and its cgroup is gone).
    for (name, ..) in MIX {
        d.invoke(name, "");
    }
    integration_tests::eventually(Duration::from_secs(2), || d.run_cgroups().is_empty());
    let before = HostSnapshot::take();
    let zombies_before = d.zombie_descendants();
    let fds_before = d.fd_count();
    let rss_before = d.rss_kib();
    let started = Instant::now();
    let per_client = total / clients;
    let socket = d.socket();
    // Deploys alongside the invocations: the versions of `dep` pile up, and
    // each old one must be deleted once no run uses it, with no temp file
    // left by any of them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deployer = {
        let (socket, stop) = (socket.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = Client::connect(&socket);
            let mut last = 0;
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let script = format!("echo dep-{n}\n");
                let v = c.call(&deploy_req(
                    n,
                    "dep",
                    &sh_policy("", ""),
                    &[("h.sh", script.as_bytes(), true)],
                ));
                assert_eq!(v["ok"], true, "deploy during the soak: {v}");
                let version = v["result"]["version"].as_u64().expect("version");
                assert!(version > last, "version {version} after {last}");
                last = version;
                std::thread::sleep(Duration::from_millis(25));
            }
            (n, last)
        })
    };
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
                        if name == "dep" {
                            // Whole versions only: the script of the version that ran.
                            let version = v["result"]["version"].as_u64().expect("version");
                            let want = format!("dep-{}\n", version - 1);
                            assert_eq!(v["result"]["stdout"], json!(want), "{v}");
                        }
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (deploys, last_version) = deployer.join().expect("deployer thread");
    let answered: usize = counts.values().sum();
    assert_eq!(answered, per_client * clients);
    eprintln!(
        "soak: {answered} invocations and {deploys} deploys in {:?}: {counts:?}",
        started.elapsed()
    );
    assert!(deploys >= 10, "only {deploys} deploys during the soak");
    // Answers go out as soon as an init reports; its exit and its cgroup's
    // removal follow within moments.
    let settled = integration_tests::eventually(Duration::from_secs(10), || {
        let now = HostSnapshot::take();
        d.stats()["in_flight"] == 0 && now.sandbox_pids.is_empty() && now.cgroups == before.cgroups
    });
    let after = HostSnapshot::take();
    assert!(
        settled,
        "runs did not settle: {}\nnow: {after:?}\nbefore: {before:?}\n{}",
        d.stats(),
        d.stderr()
    );
    assert_eq!(after.mounts, before.mounts, "mounts leaked");
    assert_eq!(after.cgroups, before.cgroups, "cgroups leaked");
    assert!(
        after.sandbox_pids.is_empty(),
        "processes left: {:?}",
        after.sandbox_pids
    );
    // Every sandbox was reaped by its parent: no zombie under the daemon,
    // none with a sandbox uid anywhere.
    let reaped = integration_tests::eventually(Duration::from_secs(2), || {
        d.zombie_descendants() == zombies_before
            && integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS).is_empty()
    });
    assert!(
        reaped,
        "zombies: under the daemon {:?} (before {zombies_before:?}), sandbox uids {:?}",
        d.zombie_descendants(),
        integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS)
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
    // Of all the versions deployed, only the live one is left on disk.
    let dep_dir = d.state_dir().join("functions/dep");
    let mut versions: Vec<String> = std::fs::read_dir(&dep_dir)
        .expect("dep's directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        ["current".to_string(), format!("v{last_version}")],
        "version directories of dep"
    );
    let v = d.invoke("dep", "");
    assert_eq!(
        v["result"]["stdout"],
        json!(format!("dep-{deploys}\n")),
        "{v}"
    );
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
    // The script of every version a deploy was acknowledged for, and the
    // latest acknowledged version of each function.
    let mut scripts: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut deploys = 0;
    for round in 0..rounds {
        let socket = d.socket();
        // Deploys one at a time, each followed by an invocation; returns the
        // acknowledged ones and the one under way when the daemon died.
        let worker = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let mut pending = None;
            let Ok(s) = UnixStream::connect(&socket) else {
                return (acks, pending);
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
                pending = Some((name.clone(), script.clone()));
                c.send(&req);
                match c.recv_line(Duration::from_secs(5)) {
                    Recv::Line(line) => {
                        let v: Value = serde_json::from_slice(&line).expect("JSON answer");
                        assert_eq!(v["ok"], true, "round {round}: deploy {i}: {v}");
                        acks.push((
                            name.clone(),
                            v["result"]["version"].as_u64().expect("version"),
                            script,
                        ));
                        pending = None;
                    }
                    _ => return (acks, pending), // the daemon died mid-request
                }
                c.send(&json!({"id": format!("i{i}"), "op": "invoke", "function": name}));
                if !matches!(c.recv_line(Duration::from_secs(5)), Recv::Line(_)) {
                    return (acks, pending);
                }
            }
            (acks, pending)
        });
        std::thread::sleep(Duration::from_millis(20 + rnd(300)));
        d.kill9();
        let (acks, pending) = worker.join().expect("worker");
        deploys += acks.len();
        for (name, v, script) in acks {
            scripts.entry(name.clone()).or_default().insert(v, script);
            acked.insert(name, v);
        }
        d.restart();
        // The sandboxes of the killed daemon died with it; its run cgroups
        // are removed at start-up, none left, and nothing is left a zombie.
        let clean = integration_tests::eventually(Duration::from_secs(3), || {
            d.run_cgroups().is_empty()
                && integration_tests::sandbox_processes(integration_tests::SANDBOX_UIDS).is_empty()
                && integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS).is_empty()
        });
        assert!(
            clean,
            "round {round}: after the restart: run cgroups {:?}, sandbox processes {:?}, zombies {:?}",
            d.run_cgroups(),
            integration_tests::sandbox_processes(integration_tests::SANDBOX_UIDS),
            integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS)
        );
        // Every acknowledged deploy survived whole: the live version is the
        // acknowledged one, with exactly its script, or (only when a deploy
        // of that function was under way at the kill) the next one, with
        // exactly the script that deploy sent. Never a mix, never empty.
        let list = d.client().call(&json!({"id": 1, "op": "list"}));
        let live: BTreeMap<String, u64> = list["result"]["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .filter(|f| f["origin"] == "deployed")
            .map(|f| {
                (
                    f["name"].as_str().expect("name").to_string(),
                    f["version"].as_u64().expect("version"),
                )
            })
            .collect();
        for (name, &v) in &live {
            let known = acked.get(name).copied();
            let script = match scripts.get(name).and_then(|s| s.get(&v)) {
                Some(script) if Some(v) == known => script.clone(),
                _ => {
                    let in_flight = pending.as_ref().filter(|(n, _)| n == name);
                    let Some((_, script)) = in_flight else {
                        panic!("round {round}: {name} is live at v{v}, acknowledged v{known:?}, and no deploy of it was under way");
                    };
                    assert!(
                        known.is_none_or(|k| v > k),
                        "round {round}: {name} live v{v} is not after the acknowledged v{known:?}"
                    );
                    // From now on this version is the one to keep.
                    scripts
                        .entry(name.clone())
                        .or_default()
                        .insert(v, script.clone());
                    acked.insert(name.clone(), v);
                    script.clone()
                }
            };
            let on_disk = std::fs::read_to_string(
                d.state_dir()
                    .join(format!("functions/{name}/v{v}/{name}/h.sh")),
            )
            .unwrap_or_else(|e| panic!("round {round}: {name} v{v}: {e}"));
            assert_eq!(on_disk, script, "round {round}: {name} v{v} on disk");
            let out = d.invoke(name, "");
            let want = script
                .strip_prefix("echo ")
                .expect("an echo script")
                .to_string();
            assert_eq!(
                out["result"]["stdout"],
                json!(want),
                "round {round}: {name} v{v} runs another script: {out}"
            );
            assert_eq!(out["result"]["version"], v, "round {round}: {out}");
        }
        for (name, v) in &acked {
            assert!(
                live.contains_key(name),
                "round {round}: {name} acknowledged at v{v} is lost"
            );
        }
        let settled =
            integration_tests::eventually(Duration::from_secs(3), || d.run_cgroups().is_empty());
        assert!(
            settled,
            "round {round}: run cgroups left: {:?}",
            d.run_cgroups()
        );
    }
    eprintln!("crash soak: {rounds} rounds, {deploys} acknowledged deploys");
    assert!(deploys > 0, "no deploy was ever acknowledged");
    // No half-written deploy is left behind after the last restart settles.
    d.stop();
    let tmp_left: Vec<_> = walk(&d.state_dir())
        .into_iter()
        .filter(|p| p.contains(".tmp"))
        .collect();
    assert!(tmp_left.is_empty(), "temp files left: {tmp_left:?}");
}
