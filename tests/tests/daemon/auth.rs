//! AU1: the socket and its directory are root-only, and SO_PEERCRED decides.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

#[test]
fn auth_socket_and_directory_are_root_only() {
    require_root();
    let d = TestDaemon::start();
    let s = std::fs::symlink_metadata(d.socket()).expect("socket");
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&s.file_type()));
    assert_eq!(s.uid(), 0);
    let mode = s.mode() & 0o7777;
    assert!(mode == 0o600 || mode == 0o660, "socket mode {mode:o}");
    let dir = std::fs::metadata(d.socket().parent().expect("dir")).expect("dir");
    assert_eq!(dir.uid(), 0);
    let dmode = dir.mode() & 0o7777;
    assert_eq!(
        dmode & 0o022,
        0,
        "socket directory writable by others: {dmode:o}"
    );
    assert_eq!(
        dmode & 0o007,
        0,
        "socket directory open to others: {dmode:o}"
    );
}

/// Connects as uid/gid 65534 and sends `hello`; prints `EACCES`, the answer, or an error.
fn connect_as_nobody(sock: &std::path::Path) -> String {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); sys.exit(0)
s.sendall(b'{"id":1,"op":"hello"}\n{"id":2,"op":"invoke","function":"hello-python"}\n')
f = s.makefile("rb")
print(f.readline().decode().strip())
print(f.readline().decode().strip())
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(sock)
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn auth_other_uid_is_refused_at_connect_or_forbidden() {
    require_root();
    let d = TestDaemon::start();
    // As deployed: the directory is 0700 root, so connect(2) itself fails.
    let out = connect_as_nobody(&d.socket());
    assert_eq!(out.trim(), "EACCES", "uid 65534 connected: {out}");
    // Open the file permissions up: SO_PEERCRED must still refuse uid 65534.
    let dir = d.socket().parent().expect("dir").to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(d.socket(), std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = connect_as_nobody(&d.socket());
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {out}")))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for v in &lines {
        assert_eq!(code(v), Some("forbidden"), "uid 65534 was served: {out}");
    }
}

/// A root-owned scratch directory under /var/tmp for socket-directory tests.
fn scratch() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("paddockd-sockdir-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t
}

fn mkdir_mode(p: &Path, mode: u32) -> PathBuf {
    std::fs::create_dir(p).expect("mkdir");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    p.to_path_buf()
}

/// (mode with the type bits, uid, gid).
fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).expect("stat");
    (m.mode(), m.uid(), m.gid())
}

fn with_socket(sock: &Path) -> DaemonOpts {
    DaemonOpts {
        socket: Some(sock.to_path_buf()),
        ..Default::default()
    }
}

#[test]
fn auth_shared_sticky_socket_directory_is_refused_and_keeps_its_mode_and_owner() {
    require_root();
    let t = scratch();
    for mode in [0o1777, 0o0777, 0o0775] {
        let shared = mkdir_mode(&t.path().join(format!("shared-{mode:o}")), mode);
        let before = owner_mode(&shared);
        let sock = shared.join("p.sock");
        let err = TestDaemon::try_with(with_socket(&sock))
            .map(|_| ())
            .expect_err("paddockd served in a directory others can write");
        assert!(
            err.contains("only root can write") && err.contains(&*shared.to_string_lossy()),
            "mode {mode:o}: unclear refusal: {err}"
        );
        assert_eq!(
            owner_mode(&shared),
            before,
            "mode {mode:o}: the existing directory was changed"
        );
        assert_eq!(before.0 & 0o7777, mode);
        assert!(!sock.exists(), "mode {mode:o}: a socket was left behind");
    }
}

#[test]
fn auth_existing_root_only_socket_directory_is_used_as_it_is() {
    require_root();
    let t = scratch();
    // A root-only 0755 directory: served, and not tightened to 0700.
    let open = mkdir_mode(&t.path().join("open"), 0o755);
    let before = owner_mode(&open);
    {
        let d = TestDaemon::with(with_socket(&open.join("p.sock")));
        let v = d.client().call(&json!({"id": 1, "op": "hello"}));
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(
            owner_mode(&open),
            before,
            "the existing directory was changed"
        );
        let s = std::fs::symlink_metadata(d.socket()).expect("socket");
        assert!(s.mode() & 0o7777 == 0o600 || s.mode() & 0o7777 == 0o660);
    }
    // Below a sticky shared directory, a new directory is the daemon's own:
    // created root-only, the shared one left alone.
    let shared = mkdir_mode(&t.path().join("shared"), 0o1777);
    let before = owner_mode(&shared);
    let d = TestDaemon::with(with_socket(&shared.join("paddock/p.sock")));
    let v = d.client().call(&json!({"id": 1, "op": "hello"}));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        owner_mode(&shared),
        before,
        "the sticky directory was changed"
    );
    let (mode, uid, _) = owner_mode(&shared.join("paddock"));
    assert_eq!(uid, 0);
    assert!(
        mode & 0o7777 == 0o700 || mode & 0o7777 == 0o750,
        "created directory mode {:o}",
        mode & 0o7777
    );
}

#[test]
fn auth_symlink_planted_at_the_socket_path_is_not_followed() {
    require_root();
    let t = scratch();
    let run = mkdir_mode(&t.path().join("run"), 0o700);
    let target = t.path().join("target");
    std::fs::write(&target, b"keep").expect("write");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = owner_mode(&target);
    let missing = t.path().join("not-there");
    for (name, to) in [("p.sock", &target), ("q.sock", &missing)] {
        let sock = run.join(name);
        std::os::unix::fs::symlink(to, &sock).expect("symlink");
        let err = TestDaemon::try_with(with_socket(&sock))
            .map(|_| ())
            .expect_err("paddockd replaced a planted symlink");
        assert!(err.contains("symbolic link"), "{name}: {err}");
        assert!(
            std::fs::symlink_metadata(&sock)
                .expect("link")
                .file_type()
                .is_symlink(),
            "{name}: the planted link was replaced"
        );
    }
    assert_eq!(owner_mode(&target), before, "the link's target was changed");
    assert_eq!(std::fs::read(&target).expect("read"), b"keep");
    assert!(!missing.exists(), "the dangling link's target was created");
    // A symlinked directory is judged by what it points to.
    let shared = mkdir_mode(&t.path().join("shared"), 0o1777);
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&shared, &link).expect("symlink");
    let err = TestDaemon::try_with(with_socket(&link.join("p.sock")))
        .map(|_| ())
        .expect_err("paddockd served through a link to a shared directory");
    assert!(err.contains("only root can write"), "{err}");
    assert_eq!(owner_mode(&shared).0 & 0o7777, 0o1777);
    assert!(!shared.join("p.sock").exists());
}

#[test]
fn auth_socket_below_a_directory_another_user_owns_is_refused() {
    require_root();
    let t = scratch();
    let theirs = mkdir_mode(&t.path().join("theirs"), 0o755);
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
    let err = TestDaemon::try_with(with_socket(&theirs.join("run/p.sock")))
        .map(|_| ())
        .expect_err("paddockd served below a directory uid 65534 owns");
    assert!(err.contains("belong to root"), "{err}");
    assert!(
        !theirs.join("run").exists(),
        "a directory was created where another user can replace it"
    );
    assert_eq!(owner_mode(&theirs).1, 65534);
}
