//! AU1: the socket and its directory are root-only, and SO_PEERCRED decides.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use integration_tests::daemon::*;
use integration_tests::require_root;

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
