//! PX1, PX2, PX3: /proc, /dev, /sys and the sandbox's own cgroup.

use integration_tests::*;

// PX1: identity of /proc and /dev.
#[test]
fn proc_pids_are_own_namespace_only() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["pids"]);
    assert_eq!(
        r["pids"],
        serde_json::json!([1, 2]),
        "init and the command only: {r}"
    );
    assert_eq!(r["self"], 2, "{r}");
}

#[test]
fn proc_dev_has_only_allowed_nodes() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["ls", "/dev"]);
    let expected = [
        "fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom",
        "zero",
    ];
    assert_eq!(r["names"], serde_json::json!(expected), "{r}");
}

#[test]
fn proc_dev_null_is_the_real_device() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["stat", "/dev/null"]);
    assert_eq!(
        (&r["type"], &r["rdev_major"], &r["rdev_minor"]),
        (&"char".into(), &1.into(), &3.into()),
        "{r}"
    );
    assert_ok(&probe(&p, &["write_existing", "/dev/null", "x"]));
}

errno_test!(
    proc_mknod_block_is_eperm,
    ["mknod", "/tmp/sda", "b", "8", "0"],
    "EPERM"
);
errno_test!(
    proc_mknod_char_is_eperm,
    ["mknod", "/tmp/mem", "c", "1", "1"],
    "EPERM"
);
errno_test!(
    proc_dev_kmsg_is_enoent,
    ["open", "/dev/kmsg", "rdonly"],
    "ENOENT"
);
errno_test!(
    proc_dev_mem_is_enoent,
    ["open", "/dev/mem", "rdonly"],
    "ENOENT"
);
errno_test!(proc_dev_tty_is_enxio, ["open_tty"], "ENXIO");

// PX2: sensitive /proc and /sys files are absent; /proc is read-only.
errno_test!(
    proc_kcore_is_enoent,
    ["read", "/proc/kcore", "16"],
    "ENOENT"
);
errno_test!(proc_keys_is_enoent, ["read", "/proc/keys"], "ENOENT");
errno_test!(
    proc_timer_list_is_enoent,
    ["read", "/proc/timer_list"],
    "ENOENT"
);
errno_test!(
    proc_sys_firmware_is_enoent,
    ["ls", "/sys/firmware"],
    "ENOENT"
);
errno_test!(
    proc_powercap_energy_is_enoent,
    ["read", "/sys/class/powercap/intel-rapl:0/energy_uj"],
    "ENOENT"
);
errno_test!(
    proc_sysrq_trigger_is_enoent,
    ["write_existing", "/proc/sysrq-trigger", "c"],
    "ENOENT"
);
errno_test!(
    proc_core_pattern_is_enoent,
    ["write_existing", "/proc/sys/kernel/core_pattern", "|/tmp/x"],
    "ENOENT"
);
errno_test!(
    proc_write_own_oom_score_adj_is_erofs,
    ["write_existing", "/proc/self/oom_score_adj", "-1000"],
    "EROFS"
);

// PX3: the sandbox cannot see or change its cgroup.
errno_test!(
    proc_cgroup_memory_limit_write_is_enoent,
    [
        "cgroup_write",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "-1"
    ],
    "ENOENT"
);
errno_test!(
    proc_cgroup_v2_memory_max_write_is_enoent,
    ["cgroup_write", "/sys/fs/cgroup/memory.max", "max"],
    "ENOENT"
);
errno_test!(
    proc_cgroup_mkdir_is_enoent,
    ["cgroup_mkdir", "/sys/fs/cgroup/pids/escape"],
    "ENOENT"
);
errno_test!(
    proc_cgroup_procs_write_is_enoent,
    ["cgroup_write", "/sys/fs/cgroup/cgroup.procs", "2"],
    "ENOENT"
);

#[test]
fn proc_self_cgroup_is_namespaced() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["read", "/proc/self/cgroup"]);
    assert_ok(&r);
    for line in r["content"].as_str().unwrap_or("").lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        assert_eq!(path, "/", "cgroup namespace root expected: {line:?}");
    }
}
