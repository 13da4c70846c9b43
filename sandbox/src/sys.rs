//! Raw syscall wrappers: every `unsafe` block of the sandbox lives here (and
//! in `fd.rs`), each with the invariant that makes it sound. nix covers most
//! calls; these are the ones it lacks (clone3, pivot_root, the new mount API,
//! pidfd signalling and waiting, close_range, securebits, execve from
//! pre-built pointer arrays) or whose nix form allocates in the child.

use std::ffi::{c_char, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::error::SysError;

type SysResult<T> = Result<T, SysError>;

fn check(call: &'static str, rc: libc::c_long) -> SysResult<libc::c_long> {
    if rc < 0 {
        Err(SysError::last(call))
    } else {
        Ok(rc)
    }
}

/// `struct clone_args` of clone3(2) (version 2, with `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// CLONE_INTO_CGROUP. libc's constant is a `c_int` and overflows.
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` returned on each side.
#[derive(Debug)]
pub(crate) enum Cloned {
    /// We are the new process.
    Child,
    /// We are the caller; the child has this pid and pidfd.
    Parent { pid: libc::pid_t, pidfd: OwnedFd },
}

/// clone3 with CLONE_PIDFD, the given namespace flags and, when `cgroup` is
/// given, CLONE_INTO_CGROUP. The child gets a copy of the address space (no
/// CLONE_VM) and returns from this function like fork(2).
pub(crate) fn clone3(
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    clone_parent: bool,
) -> SysResult<Cloned> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if clone_parent {
        // The child's parent is ours; its exit signal is then our own (the
        // kernel refuses any other with CLONE_PARENT).
        args.flags |= libc::CLONE_PARENT as u64;
        args.exit_signal = 0;
    }
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size we pass, and `pidfd`
    // outlives the call. Without CLONE_VM and with a zero stack the child runs
    // on a private copy of our memory, exactly as after fork(2); the caller is
    // single-threaded (checked in spawn) so no lock is held by another thread
    // in that copy.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check("clone3", rc)? {
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent {
            pid: pid as libc::pid_t,
            // SAFETY: on success the kernel stored a new, owned pidfd in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// fork(2) through libc, so its atfork handlers run. Returns the child's pid
/// in the parent and 0 in the child.
pub(crate) fn fork() -> SysResult<libc::pid_t> {
    // SAFETY: called only in the sandbox init, a single-threaded process; the
    // child only calls async-signal-safe functions and syscalls before execve.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(SysError::last("fork"))
    } else {
        Ok(pid)
    }
}

/// pivot_root(2), which nix exposes but we keep beside its relatives.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: both arguments are valid NUL-terminated strings for the call.
    let rc = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    check("pivot_root", rc).map(drop)
}

pub(crate) const OPEN_TREE_CLONE: libc::c_uint = 1;
pub(crate) const AT_RECURSIVE: libc::c_uint = 0x8000;
pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// open_tree(2) with OPEN_TREE_CLONE|AT_RECURSIVE: a detached copy of the
/// mount tree at `path`, not following a final symlink.
pub(crate) fn open_tree_clone(path: &CStr) -> SysResult<OwnedFd> {
    let flags = OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC
        | AT_RECURSIVE
        | libc::AT_SYMLINK_NOFOLLOW as libc::c_uint;
    // SAFETY: `path` is a valid C string; the call returns a new fd or -1.
    let rc = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = check("open_tree", rc)?;
    // SAFETY: a non-negative return is a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on a detached tree (by fd) or a path, recursively when
/// `recursive`: adds the `set` flags and clears none.
pub(crate) fn mount_setattr(
    dirfd: Option<BorrowedFd<'_>>,
    path: &CStr,
    set: u64,
    recursive: bool,
) -> SysResult<()> {
    let mut attr = MountAttr {
        attr_set: set,
        ..MountAttr::default()
    };
    let mut flags: libc::c_uint = 0;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    let dfd = match dirfd {
        Some(fd) => {
            flags |= libc::AT_EMPTY_PATH as libc::c_uint;
            fd.as_raw_fd()
        }
        None => libc::AT_FDCWD,
    };
    // SAFETY: `attr` is a valid mount_attr of the size passed; `path` is a C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dfd,
            path.as_ptr(),
            flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check("mount_setattr", rc).map(drop)
}

/// move_mount(2) of a detached tree onto `to` (relative to the cwd).
pub(crate) fn move_mount(from: BorrowedFd<'_>, to: &CStr) -> SysResult<()> {
    // SAFETY: the empty string and `to` are valid C strings; `from` is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check("move_mount", rc).map(drop)
}

/// pidfd_send_signal(2): signal the process behind a pidfd (no pid reuse race).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: a null siginfo is allowed and means "as kill(2) would"; flags 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// How a process ended, from waitid(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

impl WaitStatus {
    /// Decode a wait(2)-style status word.
    pub(crate) fn from_raw(status: i32) -> WaitStatus {
        if libc::WIFSIGNALED(status) {
            WaitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// Encode as a wait(2)-style status word, for the init's report.
    pub(crate) fn to_raw(self) -> i32 {
        match self {
            WaitStatus::Exited(c) => (c & 0xff) << 8,
            WaitStatus::Signaled(s) => s & 0x7f,
        }
    }
}

const P_PIDFD: libc::idtype_t = 3;

/// waitid(P_PIDFD, WEXITED|`extra`) on our child. `Ok(None)` with WNOHANG when
/// it has not exited yet.
pub(crate) fn waitid_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> SysResult<Option<WaitStatus>> {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let mut opts = libc::WEXITED;
    if nohang {
        opts |= libc::WNOHANG;
    }
    // SAFETY: `info` is a valid, writable siginfo_t; the id is our pidfd.
    let rc = unsafe { libc::waitid(P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, opts) };
    if rc < 0 {
        return Err(SysError::last("waitid"));
    }
    // SAFETY: waitid filled `info` (or left it zeroed with WNOHANG and no child).
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match code {
        libc::CLD_EXITED => WaitStatus::Exited(status),
        _ => WaitStatus::Signaled(status),
    }))
}

/// close_range(2) with flags (0 or CLOSE_RANGE_CLOEXEC).
pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> SysResult<()> {
    // SAFETY: closing fds we own is sound: the callers (child setup) hold no
    // Rust object that still refers to a closed fd and will use it.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    check("close_range", rc).map(drop)
}

/// PR_SET_SECUREBITS.
pub(crate) fn set_securebits(bits: libc::c_ulong) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) };
    check("prctl(PR_SET_SECUREBITS)", rc.into()).map(drop)
}

/// PR_CAPBSET_DROP for one capability.
pub(crate) fn capbset_drop(cap: libc::c_ulong) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    check("prctl(PR_CAPBSET_DROP)", rc.into()).map(drop)
}

/// PR_CAP_AMBIENT_CLEAR_ALL.
pub(crate) fn clear_ambient() -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    check("prctl(PR_CAP_AMBIENT)", rc.into()).map(drop)
}

/// Clear the effective, permitted and inheritable sets with one capset(2).
pub(crate) fn clear_caps() -> SysResult<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and two data entries are what _LINUX_CAPABILITY_VERSION_3 expects.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    check("capset", rc).map(drop)
}

/// The highest capability number the kernel knows.
pub(crate) fn last_cap() -> libc::c_ulong {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// PR_SET_PDEATHSIG.
pub(crate) fn set_pdeathsig(sig: libc::c_int) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    check("prctl(PR_SET_PDEATHSIG)", rc.into()).map(drop)
}

/// PR_SET_DUMPABLE 0: /proc/<pid> of the init becomes unreachable to the payload.
pub(crate) fn set_not_dumpable() -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    check("prctl(PR_SET_DUMPABLE)", rc.into()).map(drop)
}

/// PR_SET_NO_NEW_PRIVS.
pub(crate) fn set_no_new_privs() -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check("prctl(PR_SET_NO_NEW_PRIVS)", rc.into()).map(drop)
}

/// setgroups(0, NULL).
pub(crate) fn clear_groups() -> SysResult<()> {
    // SAFETY: a zero-length list with a null pointer is valid.
    let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
    check("setgroups", rc.into()).map(drop)
}

/// Reset every signal disposition to the default and unblock all signals, so
/// the payload does not inherit the daemon's (Rust ignores SIGPIPE, for one).
pub(crate) fn reset_signals() -> SysResult<()> {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound; invalid numbers only
        // return EINVAL, which we ignore for the reserved realtime signals.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an all-zero sigset_t is valid and empty after sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; sigprocmask reads it.
    let rc = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    check("sigprocmask", rc.into()).map(drop)
}

/// execve(2) from pre-built, NUL-terminated pointer arrays. Returns only on failure.
pub(crate) fn execve(path: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> SysError {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: `argv` and `envp` are null-terminated arrays of pointers into
    // CStrings owned by the caller's plan, which outlives this call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    SysError::last("execve")
}

/// _exit(2): no destructors, no atexit handlers, no stdio flushing.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// The number of threads of this process.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// A raw syscall without arguments; the errno it failed with, or 0.
#[cfg(test)]
pub(crate) fn syscall0_errno(nr: libc::c_long) -> i32 {
    // SAFETY: test-only; called with syscalls that take no pointer arguments.
    let rc = unsafe { libc::syscall(nr) };
    if rc < 0 {
        Errno::last_raw()
    } else {
        0
    }
}

/// Take ownership of an fd that SCM_RIGHTS just delivered.
pub(crate) fn own_received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this fd in our table for this message;
    // nothing else refers to it, so exactly one owner is created here.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

#[repr(C)]
#[derive(Debug, Default)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) read-only beneath `dir`: no symlink of any kind is followed,
/// no `..` escape, no magic link; the final component must not be a link.
pub(crate) fn openat2_beneath(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    openat2(dir, name, flags, 0)
}

/// Create `name` (O_EXCL, write-only) beneath `dir` with the same resolution
/// rules as [`openat2_beneath`].
pub(crate) fn openat2_create_beneath(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
) -> SysResult<OwnedFd> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    openat2(dir, name, flags, mode)
}

/// Open the directory `name` beneath `dir` with the same resolution rules
/// as [`openat2_beneath`] (a symlink in its place is refused, not followed).
pub(crate) fn openat2_dir_beneath(dir: BorrowedFd<'_>, name: &CStr) -> SysResult<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    openat2(dir, name, flags, 0)
}

/// openat2(2) beneath `dir`: no `..` out, no symlinks, no magic links.
fn openat2(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int, mode: u32) -> SysResult<OwnedFd> {
    let mut how = OpenHow {
        flags: flags as u64,
        mode: u64::from(mode),
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `how` is a valid open_how of the size passed; `name` is a C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut how as *mut OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = check("openat2", rc)?;
    // SAFETY: a non-negative return is a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
