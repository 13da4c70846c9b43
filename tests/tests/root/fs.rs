//! FS1, FS2, FS4, FS5: the filesystem view.

use integration_tests::*;
use serde_json::Value;

fn create(p: &std::path::Path, path: &str) -> Value {
    probe(p, &["open", path, "wronly,creat"])
}

// FS1: everything outside /tmp is read-only (EROFS, or EACCES when Landlock answers first).
#[test]
fn fs_create_in_root_is_erofs() {
    require_root();
    let (_d, p) = setup();
    assert_errno_in(&create(&p, "/x"), &["EROFS", "EACCES"]);
}

// `/etc` itself may not be bound (the policy check refuses it: it would expose
// /etc/shadow), so `/etc/x` has no parent; a bound `/etc/ssl/certs` is read-only.
errno_test!(
    fs_create_in_etc_is_enoent,
    ["open", "/etc/x", "wronly,creat"],
    "ENOENT"
);

#[test]
fn fs_create_in_etc_ssl_certs_is_erofs() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().read_only("/etc/ssl/certs").write();
    assert_errno_in(&create(&p, "/etc/ssl/certs/x"), &["EROFS", "EACCES"]);
}

#[test]
fn fs_create_in_fn_is_erofs() {
    require_root();
    let (_d, p) = setup();
    assert_errno_in(&create(&p, "/fn/x"), &["EROFS", "EACCES"]);
}

#[test]
fn fs_create_in_usr_is_erofs() {
    require_root();
    let (_d, p) = setup();
    assert_errno_in(&create(&p, "/usr/x"), &["EROFS", "EACCES"]);
}

#[test]
fn fs_write_existing_fn_file_is_erofs() {
    require_root();
    let (_d, p) = setup();
    assert_errno_in(
        &probe(&p, &["write_existing", "/fn/probe", "x"]),
        &["EROFS", "EACCES"],
    );
}

#[test]
fn fs_create_in_tmp_succeeds() {
    require_root();
    let (_d, p) = setup();
    assert_ok(&create(&p, "/tmp/x"));
}

#[test]
fn fs_no_new_privs_is_set() {
    require_root();
    let (_d, p) = setup();
    let s = probe(&p, &["status"]);
    assert_eq!(s["NoNewPrivs"], 1, "{s}");
}

#[test]
fn fs_binds_are_ro_nosuid_nodev() {
    require_root();
    let (_d, p) = setup();
    for path in ["/usr", "/fn"] {
        let s = probe(&p, &["statfs", path]);
        assert_ok(&s);
        assert_eq!(s["rdonly"], true, "{s}");
        assert_eq!(s["nosuid"], true, "{s}");
        assert_eq!(s["nodev"], true, "{s}");
    }
}

#[test]
fn fs_tmp_is_nosuid_nodev() {
    require_root();
    let (_d, p) = setup();
    let s = probe(&p, &["statfs", "/tmp"]);
    assert_eq!(s["rdonly"], false, "{s}");
    assert_eq!(s["nosuid"], true, "{s}");
    assert_eq!(s["nodev"], true, "{s}");
}

#[test]
fn fs_setuid_exec_gains_nothing() {
    require_root();
    let d = FnDir::new();
    let bytes = std::fs::read(bin_path("probe")).expect("probe");
    d.add_file("suid", &bytes, 0o4755); // owned by host root
    let p = d.policy().write();
    let s = probe(&p, &["exec", "/fn/suid", "status"]);
    assert_eq!(s["Uid"], serde_json::json!([0, 0, 0, 0]), "{s}");
    assert_eq!(s["NoNewPrivs"], 1, "{s}");
}

// FS2: only the sandbox's own mounts; "/.." is "/".
#[test]
fn fs_mountinfo_has_only_sandbox_mounts() {
    require_root();
    let (_d, p) = setup();
    let m = probe(&p, &["mountinfo"]);
    let allowed = [
        "/",
        "/usr",
        "/lib",
        "/lib64",
        "/bin",
        "/fn",
        "/tmp",
        "/proc",
        "/dev",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ];
    let lines = m["lines"].as_array().expect("lines");
    assert!(!lines.is_empty(), "{m}");
    for l in lines {
        let l = l.as_str().unwrap_or("");
        let mount_point = l.split(' ').nth(4).unwrap_or("");
        assert!(
            allowed.contains(&mount_point),
            "unexpected mount {mount_point:?} in {l:?}"
        );
    }
}

#[test]
fn fs_dotdot_of_root_is_root() {
    require_root();
    let (_d, p) = setup();
    // Both in one run: device numbers of a sandbox's tmpfs differ between runs.
    let same = probe(&p, &["same", "/", "/.."]);
    assert_eq!(same["same"], true, "{same}");
    let same = probe(&p, &["same", "/", "/../../.."]);
    assert_eq!(same["same"], true, "{same}");
    assert_eq!(
        probe(&p, &["ls", "/.."])["names"],
        probe(&p, &["ls", "/"])["names"]
    );
}

// FS4: mount and umount.
errno_test!(fs_remount_root_rw_is_eperm, ["remount_rw"], "EPERM");
errno_test!(fs_umount_proc_is_eperm, ["umount", "/proc"], "EPERM");
errno_test!(
    fs_mount_cgroup_rdma_is_eperm,
    ["mount_cgroup", "/tmp/m", "rdma"],
    "EPERM"
);
errno_test!(
    fs_release_agent_is_unreachable,
    ["stat", "/sys/fs/cgroup/release_agent"],
    "ENOENT"
);

// FS5: bundle symlinks resolve inside the sandbox.
#[test]
fn fs_bundle_symlink_to_shadow_is_enoent() {
    require_root();
    let d = FnDir::new();
    d.add_symlink("d", "/etc/shadow");
    let p = d.policy().write();
    assert_errno(&probe(&p, &["read", "/fn/d"]), "ENOENT");
}

#[test]
fn fs_bundle_symlink_dotdot_stays_inside() {
    require_root();
    let d = FnDir::new();
    d.add_symlink("u", "../../..");
    let p = d.policy().write();
    assert_errno(&probe(&p, &["read", "/fn/u/etc/passwd"]), "ENOENT");
    assert_eq!(
        probe(&p, &["ls", "/fn/u"])["names"],
        probe(&p, &["ls", "/"])["names"]
    );
}
