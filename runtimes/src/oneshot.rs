//! One invocation from launch to report. [`Run`] is event-driven (the caller
//! polls its fds and calls it back), so the same code serves the daemon's
//! event loop and the blocking [`run`] used by `paddockd run` and tests:
//! stdin written without blocking while stdout and stderr are drained, output
//! capped (the excess is read and dropped so the function never blocks on a
//! full pipe), the deadline enforced with SIGTERM and, after the grace,
//! SIGKILL of the whole tree.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use paddock_policies::{Protocol, Runtime};
use paddock_sandbox::{Exit, Sandbox, SpawnError};

use crate::error::RuntimeError;
use crate::native::{self, Invocation, LaunchContext, PreparedPolicy, INPUT_NAME, OUTPUT_NAME};
use crate::report::{Limit, RunReport, StartError, Status};
use crate::wasm;

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
        while !self.eof {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let room = (cap as usize).saturating_sub(self.data.len());
                    if n > room {
                        self.truncated = true;
                    }
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => self.eof = true,
            }
        }
    }
}

/// A run's end ([`Run::finish`]).
#[derive(Debug)]
pub struct Finished {
    pub report: RunReport,
    /// It was stopped by [`Run::cancel`].
    pub cancelled: bool,
    /// Drop it to reap the init and remove the cgroup.
    pub sandbox: Sandbox,
}

/// A launched invocation.
#[derive(Debug)]
pub struct Run {
    sb: Sandbox,
    protocol: Protocol,
    cap: u64,
    grace: Duration,
    deadline: Instant,
    kill_at: Option<Instant>,
    timed_out: bool,
    cancelled: bool,
    /// Output passed the cap: the run is being stopped (limit `output`).
    flooded: bool,
    stdin: Option<OwnedFd>,
    input: Vec<u8>,
    written: usize,
    stdout: Capture,
    stderr: Capture,
    exit: Option<Exit>,
    exec_path: String,
    /// The sandbox runs paddock-wasm (its exit 125 carries a report line).
    wasm: bool,
}

/// Launch an invocation. A launch failure is a report, not an error; errors
/// are for invocations that cannot be turned into a sandbox at all.
pub fn start(
    p: &PreparedPolicy,
    inv: &Invocation,
    ctx: &LaunchContext,
    queued: Duration,
) -> Result<Result<Run, RunReport>, RuntimeError> {
    // Refuse a bad invocation before any sandbox exists.
    native::run_env(p, inv)?;
    let work = native::work_bytes(&p.policy, inv.input.len());
    let spec = native::sandbox_spec(p, ctx, inv.command.as_deref(), work)?;
    let started = Instant::now();
    match ctx.spawn(&spec) {
        Ok(sb) => start_prepared(p, sb, inv, queued),
        Err(e) => Ok(Err(RunReport::failed(
            ctx.ids.host_uid,
            started.elapsed(),
            start_error(&e),
        ))),
    }
}

/// Start an invocation in a sandbox already spawned for this policy (by
/// [`start`], or ahead of time from [`native::sandbox_spec`] with no command
/// override and /work big enough for the input): write the input, send the
/// go with the run's environment.
pub fn start_prepared(
    p: &PreparedPolicy,
    mut sb: Sandbox,
    inv: &Invocation,
    queued: Duration,
) -> Result<Result<Run, RunReport>, RuntimeError> {
    let policy = &p.policy;
    let timeout = inv.timeout(policy)?.saturating_sub(queued);
    let env = native::run_env(p, inv)?;
    let began = Instant::now();
    let host_uid = sb.host_uid();
    let go = match policy.protocol {
        Protocol::File => sb.write_work_file(INPUT_NAME, &inv.input),
        Protocol::Stdio => Ok(()),
    }
    .and_then(|()| sb.start(&env));
    if let Err(e) = go {
        return Ok(Err(RunReport::failed(
            host_uid,
            began.elapsed(),
            start_error(&e),
        )));
    }
    // With no input, dropping the write end now is the function's EOF.
    let stdin = sb.take_stdin().filter(|_| !inv.input.is_empty());
    let exec_path = match (&inv.command, &policy.runtime) {
        (Some(c), _) => c[0].clone(),
        (None, Runtime::Native { command }) => command[0].clone(),
        (None, Runtime::Wasm { .. }) => wasm::RUNNER_PATH.to_owned(),
    };
    Ok(Ok(Run {
        deadline: sb.started() + timeout,
        sb,
        protocol: policy.protocol,
        cap: policy.limits.output_bytes,
        grace: policy.limits.kill_grace,
        kill_at: None,
        timed_out: false,
        cancelled: false,
        flooded: false,
        stdin,
        input: if policy.protocol == Protocol::Stdio {
            inv.input.clone()
        } else {
            Vec::new()
        },
        written: 0,
        stdout: Capture::default(),
        stderr: Capture::default(),
        exit: None,
        exec_path,
        wasm: matches!(policy.runtime, Runtime::Wasm { .. }) && inv.command.is_none(),
    }))
}

impl Run {
    /// The sandbox's fds to watch: pidfd (readable at exit), the init's
    /// report channel (readable when the command's end is reported, before
    /// the init itself is gone), stdout, stderr.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.sb.pidfd()
    }
    pub fn report_fd(&self) -> BorrowedFd<'_> {
        self.sb.report_fd()
    }
    pub fn stdout_fd(&self) -> BorrowedFd<'_> {
        self.sb.stdout()
    }
    pub fn stderr_fd(&self) -> BorrowedFd<'_> {
        self.sb.stderr()
    }
    /// The stdin pipe while input remains to be written.
    pub fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdin.as_ref().map(|f| f.as_fd())
    }

    /// Drain stdout and stderr as far as they go now. Output past the cap
    /// stops the run (SIGTERM, then SIGKILL after the grace): a flood is
    /// answered at once, not at the deadline. Call `on_timer` afterwards.
    pub fn on_output(&mut self) {
        self.stdout.read_from(self.sb.stdout(), self.cap);
        self.stderr.read_from(self.sb.stderr(), self.cap);
        let over = self.stdout.truncated || self.stderr.truncated;
        if over && !self.flooded && !self.timed_out && !self.cancelled && self.exit.is_none() {
            self.flooded = true;
            self.sb.terminate();
            self.kill_at = Some(Instant::now() + self.grace);
        }
    }

    /// Write more input; returns true once stdin is closed.
    pub fn on_stdin(&mut self) -> bool {
        if let Some(fd) = &self.stdin {
            loop {
                if self.written >= self.input.len() {
                    break;
                }
                match nix::unistd::write(fd, &self.input[self.written..]) {
                    Ok(n) => self.written += n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EAGAIN) => return false,
                    Err(_) => break, // EPIPE: the function stopped reading
                }
            }
            // Closing the pipe is the function's EOF.
            self.stdin = None;
        }
        true
    }

    /// Check for the end (call when the pidfd is readable). True once ended.
    pub fn on_exit(&mut self) -> bool {
        if self.exit.is_none() {
            if let Ok(Some(e)) = self.sb.try_wait() {
                self.exit = Some(e);
            }
        }
        self.exit.is_some()
    }

    /// Whether the sandbox has ended.
    pub fn ended(&self) -> bool {
        self.exit.is_some()
    }

    /// Stop now: SIGTERM and the grace, as for a timeout, reported as cancelled.
    pub fn cancel(&mut self, now: Instant) {
        if !self.cancelled && !self.timed_out && self.exit.is_none() {
            self.cancelled = true;
            self.sb.terminate();
            self.kill_at = Some(now + self.grace);
        }
    }

    /// Act on the clock; returns when to be called again (None: not before an event).
    pub fn on_timer(&mut self, now: Instant) -> Option<Instant> {
        if self.exit.is_some() {
            return None;
        }
        if !self.timed_out && !self.cancelled && !self.flooded && now >= self.deadline {
            self.timed_out = true;
            self.sb.terminate();
            self.kill_at = Some(now + self.grace);
        }
        match self.kill_at {
            Some(k) if now >= k => {
                self.sb.kill();
                self.kill_at = None;
                None
            }
            Some(k) => Some(k),
            None if self.timed_out || self.cancelled || self.flooded => None,
            None => Some(self.deadline),
        }
    }

    /// After the end: drain the pipes (every writer is dead), read the FILE
    /// output and the usage, and build the report. The sandbox comes back
    /// with it: its init may still be exiting (it reports first, then goes),
    /// so an event loop answers first and drops it once its pidfd is
    /// readable; dropping it reaps the init and removes the cgroup.
    pub fn finish(mut self) -> Finished {
        self.on_output();
        let wall = self.sb.started().elapsed();
        let (output, output_truncated, output_error) = match (self.protocol, self.sb.work_dir()) {
            (Protocol::File, Some(dir)) => {
                match paddock_sandbox::read_work_file(dir, OUTPUT_NAME, self.cap) {
                    Ok(f) => (Some(f.data), f.truncated, None),
                    Err(e) => (None, false, Some(e.to_string())),
                }
            }
            _ => (None, false, None),
        };
        let landlock = self.sb.landlock();
        let host_uid = self.sb.host_uid();
        let exit = self.exit.unwrap_or(Exit::Killed(9));
        let mut launch_trace: Vec<(String, Duration)> = self
            .sb
            .launch_trace()
            .iter()
            .map(|(m, ns)| (m.label(), Duration::from_nanos(*ns)))
            .collect();
        if !launch_trace.is_empty() {
            launch_trace.push(("parent: command ended".into(), wall));
        }
        let usage = self.sb.usage();
        let mut r = RunReport {
            status: Status::Exited,
            exit_code: None,
            signal: None,
            stdout_truncated: self.stdout.truncated,
            stderr_truncated: self.stderr.truncated,
            stdout: self.stdout.data,
            stderr: self.stderr.data,
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
            wasm_error: None,
            launch_trace,
        };
        match exit {
            Exit::Exited(c) => {
                r.exit_code = Some(c);
                if self.wasm && c == wasm::RESERVED_EXIT {
                    r.wasm_error = Some(wasm::take_report(&mut r.stderr));
                }
            }
            Exit::Signaled(s) | Exit::Killed(s) => {
                r.status = Status::Signaled;
                r.signal = Some(s);
            }
            Exit::ExecFailed(errno) => {
                r.status = Status::FailedToStart;
                r.error = Some(StartError {
                    step: "exec".into(),
                    errno: Some(errno as i32),
                    message: format!("cannot execute {}: {}", self.exec_path, errno.desc()),
                });
            }
        }
        // Which limit fired, most decisive first.
        if self.timed_out {
            r.status = Status::Timeout;
            r.limit = Some(Limit::Timeout);
        } else if usage.oom_kills > 0 {
            r.status = Status::Oom;
            r.limit = Some(Limit::Memory);
        } else if self.flooded {
            r.limit = Some(Limit::Output);
        } else if r.signal == Some(nix::sys::signal::Signal::SIGXFSZ as i32) {
            r.limit = Some(Limit::Fsize);
        } else if usage.pids_max_hits > 0 {
            r.limit = Some(Limit::Pids);
        } else if r.stdout_truncated || r.stderr_truncated || r.output_truncated {
            r.limit = Some(Limit::Output);
        }
        Finished {
            report: r,
            cancelled: self.cancelled,
            sandbox: self.sb,
        }
    }
}

fn timeout_until(until: Option<Instant>) -> PollTimeout {
    match until {
        None => PollTimeout::from(50u8),
        Some(u) => {
            let ms = u.saturating_duration_since(Instant::now()).as_millis();
            PollTimeout::try_from(ms.min(60_000) as i32 + 1).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// Drive a [`Run`] to its end with poll(2), for blocking callers.
pub fn drive(run: &mut Run) {
    let mut next = run.on_timer(Instant::now());
    while !run.ended() {
        let mut fds = Vec::with_capacity(4);
        fds.push(PollFd::new(run.pidfd(), PollFlags::POLLIN));
        if !run.stdout.eof {
            fds.push(PollFd::new(run.stdout_fd(), PollFlags::POLLIN));
        }
        if !run.stderr.eof {
            fds.push(PollFd::new(run.stderr_fd(), PollFlags::POLLIN));
        }
        if let Some(fd) = run.stdin_fd() {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
        }
        match poll(&mut fds, timeout_until(next)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        drop(fds);
        run.on_output();
        run.on_stdin();
        run.on_exit();
        next = run.on_timer(Instant::now());
    }
}

/// Launch and run one invocation to its end; never leaves anything behind.
pub fn run(
    p: &PreparedPolicy,
    inv: &Invocation,
    ctx: &LaunchContext,
) -> Result<RunReport, RuntimeError> {
    match start(p, inv, ctx, Duration::ZERO)? {
        Err(report) => Ok(report),
        Ok(mut r) => {
            drive(&mut r);
            let f = r.finish();
            // The init is exiting: reap it and remove the cgroup now.
            drop(f.sandbox);
            Ok(f.report)
        }
    }
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
