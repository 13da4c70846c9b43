//! `probe`: a tiny program deployed as a function inside a Paddock sandbox.
//!
//! `probe SUBCOMMAND [ARGS...]` performs one operation (usually one syscall, made
//! with `libc` directly so nothing hides the errno) and prints exactly one JSON line:
//! `{"ok":true,...}` or `{"ok":false,"errno":13,"errno_name":"EACCES",...}`.
//! The exit status is 0 whenever the result could be printed; 2 means bad usage.
//! Sub-commands that are meant to be killed (spin, int80_exit, sysenter_exit,
//! farcall_exit, ...) print nothing.

use serde_json::{json, Map, Value};
use std::ffi::CString;
use std::io::Write as _;
use std::time::{Duration, Instant};

type Obj = Map<String, Value>;
type Res = Result<Obj, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(obj) => {
            emit(&obj);
            std::process::exit(0);
        }
        Err(usage) => {
            emit(&obj_of(json!({"ok": false, "usage": usage})));
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------- helpers

fn emit(obj: &Obj) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", Value::Object(obj.clone()));
    let _ = out.flush();
}

fn obj_of(v: Value) -> Obj {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = Obj::new();
            m.insert("value".into(), other);
            m
        }
    }
}

fn ok(fields: Value) -> Obj {
    let mut m = Obj::new();
    m.insert("ok".into(), Value::Bool(true));
    m.extend(obj_of(fields));
    m
}

fn fail(errno: i32, fields: Value) -> Obj {
    let mut m = Obj::new();
    m.insert("ok".into(), Value::Bool(false));
    m.insert("errno".into(), json!(errno));
    m.insert("errno_name".into(), json!(errno_name(errno)));
    m.extend(obj_of(fields));
    m
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Result of a raw call returning -1 on error.
fn check(ret: i64, fields: Value) -> Obj {
    if ret < 0 {
        fail(last_errno(), fields)
    } else {
        let mut m = ok(fields);
        m.insert("ret".into(), json!(ret));
        m
    }
}

fn io_fail(e: &std::io::Error, fields: Value) -> Obj {
    match e.raw_os_error() {
        Some(n) => fail(n, fields),
        None => {
            let mut m = fail(0, fields);
            m.insert("message".into(), json!(e.to_string()));
            m
        }
    }
}

fn errno_name(e: i32) -> &'static str {
    match e {
        0 => "OK",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::ENOTBLK => "ENOTBLK",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::EDEADLK => "EDEADLK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENOMSG => "ENOMSG",
        libc::EIDRM => "EIDRM",
        libc::ENODATA => "ENODATA",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EDQUOT => "EDQUOT",
        libc::ECANCELED => "ECANCELED",
        libc::ENOKEY => "ENOKEY",
        libc::EKEYREJECTED => "EKEYREJECTED",
        _ => "UNKNOWN",
    }
}

fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("NUL byte in {s:?}"))
}

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> Result<&'a str, String> {
    args.get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {i}: {what}"))
}

fn num<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, String> {
    arg(args, i, what)?
        .parse()
        .map_err(|_| format!("argument {i} ({what}) is not a number"))
}

/// `65536`, `64K`, `64KiB`, `16M`, `16MiB`, `1G`.
fn size(args: &[String], i: usize, what: &str) -> Result<usize, String> {
    let s = arg(args, i, what)?;
    let s = s.trim_end_matches("iB").trim_end_matches('B');
    let (digits, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1usize << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits
        .parse::<usize>()
        .map(|n| n * mult)
        .map_err(|_| format!("argument {i} ({what}) is not a size"))
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn open_flags(spec: &str) -> Result<libc::c_int, String> {
    let mut flags = libc::O_CLOEXEC;
    for f in spec.split(',') {
        flags |= match f {
            "rdonly" => libc::O_RDONLY,
            "wronly" => libc::O_WRONLY,
            "rdwr" => libc::O_RDWR,
            "creat" => libc::O_CREAT,
            "trunc" => libc::O_TRUNC,
            "excl" => libc::O_EXCL,
            "append" => libc::O_APPEND,
            "nofollow" => libc::O_NOFOLLOW,
            "directory" => libc::O_DIRECTORY,
            "path" => libc::O_PATH,
            "noctty" => libc::O_NOCTTY,
            "nonblock" => libc::O_NONBLOCK,
            other => return Err(format!("unknown open flag {other:?}")),
        };
    }
    Ok(flags)
}

fn sys_open(path: &str, flags: libc::c_int) -> Result<libc::c_int, String> {
    let p = cstr(path)?;
    // SAFETY: `p` is a valid NUL-terminated string; the mode argument is read only with O_CREAT.
    Ok(unsafe { libc::open(p.as_ptr(), flags, 0o644 as libc::c_uint) })
}

fn close(fd: libc::c_int) {
    // SAFETY: closing an fd this program opened and owns.
    unsafe { libc::close(fd) };
}

/// Writes all of `data` to `fd`; returns (bytes written, errno or 0).
fn write_all(fd: libc::c_int, data: &[u8]) -> (usize, i32) {
    let mut done = 0;
    while done < data.len() {
        // SAFETY: the pointer and length describe the live slice `data[done..]`.
        let n = unsafe { libc::write(fd, data[done..].as_ptr().cast(), data.len() - done) };
        if n < 0 {
            let e = last_errno();
            if e == libc::EINTR {
                continue;
            }
            return (done, e);
        }
        done += n as usize;
    }
    (done, 0)
}

fn read_text(path: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

fn sleep_secs(secs: f64) {
    std::thread::sleep(Duration::from_secs_f64(secs.max(0.0)));
}

fn ignore_signal(sig: libc::c_int) {
    // SAFETY: installing SIG_IGN for a signal has no memory-safety requirements.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

fn fork() -> libc::pid_t {
    // SAFETY: the probe is single-threaded where it forks; children only call
    // async-signal-safe functions (sleep, _exit, kill, ptrace) before exiting.
    unsafe { libc::fork() }
}

fn child_exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

fn child_sleep(secs: u32) {
    // SAFETY: sleep is async-signal-safe.
    unsafe { libc::sleep(secs) };
}

fn wait_status(pid: libc::pid_t) -> Value {
    let mut st = 0;
    // SAFETY: `st` is a valid out-pointer for the status.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    if r < 0 {
        json!({"wait_errno": errno_name(last_errno())})
    } else if libc::WIFEXITED(st) {
        json!({"exit_code": libc::WEXITSTATUS(st)})
    } else if libc::WIFSIGNALED(st) {
        json!({"signal": libc::WTERMSIG(st)})
    } else {
        json!({"raw": st})
    }
}

fn kill(pid: libc::pid_t, sig: libc::c_int) -> libc::c_int {
    // SAFETY: kill has no memory-safety requirements.
    unsafe { libc::kill(pid, sig) }
}

// ---------------------------------------------------------------- dispatch

fn dispatch(args: &[String]) -> Res {
    let cmd = arg(args, 0, "sub-command")?;
    let a = &args[1..];
    match cmd {
        "open" => cmd_open(a),
        "read" => cmd_read(a),
        "write" => cmd_write(a, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
        "write_existing" | "cgroup_write" => cmd_write(a, libc::O_WRONLY),
        "ls" => cmd_ls(arg(a, 0, "dir")?),
        "stat" => cmd_stat(arg(a, 0, "path")?, true),
        "lstat" => cmd_stat(arg(a, 0, "path")?, false),
        "same" => {
            // `same A B`: do A and B (followed) name the same inode, seen from one process?
            let x = cmd_stat(arg(a, 0, "a")?, true)?;
            let y = cmd_stat(arg(a, 1, "b")?, true)?;
            let key = |m: &Obj| (m.get("dev").cloned(), m.get("ino").cloned());
            let same = x["ok"] == true && y["ok"] == true && key(&x) == key(&y);
            Ok(ok(json!({"same": same, "a": x, "b": y})))
        }
        "statfs" => cmd_statfs(arg(a, 0, "path")?),
        "readlink" => cmd_readlink(arg(a, 0, "path")?),
        "mkdir" | "cgroup_mkdir" => {
            let p = cstr(arg(a, 0, "path")?)?;
            // SAFETY: `p` is a valid C string.
            let r = unsafe { libc::mkdir(p.as_ptr(), 0o755) };
            Ok(check(r.into(), json!({})))
        }
        "symlink" => {
            let t = cstr(arg(a, 0, "target")?)?;
            let p = cstr(arg(a, 1, "path")?)?;
            // SAFETY: both are valid C strings.
            let r = unsafe { libc::symlink(t.as_ptr(), p.as_ptr()) };
            Ok(check(r.into(), json!({})))
        }
        "mknod" => cmd_mknod(a),
        "exec" => cmd_exec(a),
        "mountinfo" => match read_text("/proc/self/mountinfo") {
            Ok(s) => Ok(ok(json!({"lines": s.lines().collect::<Vec<_>>()}))),
            Err(e) => Ok(io_fail(&e, json!({}))),
        },
        "status" => cmd_status("/proc/self/status"),
        "seccomp_all_tasks" => cmd_seccomp_all_tasks(),
        "fds" => cmd_fds(),
        "cwd_escape" => cmd_cwd_escape(),
        "getcwd" => Ok(match std::env::current_dir() {
            Ok(p) => ok(json!({"cwd": p.to_string_lossy()})),
            Err(e) => io_fail(&e, json!({})),
        }),
        "pids" => cmd_pids(),
        "ids" => cmd_ids(),
        "uid_map" | "gid_map" => cmd_map(cmd),
        "write_uid_map" => cmd_write_uid_map(),
        "rlimits" => cmd_rlimits(),
        "syscall" => cmd_syscall(arg(a, 0, "name")?, 0),
        "x32" => cmd_syscall(arg(a, 0, "name")?, 0x4000_0000),
        "clone_newuser" => cmd_clone_newuser(),
        "int80_exit" => cmd_int80_exit(num(a, 0, "exit code")?),
        "sysenter_exit" => cmd_sysenter_exit(num(a, 0, "exit code")?),
        "farcall_exit" => cmd_farcall_exit(
            num(a, 0, "exit code")?,
            a.get(1).map_or("int80", String::as_str),
        ),
        "remount_rw" => {
            let root = cstr("/")?;
            // SAFETY: valid C string target; NULL source/type/data are allowed for a remount.
            let r = unsafe {
                libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REMOUNT,
                    std::ptr::null(),
                )
            };
            Ok(check(r.into(), json!({})))
        }
        "umount" => {
            let p = cstr(arg(a, 0, "path")?)?;
            // SAFETY: valid C string.
            let r = unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
            Ok(check(r.into(), json!({})))
        }
        "mount_cgroup" => cmd_mount(arg(a, 0, "path")?, "cgroup", a.get(1).map_or("rdma", |s| s)),
        "mount_tmpfs" => cmd_mount(arg(a, 0, "path")?, "tmpfs", "size=1m"),
        "unshare" => cmd_unshare(arg(a, 0, "flags")?),
        "unshare_mount_tmpfs" => cmd_unshare_mount_tmpfs(arg(a, 0, "path")?),
        "ptrace_traceme" => {
            // SAFETY: PTRACE_TRACEME takes no pointers.
            let r = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) };
            Ok(check(r, json!({})))
        }
        "ptrace_attach" => cmd_ptrace_attach(num(a, 0, "pid")?),
        "fork_then_ptrace_sibling" => cmd_ptrace_sibling(),
        "tiocsti" => {
            let c: u8 = b'x';
            // SAFETY: TIOCSTI reads one byte from the pointer, which points at `c`.
            let r = unsafe { libc::ioctl(0, libc::TIOCSTI, &c as *const u8) };
            Ok(check(r.into(), json!({})))
        }
        "tty_inject" => cmd_tty_inject(a.first().map_or("id\n", String::as_str)),
        "tioclinux" => {
            let mut sub: [u8; 8] = [0; 8];
            // SAFETY: TIOCLINUX reads/writes at most a few bytes of `sub`.
            let r = unsafe { libc::ioctl(0, libc::TIOCLINUX, sub.as_mut_ptr()) };
            Ok(check(r.into(), json!({})))
        }
        "open_tty" => {
            let fd = sys_open("/dev/tty", libc::O_RDWR | libc::O_CLOEXEC)?;
            let r = check(fd.into(), json!({}));
            if fd >= 0 {
                close(fd);
            }
            Ok(r)
        }
        "isatty" => {
            let fd: i32 = num(a, 0, "fd")?;
            // SAFETY: isatty has no memory-safety requirements.
            let t = unsafe { libc::isatty(fd) } == 1;
            Ok(ok(json!({"tty": t})))
        }
        "nice" => {
            let inc: i32 = num(a, 0, "increment")?;
            // SAFETY: errno is thread-local; nice() may legitimately return -1.
            let r = unsafe {
                *libc::__errno_location() = 0;
                libc::nice(inc)
            };
            let e = last_errno();
            Ok(if r == -1 && e != 0 {
                fail(e, json!({}))
            } else {
                ok(json!({"nice": r}))
            })
        }
        "sched_fifo" => {
            let p = libc::sched_param { sched_priority: 1 };
            // SAFETY: `p` is a valid sched_param.
            let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
            Ok(check(r.into(), json!({})))
        }
        "fork_bomb" => cmd_fork_bomb(num(a, 0, "seconds")?, a.get(1).and_then(|s| s.parse().ok())),
        "thread_bomb" => cmd_thread_bomb(a.first().and_then(|s| s.parse().ok()).unwrap_or(100_000)),
        "alloc" => cmd_alloc(size(a, 0, "bytes")?),
        "alloc_children" => cmd_alloc_children(num(a, 0, "n")?, size(a, 1, "bytes")?),
        "fill_tmp" => cmd_fill(arg(a, 0, "path")?),
        "many_files" => cmd_many_files(arg(a, 0, "dir")?, num(a, 1, "n")?),
        "write_past_fsize" => cmd_write_past_fsize(
            arg(a, 0, "path")?,
            size(a, 1, "bytes")?,
            a.get(2).is_some_and(|s| s == "ignore"),
        ),
        "many_fds" => cmd_many_fds(num(a, 0, "n")?),
        "cpu_hog" => cmd_cpu_hog(num(a, 0, "threads")?, num(a, 1, "seconds")?),
        "sleep" => {
            let s: f64 = num(a, 0, "seconds")?;
            sleep_secs(s);
            Ok(ok(json!({"slept": s})))
        }
        "spin" => loop {
            std::hint::spin_loop();
        },
        "ignore_sigterm_and_sleep" => {
            ignore_signal(libc::SIGTERM);
            let s: f64 = num(a, 0, "seconds")?;
            sleep_secs(s);
            Ok(ok(json!({"slept": s})))
        }
        "escape_kill" => cmd_escape_kill(num(a, 0, "seconds")?),
        "stop_all" => cmd_stop_all(num(a, 0, "children")?, num(a, 1, "seconds")?),
        "kill_all" => {
            let sig: i32 = num(a, 0, "signal")?;
            Ok(check(kill(-1, sig).into(), json!({})))
        }
        "kill" => {
            let sig: i32 = num(a, 0, "signal")?;
            let pid: i32 = num(a, 1, "pid")?;
            Ok(check(kill(pid, sig).into(), json!({})))
        }
        "kill_range" => cmd_kill_range(num(a, 0, "signal")?, num(a, 1, "from")?, num(a, 2, "to")?),
        "connect_inet" => cmd_connect_inet(
            arg(a, 0, "ip")?,
            num(a, 1, "port")?,
            a.get(2).is_some_and(|s| s == "udp"),
        ),
        "socket" => cmd_socket(arg(a, 0, "family")?, arg(a, 1, "type")?),
        "abstract_bind" => cmd_abstract_bind(arg(a, 0, "name")?, num(a, 1, "seconds")?),
        "abstract_connect" => cmd_abstract_connect(arg(a, 0, "name")?),
        "ipc_create" => cmd_ipc_create(),
        "ipc_list" => cmd_ipc_list(),
        "env" => {
            let env: Obj = std::env::vars_os()
                .map(|(k, v)| (k.to_string_lossy().into_owned(), json!(v.to_string_lossy())))
                .collect();
            Ok(ok(json!({"env": env})))
        }
        "hostname" => {
            let mut buf = [0u8; 256];
            // SAFETY: the buffer is valid for its whole length.
            let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            Ok(check(r.into(), json!({"hostname": name})))
        }
        "echo_stdin" => {
            let mut buf = Vec::new();
            let r = std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf);
            Ok(match r {
                Ok(n) => ok(json!({"len": n, "content": String::from_utf8_lossy(&buf)})),
                Err(e) => io_fail(&e, json!({})),
            })
        }
        "then_sleep" => {
            // `then_sleep SECONDS SUBCOMMAND ARGS...`: print the sub-command's line,
            // then keep the sandbox alive.
            let s: f64 = num(a, 0, "seconds")?;
            let inner = dispatch(&a[1..])?;
            emit(&inner);
            sleep_secs(s);
            std::process::exit(0);
        }
        "securebits" => {
            // SAFETY: PR_GET_SECUREBITS takes no pointers.
            let r = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
            Ok(check(r.into(), json!({})))
        }
        "bind_inet" => cmd_bind_inet(num(a, 0, "port")?, a.get(1).is_some_and(|t| t == "udp")),
        other => Err(format!("unknown sub-command {other:?}")),
    }
}

// ---------------------------------------------------------------- files

fn cmd_open(a: &[String]) -> Res {
    let path = arg(a, 0, "path")?;
    let flags = open_flags(a.get(1).map_or("rdonly", |s| s))?;
    let fd = sys_open(path, flags)?;
    let r = check(fd.into(), json!({"path": path}));
    if fd >= 0 {
        close(fd);
    }
    Ok(r)
}

fn cmd_read(a: &[String]) -> Res {
    let path = arg(a, 0, "path")?;
    let max: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(65536);
    let fd = sys_open(path, libc::O_RDONLY | libc::O_CLOEXEC)?;
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"path": path, "step": "open"})));
    }
    let mut buf = vec![0u8; max + 1];
    let mut len = 0;
    let mut err = 0;
    while len < buf.len() {
        // SAFETY: the pointer and length describe the unused tail of `buf`.
        let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n < 0 {
            err = last_errno();
            break;
        }
        if n == 0 {
            break;
        }
        len += n as usize;
    }
    close(fd);
    if err != 0 {
        return Ok(fail(err, json!({"path": path, "step": "read", "len": len})));
    }
    let truncated = len > max;
    let data = &buf[..len.min(max)];
    let mut m = ok(json!({"path": path, "len": data.len(), "truncated": truncated}));
    match std::str::from_utf8(data) {
        Ok(s) if !truncated => m.insert("content".into(), json!(s)),
        _ => m.insert("content_base64".into(), json!(base64(data))),
    };
    Ok(m)
}

fn cmd_write(a: &[String], flags: libc::c_int) -> Res {
    let path = arg(a, 0, "path")?;
    let data = arg(a, 1, "data")?;
    let fd = sys_open(path, flags | libc::O_CLOEXEC)?;
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"path": path, "step": "open"})));
    }
    let (n, e) = write_all(fd, data.as_bytes());
    close(fd);
    Ok(if e != 0 {
        fail(e, json!({"path": path, "step": "write", "written": n}))
    } else {
        ok(json!({"path": path, "written": n}))
    })
}

fn cmd_ls(dir: &str) -> Res {
    Ok(match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            ok(json!({"names": names}))
        }
        Err(e) => io_fail(&e, json!({"path": dir})),
    })
}

fn file_type(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFCHR => "char",
        libc::S_IFBLK => "block",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        _ => "unknown",
    }
}

fn cmd_stat(path: &str, follow: bool) -> Res {
    let p = cstr(path)?;
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    let r = unsafe {
        if follow {
            libc::stat(p.as_ptr(), &mut st)
        } else {
            libc::lstat(p.as_ptr(), &mut st)
        }
    };
    if r < 0 {
        return Ok(fail(last_errno(), json!({"path": path})));
    }
    Ok(ok(json!({
        "path": path, "type": file_type(st.st_mode), "mode": st.st_mode & 0o7777,
        "uid": st.st_uid, "gid": st.st_gid, "size": st.st_size, "nlink": st.st_nlink,
        "dev": st.st_dev, "ino": st.st_ino,
        "rdev_major": libc::major(st.st_rdev), "rdev_minor": libc::minor(st.st_rdev),
    })))
}

fn cmd_statfs(path: &str) -> Res {
    let p = cstr(path)?;
    // SAFETY: an all-zero `statvfs` is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    let r = unsafe { libc::statvfs(p.as_ptr(), &mut st) };
    if r < 0 {
        return Ok(fail(last_errno(), json!({"path": path})));
    }
    let f = st.f_flag;
    Ok(ok(json!({
        "path": path,
        "rdonly": f & libc::ST_RDONLY != 0, "nosuid": f & libc::ST_NOSUID != 0,
        "nodev": f & libc::ST_NODEV != 0, "noexec": f & libc::ST_NOEXEC != 0,
        "bytes": st.f_blocks * st.f_frsize, "bytes_free": st.f_bfree * st.f_frsize,
        "inodes": st.f_files, "inodes_free": st.f_ffree,
    })))
}

fn cmd_readlink(path: &str) -> Res {
    Ok(match std::fs::read_link(path) {
        Ok(t) => ok(json!({"path": path, "target": t.to_string_lossy()})),
        Err(e) => io_fail(&e, json!({"path": path})),
    })
}

fn cmd_mknod(a: &[String]) -> Res {
    let path = cstr(arg(a, 0, "path")?)?;
    let kind = match arg(a, 1, "b|c")? {
        "b" => libc::S_IFBLK,
        "c" => libc::S_IFCHR,
        other => return Err(format!("bad node type {other:?}")),
    };
    let dev = libc::makedev(num(a, 2, "major")?, num(a, 3, "minor")?);
    // SAFETY: valid C string; mknod takes no other pointers.
    let r = unsafe { libc::mknod(path.as_ptr(), kind | 0o600, dev) };
    Ok(check(r.into(), json!({})))
}

fn cmd_exec(a: &[String]) -> Res {
    let path = arg(a, 0, "path")?;
    let cargs: Vec<CString> = a.iter().map(|s| cstr(s)).collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid C strings that outlive the call.
    unsafe { libc::execv(argv[0], argv.as_ptr()) };
    Ok(fail(last_errno(), json!({"path": path})))
}

// ---------------------------------------------------------------- /proc and identity

fn cmd_status(path: &str) -> Res {
    let text = match read_text(path) {
        Ok(t) => t,
        Err(e) => return Ok(io_fail(&e, json!({"path": path}))),
    };
    let mut m = ok(json!({}));
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        let nums = || -> Value {
            json!(v
                .split_whitespace()
                .filter_map(|x| x.parse::<i64>().ok())
                .collect::<Vec<_>>())
        };
        let val = match k {
            "Uid" | "Gid" | "Groups" => nums(),
            "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb" => json!(v),
            "NoNewPrivs" | "Seccomp" | "Seccomp_filters" | "Pid" | "PPid" | "Threads" => {
                json!(v.parse::<i64>().unwrap_or(-1))
            }
            "Name" | "State" => json!(v),
            _ => continue,
        };
        m.insert(k.to_string(), val);
    }
    Ok(m)
}

fn cmd_seccomp_all_tasks() -> Res {
    // A second task, so that "every task" is more than the main thread.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let mut tasks = Vec::new();
    let rd = match std::fs::read_dir("/proc/self/task") {
        Ok(rd) => rd,
        Err(e) => return Ok(io_fail(&e, json!({}))),
    };
    for e in rd.flatten() {
        let tid = e.file_name().to_string_lossy().into_owned();
        let status = read_text(&format!("/proc/self/task/{tid}/status")).unwrap_or_default();
        let sc = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(-1);
        tasks.push(json!({"tid": tid, "seccomp": sc}));
    }
    let _ = tx.send(());
    let _ = helper.join();
    Ok(ok(json!({"tasks": tasks})))
}

fn cmd_fds() -> Res {
    let names: Vec<String> = match std::fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => return Ok(io_fail(&e, json!({}))),
    };
    // The directory's own fd is closed now, so its readlink fails and it drops out.
    let mut fds: Vec<(i64, String)> = names
        .iter()
        .filter_map(|n| {
            let t = std::fs::read_link(format!("/proc/self/fd/{n}")).ok()?;
            Some((n.parse().ok()?, t.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    let list: Vec<Value> = fds
        .iter()
        .map(|(n, t)| json!({"fd": n, "target": t}))
        .collect();
    Ok(ok(
        json!({"fds": fds.iter().map(|f| f.0).collect::<Vec<_>>(), "targets": list}),
    ))
}

fn cmd_cwd_escape() -> Res {
    let dotdot = cstr("..")?;
    let mut failures = 0;
    for _ in 0..50 {
        // SAFETY: valid C string.
        if unsafe { libc::chdir(dotdot.as_ptr()) } < 0 {
            failures += 1;
        }
    }
    let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned());
    let mut names: Vec<String> = std::fs::read_dir(".")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    Ok(match cwd {
        Ok(c) => ok(json!({"cwd": c, "names": names, "chdir_failures": failures})),
        Err(e) => io_fail(&e, json!({"names": names})),
    })
}

fn cmd_pids() -> Res {
    Ok(match std::fs::read_dir("/proc") {
        Ok(rd) => {
            let mut pids: Vec<i64> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            pids.sort_unstable();
            // SAFETY: getpid has no requirements.
            ok(json!({"pids": pids, "self": unsafe { libc::getpid() }}))
        }
        Err(e) => io_fail(&e, json!({})),
    })
}

/// TIOCSTI of one byte into `fd`: the probe line of the call.
fn tiocsti(fd: libc::c_int, byte: u8) -> Obj {
    // SAFETY: TIOCSTI reads one byte from the pointer, which points at `byte`.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSTI, &byte as *const u8) };
    check(r.into(), json!({}))
}

/// PV5: tries to push `text` (e.g. "id\n") into the input of whatever terminal
/// it can reach, byte by byte with TIOCSTI: through fds 0, 1 and 2 and through
/// `/dev/tty` (the controlling terminal, if any). Reports, per target, the
/// first failing call (or success) and whether the fd is a tty.
fn cmd_tty_inject(text: &str) -> Res {
    let inject = |fd: libc::c_int| -> Obj {
        let mut last = ok(json!({}));
        for b in text.bytes() {
            last = tiocsti(fd, b);
            if last["ok"] != true {
                break;
            }
        }
        // SAFETY: isatty has no memory-safety requirements.
        last.insert("tty".into(), json!(unsafe { libc::isatty(fd) } == 1));
        last
    };
    let mut out = ok(json!({}));
    for fd in 0..3 {
        out.insert(format!("fd{fd}"), Value::Object(inject(fd)));
    }
    let fd = sys_open("/dev/tty", libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC)?;
    let mut dev_tty = check(fd.into(), json!({}));
    if fd >= 0 {
        dev_tty.insert("inject".into(), Value::Object(inject(fd)));
        close(fd);
    }
    out.insert("dev_tty".into(), Value::Object(dev_tty));
    Ok(out)
}

fn cmd_ids() -> Res {
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut gr, mut ge, mut gs) = (0, 0, 0);
    // SAFETY: out-pointers to local integers; the other calls take no pointers.
    let v = unsafe {
        libc::getresuid(&mut r, &mut e, &mut s);
        libc::getresgid(&mut gr, &mut ge, &mut gs);
        json!({
            "uid": [r, e, s], "gid": [gr, ge, gs],
            "pid": libc::getpid(), "ppid": libc::getppid(),
            "pgid": libc::getpgid(0), "sid": libc::getsid(0),
            "stdin_tty": libc::isatty(0) == 1,
        })
    };
    Ok(ok(v))
}

fn cmd_map(which: &str) -> Res {
    let path = format!("/proc/self/{which}");
    Ok(match read_text(&path) {
        Ok(t) => {
            let lines: Vec<Vec<u64>> = t
                .lines()
                .map(|l| {
                    l.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
                .collect();
            ok(json!({"map": lines}))
        }
        Err(e) => io_fail(&e, json!({})),
    })
}

fn cmd_write_uid_map() -> Res {
    let fd = sys_open("/proc/self/uid_map", libc::O_WRONLY | libc::O_CLOEXEC)?;
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "open"})));
    }
    let (_, e) = write_all(fd, b"0 0 4294967295\n");
    close(fd);
    Ok(if e != 0 {
        fail(e, json!({"step": "write"}))
    } else {
        ok(json!({}))
    })
}

fn cmd_rlimits() -> Res {
    let mut m = ok(json!({}));
    for (name, res) in [
        ("core", libc::RLIMIT_CORE),
        ("nofile", libc::RLIMIT_NOFILE),
        ("fsize", libc::RLIMIT_FSIZE),
        ("nproc", libc::RLIMIT_NPROC),
        ("as", libc::RLIMIT_AS),
    ] {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a valid out-pointer.
        unsafe { libc::getrlimit(res, &mut rl) };
        m.insert(name.into(), json!([rl.rlim_cur, rl.rlim_max]));
    }
    Ok(m)
}

// ---------------------------------------------------------------- seccomp

fn cmd_syscall(name: &str, x32_bit: libc::c_long) -> Res {
    use libc::*;
    let bad: c_long = 1; // an unmapped address: EFAULT if the kernel gets to read it
    let (nr, a): (c_long, [c_long; 6]) = match name {
        "getpid" => (SYS_getpid, [0; 6]),
        "keyctl" => (SYS_keyctl, [0 /* GET_KEYRING_ID */, -1000, 0, 0, 0, 0]),
        "add_key" => (SYS_add_key, [bad, bad, 0, 0, 0, 0]),
        "request_key" => (SYS_request_key, [bad, bad, 0, 0, 0, 0]),
        "bpf" => (SYS_bpf, [-1, 0, 0, 0, 0, 0]),
        "perf_event_open" => (SYS_perf_event_open, [bad, 0, -1, -1, 0, 0]),
        "userfaultfd" => (SYS_userfaultfd, [-1, 0, 0, 0, 0, 0]),
        "io_uring_setup" => (SYS_io_uring_setup, [0, bad, 0, 0, 0, 0]),
        "io_uring_enter" => (SYS_io_uring_enter, [-1, 0, 0, 0, 0, 0]),
        "io_uring_register" => (SYS_io_uring_register, [-1, 0, 0, 0, 0, 0]),
        "kexec_load" => (SYS_kexec_load, [0, 0, 0, -1, 0, 0]),
        "kexec_file_load" => (SYS_kexec_file_load, [-1, -1, 0, 0, -1, 0]),
        "init_module" => (SYS_init_module, [bad, 0, bad, 0, 0, 0]),
        "finit_module" => (SYS_finit_module, [-1, bad, 0, 0, 0, 0]),
        "delete_module" => (SYS_delete_module, [bad, 0, 0, 0, 0, 0]),
        "open_by_handle_at" => (SYS_open_by_handle_at, [-1, bad, 0, 0, 0, 0]),
        "name_to_handle_at" => (SYS_name_to_handle_at, [-1, bad, bad, bad, 0, 0]),
        "setns" => (SYS_setns, [-1, 0, 0, 0, 0, 0]),
        "swapon" => (SYS_swapon, [bad, 0, 0, 0, 0, 0]),
        "swapoff" => (SYS_swapoff, [bad, 0, 0, 0, 0, 0]),
        "reboot" => (SYS_reboot, [0, 0, 0, 0, 0, 0]),
        "clock_settime" => (
            SYS_clock_settime,
            [CLOCK_REALTIME as c_long, bad, 0, 0, 0, 0],
        ),
        "settimeofday" => (SYS_settimeofday, [bad, 0, 0, 0, 0, 0]),
        "adjtimex" => (SYS_adjtimex, [bad, 0, 0, 0, 0, 0]),
        "fsopen" => (SYS_fsopen, [bad, 0, 0, 0, 0, 0]),
        "fsconfig" => (SYS_fsconfig, [-1, 0, 0, 0, 0, 0]),
        "fsmount" => (SYS_fsmount, [-1, 0, 0, 0, 0, 0]),
        "fspick" => (SYS_fspick, [-1, bad, 0, 0, 0, 0]),
        "move_mount" => (SYS_move_mount, [-1, bad, -1, bad, 0, 0]),
        "open_tree" => (SYS_open_tree, [-1, bad, 0, 0, 0, 0]),
        "mount_setattr" => (SYS_mount_setattr, [-1, bad, 0, bad, 0, 0]),
        "mount" => (SYS_mount, [bad, bad, bad, 0, 0, 0]),
        "umount2" => (SYS_umount2, [bad, 0, 0, 0, 0, 0]),
        "pivot_root" => (SYS_pivot_root, [bad, bad, 0, 0, 0, 0]),
        "chroot" => (SYS_chroot, [bad, 0, 0, 0, 0, 0]),
        "acct" => (SYS_acct, [bad, 0, 0, 0, 0, 0]),
        "syslog" => (SYS_syslog, [3, 0, 0, 0, 0, 0]),
        "iopl" => (SYS_iopl, [3, 0, 0, 0, 0, 0]),
        "ioperm" => (SYS_ioperm, [0, 1024, 1, 0, 0, 0]),
        "fanotify_init" => (SYS_fanotify_init, [0, 0, 0, 0, 0, 0]),
        "pidfd_getfd" => (SYS_pidfd_getfd, [-1, -1, 0, 0, 0, 0]),
        "process_vm_readv" => (SYS_process_vm_readv, [1, bad, 1, bad, 1, 0]),
        "ptrace" => (SYS_ptrace, [PTRACE_ATTACH as c_long, 1, 0, 0, 0, 0]),
        "clone3" => (SYS_clone3, [bad, 0, 0, 0, 0, 0]),
        "unshare_user" => (SYS_unshare, [CLONE_NEWUSER as c_long, 0, 0, 0, 0, 0]),
        "personality" => (SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
        "quotactl" => (SYS_quotactl, [0, bad, 0, bad, 0, 0]),
        "lookup_dcookie" => (SYS_lookup_dcookie, [0, bad, 0, 0, 0, 0]),
        other => return Err(format!("unknown syscall {other:?}")),
    };
    let nr = nr | x32_bit;
    // SAFETY: every argument set above is a bad pointer, a bad fd or an invalid flag,
    // so the call fails harmlessly (or is a no-op such as getpid/unshare in this probe).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    Ok(check(r, json!({"syscall": name, "nr": nr})))
}

fn cmd_clone_newuser() -> Res {
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_long;
    // SAFETY: a raw clone without CLONE_VM behaves like fork; the child only calls _exit.
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    if r == 0 {
        child_exit(0);
    }
    if r > 0 {
        let st = wait_status(r as libc::pid_t);
        return Ok(ok(json!({"child": st})));
    }
    Ok(fail(last_errno(), json!({})))
}

fn cmd_int80_exit(code: u32) -> Res {
    // mov eax, 1 (exit); mov ebx, code; int 0x80; ret (reached only if int 0x80 returns)
    let mut prog = vec![0xb8, 1, 0, 0, 0, 0xbb];
    prog.extend_from_slice(&code.to_le_bytes());
    prog.extend_from_slice(&[0xcd, 0x80, 0xc3]);
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Ok(fail(last_errno(), json!({"step": "mmap"})));
    }
    // SAFETY: the page is 4096 writable bytes and `prog` is far shorter; the code is
    // a complete function that returns with `ret`, called with the C ABI (eax = result).
    let ret = unsafe {
        std::ptr::copy_nonoverlapping(prog.as_ptr(), page.cast::<u8>(), prog.len());
        let f: extern "C" fn() -> i32 = std::mem::transmute(page);
        f()
    };
    Ok(fail(-ret, json!({"step": "int80 returned", "eax": ret})))
}

/// i386 `exit_group`.
const NR32_EXIT_GROUP: u32 = 252;

/// An RWX page below 4 GiB (MAP_32BIT) filled with `int3`, or the failure line.
fn page_32bit() -> Result<*mut u8, Obj> {
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(fail(last_errno(), json!({"step": "mmap"})));
    }
    // SAFETY: the page is 4096 writable bytes.
    unsafe { std::ptr::write_bytes(page.cast::<u8>(), 0xcc, 4096) };
    Ok(page.cast())
}

/// `mov r32, imm32` (opcode 0xb8 + register number).
fn mov_imm32(code: &mut Vec<u8>, reg: u8, v: u32) {
    code.push(0xb8 + reg);
    code.extend_from_slice(&v.to_le_bytes());
}

const EAX: u8 = 0;
const EBX: u8 = 3;
const ESP: u8 = 4;
const EBP: u8 = 5;

/// Copies `parts` (offset, bytes) into the page and jumps to offset 0. The code
/// never returns: it ends in the kernel (exit_group or a fatal signal), or in
/// `hlt` (SIGSEGV in user mode) should the 32-bit call come back.
fn jump_to_page(page: *mut u8, parts: &[(usize, &[u8])]) -> ! {
    for (off, bytes) in parts {
        assert!(off + bytes.len() <= 4096, "code fits the page");
        // SAFETY: in bounds of the 4096-byte page (checked above), which does
        // not overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page.add(*off), bytes.len()) };
    }
    // SAFETY: the page holds complete code that never returns (see above); the
    // page stays mapped for the rest of the process.
    unsafe {
        let f: extern "C" fn() -> ! = std::mem::transmute(page);
        f()
    }
}

/// SC3: `sysenter` from 64-bit mode with the i386 numbering (eax = exit_group,
/// ebx = code). The kernel's SYSENTER entry (Intel; AMD raises #UD in long
/// mode) reads the user stack pointer from ebp and the sixth argument from
/// there, so ebp points into the page. Prints nothing when the process dies.
fn cmd_sysenter_exit(code: u32) -> Res {
    let page = match page_32bit() {
        Ok(p) => p,
        Err(line) => return Ok(line),
    };
    let base = page as usize as u32;
    let mut c = Vec::new();
    mov_imm32(&mut c, EAX, NR32_EXIT_GROUP);
    mov_imm32(&mut c, EBX, code);
    mov_imm32(&mut c, EBP, base + 4000);
    c.extend_from_slice(&[0x0f, 0x34, 0xf4]); // sysenter; hlt
    jump_to_page(page, &[(0, &c)])
}

/// SC3: a far call (`lcall`) through the 32-bit user code segment (selector
/// 0x23, __USER32_CS) into compatibility mode, where 32-bit code issues
/// exit_group(code) with `int $0x80`, `sysenter` or `syscall`. Prints nothing
/// when the process dies.
fn cmd_farcall_exit(code: u32, insn: &str) -> Res {
    let entry: &[u8] = match insn {
        "int80" => &[0xcd, 0x80],
        "sysenter" => &[0x0f, 0x34],
        "syscall" => &[0x0f, 0x05],
        other => return Err(format!("unknown entry instruction {other:?}")),
    };
    let page = match page_32bit() {
        Ok(p) => p,
        Err(line) => return Ok(line),
    };
    let base = page as usize as u32;
    const FAR_PTR: u32 = 0x80;
    const CODE32: u32 = 0x100;
    // 64-bit: a stack below 4 GiB (compatibility mode uses esp), then
    // `lcall *[abs32 FAR_PTR]` (ff /3 with a SIB absolute disp32); hlt.
    let mut c64 = Vec::new();
    mov_imm32(&mut c64, ESP, base + 4000);
    c64.extend_from_slice(&[0xff, 0x1c, 0x25]);
    c64.extend_from_slice(&(base + FAR_PTR).to_le_bytes());
    c64.push(0xf4);
    // The m16:32 far pointer: offset, then the selector.
    let mut far = (base + CODE32).to_le_bytes().to_vec();
    far.extend_from_slice(&0x23u16.to_le_bytes());
    // 32-bit: eax = exit_group, ebx = code, ebp = esp (for sysenter); entry; hlt.
    let mut c32 = Vec::new();
    mov_imm32(&mut c32, EAX, NR32_EXIT_GROUP);
    mov_imm32(&mut c32, EBX, code);
    c32.extend_from_slice(&[0x89, 0xe5]); // mov ebp, esp
    c32.extend_from_slice(entry);
    c32.push(0xf4);
    jump_to_page(
        page,
        &[(0, &c64), (FAR_PTR as usize, &far), (CODE32 as usize, &c32)],
    )
}

fn cmd_mount(path: &str, fstype: &str, data: &str) -> Res {
    let _ = std::fs::create_dir_all(path);
    let (src, tgt, ty, d) = (cstr(fstype)?, cstr(path)?, cstr(fstype)?, cstr(data)?);
    // SAFETY: all pointers are valid C strings.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            ty.as_ptr(),
            0,
            d.as_ptr().cast(),
        )
    };
    Ok(check(r.into(), json!({"fstype": fstype})))
}

fn ns_flags(spec: &str) -> Result<libc::c_int, String> {
    let mut flags = 0;
    for f in spec.split(',') {
        flags |= match f {
            "user" => libc::CLONE_NEWUSER,
            "mount" => libc::CLONE_NEWNS,
            "net" => libc::CLONE_NEWNET,
            "pid" => libc::CLONE_NEWPID,
            "ipc" => libc::CLONE_NEWIPC,
            "uts" => libc::CLONE_NEWUTS,
            "cgroup" => libc::CLONE_NEWCGROUP,
            "time" => 0x80,
            other => return Err(format!("unknown namespace {other:?}")),
        };
    }
    Ok(flags)
}

fn cmd_unshare(spec: &str) -> Res {
    let flags = ns_flags(spec)?;
    // SAFETY: unshare takes no pointers.
    let r = unsafe { libc::unshare(flags) };
    Ok(check(r.into(), json!({"flags": spec})))
}

fn cmd_unshare_mount_tmpfs(path: &str) -> Res {
    // SAFETY: unshare takes no pointers.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) } < 0 {
        return Ok(fail(last_errno(), json!({"step": "unshare"})));
    }
    let mut r = cmd_mount(path, "tmpfs", "size=1m")?;
    r.insert("step".into(), json!("mount"));
    Ok(r)
}

fn cmd_ptrace_attach(pid: libc::pid_t) -> Res {
    // SAFETY: PTRACE_ATTACH/DETACH take no pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
    let res = check(r, json!({"pid": pid}));
    if r == 0 {
        // SAFETY: as above.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    }
    Ok(res)
}

fn cmd_ptrace_sibling() -> Res {
    let target = fork();
    if target == 0 {
        child_sleep(10);
        child_exit(0);
    }
    if target < 0 {
        return Ok(fail(last_errno(), json!({"step": "fork"})));
    }
    let tracer = fork();
    if tracer == 0 {
        // SAFETY: PTRACE_ATTACH takes no pointers; errno is read right after.
        let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, target, 0, 0) };
        child_exit(if r < 0 { last_errno() } else { 0 });
    }
    let st = if tracer > 0 {
        wait_status(tracer)
    } else {
        json!({"fork_errno": last_errno()})
    };
    kill(target, libc::SIGKILL);
    wait_status(target);
    let e = st.get("exit_code").and_then(Value::as_i64).unwrap_or(-1) as i32;
    Ok(if e == 0 {
        ok(json!({"tracer": st}))
    } else {
        fail(e, json!({"tracer": st}))
    })
}

// ---------------------------------------------------------------- resources

fn cmd_fork_bomb(secs: u32, max: Option<usize>) -> Res {
    let max = max.unwrap_or(100_000);
    let mut pids = Vec::new();
    let mut err = 0;
    while pids.len() < max {
        let p = fork();
        if p == 0 {
            child_sleep(secs);
            child_exit(0);
        }
        if p < 0 {
            err = last_errno();
            break;
        }
        pids.push(p);
    }
    for &p in &pids {
        kill(p, libc::SIGKILL);
    }
    for &p in &pids {
        wait_status(p);
    }
    let f = json!({"count": pids.len()});
    Ok(if err != 0 { fail(err, f) } else { ok(f) })
}

fn cmd_thread_bomb(max: usize) -> Res {
    let mut count = 0;
    let mut err = None;
    while count < max {
        match std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| loop {
                std::thread::sleep(Duration::from_secs(3600));
            }) {
            Ok(_) => count += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let f = json!({"count": count});
    // Threads sleep forever: print and exit the whole process right away.
    let r = match err {
        Some(e) => io_fail(&e, f),
        None => ok(f),
    };
    emit(&r);
    std::process::exit(0);
}

/// Allocates `bytes` and writes to every page; the caller keeps the memory alive.
fn touch(bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    for i in (0..bytes).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(v)
}

fn cmd_alloc(bytes: usize) -> Res {
    let v = touch(bytes);
    Ok(ok(json!({"bytes": v.len()})))
}

fn cmd_alloc_children(n: usize, bytes: usize) -> Res {
    let mut pids = Vec::new();
    for _ in 0..n {
        let p = fork();
        if p == 0 {
            let v = touch(bytes);
            child_sleep(1);
            drop(std::hint::black_box(v));
            child_exit(0);
        }
        if p > 0 {
            pids.push(p);
        }
    }
    let st: Vec<Value> = pids.iter().map(|&p| wait_status(p)).collect();
    Ok(ok(json!({"children": st})))
}

fn cmd_fill(path: &str) -> Res {
    let fd = sys_open(
        path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
    )?;
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "open"})));
    }
    let buf = vec![0x5au8; 1 << 20];
    let mut total = 0usize;
    let err = loop {
        let (n, e) = write_all(fd, &buf);
        total += n;
        if e != 0 {
            break e;
        }
        if total > (1usize << 34) {
            break 0;
        }
    };
    close(fd);
    let f = json!({"bytes": total});
    Ok(if err != 0 { fail(err, f) } else { ok(f) })
}

fn cmd_many_files(dir: &str, n: usize) -> Res {
    let mut count = 0;
    let mut err = 0;
    while count < n {
        let fd = sys_open(
            &format!("{dir}/f{count}"),
            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
        )?;
        if fd < 0 {
            err = last_errno();
            break;
        }
        close(fd);
        count += 1;
    }
    let f = json!({"count": count});
    Ok(if err != 0 { fail(err, f) } else { ok(f) })
}

fn cmd_write_past_fsize(path: &str, bytes: usize, ignore: bool) -> Res {
    if ignore {
        ignore_signal(libc::SIGXFSZ);
    }
    let fd = sys_open(
        path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
    )?;
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "open"})));
    }
    let buf = vec![0x5au8; 64 * 1024];
    let mut total = 0;
    let mut err = 0;
    while total < bytes {
        let (n, e) = write_all(fd, &buf[..buf.len().min(bytes - total)]);
        total += n;
        if e != 0 {
            err = e;
            break;
        }
    }
    close(fd);
    let f = json!({"bytes": total, "sigxfsz_ignored": ignore});
    Ok(if err != 0 { fail(err, f) } else { ok(f) })
}

fn cmd_many_fds(n: usize) -> Res {
    let mut count = 0;
    let mut err = 0;
    while count < n {
        let fd = sys_open("/dev/null", libc::O_RDONLY)?;
        if fd < 0 {
            err = last_errno();
            break;
        }
        count += 1;
    }
    let f = json!({"count": count});
    Ok(if err != 0 { fail(err, f) } else { ok(f) })
}

fn cpu_ms() -> u64 {
    // SAFETY: an all-zero rusage is valid to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    ms(ru.ru_utime) + ms(ru.ru_stime)
}

fn cmd_cpu_hog(threads: usize, secs: f64) -> Res {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut x = 0u64;
                while Instant::now() < deadline {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let wall = start.elapsed().as_millis() as u64;
    Ok(ok(
        json!({"wall_ms": wall, "cpu_ms": cpu_ms(), "threads": threads}),
    ))
}

// ---------------------------------------------------------------- lifecycle

fn cmd_escape_kill(secs: u32) -> Res {
    // SAFETY: setsid and prctl(PR_SET_CHILD_SUBREAPER) take no pointers.
    let (sid, subreaper) = unsafe {
        (
            libc::setsid(),
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0),
        )
    };
    let sid_errno = if sid < 0 { last_errno() } else { 0 };
    let sub_errno = if subreaper < 0 { last_errno() } else { 0 };
    // Double fork: a sleeper in its own session whose parent is gone.
    let c = fork();
    if c == 0 {
        // SAFETY: setsid takes no pointers.
        unsafe { libc::setsid() };
        if fork() == 0 {
            child_sleep(secs);
            child_exit(0);
        }
        child_exit(0);
    }
    if c > 0 {
        wait_status(c);
    }
    // A stopped process.
    let stopped = fork();
    if stopped == 0 {
        // SAFETY: getpid/kill take no pointers.
        unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
        child_sleep(secs);
        child_exit(0);
    }
    // Unreaped children (zombies).
    let mut zombies = 0;
    let mut zerr = 0;
    while zombies < 500 {
        let p = fork();
        if p == 0 {
            child_exit(0);
        }
        if p < 0 {
            zerr = last_errno();
            break;
        }
        zombies += 1;
    }
    emit(&ok(json!({
        "setsid_errno": sid_errno, "subreaper_errno": sub_errno,
        "stopped_pid": stopped, "zombies": zombies, "zombie_errno": errno_name(zerr),
    })));
    child_sleep(secs);
    std::process::exit(0);
}

/// LC3: every task of the payload stopped, SIGTERM ignored: `n` sleeping
/// children, then kill(-1, SIGSTOP) (every process but the sandbox's init and
/// the caller), a line, then SIGSTOP of the caller itself. Only SIGKILL (or a
/// cgroup kill) ends them; the line is the last thing it prints.
fn cmd_stop_all(n: u32, secs: u32) -> Res {
    ignore_signal(libc::SIGTERM);
    let mut forked = 0;
    let mut ferr = 0;
    for _ in 0..n {
        let c = fork();
        if c == 0 {
            child_sleep(secs);
            child_exit(0);
        }
        if c < 0 {
            ferr = last_errno();
            break;
        }
        forked += 1;
    }
    let r = kill(-1, libc::SIGSTOP);
    let stop_errno = if r < 0 { last_errno() } else { 0 };
    emit(&ok(json!({
        "children": forked, "fork_errno": errno_name(ferr),
        "stop_errno": errno_name(stop_errno),
    })));
    // SAFETY: getpid and kill take no pointers.
    unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
    child_sleep(secs);
    std::process::exit(0);
}

fn cmd_kill_range(sig: i32, from: i32, to: i32) -> Res {
    // Survive our own signal coming back (e.g. through an init that forwards SIGTERM).
    if sig != libc::SIGKILL && sig != libc::SIGSTOP && sig != 0 {
        ignore_signal(sig);
    }
    // SAFETY: getpid has no requirements.
    let me = unsafe { libc::getpid() };
    let mut hits = Vec::new();
    let mut errors: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for pid in from..=to {
        if pid == me {
            continue;
        }
        if kill(pid, sig) == 0 {
            hits.push(pid);
        } else {
            *errors.entry(errno_name(last_errno())).or_default() += 1;
        }
    }
    Ok(ok(json!({"self": me, "signalled": hits, "errors": errors})))
}

// ---------------------------------------------------------------- network and IPC

fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> libc::c_int {
    // SAFETY: socket takes no pointers.
    unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) }
}

fn cmd_connect_inet(ip: &str, port: u16, udp: bool) -> Res {
    let addr: std::net::Ipv4Addr = ip.parse().map_err(|_| format!("bad IPv4 address {ip:?}"))?;
    let ty = if udp {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    let fd = socket(libc::AF_INET, ty, 0);
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "socket"})));
    }
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `tv` and `sa` are valid for the sizes passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let res = check(r.into(), json!({"step": "connect"}));
    close(fd);
    Ok(res)
}

fn cmd_socket(family: &str, ty: &str) -> Res {
    let domain = match family {
        "unix" => libc::AF_UNIX,
        "inet" => libc::AF_INET,
        "inet6" => libc::AF_INET6,
        "packet" => libc::AF_PACKET,
        "netlink" => libc::AF_NETLINK,
        "vsock" => libc::AF_VSOCK,
        "alg" => libc::AF_ALG,
        "key" => libc::AF_KEY,
        "bluetooth" => libc::AF_BLUETOOTH,
        "can" => libc::AF_CAN,
        other => return Err(format!("unknown family {other:?}")),
    };
    let t = match ty {
        "stream" => libc::SOCK_STREAM,
        "dgram" => libc::SOCK_DGRAM,
        "raw" => libc::SOCK_RAW,
        "seqpacket" => libc::SOCK_SEQPACKET,
        other => return Err(format!("unknown socket type {other:?}")),
    };
    let proto = match (domain, t) {
        (libc::AF_PACKET, _) => i32::from((libc::ETH_P_ALL as u16).to_be()),
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_RAW) => libc::IPPROTO_ICMP,
        _ => 0,
    };
    let fd = socket(domain, t, proto);
    let r = check(fd.into(), json!({"family": family, "type": ty}));
    if fd >= 0 {
        close(fd);
    }
    Ok(r)
}

fn abstract_addr(name: &str) -> Result<(libc::sockaddr_un, libc::socklen_t), String> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    if name.len() + 1 > sa.sun_path.len() {
        return Err("abstract name too long".into());
    }
    for (i, b) in name.bytes().enumerate() {
        sa.sun_path[i + 1] = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + name.len();
    Ok((sa, len as libc::socklen_t))
}

fn cmd_abstract_bind(name: &str, secs: f64) -> Res {
    let (sa, len) = abstract_addr(name)?;
    let fd = socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "socket"})));
    }
    // SAFETY: `sa` is valid for `len` bytes.
    if unsafe { libc::bind(fd, (&sa as *const libc::sockaddr_un).cast(), len) } < 0 {
        return Ok(fail(last_errno(), json!({"step": "bind"})));
    }
    // SAFETY: listen takes no pointers.
    if unsafe { libc::listen(fd, 16) } < 0 {
        return Ok(fail(last_errno(), json!({"step": "listen"})));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut accepted = 0;
    while Instant::now() < deadline {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, left.max(1)) } > 0 {
            // SAFETY: NULL address out-pointers are allowed.
            let c = unsafe { libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) };
            if c >= 0 {
                accepted += 1;
                close(c);
            }
        }
    }
    close(fd);
    Ok(ok(json!({"accepted": accepted})))
}

fn cmd_abstract_connect(name: &str) -> Res {
    let (sa, len) = abstract_addr(name)?;
    let fd = socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "socket"})));
    }
    // SAFETY: `sa` is valid for `len` bytes.
    let r = unsafe { libc::connect(fd, (&sa as *const libc::sockaddr_un).cast(), len) };
    let res = check(r.into(), json!({"step": "connect"}));
    close(fd);
    Ok(res)
}

/// SysV key used by `ipc_create` and looked up by `ipc_list`.
const IPC_KEY: libc::key_t = 0x5044_4b31;

fn cmd_ipc_create() -> Res {
    // SAFETY: the *get calls take no pointers.
    let (shm, msg, sem) = unsafe {
        (
            libc::shmget(IPC_KEY, 4096, libc::IPC_CREAT | 0o600),
            libc::msgget(IPC_KEY, libc::IPC_CREAT | 0o600),
            libc::semget(IPC_KEY, 1, libc::IPC_CREAT | 0o600),
        )
    };
    let f = json!({"shm": shm, "msg": msg, "sem": sem});
    Ok(if shm < 0 || msg < 0 || sem < 0 {
        fail(last_errno(), f)
    } else {
        ok(f)
    })
}

fn cmd_ipc_list() -> Res {
    let mut buf = [0i32; 64];
    // SAFETY: SHM_INFO/MSG_INFO/SEM_INFO write a struct far smaller than the 256-byte
    // buffer; the *get calls take no pointers.
    let v = unsafe {
        let shm_hi = libc::shmctl(0, 14 /* SHM_INFO */, buf.as_mut_ptr().cast());
        let shm_used = buf[0];
        buf = [0; 64];
        let msg_hi = libc::msgctl(0, 12 /* MSG_INFO */, buf.as_mut_ptr().cast());
        let msg_queues = buf[0];
        buf = [0; 64];
        let sem_hi = libc::semctl(0, 0, 19 /* SEM_INFO */, buf.as_mut_ptr());
        let sem_sets = buf[7];
        json!({
            "shm_used_ids": if shm_hi < 0 { -1 } else { shm_used },
            "msg_queues": if msg_hi < 0 { -1 } else { msg_queues },
            "sem_sets": if sem_hi < 0 { -1 } else { sem_sets },
            "shm_key_found": libc::shmget(IPC_KEY, 0, 0) >= 0,
            "msg_key_found": libc::msgget(IPC_KEY, 0) >= 0,
            "sem_key_found": libc::semget(IPC_KEY, 0, 0) >= 0,
        })
    };
    Ok(ok(v))
}

/// `bind_inet PORT [udp]`: bind a TCP (or UDP) socket to 0.0.0.0:PORT.
fn cmd_bind_inet(port: u16, udp: bool) -> Res {
    let ty = if udp {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    let fd = socket(libc::AF_INET, ty, 0);
    if fd < 0 {
        return Ok(fail(last_errno(), json!({"step": "socket"})));
    }
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::UNSPECIFIED).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a valid sockaddr_in of the size passed.
    let r = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let res = check(r.into(), json!({"step": "bind", "port": port, "udp": udp}));
    close(fd);
    Ok(res)
}
