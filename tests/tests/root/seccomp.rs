//! SC1, SC3: the seccomp allowlist and its architecture check.

use integration_tests::*;

// SC1: each dangerous syscall fails with EPERM (bad arguments make it harmless if allowed,
// and those would give EFAULT/EBADF/EINVAL instead).
errno_test!(seccomp_keyctl_is_eperm, ["syscall", "keyctl"], "EPERM");
errno_test!(seccomp_add_key_is_eperm, ["syscall", "add_key"], "EPERM");
errno_test!(
    seccomp_request_key_is_eperm,
    ["syscall", "request_key"],
    "EPERM"
);
errno_test!(seccomp_bpf_is_eperm, ["syscall", "bpf"], "EPERM");
errno_test!(
    seccomp_perf_event_open_is_eperm,
    ["syscall", "perf_event_open"],
    "EPERM"
);
errno_test!(
    seccomp_userfaultfd_is_eperm,
    ["syscall", "userfaultfd"],
    "EPERM"
);
errno_test!(
    seccomp_io_uring_setup_is_eperm,
    ["syscall", "io_uring_setup"],
    "EPERM"
);
errno_test!(
    seccomp_kexec_load_is_eperm,
    ["syscall", "kexec_load"],
    "EPERM"
);
errno_test!(
    seccomp_init_module_is_eperm,
    ["syscall", "init_module"],
    "EPERM"
);
errno_test!(
    seccomp_finit_module_is_eperm,
    ["syscall", "finit_module"],
    "EPERM"
);
errno_test!(
    seccomp_open_by_handle_at_is_eperm,
    ["syscall", "open_by_handle_at"],
    "EPERM"
);
errno_test!(seccomp_setns_is_eperm, ["syscall", "setns"], "EPERM");
errno_test!(seccomp_swapon_is_eperm, ["syscall", "swapon"], "EPERM");
errno_test!(seccomp_reboot_is_eperm, ["syscall", "reboot"], "EPERM");
errno_test!(
    seccomp_clock_settime_is_eperm,
    ["syscall", "clock_settime"],
    "EPERM"
);
errno_test!(seccomp_fsopen_is_eperm, ["syscall", "fsopen"], "EPERM");
errno_test!(seccomp_fspick_is_eperm, ["syscall", "fspick"], "EPERM");
errno_test!(
    seccomp_move_mount_is_eperm,
    ["syscall", "move_mount"],
    "EPERM"
);
errno_test!(
    seccomp_open_tree_is_eperm,
    ["syscall", "open_tree"],
    "EPERM"
);
errno_test!(
    seccomp_pivot_root_is_eperm,
    ["syscall", "pivot_root"],
    "EPERM"
);
errno_test!(seccomp_clone3_is_enosys, ["syscall", "clone3"], "ENOSYS");

#[test]
fn seccomp_allowed_syscall_works() {
    require_root();
    let (_d, p) = setup();
    assert_ok(&probe(&p, &["syscall", "getpid"]));
}

#[test]
fn seccomp_is_on_in_every_task() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["seccomp_all_tasks"]);
    let tasks = r["tasks"].as_array().expect("tasks");
    assert!(tasks.len() >= 2, "{r}");
    for t in tasks {
        assert_eq!(t["seccomp"], 2, "{r}");
    }
    let s = probe(&p, &["status"]);
    assert!(s["Seccomp_filters"].as_i64().unwrap_or(0) >= 1, "{s}");
}

// SC3: 32-bit entry points kill the process with SIGSYS (31), never exit(42).
#[test]
fn seccomp_int80_is_killed_by_sigsys() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "int80_exit", "42"], None);
    assert_eq!(r.status(), "signaled", "{r}");
    assert_eq!(r.signal(), Some(31), "{r}");
    assert_ne!(r.exit_code(), Some(42), "{r}");
}

#[test]
fn seccomp_x32_is_killed_by_sigsys() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "x32", "getpid"], None);
    assert_eq!(r.status(), "signaled", "{r}");
    assert_eq!(r.signal(), Some(31), "{r}");
}
