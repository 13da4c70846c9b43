//! The built-in seccomp allowlists, all in one place.
//!
//! A policy names one profile (`seccomp.profile`) and may add syscalls to it
//! (`seccomp.allow`, never one of [`NEVER_ALLOWED`]) or take some away
//! (`seccomp.deny`). The sandbox compiles the resulting list into a filter
//! that allows exactly these syscalls on x86_64 and fails everything else;
//! the architecture check (kill on a foreign arch, x32 included) lives in the
//! sandbox crate, not here.
//!
//! The lists are names, not numbers: the sandbox maps them with its seccomp
//! library. [`is_known_syscall`] checks names against the x86_64 table below.

use std::sync::OnceLock;

use crate::policy::SeccompProfile;

/// Returns the allowlist of a built-in profile.
pub fn syscalls(profile: SeccompProfile) -> &'static [&'static str] {
    match profile {
        SeccompProfile::Default => default(),
        SeccompProfile::Strict => strict(),
        SeccompProfile::Wasm => wasm(),
    }
}

/// `default`: for general interpreters and tools (python3, node, bash/dash
/// scripts, coreutils).
///
/// Built like Docker's default profile minus everything that reaches kernel
/// state outside the sandbox or widens kernel attack surface (see
/// [`NEVER_ALLOWED`]). It is [`strict`] plus networking ([`NETWORK`]: the
/// sandbox has an empty network namespace, so sockets only reach loopback
/// and socketpairs) plus process creation ([`PROCESSES`]: `clone` for threads
/// and subprocesses, `fork`, `vfork`, `execveat`). `clone3` is absent on
/// purpose: the sandbox answers it with ENOSYS so libc falls back to `clone`,
/// whose flags a filter can inspect.
pub fn default() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut v = Vec::with_capacity(STRICT.len() + NETWORK.len() + PROCESSES.len());
        v.extend_from_slice(STRICT);
        v.extend_from_slice(NETWORK);
        v.extend_from_slice(PROCESSES);
        v
    })
}

/// `strict`: for single-process scripts that neither talk over sockets nor
/// start other processes or threads.
///
/// The [`default`] profile minus [`NETWORK`] and minus [`PROCESSES`].
/// `execve` stays, because the sandbox execs the function's command after the
/// filter is in place. Without `clone` no threads can be created either, so
/// node (which starts worker threads) does not run under this profile.
pub fn strict() -> &'static [&'static str] {
    STRICT
}

/// `wasm`: the tight set for `paddock-wasm`, the single-threaded in-sandbox
/// WASM runner (a Rust std binary running wasmi).
///
/// Only what the runner calls after the filter is in place: the `execve`
/// (the filter is installed before the sandbox execs the runner), the
/// dynamic loader's and Rust's start-up, the interpreter's memory, stdio,
/// and the file calls our WASI host maps preview1 onto (`openat2`, with
/// which every guest path is resolved beneath `/work`, `lseek`, `mkdirat`,
/// `unlinkat`, `symlinkat`), plus a documented few for signal return,
/// `abort()` and the clock fallback. A root test traces the runner with
/// strace across every fixture and fails if it makes any call not listed.
/// No sockets, no `clone`, no `fork`, no `ioctl`: the runner starts no
/// threads and no processes.
pub fn wasm() -> &'static [&'static str] {
    WASM
}

/// Networking calls: in [`default`], out of [`strict`] and [`wasm`].
pub const NETWORK: &[&str] = &[
    "socket",
    "socketpair",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
];

/// Process and thread creation: in [`default`], out of [`strict`] and [`wasm`].
pub const PROCESSES: &[&str] = &["clone", "fork", "vfork", "execveat"];

/// The common core of [`default`] and [`strict`].
const STRICT: &[&str] = &[
    // Files and descriptors.
    "read",
    "write",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "creat",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "lseek",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "access",
    "faccessat",
    "faccessat2",
    "ioctl",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "truncate",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "readahead",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "symlink",
    "symlinkat",
    "readlink",
    "readlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "sendfile",
    "copy_file_range",
    "splice",
    "tee",
    "vmsplice",
    "memfd_create",
    // Waiting for descriptors and events.
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_submit",
    "io_cancel",
    // Memory.
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "msync",
    "mincore",
    "madvise",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "mbind",
    "get_mempolicy",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "membarrier",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "map_shadow_stack",
    "mseal",
    // Signals.
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "rt_sigsuspend",
    "sigaltstack",
    "pause",
    "kill",
    "tkill",
    "tgkill",
    "restart_syscall",
    // Time and timers (reading clocks only; setting them is never allowed).
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "times",
    "getitimer",
    "setitimer",
    "alarm",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    // Threads, scheduling, futexes.
    "futex",
    "futex_waitv",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "set_robust_list",
    "get_robust_list",
    "set_tid_address",
    "rseq",
    "arch_prctl",
    "set_thread_area",
    "get_thread_area",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_getattr",
    "sched_setattr",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "getcpu",
    // Processes: running the payload and waiting for children. `execve` is
    // needed because the filter is installed before the sandbox execs the
    // command; creating processes is in PROCESSES.
    "execve",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    // A process may only add filters to itself, never remove any.
    "seccomp",
    // Identity. Inside the user namespace these only move between the ids
    // mapped for the sandbox.
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "capget",
    "capset",
    // Resources and system information.
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "sysinfo",
    "uname",
    "getrandom",
    // System V and POSIX IPC: the sandbox has its own IPC namespace.
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
];

const WASM: &[&str] = &[
    // Exactly what paddock-wasm was seen to call (tests/tests/root/wasm.rs,
    // wasm_runner_makes_only_syscalls_in_the_wasm_profile, traces it with
    // strace across every fixture, oneshot STDIO and FILE and warm), from
    // the execve on, grouped by who calls:
    // the exec itself (the filter is installed before the sandbox execs the
    // runner) and the dynamic loader: libc and libgcc_s.
    "execve",
    "brk",
    "arch_prctl",
    "access",
    "openat",
    "read",
    "pread64",
    "newfstatat",
    "mmap",
    "mprotect",
    "munmap",
    "close",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrandom",
    // Rust's std start-up: the fd 0-2 check, SIGPIPE ignored, the stack
    // guard and the SIGSEGV/SIGBUS handlers on an alternate stack.
    "poll",
    "rt_sigaction",
    "sigaltstack",
    "sched_getaffinity",
    "gettid",
    // The runner: reading the module, the interpreter's memory (mremap when
    // linear memory grows), stdio dups and writes, the exit.
    "fcntl",
    "write",
    "mremap",
    "exit_group",
    // The WASI host, FILE protocol: every path resolved with openat2
    // (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | ...) beneath the preopened
    // /work (ATTACKS WA5); fd_seek/fd_tell; path_create_directory,
    // path_unlink_file/path_remove_directory, path_symlink.
    "openat2",
    "lseek",
    "mkdirat",
    "unlinkat",
    "symlinkat",
    // Not seen on this host, kept on purpose: returning from a signal
    // handler (a fault that is not a stack overflow returns from std's
    // handler to fault again with the default action); glibc's abort()
    // (Rust's process::abort: an allocation failure, a panic while
    // panicking), so such a runner dies of SIGABRT rather than of a refused
    // tgkill; and clock_gettime, which the vDSO falls back to when the
    // clocksource cannot be read from user space (WASI clocks, Instant).
    "rt_sigreturn",
    "rt_sigprocmask",
    "getpid",
    "tgkill",
    "clock_gettime",
];

/// Syscalls that no profile contains and no policy may add with
/// `seccomp.allow`, whatever the daemon config says.
///
/// They change state outside the sandbox (clocks, modules, swap, reboot,
/// hostname outside the UTS namespace, accounting, quotas), undo the sandbox
/// (mounts, namespaces, chroot, landlock, personality), inspect other
/// processes (ptrace, process_vm_*, kcmp, pidfd_getfd), or reach large,
/// often-exploited kernel surfaces (bpf, perf_event_open, userfaultfd,
/// io_uring, keyrings, open_by_handle_at, fanotify, modify_ldt). `clone3` is
/// here because its flags live in memory a filter cannot read; the sandbox
/// answers it with ENOSYS so that libc falls back to `clone`.
pub const NEVER_ALLOWED: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "kcmp",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "clone3",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "mount_setattr",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "settimeofday",
    "sethostname",
    "setdomainname",
    "acct",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "vhangup",
    "iopl",
    "ioperm",
    "modify_ldt",
    "syslog",
    "personality",
    "mknod",
    "mknodat",
    "uselib",
    "nfsservctl",
    "ustat",
    "sysfs",
    "_sysctl",
    "vserver",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "fanotify_init",
    "fanotify_mark",
    "migrate_pages",
    "move_pages",
    "lsm_set_self_attr",
    "memfd_secret",
];

/// Returns true if `name` is a syscall name on x86_64 (64-bit ABI).
pub fn is_known_syscall(name: &str) -> bool {
    X86_64_SYSCALLS.contains(&name)
}

/// The x86_64 syscall number of `name`, from [`X86_64_SYSCALLS`].
pub fn syscall_number(name: &str) -> Option<u32> {
    let i = X86_64_SYSCALLS.iter().position(|n| *n == name)?;
    let i = u32::try_from(i).ok()?;
    // 0..=335 are dense; the table resumes at 424 after the hole.
    Some(if i <= 335 { i } else { i - 336 + 424 })
}

/// Returns true if no policy may allow `name`.
pub fn is_never_allowed(name: &str) -> bool {
    NEVER_ALLOWED.contains(&name)
}

/// Every x86_64 syscall name, in number order: 0..=335, then 424..=467
/// (336..=423 is a hole in the 64-bit table). Comments give the number of
/// the first name on each line.
pub const X86_64_SYSCALLS: &[&str] = &[
    /* 0 */ "read",
    "write",
    "open",
    "close",
    "stat",
    "fstat",
    "lstat",
    "poll",
    "lseek",
    "mmap",
    /* 10 */ "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "pread64",
    "pwrite64",
    "readv",
    /* 20 */ "writev",
    "access",
    "pipe",
    "select",
    "sched_yield",
    "mremap",
    "msync",
    "mincore",
    "madvise",
    "shmget",
    /* 30 */ "shmat",
    "shmctl",
    "dup",
    "dup2",
    "pause",
    "nanosleep",
    "getitimer",
    "alarm",
    "setitimer",
    "getpid",
    /* 40 */ "sendfile",
    "socket",
    "connect",
    "accept",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "shutdown",
    "bind",
    /* 50 */ "listen",
    "getsockname",
    "getpeername",
    "socketpair",
    "setsockopt",
    "getsockopt",
    "clone",
    "fork",
    "vfork",
    "execve",
    /* 60 */ "exit",
    "wait4",
    "kill",
    "uname",
    "semget",
    "semop",
    "semctl",
    "shmdt",
    "msgget",
    "msgsnd",
    /* 70 */ "msgrcv",
    "msgctl",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "truncate",
    "ftruncate",
    "getdents",
    "getcwd",
    /* 80 */ "chdir",
    "fchdir",
    "rename",
    "mkdir",
    "rmdir",
    "creat",
    "link",
    "unlink",
    "symlink",
    "readlink",
    /* 90 */ "chmod",
    "fchmod",
    "chown",
    "fchown",
    "lchown",
    "umask",
    "gettimeofday",
    "getrlimit",
    "getrusage",
    "sysinfo",
    /* 100 */ "times",
    "ptrace",
    "getuid",
    "syslog",
    "getgid",
    "setuid",
    "setgid",
    "geteuid",
    "getegid",
    "setpgid",
    /* 110 */ "getppid",
    "getpgrp",
    "setsid",
    "setreuid",
    "setregid",
    "getgroups",
    "setgroups",
    "setresuid",
    "getresuid",
    "setresgid",
    /* 120 */ "getresgid",
    "getpgid",
    "setfsuid",
    "setfsgid",
    "getsid",
    "capget",
    "capset",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    /* 130 */ "rt_sigsuspend",
    "sigaltstack",
    "utime",
    "mknod",
    "uselib",
    "personality",
    "ustat",
    "statfs",
    "fstatfs",
    "sysfs",
    /* 140 */ "getpriority",
    "setpriority",
    "sched_setparam",
    "sched_getparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "mlock",
    /* 150 */ "munlock",
    "mlockall",
    "munlockall",
    "vhangup",
    "modify_ldt",
    "pivot_root",
    "_sysctl",
    "prctl",
    "arch_prctl",
    "adjtimex",
    /* 160 */ "setrlimit",
    "chroot",
    "sync",
    "acct",
    "settimeofday",
    "mount",
    "umount2",
    "swapon",
    "swapoff",
    "reboot",
    /* 170 */ "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "create_module",
    "init_module",
    "delete_module",
    "get_kernel_syms",
    "query_module",
    "quotactl",
    /* 180 */ "nfsservctl",
    "getpmsg",
    "putpmsg",
    "afs_syscall",
    "tuxcall",
    "security",
    "gettid",
    "readahead",
    "setxattr",
    "lsetxattr",
    /* 190 */ "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    /* 200 */ "tkill",
    "time",
    "futex",
    "sched_setaffinity",
    "sched_getaffinity",
    "set_thread_area",
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_submit",
    /* 210 */ "io_cancel",
    "get_thread_area",
    "lookup_dcookie",
    "epoll_create",
    "epoll_ctl_old",
    "epoll_wait_old",
    "remap_file_pages",
    "getdents64",
    "set_tid_address",
    "restart_syscall",
    /* 220 */ "semtimedop",
    "fadvise64",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "clock_settime",
    "clock_gettime",
    "clock_getres",
    /* 230 */ "clock_nanosleep",
    "exit_group",
    "epoll_wait",
    "epoll_ctl",
    "tgkill",
    "utimes",
    "vserver",
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    /* 240 */ "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "kexec_load",
    "waitid",
    "add_key",
    "request_key",
    /* 250 */ "keyctl",
    "ioprio_set",
    "ioprio_get",
    "inotify_init",
    "inotify_add_watch",
    "inotify_rm_watch",
    "migrate_pages",
    "openat",
    "mkdirat",
    "mknodat",
    /* 260 */ "fchownat",
    "futimesat",
    "newfstatat",
    "unlinkat",
    "renameat",
    "linkat",
    "symlinkat",
    "readlinkat",
    "fchmodat",
    "faccessat",
    /* 270 */ "pselect6",
    "ppoll",
    "unshare",
    "set_robust_list",
    "get_robust_list",
    "splice",
    "tee",
    "sync_file_range",
    "vmsplice",
    "move_pages",
    /* 280 */ "utimensat",
    "epoll_pwait",
    "signalfd",
    "timerfd_create",
    "eventfd",
    "fallocate",
    "timerfd_settime",
    "timerfd_gettime",
    "accept4",
    "signalfd4",
    /* 290 */ "eventfd2",
    "epoll_create1",
    "dup3",
    "pipe2",
    "inotify_init1",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "perf_event_open",
    "recvmmsg",
    /* 300 */ "fanotify_init",
    "fanotify_mark",
    "prlimit64",
    "name_to_handle_at",
    "open_by_handle_at",
    "clock_adjtime",
    "syncfs",
    "sendmmsg",
    "setns",
    "getcpu",
    /* 310 */ "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "finit_module",
    "sched_setattr",
    "sched_getattr",
    "renameat2",
    "seccomp",
    "getrandom",
    "memfd_create",
    /* 320 */ "kexec_file_load",
    "bpf",
    "execveat",
    "userfaultfd",
    "membarrier",
    "mlock2",
    "copy_file_range",
    "preadv2",
    "pwritev2",
    "pkey_mprotect",
    /* 330 */ "pkey_alloc",
    "pkey_free",
    "statx",
    "io_pgetevents",
    "rseq",
    "uretprobe",
    /* 424 */ "pidfd_send_signal",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_tree",
    "move_mount",
    /* 430 */ "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "pidfd_open",
    "clone3",
    "close_range",
    "openat2",
    "pidfd_getfd",
    "faccessat2",
    /* 440 */ "process_madvise",
    "epoll_pwait2",
    "mount_setattr",
    "quotactl_fd",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
    "futex_waitv",
    /* 450 */ "set_mempolicy_home_node",
    "cachestat",
    "fchmodat2",
    "map_shadow_stack",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    /* 460 */ "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "open_tree_attr",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const ALL: [SeccompProfile; 3] = [
        SeccompProfile::Default,
        SeccompProfile::Strict,
        SeccompProfile::Wasm,
    ];

    #[test]
    fn table_length_matches_the_numbering() {
        // 0..=335 and 424..=467.
        assert_eq!(X86_64_SYSCALLS.len(), 336 + 44);
        assert_eq!(X86_64_SYSCALLS[335], "uretprobe");
        assert_eq!(X86_64_SYSCALLS[336], "pidfd_send_signal");
        assert_eq!(X86_64_SYSCALLS[336 + (435 - 424)], "clone3");
        assert_eq!(X86_64_SYSCALLS[336 + (461 - 424)], "lsm_list_modules");
    }

    #[test]
    fn syscall_number_follows_the_table() {
        assert_eq!(syscall_number("read"), Some(0));
        assert_eq!(syscall_number("execve"), Some(59));
        assert_eq!(syscall_number("rseq"), Some(334));
        assert_eq!(syscall_number("pidfd_send_signal"), Some(424));
        assert_eq!(syscall_number("clone3"), Some(435));
        assert_eq!(syscall_number("fchmodat2"), Some(452));
        assert_eq!(syscall_number("lsm_list_modules"), Some(461));
        assert_eq!(syscall_number("stime"), None);
    }

    #[test]
    fn table_has_no_duplicates() {
        let set: BTreeSet<_> = X86_64_SYSCALLS.iter().collect();
        assert_eq!(set.len(), X86_64_SYSCALLS.len());
    }

    #[test]
    fn profiles_contain_no_never_allowed_syscall() {
        for p in ALL {
            for s in syscalls(p) {
                assert!(!is_never_allowed(s), "{} contains {s}", p.as_str());
            }
        }
    }

    #[test]
    fn profiles_have_no_duplicates() {
        for p in ALL {
            let list = syscalls(p);
            let set: BTreeSet<_> = list.iter().collect();
            assert_eq!(set.len(), list.len(), "{} has duplicates", p.as_str());
        }
    }

    #[test]
    fn profiles_name_only_known_syscalls() {
        for p in ALL {
            for s in syscalls(p) {
                assert!(is_known_syscall(s), "{} names unknown {s}", p.as_str());
            }
        }
        for s in NEVER_ALLOWED {
            assert!(is_known_syscall(s), "NEVER_ALLOWED names unknown {s}");
        }
    }

    #[test]
    fn never_allowed_has_no_duplicates() {
        let set: BTreeSet<_> = NEVER_ALLOWED.iter().collect();
        assert_eq!(set.len(), NEVER_ALLOWED.len());
    }

    #[test]
    fn strict_is_default_without_network_and_processes() {
        let d: BTreeSet<_> = default().iter().copied().collect();
        let s: BTreeSet<_> = strict().iter().copied().collect();
        assert!(s.is_subset(&d));
        for n in NETWORK.iter().chain(PROCESSES) {
            assert!(d.contains(n) && !s.contains(n), "{n}");
        }
        assert!(s.contains("execve"));
    }

    #[test]
    fn default_has_what_interpreters_need() {
        let d: BTreeSet<_> = default().iter().copied().collect();
        for n in [
            "read",
            "openat",
            "mmap",
            "clone",
            "execve",
            "futex",
            "epoll_wait",
            "socket",
            "getrandom",
            "rseq",
            "statx",
            "prlimit64",
            "wait4",
            "seccomp",
        ] {
            assert!(d.contains(n), "default lacks {n}");
        }
        assert!(!d.contains("clone3"));
        assert!(!d.contains("ptrace"));
    }

    #[test]
    fn wasm_has_no_network_or_process_creation() {
        let w: BTreeSet<_> = wasm().iter().copied().collect();
        for n in NETWORK.iter().chain(PROCESSES) {
            assert!(!w.contains(n), "{n}");
        }
        assert!(w.contains("execve"));
    }
}
