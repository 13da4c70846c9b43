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
    // /proc is mounted read-only, so the open already fails (before the
    // kernel's own rule that a map is written once, which would be EPERM).
    assert_errno(&probe(&p, &["write_uid_map"]), "EROFS");
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

// PV5 with the row's premise: `paddockd run` started from a terminal. Its
// stdin, stdout and stderr are the slave of a fresh pseudo-terminal that is
// also its controlling terminal (setsid + TIOCSCTTY), as from an interactive
// shell. The probe pushes "id\n" with TIOCSTI into fds 0, 1, 2 and into
// /dev/tty. Asserted: every TIOCSTI fails with EPERM (seccomp refuses the
// request whatever the fd; ENOTTY would be the kernel's answer for the pipes
// the sandbox really has), no fd of the sandbox is a tty, /dev/tty is ENXIO
// (setsid in the sandbox: no controlling terminal), and nothing reached the
// terminal: its input queue is empty (what the shell would read next) and the
// master saw only paddockd's one JSON object (an injected byte would also be
// echoed there). A control then injects one byte as root from the host to
// show that the queue check sees an injection.
#[test]
fn privs_paddockd_run_from_a_terminal_gets_nothing_injected() {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    require_root();
    let (_d, p) = setup();
    let _guard = run_guard();
    let (mut m, mut s) = (-1, -1);
    // SAFETY: out-pointers to two local ints; name, termios and winsize may be NULL.
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two fresh fds that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    // Non-canonical input, echo on: every queued byte counts in TIOCINQ, not
    // only complete lines, and an injected byte is echoed to the master.
    // SAFETY: termios is plain data, filled in by tcgetattr before use.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
        t.c_lflag &= !libc::ICANON;
        t.c_lflag |= libc::ECHO;
        assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        assert!(fl >= 0);
        assert_eq!(
            libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK),
            0
        );
    }
    let mut cmd = Command::new(bin_path("paddockd"));
    cmd.arg("run")
        .arg("--policy")
        .arg(&p)
        .args(["--", "/fn/probe", "tty_inject", "id\n"])
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave.try_clone().expect("dup")));
    // SAFETY: the hook runs in the forked child before exec and calls only
    // async-signal-safe functions (setsid, ioctl); fd 0 is already the slave.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn paddockd on the pty");
    let mut seen = Vec::new();
    let drain = |seen: &mut Vec<u8>| loop {
        let mut buf = [0u8; 4096];
        // SAFETY: the buffer is valid for its whole length.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n as usize]);
    };
    let start = Instant::now();
    let status = loop {
        drain(&mut seen);
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("paddockd run on a pty did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drain(&mut seen);
    let text = String::from_utf8_lossy(&seen).replace("\r\n", "\n");
    assert!(
        status.success(),
        "paddockd run failed with {status}: {text}"
    );

    let mut queued: libc::c_int = -1;
    // SAFETY: TIOCINQ writes one int through the pointer.
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCINQ, &mut queued) };
    assert_eq!(r, 0, "TIOCINQ: {}", std::io::Error::last_os_error());
    assert_eq!(
        queued, 0,
        "bytes reached the terminal's input queue; master saw {text:?}"
    );

    // The master saw paddockd's one JSON object and nothing else (no echo).
    let json: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("the terminal got more than one JSON object ({e}): {text:?}"));
    let stdout = json["stdout"].as_str().unwrap_or("");
    let line: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no probe line in {json}"));
    assert_eq!(json["status"], "exited", "{json}");
    for fd in ["fd0", "fd1", "fd2"] {
        assert_errno(&line[fd], "EPERM");
        assert_eq!(line[fd]["tty"], false, "{fd} is a tty: {line}");
    }
    assert_errno(&line["dev_tty"], "ENXIO");

    // Control: root on the host can inject into this terminal, and the queue
    // check above would have seen it.
    let b = b'z';
    // SAFETY: TIOCSTI reads one byte from the pointer, which points at `b`.
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSTI, &b as *const u8) };
    assert_eq!(r, 0, "control TIOCSTI: {}", std::io::Error::last_os_error());
    // SAFETY: TIOCINQ writes one int through the pointer.
    unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCINQ, &mut queued) };
    assert_eq!(queued, 1, "the control injection is not seen by TIOCINQ");
}

// Concurrent sandboxes never share a host uid. With two uid slots, two
// overlapping runs get the two uids, and a third is refused (a one-line
// error) rather than given a uid already in use.
#[test]
fn privs_concurrent_runs_get_different_host_uids() {
    use std::process::{Command, Stdio};
    require_root();
    let _x = exclusive();
    let (d, p) = setup();
    let run_dir = tempfile::Builder::new()
        .prefix("paddock-slots-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let config = d.root().join("paddockd.toml");
    // uid_base inside SANDBOX_UIDS, so the host-state helpers see them.
    std::fs::write(
        &config,
        format!(
            "run_dir = {:?}\n[sandbox]\nuid_base = 101000\nuid_count = 2\n",
            run_dir.path().to_str().unwrap()
        ),
    )
    .expect("write config");
    let paddockd = |secs: &str| {
        Command::new(bin_path("paddockd"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--policy")
            .arg(&p)
            .args(["--", "/fn/probe", "sleep", secs])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paddockd")
    };
    let a = paddockd("3");
    let b = paddockd("3");
    let both = eventually(std::time::Duration::from_secs(5), || {
        !sandbox_processes(101_000..=101_000).is_empty()
            && !sandbox_processes(101_001..=101_001).is_empty()
    });
    let third = paddockd("0").wait_with_output().expect("third run");
    let results: Vec<serde_json::Value> = [a, b]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("paddockd run");
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice(&out.stdout).expect("one JSON result")
        })
        .collect();
    assert!(
        both,
        "the two runs were never seen running at once: {results:?}"
    );
    let mut uids: Vec<i64> = results
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "exited", "{r}");
            r["host_uid"].as_i64().expect("host_uid")
        })
        .collect();
    uids.sort_unstable();
    assert_eq!(uids, vec![101_000, 101_001], "{results:?}");
    let err = String::from_utf8_lossy(&third.stderr);
    assert_eq!(third.status.code(), Some(2), "{third:?}");
    assert!(third.stdout.is_empty(), "{third:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains("all 2 sandbox uid slots are in use"), "{err}");
}

// PV1: securebits are set and locked, so the sandbox's uid 0 never regains a
// capability (NOROOT: not through exec; NO_SETUID_FIXUP: not through a uid
// change; NO_CAP_AMBIENT_RAISE: no ambient set), and nothing can unset them
// (the _LOCKED bits). KEEP_CAPS stays clear and locked.
#[test]
fn privs_securebits_are_locked() {
    require_root();
    let (_d, p) = setup();
    let s = probe(&p, &["securebits"]);
    assert_ok(&s);
    const NOROOT: i64 = 1 << 0;
    const NOROOT_LOCKED: i64 = 1 << 1;
    const NO_SETUID_FIXUP: i64 = 1 << 2;
    const NO_SETUID_FIXUP_LOCKED: i64 = 1 << 3;
    const KEEP_CAPS_LOCKED: i64 = 1 << 5;
    const NO_CAP_AMBIENT_RAISE: i64 = 1 << 6;
    const NO_CAP_AMBIENT_RAISE_LOCKED: i64 = 1 << 7;
    let want = NOROOT
        | NOROOT_LOCKED
        | NO_SETUID_FIXUP
        | NO_SETUID_FIXUP_LOCKED
        | KEEP_CAPS_LOCKED
        | NO_CAP_AMBIENT_RAISE
        | NO_CAP_AMBIENT_RAISE_LOCKED;
    assert_eq!(s["ret"].as_i64(), Some(want), "securebits {s}");
}
