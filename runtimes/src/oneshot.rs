//! Drive one sandbox to completion from a blocking caller (`paddockd run`,
//! tests): stdin written without blocking while stdout and stderr are
//! drained, output capped (the excess is read and dropped so the function
//! never blocks on a full pipe), the deadline enforced with SIGTERM and, after
//! the grace, SIGKILL of the whole tree.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use paddock_policies::Protocol;
use paddock_sandbox::{spawn, Exit, Sandbox, SpawnError};

use crate::error::RuntimeError;
use crate::native::{self, Invocation, LaunchContext, PreparedPolicy, OUTPUT_NAME};
use crate::report::{Limit, RunReport, StartError, Status};

/// One output stream being captured.
#[derive(Debug, Default)]
pub struct Capture {
    pub data: Vec<u8>,
    pub truncated: bool,
    pub eof: bool,
}

impl Capture {
    /// Read what is available; keep at most `cap` bytes.
    pub fn read_from(&mut self, fd: BorrowedFd<'_>, cap: u64) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    let room = (cap as usize).saturating_sub(self.data.len());
                    if n > room {
                        self.truncated = true;
                    }
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.eof = true;
                    return;
                }
            }
        }
    }
}

/// What driving the sandbox produced.
#[derive(Debug)]
pub struct Driven {
    pub exit: Exit,
    pub stdout: Capture,
    pub stderr: Capture,
    pub timed_out: bool,
}

fn remaining(until: Instant) -> PollTimeout {
    let ms = until.saturating_duration_since(Instant::now()).as_millis();
    PollTimeout::try_from(ms.min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX)
}

/// Feed `input`, capture output, enforce `timeout` then `grace`, until the
/// sandbox has ended and its pipes are drained.
pub fn drive(
    sb: &mut Sandbox,
    input: &[u8],
    timeout: Duration,
    grace: Duration,
    cap: u64,
) -> Driven {
    let start = sb.started();
    let deadline = start + timeout;
    let mut kill_at: Option<Instant> = None;
    let mut stdin: Option<OwnedFd> = sb.take_stdin();
    let mut written = 0usize;
    if input.is_empty() {
        stdin = None;
    }
    let mut out = Capture::default();
    let mut err = Capture::default();
    let mut exit: Option<Exit> = None;
    let mut timed_out = false;
    loop {
        if exit.is_none() {
            if let Ok(Some(e)) = sb.try_wait() {
                exit = Some(e);
            }
        }
        if let Some(e) = exit {
            // Everything in the sandbox is dead: drain what the pipes hold.
            out.read_from(sb.stdout(), cap);
            err.read_from(sb.stderr(), cap);
            if (out.eof && err.eof)
                || Instant::now() > start + timeout + grace + Duration::from_secs(1)
            {
                return Driven {
                    exit: e,
                    stdout: out,
                    stderr: err,
                    timed_out,
                };
            }
        }
        let now = Instant::now();
        if !timed_out && now >= deadline {
            timed_out = true;
            sb.terminate();
            kill_at = Some(now + grace);
        }
        if let Some(k) = kill_at {
            if now >= k {
                sb.kill();
                kill_at = None;
            }
        }
        let until = kill_at.unwrap_or(if timed_out {
            now + Duration::from_millis(50)
        } else {
            deadline
        });
        let mut fds = Vec::with_capacity(4);
        fds.push(PollFd::new(sb.pidfd(), PollFlags::POLLIN));
        if !out.eof {
            fds.push(PollFd::new(sb.stdout(), PollFlags::POLLIN));
        }
        if !err.eof {
            fds.push(PollFd::new(sb.stderr(), PollFlags::POLLIN));
        }
        let stdin_slot = stdin.as_ref().map(|fd| {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            fds.len() - 1
        });
        let timeout = if exit.is_some() {
            PollTimeout::from(10u8)
        } else {
            remaining(until)
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        let stdin_ready = stdin_slot
            .and_then(|i| fds[i].revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if !out.eof {
            out.read_from(sb.stdout(), cap);
        }
        if !err.eof {
            err.read_from(sb.stderr(), cap);
        }
        if stdin_ready {
            let fd = stdin.as_ref().expect("stdin polled");
            match nix::unistd::write(fd, &input[written..]) {
                Ok(n) => written += n,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => written = input.len(), // EPIPE: the function stopped reading
            }
            if written >= input.len() {
                stdin = None; // closing the pipe is the function's EOF
            }
        }
    }
}

/// Launch and run one invocation to its end; never leaves anything behind.
pub fn run(
    p: &PreparedPolicy,
    inv: &Invocation,
    ctx: &LaunchContext,
) -> Result<RunReport, RuntimeError> {
    let policy = &p.policy;
    let timeout = inv.timeout(policy)?;
    let spec = native::sandbox_spec(p, inv, ctx)?;
    let started = Instant::now();
    let mut sb = match spawn(&spec) {
        Ok(sb) => sb,
        Err(e) => {
            return Ok(RunReport::failed(
                ctx.ids.host_uid,
                started.elapsed(),
                start_error(&e),
            ))
        }
    };
    let cap = policy.limits.output_bytes;
    let d = drive(&mut sb, &inv.input, timeout, policy.limits.kill_grace, cap);
    let wall = started.elapsed();
    let (output, output_truncated, output_error) = match (policy.protocol, sb.work_dir()) {
        (Protocol::File, Some(dir)) => match paddock_sandbox::read_work_file(dir, OUTPUT_NAME, cap)
        {
            Ok(f) => (Some(f.data), f.truncated, None),
            Err(e) => (None, false, Some(e.to_string())),
        },
        _ => (None, false, None),
    };
    let landlock = sb.landlock();
    let host_uid = sb.host_uid();
    let usage = sb.finish().unwrap_or_default();
    let mut r = RunReport {
        status: Status::Exited,
        exit_code: None,
        signal: None,
        stdout_truncated: d.stdout.truncated,
        stderr_truncated: d.stderr.truncated,
        stdout: d.stdout.data,
        stderr: d.stderr.data,
        output,
        output_truncated,
        output_error,
        wall,
        cpu_user: usage.cpu_user,
        cpu_system: usage.cpu_system,
        memory_peak_bytes: usage.memory_peak_bytes,
        limit: None,
        landlock: Some(landlock),
        host_uid,
        error: None,
    };
    match d.exit {
        Exit::Exited(c) => r.exit_code = Some(c),
        Exit::Signaled(s) | Exit::Killed(s) => {
            r.status = Status::Signaled;
            r.signal = Some(s);
        }
        Exit::ExecFailed(errno) => {
            r.status = Status::FailedToStart;
            r.error = Some(StartError {
                step: "exec".into(),
                errno: Some(errno as i32),
                message: format!(
                    "cannot execute {}: {}",
                    spec.exec.path.display(),
                    errno.desc()
                ),
            });
        }
    }
    // Which limit fired, most decisive first.
    if d.timed_out {
        r.status = Status::Timeout;
        r.limit = Some(Limit::Timeout);
    } else if usage.oom_kills > 0 {
        r.status = Status::Oom;
        r.limit = Some(Limit::Memory);
    } else if r.signal == Some(libc_sigxfsz()) {
        r.limit = Some(Limit::Fsize);
    } else if usage.pids_max_hits > 0 {
        r.limit = Some(Limit::Pids);
    } else if r.stdout_truncated || r.stderr_truncated || r.output_truncated {
        r.limit = Some(Limit::Output);
    }
    Ok(r)
}

fn libc_sigxfsz() -> i32 {
    nix::sys::signal::Signal::SIGXFSZ as i32
}

/// A launch failure as a report field.
pub fn start_error(e: &SpawnError) -> StartError {
    StartError {
        step: e
            .step()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "launch".into()),
        errno: e.errno().map(|e| e as i32),
        message: e.to_string(),
    }
}
