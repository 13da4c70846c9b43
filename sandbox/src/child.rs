//! The child side. `child_main` runs in the cloned process (pid 1 of the new
//! pid namespace) and becomes the sandbox's init; the payload is its only
//! child. The order of `setup` is the security argument: each step relies on
//! the ones above it.

use std::ffi::{c_char, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus as NixWait};
use nix::unistd::Pid;

use crate::error::{At, ChildError, SpawnError, Step};
use crate::fd::{self, ChildStdio};
use crate::landlock::{self, LandlockPlan};
use crate::mount::{self, RootPlan};
use crate::namespaces;
use crate::rlimit::{self, RlimitPlan};
use crate::seccomp::CompiledSeccomp;
use crate::spec::ExecSpec;
use crate::sync::{self, Msg};
use crate::sys::{self, WaitStatus};
use crate::trace::ChildMarks;

/// execve's arguments, built in the parent so the payload allocates nothing.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    path: CString,
    cwd: CString,
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

fn cstring(s: &[u8], what: &str) -> Result<CString, SpawnError> {
    CString::new(s).map_err(|_| SpawnError::InvalidSpec(format!("NUL byte in {what}")))
}

impl ExecPlan {
    pub(crate) fn new(e: &ExecSpec) -> Result<ExecPlan, SpawnError> {
        if !e.path.is_absolute() || !e.cwd.is_absolute() {
            return Err(SpawnError::InvalidSpec(
                "command path and cwd must be absolute".into(),
            ));
        }
        if e.argv.is_empty() {
            return Err(SpawnError::InvalidSpec("argv is empty".into()));
        }
        let mut strings = Vec::with_capacity(e.argv.len() + e.env.len());
        for a in &e.argv {
            strings.push(cstring(a.as_bytes(), "argv")?);
        }
        for (k, v) in &e.env {
            if k.is_empty() || k.contains('=') {
                return Err(SpawnError::InvalidSpec(format!("environment name {k:?}")));
            }
            strings.push(cstring(format!("{k}={v}").as_bytes(), "environment")?);
        }
        let mut argv: Vec<*const c_char> =
            strings[..e.argv.len()].iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const c_char> =
            strings[e.argv.len()..].iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        Ok(ExecPlan {
            path: cstring(e.path.as_os_str().as_bytes(), "command path")?,
            cwd: cstring(e.cwd.as_os_str().as_bytes(), "cwd")?,
            _strings: strings,
            argv,
            envp,
        })
    }
}

/// Fill `envp` with the run's own entries (from `Go`: `NAME=value\0`
/// each, pointed at where they lie in `extra`), then the spec's, then the
/// terminating null. The run's come first, so they win for getenv. Pushes
/// only within `envp`'s capacity, so the payload allocates nothing here.
/// False if `extra` is malformed or does not fit.
fn fill_envp(extra: &[u8], base: &[*const c_char], envp: &mut Vec<*const c_char>) -> bool {
    envp.clear();
    let mut start = 0;
    while start < extra.len() {
        let Some(len) = extra[start..].iter().position(|&b| b == 0) else {
            return false;
        };
        let entry = &extra[start..start + len];
        match entry.iter().position(|&b| b == b'=') {
            Some(eq) if eq > 0 => {}
            _ => return false,
        }
        if envp.len() == envp.capacity() {
            return false;
        }
        envp.push(entry.as_ptr().cast());
        start += len + 1;
    }
    // The spec's array ends in its null pointer, which ends ours too.
    if envp.capacity() - envp.len() < base.len() {
        return false;
    }
    envp.extend_from_slice(base);
    true
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub root: RootPlan,
    pub hostname: String,
    pub rlimits: RlimitPlan,
    pub last_cap: libc::c_ulong,
    pub landlock: LandlockPlan,
    pub seccomp: Arc<CompiledSeccomp>,
    pub exec: ExecPlan,
    /// The launch's start, when tracing.
    pub trace: Option<std::time::Instant>,
}

/// Runs in the cloned child. Never returns.
pub(crate) fn child_main(plan: &ChildPlan, stdio: ChildStdio, sock: OwnedFd) -> ! {
    match setup(plan, &stdio, &sock) {
        Ok(()) => {
            // close_all_except closed the child's pipe ends; forget the
            // objects so nothing closes those numbers again.
            std::mem::forget(stdio);
            init(plan, sock)
        }
        Err(e) => {
            let _ = sync::send(
                sock.as_fd(),
                Msg::Failed {
                    step: e.step,
                    errno: e.errno,
                },
                None,
            );
            sys::exit_now(127)
        }
    }
}

fn setup(p: &ChildPlan, stdio: &ChildStdio, sock: &OwnedFd) -> Result<(), ChildError> {
    let mut t = ChildMarks::new(p.trace);
    // If the launcher dies, so does the sandbox.
    sys::set_pdeathsig(libc::SIGKILL).at(Step::DeathSignal)?;
    // The parent writes our uid/gid maps and puts us in the cgroup (v1).
    match sync::recv(sock.as_fd(), false) {
        Ok(Some((Msg::Proceed, _))) => {}
        Ok(_) => sys::exit_now(127), // the parent gave up on us
        Err(e) => {
            return Err(ChildError {
                step: Step::WaitParent,
                errno: e,
            })
        }
    }
    t.mark(Step::WaitParent);
    // Before any mount: files we create must belong to the sandbox's uid.
    namespaces::switch_ids().at(Step::SwitchIds)?;
    // Changing ids cleared the death signal (commit_creds resets it): set it
    // again, then make sure the launcher did not die in between.
    sys::set_pdeathsig(libc::SIGKILL).at(Step::DeathSignal)?;
    if sync::peer_gone(sock.as_fd()) {
        sys::exit_now(127);
    }
    // Now that we sit in the run's cgroup, make it our cgroup namespace root.
    namespaces::unshare_cgroup().at(Step::CgroupNamespace)?;
    nix::unistd::sethostname(&p.hostname).at(Step::Hostname)?;
    t.mark(Step::Hostname);
    // Mounting needs CAP_SYS_ADMIN in our namespace: before the caps go.
    let work = mount::build_root(&p.root, &mut t)?;
    nix::unistd::chdir(p.exec.cwd.as_c_str()).at(Step::Chdir)?;
    rlimit::apply(&p.rlimits)?;
    // No controlling terminal: TIOCSTI and /dev/tty reach nothing.
    nix::unistd::setsid().at(Step::Session)?;
    fd::install_stdio(stdio)?;
    t.mark(Step::Stdio);
    crate::caps::drop_all(p.last_cap)?;
    t.mark(Step::Caps);
    // Late on purpose (runc GHSA-xr7r-f8xq-vfvv): nothing opened before this survives.
    let mut keep = vec![sock.as_raw_fd()];
    if let Some(w) = &work {
        keep.push(w.as_raw_fd());
    }
    fd::close_all_except(&keep)?;
    sys::set_no_new_privs().at(Step::NoNewPrivs)?;
    t.mark(Step::NoNewPrivs);
    let status = landlock::restrict_self(&p.landlock).at(Step::Landlock)?;
    t.mark(Step::Landlock);
    // The init's /proc entries become unreachable to the payload (ptrace checks).
    sys::set_not_dumpable().at(Step::Ready)?;
    for &(step, ns) in t.marks() {
        sync::send(sock.as_fd(), Msg::Mark { step, ns }, None).at(Step::Ready)?;
    }
    sync::send(
        sock.as_fd(),
        Msg::Ready {
            landlock: status.code(),
        },
        work.as_ref().map(|w| w.as_fd()),
    )
    .at(Step::Ready)?;
    drop(work);
    Ok(())
}

/// The sandbox's pid 1: start the payload (which waits for the caller's
/// go), forward termination signals to every process of the sandbox, reap
/// orphans, and when the payload ends kill whatever it left and report its
/// status.
fn init(p: &ChildPlan, sock: OwnedFd) -> ! {
    // Block everything first, so no signal is lost between fork and sigwait.
    let all = SigSet::all();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None) {
        report_failed(&sock, Step::Signals, e);
    }
    // Everything the payload will need after its seccomp filter is in,
    // allocated here: the go's datagram and the environment's pointers.
    let mut go = vec![0u8; sync::GO_DATAGRAM];
    let mut envp: Vec<*const c_char> = Vec::with_capacity(sync::MAX_GO_ENV / 3 + p.exec.envp.len());
    let payload = match sys::fork() {
        Ok(0) => payload(p, sock, &mut go, &mut envp),
        Ok(pid) => Pid::from_raw(pid),
        Err(e) => report_failed(&sock, Step::Fork, e.errno),
    };
    // The payload holds stdio now; the init keeps none of it, so the parent
    // sees EOF as soon as the payload's tree closes its ends.
    let _ = sys::close_range(0, 2, 0);
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        match sig {
            Signal::SIGCHLD => {
                if let Some(status) = reap(payload) {
                    mark(p, &sock, Step::Exec);
                    // The payload is done: nothing it started may outlive it.
                    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                    while !matches!(waitpid(None, None), Err(Errno::ECHILD)) {}
                    let _ = sync::send(
                        sock.as_fd(),
                        Msg::Exit {
                            status: status.to_raw(),
                        },
                        None,
                    );
                    sys::exit_now(0);
                }
            }
            Signal::SIGTERM
            | Signal::SIGINT
            | Signal::SIGHUP
            | Signal::SIGQUIT
            | Signal::SIGUSR1
            | Signal::SIGUSR2 => {
                // To every process in the namespace but us.
                let _ = kill(Pid::from_raw(-1), sig);
            }
            _ => {}
        }
    }
}

/// Reap every exited child; the payload's status once it is among them.
fn reap(payload: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(NixWait::Exited(pid, code)) if pid == payload => {
                found = Some(WaitStatus::Exited(code))
            }
            Ok(NixWait::Signaled(pid, sig, _)) if pid == payload => {
                found = Some(WaitStatus::Signaled(sig as i32))
            }
            Ok(NixWait::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}

/// Tracing only: tell the parent that `step` just ended.
fn mark(p: &ChildPlan, sock: &OwnedFd, step: Step) {
    if let Some(t0) = p.trace {
        let ns = crate::trace::since(t0);
        let _ = sync::send_plain(sock.as_fd(), Msg::Mark { step, ns });
    }
}

/// A setup step of the init or the payload failed: say which, and exit.
/// (write(2), not sendmsg: the payload's filter may not allow sendmsg.)
fn report_failed(sock: &OwnedFd, step: Step, errno: Errno) -> ! {
    let _ = sync::send_plain(sock.as_fd(), Msg::Failed { step, errno });
    sys::exit_now(127)
}

/// The payload: default signals, seccomp, then — set up to the last step,
/// so that a prepared sandbox only has an exec left to do — wait for the
/// go, and exec with the run's environment. After the filter it makes no
/// call but read(2), write(2) and execve(2).
fn payload(p: &ChildPlan, sock: OwnedFd, go: &mut [u8], envp: &mut Vec<*const c_char>) -> ! {
    mark(p, &sock, Step::Fork);
    if let Err(e) = sys::reset_signals() {
        report_failed(&sock, Step::Signals, e.errno);
    }
    if let Err(e) = p.seccomp.apply() {
        report_failed(&sock, Step::Seccomp, e);
    }
    mark(p, &sock, Step::Seccomp);
    let env = match sync::read_go(sock.as_fd(), go) {
        Ok(Some(env)) => env,
        Ok(None) => sys::exit_now(127), // the caller dropped the sandbox
        Err(e) => report_failed(&sock, Step::Go, e),
    };
    if !fill_envp(env, &p.exec.envp, envp) {
        report_failed(&sock, Step::Go, Errno::EINVAL);
    }
    mark(p, &sock, Step::Go);
    let errno = sys::execve(&p.exec.path, &p.exec.argv, envp).errno;
    let _ = sync::send_plain(sock.as_fd(), Msg::ExecFailed { errno });
    sys::exit_now(127)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn exec(argv: &[&str], env: &[(&str, &str)]) -> ExecSpec {
        ExecSpec {
            path: PathBuf::from("/bin/echo"),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: PathBuf::from("/"),
        }
    }

    #[test]
    fn exec_plan_arrays_are_null_terminated() {
        let p = ExecPlan::new(&exec(&["echo", "hi"], &[("A", "1")])).unwrap();
        assert_eq!(p.argv.len(), 3);
        assert!(p.argv[2].is_null());
        assert_eq!(p.envp.len(), 2);
        assert!(p.envp[1].is_null());
    }

    #[test]
    fn exec_plan_rejects_nul_bad_env_and_relative_paths() {
        assert!(ExecPlan::new(&exec(&["a\0b"], &[])).is_err());
        assert!(ExecPlan::new(&exec(&["x"], &[("A=B", "1")])).is_err());
        assert!(ExecPlan::new(&exec(&["x"], &[("", "1")])).is_err());
        assert!(ExecPlan::new(&exec(&[], &[])).is_err());
        let mut e = exec(&["x"], &[]);
        e.path = PathBuf::from("bin/echo");
        assert!(ExecPlan::new(&e).is_err());
    }

    #[test]
    fn run_env_comes_first_in_place_and_bad_or_oversized_env_is_refused() {
        let plan = ExecPlan::new(&exec(&["echo"], &[("PATH", "/bin")])).unwrap();
        let extra = b"EXECUTION_ID=e-1\0TRACE_ID=t\0";
        let mut envp: Vec<*const c_char> = Vec::with_capacity(8);
        assert!(fill_envp(extra, &plan.envp, &mut envp));
        let read = |p: *const c_char| {
            // SAFETY: every pointer but the last points at a NUL-terminated
            // entry of `extra` or of the plan, both alive for the whole test.
            let c = unsafe { std::ffi::CStr::from_ptr(p) };
            c.to_str().unwrap().to_owned()
        };
        let got: Vec<String> = envp[..envp.len() - 1].iter().map(|&p| read(p)).collect();
        assert_eq!(got, ["EXECUTION_ID=e-1", "TRACE_ID=t", "PATH=/bin"]);
        assert!(envp.last().unwrap().is_null());
        // No run environment at all: the spec's alone.
        assert!(fill_envp(b"", &plan.envp, &mut envp));
        assert_eq!(envp.len(), 2);
        for bad in [&b"NOEQUALS\0"[..], b"=v\0", b"A=1"] {
            assert!(!fill_envp(bad, &plan.envp, &mut envp), "{bad:?}");
        }
        // More entries than the room made for them: refused, never grown.
        let mut small: Vec<*const c_char> = Vec::with_capacity(2);
        assert!(!fill_envp(b"A=1\0B=2\0", &plan.envp, &mut small));
        assert_eq!(small.capacity(), 2);
    }
}
