//! LC1, LC3, LC8: timeouts, escaping the kill, signalling outside the sandbox.

use integration_tests::*;
use std::time::Duration;

fn timed(d: &FnDir, timeout_ms: u32, grace_ms: u32) -> std::path::PathBuf {
    d.policy()
        .limit("timeout_ms", &timeout_ms.to_string())
        .limit("kill_grace_ms", &grace_ms.to_string())
        .write()
}

// LC1: timeout.
#[test]
fn life_sleep_times_out() {
    require_root();
    let d = FnDir::new();
    let p = timed(&d, 500, 100);
    let r = run(&p, &["/fn/probe", "sleep", "3600"], None);
    assert_eq!(r.status(), "timeout", "{r}");
    assert_eq!(r.limit(), Some("timeout"), "{r}");
    let wall = r.int("wall_ms");
    assert!((500..1500).contains(&wall), "{r}");
}

#[test]
fn life_spin_times_out() {
    require_root();
    let d = FnDir::new();
    let p = timed(&d, 500, 100);
    let r = run(&p, &["/fn/probe", "spin"], None);
    assert_eq!(r.status(), "timeout", "{r}");
    assert!((500..1500).contains(&r.int("wall_ms")), "{r}");
    assert!(r.int("cpu_user_ms") >= 200, "the spin was accounted: {r}");
}

#[test]
fn life_ignored_sigterm_is_killed_after_grace() {
    require_root();
    let d = FnDir::new();
    let p = timed(&d, 500, 500);
    let r = run(&p, &["/fn/probe", "ignore_sigterm_and_sleep", "3600"], None);
    assert_eq!(r.status(), "timeout", "{r}");
    let wall = r.int("wall_ms");
    assert!(
        (950..2500).contains(&wall),
        "SIGKILL after timeout + grace: {r}"
    );
}

#[test]
fn life_exit_code_is_reported() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "no-such-subcommand"], None);
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(2), "{r}");
    assert_eq!(r.signal(), None, "{r}");
}

#[test]
fn life_signal_is_reported() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "kill", "9", "2"], None);
    assert_eq!(r.status(), "signaled", "{r}");
    assert_eq!(r.signal(), Some(9), "{r}");
    assert_eq!(r.exit_code(), None, "{r}");
}

// LC3: setsid, double fork, subreaper, a stopped task and 500 zombies all die with the run.
#[test]
fn life_escape_kill_leaves_nothing() {
    require_root();
    let _x = exclusive();
    let d = FnDir::new();
    let p = d
        .policy()
        .limit("timeout_ms", "1500")
        .limit("kill_grace_ms", "100")
        .limit("pids", "256") // the daemon's ceiling
        .write();
    let before = paddock_cgroups();
    let r = run(&p, &["/fn/probe", "escape_kill", "3600"], None);
    assert_eq!(r.status(), "timeout", "{r}");
    let line = r.probe();
    // 500 unreaped children, or as many as pids.max allows.
    let zombies = line["zombies"].as_u64().unwrap_or(0);
    assert!(
        zombies == 500 || (zombies > 200 && line["zombie_errno"] == "EAGAIN"),
        "{r}"
    );
    assert_eq!(line["setsid_errno"], 0, "{r}");
    // Becoming a subreaper is allowed (it only adopts the payload's own
    // orphans); it must not help anything outlive the run.
    assert_eq!(line["subreaper_errno"], 0, "{r}");
    let uid = r.int("host_uid") as u32;
    assert_eq!(
        sandbox_processes(uid..=uid),
        Vec::<u32>::new(),
        "processes survived the run"
    );
    // ... and no zombie either: the 500 unreaped children went with the pid
    // namespace, and paddockd reaped the sandbox's init before it answered.
    assert_eq!(
        sandbox_zombies(uid..=uid),
        Vec::<u32>::new(),
        "zombies with the sandbox's uid left behind"
    );
    assert_eq!(paddock_cgroups(), before, "cgroups left behind");
}

// LC3, "the kill works on frozen tasks": every task of the payload stopped
// (SIGSTOP, SIGTERM ignored), and frozen by the run's cgroup when it can be.
// - cgroup v2: `cgroup.freeze` is core (every non-root cgroup has it), so the
//   run's own cgroup is frozen and must be ended by the timeout's cgroup.kill.
// - cgroup v1 (this host): a run's cgroups are in the memory, pids, cpu and
//   cpuacct hierarchies only (sandbox/src/cgroup.rs); the freezer hierarchy is
//   not one of ours, nothing of Paddock's can freeze a run and the sandbox
//   cannot reach any cgroupfs, so the only way its tasks end up not running
//   is stopping themselves: here all of them are stopped at once (the escape
//   test above stops only one).
// Either way: status timeout, every task gone (no process, no zombie with the
// sandbox's uid), the run's cgroups removed, within timeout + grace + slack.
#[test]
fn life_stopped_and_frozen_run_is_killed_at_timeout_leaving_nothing() {
    require_root();
    let _x = exclusive();
    let d = FnDir::new();
    let p = d
        .policy()
        .limit("timeout_ms", "2000")
        .limit("kill_grace_ms", "100")
        .write();
    let before = paddock_cgroups();
    let running = spawn(&p, &["/fn/probe", "stop_all", "8", "3600"], None);
    // The run's cgroups, and all ten tasks in them (init, probe, 8 children)
    // with every one but the init stopped.
    let mut dirs: Vec<String> = Vec::new();
    let mut states: Vec<(u32, Option<char>)> = Vec::new();
    let all_stopped = eventually(Duration::from_millis(1500), || {
        dirs = paddock_cgroups()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect();
        let procs: Vec<u32> = dirs
            .iter()
            .filter_map(|c| std::fs::read_to_string(format!("{c}/cgroup.procs")).ok())
            .flat_map(|t| {
                t.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .collect();
        states = procs.iter().map(|&p| (p, process_state(p))).collect();
        states.len() == 10 && states.iter().filter(|s| s.1 == Some('T')).count() == 9
    });
    assert!(
        all_stopped,
        "the payload's tasks did not all stop: {states:?} in {dirs:?}"
    );
    let mut frozen = Vec::new();
    for c in &dirs {
        let freeze = std::path::Path::new(c).join("cgroup.freeze");
        if freeze.exists() {
            std::fs::write(&freeze, "1").expect("write cgroup.freeze");
            let events = std::path::Path::new(c).join("cgroup.events");
            assert!(
                eventually(Duration::from_secs(1), || std::fs::read_to_string(&events)
                    .is_ok_and(|e| e.lines().any(|l| l == "frozen 1"))),
                "{c} did not freeze"
            );
            frozen.push(c.clone());
        }
    }
    let r = running.wait();
    assert_eq!(r.status(), "timeout", "{r} (frozen: {frozen:?})");
    assert_eq!(r.limit(), Some("timeout"), "{r}");
    let line = r.probe();
    assert_eq!(line["children"], 8, "{r}");
    assert_eq!(line["stop_errno"], "OK", "{r}");
    let wall = r.int("wall_ms");
    assert!(
        (2000..4000).contains(&wall),
        "killed at timeout + grace: {r}"
    );
    let uid = r.int("host_uid") as u32;
    assert_eq!(
        sandbox_processes(uid..=uid),
        Vec::<u32>::new(),
        "processes survived"
    );
    assert_eq!(
        sandbox_zombies(uid..=uid),
        Vec::<u32>::new(),
        "zombies left"
    );
    assert_eq!(paddock_cgroups(), before, "cgroups left behind");
}

// LC8: signals reach only the sandbox.
#[test]
fn life_kill_all_is_esrch() {
    require_root();
    let mut host = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let (_d, p) = setup();
    let r = probe(&p, &["kill_all", "9"]);
    assert_errno(&r, "ESRCH");
    assert!(
        host.try_wait().expect("try_wait").is_none(),
        "a host process died"
    );
    let _ = host.kill();
    let _ = host.wait();
}

#[test]
fn life_kill_range_only_hits_sandbox() {
    require_root();
    let mut host = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let (_d, p) = setup();
    let r = probe(&p, &["kill_range", "15", "1", "65535"]);
    let hits = r["signalled"].as_array().expect("signalled");
    assert!(
        hits.iter().all(|h| h == 1),
        "only the sandbox init may be signalled: {r}"
    );
    let errors = r["errors"].as_object().expect("errors");
    assert!(errors.keys().all(|k| k == "ESRCH" || k == "EPERM"), "{r}");
    assert!(
        errors.get("EPERM").and_then(|v| v.as_u64()).unwrap_or(0) <= 1,
        "{r}"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        host.try_wait().expect("try_wait").is_none(),
        "a host process died"
    );
    let _ = host.kill();
    let _ = host.wait();
}
