//! A warm WASM runner, daemon side: one sandbox running `paddock-wasm
//! --warm` (the same sandbox as a oneshot wasm run: namespaces, cgroup,
//! seccomp, landlock, rlimits), serving invocations one at a time through
//! the frames of [`crate::wasm::frame`]. Event-driven like
//! [`crate::oneshot::Run`]: the caller watches [`WarmRunner::pidfd`],
//! [`WarmRunner::stdout_fd`] (readable) and [`WarmRunner::stdin_fd`]
//! (writable) and calls back. The caller enforces each call's deadline and
//! kills the runner when it passes; a runner that breaks the framing is
//! killed as well. Either way only the call in flight fails.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use paddock_policies::{Protocol, Runtime};
use paddock_sandbox::{CgroupUsage, Exit, Sandbox};

use crate::error::RuntimeError;
use crate::native::{
    self, Invocation, LaunchContext, PreparedPolicy, DEFAULT_PATH, INPUT_NAME, OUTPUT_NAME,
    WORK_DIR,
};
use crate::oneshot::{start_error, Capture};
use crate::report::{Limit, RunReport, StartError, Status};
use crate::wasm::frame::{self, FrameError, Request, Response};
use crate::wasm::{self, RunnerArgs, WarmArgs};

/// The `error.step` of a call lost with its runner.
pub const STEP: &str = "warm_runner";

/// Cgroup files read per call, kept open (pread at offset 0 re-reads them).
#[derive(Debug, Default)]
struct Counters {
    /// v2 `cpu.stat`.
    cpu_stat: Option<File>,
    /// v1 `cpuacct.usage_user` and `cpuacct.usage_sys` (ns).
    cpu_user: Option<File>,
    cpu_sys: Option<File>,
    /// `memory.peak` (v2) or `memory.max_usage_in_bytes` (v1).
    mem_peak: Option<File>,
}

fn read0(f: &File) -> String {
    let mut buf = [0u8; 512];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl Counters {
    fn open(dirs: &[PathBuf]) -> Counters {
        let find = |name: &str| dirs.iter().find_map(|d| File::open(d.join(name)).ok());
        Counters {
            cpu_stat: find("cpu.stat").filter(|f| read0(f).contains("user_usec")),
            cpu_user: find("cpuacct.usage_user"),
            cpu_sys: find("cpuacct.usage_sys"),
            mem_peak: find("memory.peak").or_else(|| find("memory.max_usage_in_bytes")),
        }
    }

    /// (user, system) CPU time of the runner so far.
    fn cpu(&self) -> (Duration, Duration) {
        if let Some(f) = &self.cpu_stat {
            let s = read0(f);
            return (
                Duration::from_micros(keyed(&s, "user_usec")),
                Duration::from_micros(keyed(&s, "system_usec")),
            );
        }
        let ns = |f: &Option<File>| {
            f.as_ref()
                .and_then(|f| read0(f).trim().parse().ok())
                .map_or(Duration::ZERO, Duration::from_nanos)
        };
        (ns(&self.cpu_user), ns(&self.cpu_sys))
    }

    fn memory_peak(&self) -> u64 {
        self.mem_peak
            .as_ref()
            .and_then(|f| read0(f).trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The call in flight.
#[derive(Debug)]
struct InFlight {
    started: Instant,
    cpu: (Duration, Duration),
}

/// A launched warm runner.
#[derive(Debug)]
pub struct WarmRunner {
    sb: Sandbox,
    stdin: Option<OwnedFd>,
    /// The request frame being written, and how much of it is.
    out: Vec<u8>,
    written: usize,
    /// Response bytes read so far.
    inbuf: Vec<u8>,
    max_response: usize,
    counters: Counters,
    call: Option<InFlight>,
    calls: u64,
    exit: Option<Exit>,
    /// FILE protocol: the cap on the output file.
    file_output: Option<u64>,
    /// FILE protocol: /work is empty (at launch, and after
    /// [`WarmRunner::tidy`]).
    work_clean: bool,
    /// /work could not be emptied: the runner must not serve another call.
    spoiled: bool,
}

/// The module's environment for one invocation: what a oneshot run's
/// command gets ([`native::base_env`] and [`native::run_env`]), with
/// TIMEOUT_MS the time the caller gives the call.
pub fn call_env(
    p: &PreparedPolicy,
    inv: &Invocation,
    timeout: Duration,
) -> Result<Vec<(String, String)>, RuntimeError> {
    let mut env: Vec<(String, String)> = native::base_env(&p.policy).into_iter().collect();
    if p.policy.protocol == Protocol::File {
        env.push(("INPUT_FILE".into(), format!("{WORK_DIR}/{INPUT_NAME}")));
        env.push(("OUTPUT_FILE".into(), format!("{WORK_DIR}/{OUTPUT_NAME}")));
    }
    for (k, v) in native::run_env(p, inv)? {
        let v = if k == "TIMEOUT_MS" {
            timeout.as_millis().to_string()
        } else {
            v
        };
        env.push((k, v));
    }
    Ok(env)
}

/// Launch a warm runner for a `mode = "warm"` wasm function. `sha256` is
/// the module's hash as the caller keyed it (the runner refuses other
/// bytes). `max_input` is the largest input a call can bring: with the
/// FILE protocol, /work is sized for it and the largest output
/// ([`native::work_bytes`]). A launch failure is a report, as for
/// [`crate::oneshot::start`].
pub fn launch(
    p: &PreparedPolicy,
    ctx: &LaunchContext,
    sha256: Option<&str>,
    max_input: usize,
) -> Result<Result<WarmRunner, RunReport>, RuntimeError> {
    let policy = &p.policy;
    if !matches!(policy.runtime, Runtime::Wasm { .. }) {
        return Err(RuntimeError::RuntimeUnavailable("warm mode (wasm only)"));
    }
    let work = native::work_bytes(policy, max_input);
    let mut spec = native::sandbox_spec(p, ctx, None, work)?;
    // The same sandbox as a oneshot run; only the runner's command line
    // differs. The module's environment comes with each request.
    let Runtime::Wasm { module } = &policy.runtime else {
        unreachable!("checked above")
    };
    let args = RunnerArgs {
        fuel: policy.limits.wasm_fuel,
        memory_bytes: wasm::memory_cap(policy.limits.memory_bytes),
        protocol: policy.protocol,
        module: std::path::Path::new(paddock_policies::policy::FUNCTION_MOUNT).join(module),
        warm: Some(WarmArgs {
            output_bytes: policy.limits.output_bytes,
            sha256: sha256.map(str::to_owned),
        }),
    };
    spec.exec.argv = args.to_argv(wasm::RUNNER_PATH);
    spec.exec.env = vec![("PATH".into(), DEFAULT_PATH.into())];
    // The request pipe, whatever the protocol (a FILE module's stdin is
    // empty: it is in memory, in the runner).
    spec.stdin_pipe = true;
    let started = Instant::now();
    let mut sb = match ctx
        .spawn(&spec)
        .and_then(|mut sb| sb.start(&[]).map(|()| sb))
    {
        Ok(sb) => sb,
        Err(e) => {
            return Ok(Err(RunReport::failed(
                ctx.ids.host_uid,
                started.elapsed(),
                start_error(&e),
            )))
        }
    };
    let Some(stdin) = sb.take_stdin() else {
        return Ok(Err(RunReport::failed(
            ctx.ids.host_uid,
            started.elapsed(),
            StartError {
                step: STEP.into(),
                errno: None,
                message: "the warm runner has no stdin pipe".into(),
            },
        )));
    };
    let counters = Counters::open(&sb.cgroup_dirs());
    Ok(Ok(WarmRunner {
        sb,
        stdin: Some(stdin),
        out: Vec::new(),
        written: 0,
        inbuf: Vec::new(),
        max_response: frame::max_response(policy.limits.output_bytes),
        counters,
        call: None,
        calls: 0,
        exit: None,
        file_output: (policy.protocol == Protocol::File).then_some(policy.limits.output_bytes),
        work_clean: true,
        spoiled: false,
    }))
}

impl WarmRunner {
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.sb.pidfd()
    }
    pub fn stdout_fd(&self) -> BorrowedFd<'_> {
        self.sb.stdout()
    }
    /// The runner's request pipe (None once it broke).
    pub fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdin.as_ref().map(|f| f.as_fd())
    }
    /// The sandbox init's pid (host pid namespace).
    pub fn pid(&self) -> i32 {
        self.sb.pid()
    }
    pub fn host_uid(&self) -> u32 {
        self.sb.host_uid()
    }
    /// Invocations served so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }
    /// Whether a call is in flight.
    pub fn busy(&self) -> bool {
        self.call.is_some()
    }

    /// Whether the runner may serve another call: false once its /work
    /// could not be emptied (the caller then stops it).
    pub fn reusable(&self) -> bool {
        !self.spoiled
    }

    /// FILE protocol, between calls: empty /work of what the last call
    /// left, so nothing of it stays while the runner idles. The caller runs
    /// this after answering the call (the answer does not wait for it);
    /// a call begun first empties /work itself. Then check
    /// [`WarmRunner::reusable`].
    pub fn tidy(&mut self) {
        if self.file_output.is_none() || self.work_clean || self.call.is_some() || self.spoiled {
            return;
        }
        match self.sb.clear_work_dir() {
            Ok(()) => self.work_clean = true,
            Err(_) => self.spoiled = true,
        }
    }

    /// Send one invocation. `timeout` is what the module is told in
    /// TIMEOUT_MS (the caller enforces it). With the FILE protocol, /work
    /// is emptied and the input written there first; `Ok(Err(report))`
    /// when that fails: the call never reached the runner, which must not
    /// serve again (the caller stops it and answers with the report).
    pub fn begin(
        &mut self,
        p: &PreparedPolicy,
        inv: &Invocation,
        timeout: Duration,
    ) -> Result<Result<(), RunReport>, RuntimeError> {
        let env = call_env(p, inv, timeout)?;
        let began = Instant::now();
        let input = if self.file_output.is_some() {
            let ready = if self.work_clean {
                Ok(())
            } else {
                self.sb.clear_work_dir()
            };
            self.work_clean = false;
            if let Err(e) = ready.and_then(|()| self.sb.write_call_input(INPUT_NAME, &inv.input)) {
                self.spoiled = true;
                return Ok(Err(RunReport::failed(
                    self.sb.host_uid(),
                    began.elapsed(),
                    start_error(&e),
                )));
            }
            Vec::new()
        } else {
            inv.input.clone()
        };
        let req = Request {
            fuel: p.policy.limits.wasm_fuel,
            env,
            input,
        };
        self.out = req.encode();
        self.written = 0;
        self.inbuf.clear();
        self.call = Some(InFlight {
            started: Instant::now(),
            cpu: self.counters.cpu(),
        });
        self.on_stdin();
        Ok(Ok(()))
    }

    /// Write more of the request; true once it is all written (or the pipe
    /// broke: the runner is dying, its pidfd will tell).
    pub fn on_stdin(&mut self) -> bool {
        let Some(fd) = &self.stdin else {
            return true;
        };
        while self.written < self.out.len() {
            match nix::unistd::write(fd, &self.out[self.written..]) {
                Ok(n) => self.written += n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return false,
                Err(_) => {
                    self.stdin = None;
                    break;
                }
            }
        }
        self.out = Vec::new();
        self.written = 0;
        true
    }

    /// Read what the runner sent. `Ok(Some)` once the response is whole;
    /// an error for a frame that breaks the format or the size limit, or
    /// for bytes sent when no call is in flight.
    pub fn on_stdout(&mut self) -> Result<Option<RunReport>, FrameError> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match nix::unistd::read(self.sb.stdout(), &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if self.inbuf.len() > self.max_response + 4 {
                        return Err(FrameError(format!(
                            "more than {} bytes of response",
                            self.max_response
                        )));
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break, // EAGAIN, or gone: the pidfd tells
            }
        }
        if self.inbuf.is_empty() {
            return Ok(None);
        }
        let Some(call) = &self.call else {
            return Err(FrameError("output while no call is in flight".into()));
        };
        let Some(len) = frame::frame_len(&self.inbuf, self.max_response)? else {
            return Ok(None);
        };
        if self.inbuf.len() < len {
            return Ok(None);
        }
        if self.inbuf.len() > len {
            return Err(FrameError("bytes after the response".into()));
        }
        let resp = Response::decode(&self.inbuf)?;
        self.inbuf = Vec::new();
        let started = call.started;
        let cpu0 = call.cpu;
        self.call = None;
        self.calls += 1;
        Ok(Some(self.report(resp, started, cpu0)))
    }

    fn report(&self, r: Response, started: Instant, cpu0: (Duration, Duration)) -> RunReport {
        let (user, sys) = self.counters.cpu();
        let mut report = RunReport::failed(
            self.sb.host_uid(),
            started.elapsed(),
            StartError {
                step: String::new(),
                errno: None,
                message: String::new(),
            },
        );
        report.status = Status::Exited;
        report.error = None;
        report.exit_code = Some(r.exit_code);
        report.stdout_truncated = r.stdout_truncated;
        report.stderr_truncated = r.stderr_truncated;
        report.stdout = r.stdout;
        report.stderr = r.stderr;
        report.cpu_user = user.saturating_sub(cpu0.0);
        report.cpu_system = sys.saturating_sub(cpu0.1);
        report.memory_peak_bytes = self.counters.memory_peak();
        report.landlock = Some(self.sb.landlock());
        if report.stdout_truncated || report.stderr_truncated {
            report.limit = Some(Limit::Output);
        }
        report.wasm_error = r.wasm_error;
        if let (Some(cap), Some(dir)) = (self.file_output, self.sb.work_dir()) {
            match paddock_sandbox::read_work_file(dir, OUTPUT_NAME, cap) {
                Ok(f) => {
                    report.output = Some(f.data);
                    report.output_truncated = f.truncated;
                    if f.truncated {
                        report.limit = Some(Limit::Output);
                    }
                }
                Err(e) => report.output_error = Some(e.to_string()),
            }
        }
        report
    }

    /// Whether the runner has ended (call when the pidfd is readable).
    pub fn on_exit(&mut self) -> bool {
        if self.exit.is_none() {
            if let Ok(Some(e)) = self.sb.try_wait() {
                self.exit = Some(e);
            }
        }
        self.exit.is_some()
    }

    pub fn ended(&self) -> bool {
        self.exit.is_some()
    }

    /// SIGKILL: the kernel kills the whole sandbox.
    pub fn kill(&self) {
        self.sb.kill();
    }

    /// After the end (or to stop it now): kill, reap, remove the cgroup.
    /// Returns how it ended, its usage and the runner's own stderr (a
    /// report line when it failed).
    pub fn finish(mut self) -> (Option<Exit>, CgroupUsage, Vec<u8>) {
        let mut err = Capture::default();
        err.read_from(self.sb.stderr(), 16 << 10);
        self.stdin = None;
        let exit = self.exit;
        let usage = self.sb.finish().unwrap_or_default();
        (exit, usage, err.data)
    }

    /// The report of a call lost with its runner (after [`WarmRunner::finish`]):
    /// `why` says what happened (None: the runner ended by itself).
    pub fn lost_call(
        host_uid: u32,
        wall: Duration,
        exit: Option<Exit>,
        usage: &CgroupUsage,
        stderr: &[u8],
        why: Option<Lost>,
    ) -> RunReport {
        let mut r = RunReport::failed(
            host_uid,
            wall,
            StartError {
                step: STEP.into(),
                errno: None,
                message: String::new(),
            },
        );
        r.memory_peak_bytes = usage.memory_peak_bytes;
        let last = String::from_utf8_lossy(stderr);
        let last = last.trim_end().rsplit('\n').next().unwrap_or("").to_owned();
        let msg = match (&why, exit) {
            (Some(Lost::Timeout), _) => {
                r.status = Status::Timeout;
                r.limit = Some(Limit::Timeout);
                "the call passed its deadline; its warm runner was killed".to_owned()
            }
            (Some(Lost::Cancelled), _) => {
                "the call was cancelled; its warm runner was killed".to_owned()
            }
            (Some(Lost::Malformed(m)), _) => {
                format!("the warm runner broke the framing ({m}); it was killed")
            }
            (None, _) if usage.oom_kills > 0 => {
                r.status = Status::Oom;
                r.limit = Some(Limit::Memory);
                "the warm runner was OOM-killed during the call".to_owned()
            }
            (None, Some(Exit::Signaled(s) | Exit::Killed(s))) => {
                r.status = Status::Signaled;
                r.signal = Some(s);
                format!("the warm runner was killed by signal {s} during the call")
            }
            (None, other) => format!(
                "the warm runner ended during the call ({other:?}){}",
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ),
        };
        r.error.as_mut().expect("failed() sets error").message = msg;
        if r.status == Status::Timeout {
            r.error = None;
        }
        r
    }
}

/// Why the caller ended a runner with a call in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    Timeout,
    Cancelled,
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_reads_cpu_stat_lines() {
        let s = "usage_usec 10\nuser_usec 7\nsystem_usec 3\n";
        assert_eq!(keyed(s, "user_usec"), 7);
        assert_eq!(keyed(s, "system_usec"), 3);
        assert_eq!(keyed(s, "nothing"), 0);
    }
}
