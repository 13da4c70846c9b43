//! Nothing survives a run: mounts, cgroups, processes (DESIGN "A run never leaves ...").

use integration_tests::*;

#[test]
fn leaks_nothing_survives_many_runs() {
    require_root();
    let _x = exclusive();
    let d = FnDir::new();
    let normal = d.policy().name("normal").write();
    let short = d
        .policy()
        .name("short")
        .limit("timeout_ms", "500")
        .limit("kill_grace_ms", "100")
        .write();
    // Warm-up: whatever a first run creates once (a parent cgroup) is not a leak.
    assert_eq!(
        run(&normal, &["/fn/probe", "status"], None).status(),
        "exited"
    );
    let before = HostSnapshot::take();
    assert_eq!(
        before.sandbox_pids,
        Vec::<u32>::new(),
        "sandbox processes before the runs"
    );

    let runs: [(&std::path::Path, &[&str], &str); 7] = [
        (&normal, &["/fn/probe", "status"], "exited"),
        (&short, &["/fn/probe", "sleep", "3600"], "timeout"),
        (
            &short,
            &["/fn/probe", "ignore_sigterm_and_sleep", "3600"],
            "timeout",
        ),
        (&normal, &["/fn/probe", "fork_bomb", "3600"], "exited"),
        (&short, &["/fn/probe", "escape_kill", "3600"], "timeout"),
        (&normal, &["/fn/probe", "alloc", "96MiB"], "oom"),
        (&normal, &["/fn/no-such-file"], "failed_to_start"),
    ];
    for (p, cmd, status) in runs {
        let r = run(p, cmd, None);
        assert_eq!(r.status(), status, "{cmd:?}: {r}");
    }
    // Concurrent runs too.
    let a = spawn(&short, &["/fn/probe", "spin"], None);
    let b = spawn(&normal, &["/fn/probe", "fork_bomb", "1"], None);
    // The detector itself works: while they run, their cgroups and processes are seen.
    let seen = eventually(std::time::Duration::from_secs(1), || {
        let during = HostSnapshot::take();
        during.cgroups.len() > before.cgroups.len() && !during.sandbox_pids.is_empty()
    });
    assert!(
        seen,
        "running sandboxes were not seen: {:?}",
        HostSnapshot::take()
    );
    assert_eq!(a.wait().status(), "timeout");
    assert_eq!(b.wait().status(), "exited");

    let after = HostSnapshot::take();
    assert_eq!(after, before, "host state changed");
}

// A launch that fails half-way (after the clone, the cgroup, the id maps and
// the whole new root, at the chdir into /fn) reaches the caller as
// failed_to_start naming the step and errno, and leaves nothing behind.
#[test]
fn leaks_launch_failing_at_chdir_reports_the_step_and_leaves_nothing() {
    use std::os::unix::fs::PermissionsExt as _;
    require_root();
    let _x = exclusive();
    let d = FnDir::new();
    let p = d.policy().write();
    // Warm-up: whatever a first run creates once (a parent cgroup) is not a leak.
    assert_eq!(run(&p, &["/fn/probe", "status"], None).status(), "exited");
    let before = HostSnapshot::take();
    // Root's 0700 function directory: the sandbox's uid 0 is an unprivileged
    // host uid without any capability over root's files, so it may bind the
    // directory but not enter it.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let r = run(&p, &["/fn/probe", "status"], None);
    assert_eq!(r.status(), "failed_to_start", "{r}");
    assert_eq!(r.json["error"]["step"], "chdir", "{r}");
    assert_eq!(r.json["error"]["errno"], libc::EACCES, "{r}");
    assert_eq!(r.exit_code(), None, "{r}");
    assert_eq!(r.stdout(), "", "{r}");
    let after = HostSnapshot::take();
    assert_eq!(after, before, "host state changed after a failed launch");
}
