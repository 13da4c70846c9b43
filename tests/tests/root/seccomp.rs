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

/// The host CPU's vendor string (`GenuineIntel`, `AuthenticAMD`, ...).
fn cpu_vendor() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .expect("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("vendor_id"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .expect("vendor_id in /proc/cpuinfo")
}

/// Runs a probe entry-point sub-command and asserts it died of `signal`,
/// never reaching exit_group(42).
#[track_caller]
fn assert_killed(args: &[&str], signal: i64) {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, args, None);
    assert_ne!(r.exit_code(), Some(42), "the 32-bit call ran: {r}");
    assert_eq!(r.status(), "signaled", "{r}");
    assert_eq!(r.signal(), Some(signal), "{r}");
}

// SYSENTER from 64-bit mode. On Intel it enters the kernel's compat SYSENTER
// path as an i386 syscall (without seccomp, this very code exits 42 on this
// host), so seccomp's arch check kills it: SIGSYS. On AMD, SYSENTER is #UD in
// long mode: SIGILL, before any syscall.
#[test]
fn seccomp_sysenter_is_killed_by_sigsys() {
    let expected = if cpu_vendor() == "AuthenticAMD" {
        4
    } else {
        31
    };
    assert_killed(&["/fn/probe", "sysenter_exit", "42"], expected);
}

// A far call through the 32-bit user code segment (0x23) into compatibility
// mode, then the i386 syscall from there: int $0x80 reaches the i386 path on
// every x86_64 CPU, so SIGSYS.
#[test]
fn seccomp_far_call_then_int80_is_killed_by_sigsys() {
    assert_killed(&["/fn/probe", "farcall_exit", "42", "int80"], 31);
}

// SYSENTER from compatibility mode: the i386 fast path on Intel (SIGSYS);
// #UD on AMD (SIGILL).
#[test]
fn seccomp_far_call_then_sysenter_is_killed_by_sigsys() {
    let expected = if cpu_vendor() == "AuthenticAMD" {
        4
    } else {
        31
    };
    assert_killed(&["/fn/probe", "farcall_exit", "42", "sysenter"], expected);
}

// SYSCALL from compatibility mode: #UD on Intel, so SIGILL before any syscall
// (measured on this host without seccomp: signal 4); on AMD it is the compat
// SYSCALL entry, an i386 syscall, so SIGSYS. Never exit 42 either way.
#[test]
fn seccomp_far_call_then_syscall_never_exits_42() {
    let expected = if cpu_vendor() == "AuthenticAMD" {
        31
    } else {
        4
    };
    assert_killed(&["/fn/probe", "farcall_exit", "42", "syscall"], expected);
}

// The control for the four tests above: run directly on the host (no
// sandbox, no seccomp), the same probe code does reach exit_group(42), except
// where the CPU itself refuses the instruction (SIGILL): so the SIGSYS above
// is seccomp's, not a broken probe's.
#[test]
fn seccomp_entry_point_probes_exit_42_without_the_sandbox() {
    require_root();
    use std::os::unix::process::ExitStatusExt as _;
    let amd = cpu_vendor() == "AuthenticAMD";
    let cases: [(&[&str], Option<i32>); 5] = [
        (&["int80_exit", "42"], None),
        (&["sysenter_exit", "42"], amd.then_some(4)),
        (&["farcall_exit", "42", "int80"], None),
        (&["farcall_exit", "42", "sysenter"], amd.then_some(4)),
        (&["farcall_exit", "42", "syscall"], (!amd).then_some(4)),
    ];
    for (args, sigill) in cases {
        let st = std::process::Command::new(bin_path("probe"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .status()
            .expect("run probe");
        match sigill {
            None => assert_eq!(st.code(), Some(42), "{args:?}: {st}"),
            Some(sig) => assert_eq!(st.signal(), Some(sig), "{args:?}: {st}"),
        }
    }
}
