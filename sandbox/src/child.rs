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

/// The payload's environment: the run's own entries (from `Go`) first, so
/// they win over the spec's for getenv, then the spec's. Built by the init
/// before it forks, so the payload allocates nothing.
#[derive(Debug)]
pub(crate) struct RunEnv {
    _strings: Vec<CString>,
    envp: Vec<*const c_char>,
}

impl RunEnv {
    /// None if `extra` is not a sequence of `NAME=value\0` entries.
    fn new(extra: &[u8], exec: &ExecPlan) -> Option<RunEnv> {
        let mut strings = Vec::new();
        if !extra.is_empty() {
            let body = extra.strip_suffix(b"\0")?;
            for entry in body.split(|&b| b == 0) {
                let eq = entry.iter().position(|&b| b == b'=')?;
                if eq == 0 {
                    return None;
                }
                strings.push(CString::new(entry).ok()?);
            }
        }
        let mut envp: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        // The spec's array ends in its null pointer, which ends ours too.
        envp.extend_from_slice(&exec.envp);
        Some(RunEnv {
            _strings: strings,
            envp,
        })
    }
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

/// The sandbox's pid 1: wait for the caller's go, start the payload, forward
/// termination signals to every process of the sandbox, reap orphans, and
/// when the payload ends kill whatever it left and report its status.
fn init(p: &ChildPlan, sock: OwnedFd) -> ! {
    fn fail(sock: &OwnedFd, step: Step, errno: Errno) -> ! {
        let _ = sync::send(sock.as_fd(), Msg::Failed { step, errno }, None);
        sys::exit_now(127)
    }
    // Block everything first, so no signal is lost between fork and sigwait.
    let all = SigSet::all();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None) {
        fail(&sock, Step::Signals, e);
    }
    // Ready to run: a prepared sandbox waits here, set up, until it is used.
    let env = match sync::recv_go(sock.as_fd()) {
        Ok(Some(env)) => env,
        Ok(None) => sys::exit_now(127), // the caller dropped the sandbox
        Err(e) => fail(&sock, Step::Go, e),
    };
    mark(p, &sock, Step::Go);
    let Some(envp) = RunEnv::new(&env, &p.exec) else {
        fail(&sock, Step::Go, Errno::EINVAL)
    };
    let payload = match sys::fork() {
        Ok(0) => payload(p, sock, &envp),
        Ok(pid) => Pid::from_raw(pid),
        Err(e) => fail(&sock, Step::Fork, e.errno),
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

/// The payload: default signals, seccomp last, exec.
/// Tracing only: tell the parent that `step` just ended.
fn mark(p: &ChildPlan, sock: &OwnedFd, step: Step) {
    if let Some(t0) = p.trace {
        let ns = crate::trace::since(t0);
        let _ = sync::send(sock.as_fd(), Msg::Mark { step, ns }, None);
    }
}

fn payload(p: &ChildPlan, sock: OwnedFd, env: &RunEnv) -> ! {
    mark(p, &sock, Step::Fork);
    let errno = match sys::reset_signals() {
        Err(e) => e.errno,
        // Last, so the filter only has to allow execve and what the payload uses.
        Ok(()) => match p.seccomp.apply() {
            Err(e) => {
                let _ = sync::send(
                    sock.as_fd(),
                    Msg::Failed {
                        step: Step::Seccomp,
                        errno: e,
                    },
                    None,
                );
                sys::exit_now(127);
            }
            Ok(()) => {
                // (Sent only if the profile allows sendmsg; tracing is best effort.)
                mark(p, &sock, Step::Seccomp);
                sys::execve(&p.exec.path, &p.exec.argv, &env.envp).errno
            }
        },
    };
    let _ = sync::send(sock.as_fd(), Msg::ExecFailed { errno }, None);
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
}
