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
    let uid = r.int("host_uid") as u32;
    assert_eq!(
        sandbox_processes(uid..=uid),
        Vec::<u32>::new(),
        "processes survived the run"
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
