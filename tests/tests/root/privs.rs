//! PV1, PV3, PV4, PV5: capabilities, identity, nested namespaces, ptrace, the tty.

use integration_tests::*;

// PV1: no capabilities, no groups, an unprivileged host uid.
#[test]
fn privs_capabilities_are_empty() {
    require_root();
    let (_d, p) = setup();
    let s = probe(&p, &["status"]);
    for k in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(s[k], "0000000000000000", "{k}: {s}");
    }
}

#[test]
fn privs_groups_are_empty() {
    require_root();
    let (_d, p) = setup();
    let s = probe(&p, &["status"]);
    assert_eq!(s["Groups"], serde_json::json!([]), "{s}");
}

#[test]
fn privs_host_uid_is_unprivileged() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "uid_map"], None);
    let m = r.probe_exited();
    let host_uid = r.int("host_uid");
    assert!(SANDBOX_UIDS.contains(&(host_uid as u32)), "{r}");
    let map = m["map"].as_array().expect("map");
    assert_eq!(map.len(), 1, "{m}");
    assert_eq!(map[0][0], 0, "{m}");
    assert_eq!(map[0][1], host_uid, "{m}");
    let g = probe(&p, &["gid_map"]);
    assert_ne!(
        g["map"][0][1], 0,
        "gid 0 inside must not be host gid 0: {g}"
    );
}

#[test]
fn privs_uid_map_write_is_denied() {
    require_root();
    let (_d, p) = setup();
    // /proc is mounted read-only, so the open already fails.
    assert_errno_in(&probe(&p, &["write_uid_map"]), &["EROFS", "EPERM"]);
}

// PV3: no nested user namespaces.
errno_test!(privs_unshare_user_is_eperm, ["unshare", "user"], "EPERM");
errno_test!(
    privs_unshare_user_mount_is_eperm,
    ["unshare", "user,mount"],
    "EPERM"
);
errno_test!(
    privs_unshare_mount_tmpfs_is_eperm,
    ["unshare_mount_tmpfs", "/tmp/m"],
    "EPERM"
);
errno_test!(privs_clone_newuser_is_eperm, ["clone_newuser"], "EPERM");
errno_test!(privs_unshare_net_is_eperm, ["unshare", "net"], "EPERM");

// PV4: ptrace.
errno_test!(privs_ptrace_traceme_is_eperm, ["ptrace_traceme"], "EPERM");
errno_test!(
    privs_ptrace_sibling_is_eperm,
    ["fork_then_ptrace_sibling"],
    "EPERM"
);
errno_test!(privs_ptrace_init_is_eperm, ["ptrace_attach", "1"], "EPERM");

#[test]
fn privs_other_sandbox_is_unreachable() {
    require_root();
    let d = FnDir::new();
    let pa = d.policy().name("sleeper").write();
    let pb = d.policy().name("prober").write();
    let a = spawn(&pa, &["/fn/probe", "sleep", "2"], None);
    // Find A's probe on the host: a sandbox uid running "probe sleep".
    let mut host_pid = None;
    eventually(std::time::Duration::from_secs(2), || {
        host_pid = sandbox_processes(SANDBOX_UIDS).into_iter().find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.ends_with(b"sleep\x002\x00"))
        });
        host_pid.is_some()
    });
    let host_pid = host_pid
        .expect("sandbox A's process not found on the host")
        .to_string();
    let mem = probe(&pb, &["read", &format!("/proc/{host_pid}/mem"), "16"]);
    let attach = probe(&pb, &["ptrace_attach", &host_pid]);
    let ra = a.wait();
    assert_eq!(ra.status(), "exited", "{ra}");
    assert_errno(&mem, "ENOENT");
    assert_errno_in(&attach, &["EPERM", "ESRCH"]);
}

// PV5: no tty injection.
errno_test!(privs_tiocsti_is_eperm, ["tiocsti"], "EPERM");
errno_test!(privs_tioclinux_is_eperm, ["tioclinux"], "EPERM");
errno_test!(privs_open_dev_tty_is_enxio, ["open_tty"], "ENXIO");

#[test]
fn privs_new_session_without_tty() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["ids"]);
    assert_eq!(r["stdin_tty"], false, "{r}");
    assert_eq!(r["uid"], serde_json::json!([0, 0, 0]), "{r}");
    // setsid ran in the sandbox: the session leader is inside the pid namespace.
    let sid = r["sid"].as_i64().unwrap_or(-1);
    assert!((1..=2).contains(&sid), "{r}");
}
