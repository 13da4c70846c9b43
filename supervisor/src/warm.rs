//! Warm pools: `mode = "warm"` wasm functions served by long-lived
//! `paddock-wasm --warm` runners (see `paddock_runtimes::warm`).
//!
//! - **Pools are keyed by content**: (function name, sha256 of the module
//!   bytes, fingerprint of the policy minus its version directory). The
//!   runners are the compiled-module cache: redeploying the same bytes under
//!   the same policy keeps them (no recompile, no restart), a different
//!   module or policy gets new runners and never mixes with the old. The
//!   runner is told the hash and refuses a module file that no longer
//!   matches it.
//! - At most `limits.concurrency` calls of a function run at once (the
//!   daemon's per-function accounting, shared with oneshot), so a pool
//!   holds at most that many runners; a call takes an idle runner of its
//!   key or launches one (lazily: a runner that died is simply not there
//!   any more), else it waits in the daemon's queue.
//! - One call per runner at a time. The request frame is written without
//!   blocking, the response read through mio; a call past its deadline, a
//!   cancelled one, or a runner that breaks the framing gets the runner
//!   SIGKILLed (then reaped, its cgroup removed): only the call in flight
//!   fails, and the next call gets a new runner.
//! - A runner idle for `limits.warm_idle_ms` of `paddockd.toml` ([`IDLE`]
//!   by default) is stopped at the next housekeeping tick, and so is an
//!   idle runner whose key is no longer its function's current one
//!   (redeploy, remove): old pools drain as their calls finish. Shutdown
//!   stops every runner.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Token};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use paddock_policies::{Mode, Policy, Runtime};
use paddock_runtimes::warm::{self, Lost, WarmRunner};
use paddock_runtimes::{Invocation, LaunchContext, RunReport};
use paddock_sandbox::{CgroupParent, IdMap, Launcher};

use crate::protocol::{Code, ErrorReply};
use crate::registry::{Function, Registry};
use crate::slots::{self, Slot};

/// A runner idle this long is stopped, unless the config says otherwise
/// (`limits.warm_idle_ms`; the same default).
pub const IDLE: Duration = Duration::from_secs(60);

/// The token kind of warm runners' fds (the daemon's kinds use 2..=6).
pub(crate) const K_WARM: usize = 7;
const SUB_PIDFD: usize = 0;
const SUB_STDOUT: usize = 1;
const SUB_STDIN: usize = 2;

fn token(runner: usize, sub: usize) -> Token {
    Token(((runner * 4 + sub) << crate::daemon::KIND_BITS) | K_WARM)
}

fn log(msg: impl std::fmt::Display) {
    eprintln!("paddockd: {msg}");
}

/// What a pool is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    name: String,
    /// sha256 of the module bytes; None when the file could not be read
    /// (then `unique` keeps that version's pool to itself).
    sha256: Option<[u8; 32]>,
    unique: usize,
    /// Hash of the policy without its description, source and directory.
    policy: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn policy_fingerprint(p: &Policy) -> u64 {
    let mut p = p.clone();
    p.description = None;
    p.source = Default::default();
    p.directory = None;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{p:?}").hash(&mut h);
    h.finish()
}

/// Whether `f` is served by warm runners.
pub(crate) fn is_warm(f: &Function) -> bool {
    let p = &f.prepared.policy;
    p.mode == Mode::Warm && matches!(p.runtime, Runtime::Wasm { .. })
}

/// One invocation on a runner.
#[derive(Debug)]
pub(crate) struct Call {
    pub conn: usize,
    pub id: Value,
    pub func: Arc<Function>,
    pub execution_id: String,
    pub arrived: Instant,
    pub queued: Duration,
    started: Instant,
    deadline: Instant,
}

/// A finished call, to answer.
#[derive(Debug)]
pub(crate) struct Done {
    pub call: Call,
    pub report: RunReport,
    pub cancelled: bool,
}

#[derive(Debug)]
enum State {
    Idle(Instant),
    Busy(Call),
    /// Killed; reaped when its pidfd says so. Holds the call it failed.
    Dying(Option<(Call, Lost)>),
}

#[derive(Debug)]
struct Runner {
    key: Key,
    /// The version it was launched for (its /fn); keeps that directory.
    _func: Arc<Function>,
    r: WarmRunner,
    state: State,
    _slot: Slot,
}

/// What launching needs from the daemon.
#[derive(Debug)]
pub(crate) struct Launch<'a> {
    pub cgroups: &'a Arc<CgroupParent>,
    pub run_dir: &'a Path,
    pub uid_base: u32,
    pub uid_count: u32,
    pub cgroup_name: &'a str,
    pub launcher: &'a Rc<Launcher>,
    /// The largest input a call can bring (a request line's cap): FILE
    /// runners' /work is sized for it.
    pub max_input: usize,
}

/// Every warm runner of the daemon.
#[derive(Debug)]
pub(crate) struct Warm {
    /// An idle runner is stopped after this long.
    idle: Duration,
    runners: HashMap<usize, Runner>,
    next: usize,
    /// Key per function version (by Arc identity, checked through the Weak).
    keys: HashMap<usize, (Weak<Function>, Key)>,
    launched: u64,
    /// A runner was reaped since [`Warm::take_reaped`] (its version may be
    /// garbage now).
    reaped: bool,
}

impl Default for Warm {
    fn default() -> Self {
        Warm::new(IDLE)
    }
}

impl Warm {
    /// No runners yet; an idle one will be stopped after `idle`.
    pub fn new(idle: Duration) -> Self {
        Warm {
            idle,
            runners: HashMap::new(),
            next: 0,
            keys: HashMap::new(),
            launched: 0,
            reaped: false,
        }
    }

    fn key_of(&mut self, f: &Arc<Function>) -> Key {
        let ptr = Arc::as_ptr(f) as usize;
        if let Some((w, k)) = self.keys.get(&ptr) {
            if w.upgrade().is_some_and(|x| Arc::ptr_eq(&x, f)) {
                return k.clone();
            }
        }
        let p = &f.prepared.policy;
        let sha256 = match (&p.runtime, &p.directory) {
            (Runtime::Wasm { module }, Some(dir)) => std::fs::read(dir.join(module))
                .ok()
                .map(|b| Sha256::digest(&b).into()),
            _ => None,
        };
        let key = Key {
            name: p.name.to_string(),
            unique: if sha256.is_none() { ptr } else { 0 },
            sha256,
            policy: policy_fingerprint(p),
        };
        self.keys.insert(ptr, (Arc::downgrade(f), key.clone()));
        key
    }

    /// The module's sha256 (hex) for `describe`.
    pub fn module_sha256(&mut self, f: &Arc<Function>) -> Option<String> {
        if !matches!(f.prepared.policy.runtime, Runtime::Wasm { .. }) {
            return None;
        }
        self.key_of(f).sha256.map(|h| hex(&h))
    }

    /// Whether a runner was reaped since the last call.
    pub fn take_reaped(&mut self) -> bool {
        std::mem::take(&mut self.reaped)
    }

    /// Calls in flight (including those whose runner is being killed).
    pub fn busy(&self) -> usize {
        self.runners
            .values()
            .filter(|r| matches!(r.state, State::Busy(_) | State::Dying(Some(_))))
            .count()
    }

    /// Runners alive (idle or busy).
    pub fn runners(&self) -> usize {
        self.runners.len()
    }

    fn calls(&self) -> impl Iterator<Item = &Call> {
        self.runners.values().filter_map(|r| match &r.state {
            State::Busy(c) | State::Dying(Some((c, _))) => Some(c),
            _ => None,
        })
    }

    /// Whether `conn` has a call in flight (with request id `id`, if given).
    pub fn has_call(&self, conn: usize, id: Option<&Value>) -> bool {
        self.calls()
            .any(|c| c.conn == conn && id.is_none_or(|id| &c.id == id))
    }

    /// The earliest call deadline.
    pub fn next_timer(&self) -> Option<Instant> {
        self.runners
            .values()
            .filter_map(|r| match &r.state {
                State::Busy(c) => Some(c.deadline),
                _ => None,
            })
            .min()
    }

    /// Start `inv` on a runner of its key. `Ok(Some)`: it ended at once (the
    /// runner could not be launched); `Err`: answer with an error.
    #[allow(
        clippy::too_many_arguments,
        reason = "the fields of the daemon's Queued"
    )]
    pub fn start(
        &mut self,
        poll: &mio::Registry,
        l: &Launch<'_>,
        conn: usize,
        id: Value,
        func: Arc<Function>,
        inv: &Invocation,
        arrived: Instant,
    ) -> Result<Option<Done>, ErrorReply> {
        let now = Instant::now();
        let queued = now - arrived;
        let timeout = inv
            .timeout(&func.prepared.policy)
            .map_err(|e| ErrorReply::new(Code::BadRequest, e.to_string()))?
            .saturating_sub(queued);
        let key = self.key_of(&func);
        // The most recently used idle runner: its caches are warmest.
        let idle = self
            .runners
            .iter()
            .filter_map(|(rid, r)| match r.state {
                State::Idle(since) if r.key == key => Some((since, *rid)),
                _ => None,
            })
            .max()
            .map(|(_, rid)| rid);
        let rid = match idle {
            Some(rid) => rid,
            None => match self.launch(poll, l, &func, &key)? {
                Ok(rid) => rid,
                Err(report) => {
                    let call = Call {
                        conn,
                        id,
                        func,
                        execution_id: inv.execution_id.clone(),
                        arrived,
                        queued,
                        started: now,
                        deadline: now,
                    };
                    return Ok(Some(Done {
                        call,
                        report,
                        cancelled: false,
                    }));
                }
            },
        };
        let runner = self.runners.get_mut(&rid).expect("chosen above");
        let begun = runner
            .r
            .begin(&func.prepared, inv, timeout)
            .map_err(|e| ErrorReply::new(Code::BadRequest, e.to_string()))?;
        let call = Call {
            conn,
            id,
            func,
            execution_id: inv.execution_id.clone(),
            arrived,
            queued,
            started: now,
            deadline: now + timeout,
        };
        match begun {
            Ok(()) => {
                runner.state = State::Busy(call);
                Ok(None)
            }
            // /work could not be made ready: the call fails as a launch
            // would, and the runner goes (reaped when its pidfd says so).
            Err(report) => {
                log(format!(
                    "{}: warm runner stopped: {}",
                    runner.key.name,
                    report.error.as_ref().map_or("?", |e| e.message.as_str())
                ));
                runner.r.kill();
                runner.state = State::Dying(None);
                Ok(Some(Done {
                    call,
                    report,
                    cancelled: false,
                }))
            }
        }
    }

    fn launch(
        &mut self,
        poll: &mio::Registry,
        l: &Launch<'_>,
        func: &Arc<Function>,
        key: &Key,
    ) -> Result<Result<usize, RunReport>, ErrorReply> {
        let slot = slots::acquire(l.run_dir, l.uid_count).map_err(|e| {
            ErrorReply::new(Code::Busy, format!("no sandbox uid slot free: {e}"))
                .with("retry_after_ms", json!(100))
        })?;
        let host = l.uid_base + slot.index;
        self.launched += 1;
        let ctx = LaunchContext {
            cgroup_parent: l.cgroups.clone(),
            cgroup_name: format!("{}-d-{}-w{}", l.cgroup_name, slot.index, self.launched),
            ids: IdMap {
                host_uid: host,
                host_gid: host,
            },
            trace: false,
            launcher: Some(l.launcher.clone()),
        };
        let sha = key.sha256.map(|h| hex(&h));
        let r = match warm::launch(&func.prepared, &ctx, sha.as_deref(), l.max_input) {
            Err(e) => return Err(ErrorReply::new(Code::BadRequest, e.to_string())),
            Ok(Err(report)) => {
                log(format!(
                    "{}: warm runner failed to start: {}",
                    key.name,
                    report.error.as_ref().map_or("?", |e| e.message.as_str())
                ));
                return Ok(Err(report));
            }
            Ok(Ok(r)) => r,
        };
        self.next += 1;
        let rid = self.next;
        let raw = |fd: std::os::fd::BorrowedFd<'_>| fd.as_raw_fd();
        let mut ok = poll
            .register(
                &mut SourceFd(&raw(r.pidfd())),
                token(rid, SUB_PIDFD),
                Interest::READABLE,
            )
            .is_ok();
        ok &= poll
            .register(
                &mut SourceFd(&raw(r.stdout_fd())),
                token(rid, SUB_STDOUT),
                Interest::READABLE,
            )
            .is_ok();
        if let Some(fd) = r.stdin_fd() {
            ok &= poll
                .register(
                    &mut SourceFd(&raw(fd)),
                    token(rid, SUB_STDIN),
                    Interest::WRITABLE,
                )
                .is_ok();
        }
        let runner = Runner {
            key: key.clone(),
            _func: func.clone(),
            r,
            state: State::Idle(Instant::now()),
            _slot: slot,
        };
        if !ok {
            Self::deregister(poll, &runner.r);
            drop(runner.r.finish());
            return Err(ErrorReply::new(
                Code::Internal,
                "could not watch a warm runner's fds",
            ));
        }
        self.runners.insert(rid, runner);
        Ok(Ok(rid))
    }

    fn deregister(poll: &mio::Registry, r: &WarmRunner) {
        for fd in [Some(r.pidfd()), Some(r.stdout_fd()), r.stdin_fd()]
            .into_iter()
            .flatten()
        {
            let _ = poll.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
    }

    /// An event on a runner's fd (`n` is the token's id part).
    pub fn on_event(&mut self, poll: &mio::Registry, n: usize) -> Vec<Done> {
        let (rid, sub) = (n / 4, n % 4);
        let Some(run) = self.runners.get_mut(&rid) else {
            return Vec::new();
        };
        let mut done = Vec::new();
        if sub == SUB_STDIN {
            run.r.on_stdin();
        }
        if !matches!(run.state, State::Dying(_)) {
            match run.r.on_stdout() {
                Ok(None) => {}
                Ok(Some(report)) => {
                    let prev = std::mem::replace(&mut run.state, State::Idle(Instant::now()));
                    if let State::Busy(call) = prev {
                        done.push(Done {
                            call,
                            report,
                            cancelled: false,
                        });
                    }
                }
                Err(e) => {
                    log(format!("{}: warm runner killed: {e}", run.key.name));
                    run.r.kill();
                    let prev = std::mem::replace(&mut run.state, State::Dying(None));
                    if let State::Busy(call) = prev {
                        run.state = State::Dying(Some((call, Lost::Malformed(e.0))));
                    }
                }
            }
        }
        if sub == SUB_PIDFD && run.r.on_exit() {
            done.extend(self.reap(poll, rid));
        }
        done
    }

    /// After answering: empty the /work of idle FILE runners (what their
    /// last call left); one whose /work cannot be emptied is stopped.
    pub fn tidy(&mut self) {
        for run in self.runners.values_mut() {
            if !matches!(run.state, State::Idle(_)) {
                continue;
            }
            run.r.tidy();
            if !run.r.reusable() {
                log(format!(
                    "{}: warm runner stopped: its /work could not be emptied",
                    run.key.name
                ));
                run.r.kill();
                run.state = State::Dying(None);
            }
        }
    }

    /// Remove an ended (or to-be-stopped) runner; the call it failed, if any.
    fn reap(&mut self, poll: &mio::Registry, rid: usize) -> Option<Done> {
        let run = self.runners.remove(&rid)?;
        self.reaped = true;
        Self::deregister(poll, &run.r);
        let (host_uid, busy) = (run.r.host_uid(), matches!(run.state, State::Busy(_)));
        if busy {
            log(format!(
                "{}: warm runner (pid {}) ended during a call",
                run.key.name,
                run.r.pid()
            ));
        }
        let (exit, usage, stderr) = run.r.finish();
        let (call, why) = match run.state {
            State::Busy(call) => (call, None),
            State::Dying(Some((call, why))) => (call, Some(why)),
            State::Idle(_) | State::Dying(None) => return None,
        };
        let cancelled = why == Some(Lost::Cancelled);
        let report =
            WarmRunner::lost_call(host_uid, call.started.elapsed(), exit, &usage, &stderr, why);
        Some(Done {
            call,
            report,
            cancelled,
        })
    }

    fn stop(run: &mut Runner, why: Lost) {
        if matches!(run.state, State::Dying(_)) {
            return;
        }
        run.r.kill();
        let prev = std::mem::replace(&mut run.state, State::Dying(None));
        if let State::Busy(call) = prev {
            run.state = State::Dying(Some((call, why)));
        }
    }

    /// Kill the runners of calls past their deadline.
    pub fn on_timers(&mut self, now: Instant) {
        for run in self.runners.values_mut() {
            if matches!(&run.state, State::Busy(c) if c.deadline <= now) {
                Self::stop(run, Lost::Timeout);
            }
        }
    }

    /// Cancel the calls of `conn` (the one with request id `id`, if given).
    pub fn cancel(&mut self, conn: usize, id: Option<&Value>) -> bool {
        let mut found = false;
        for run in self.runners.values_mut() {
            if matches!(&run.state, State::Busy(c) if c.conn == conn && id.is_none_or(|id| &c.id == id))
            {
                Self::stop(run, Lost::Cancelled);
                found = true;
            }
        }
        found
    }

    /// Cancel every call (the drain timeout passed).
    pub fn cancel_all(&mut self) {
        for run in self.runners.values_mut() {
            if matches!(run.state, State::Busy(_)) {
                Self::stop(run, Lost::Cancelled);
            }
        }
    }

    /// Stop idle runners: after the idle timeout, or when their key is no longer
    /// their function's current one (or every idle runner, with `all`).
    pub fn sweep(&mut self, registry: &Registry, now: Instant, all: bool) {
        self.keys.retain(|_, (w, _)| w.strong_count() > 0);
        let mut current: HashMap<String, Option<Key>> = HashMap::new();
        let names: Vec<String> = self.runners.values().map(|r| r.key.name.clone()).collect();
        for n in names {
            if let std::collections::hash_map::Entry::Vacant(e) = current.entry(n) {
                let k = registry
                    .get(e.key())
                    .filter(|f| is_warm(f))
                    .map(|f| self.key_of(&f));
                e.insert(k);
            }
        }
        for run in self.runners.values_mut() {
            let State::Idle(since) = run.state else {
                continue;
            };
            let stale = current.get(&run.key.name).and_then(Option::as_ref) != Some(&run.key);
            if all || stale || now.duration_since(since) >= self.idle {
                Self::stop(run, Lost::Cancelled);
            }
        }
    }

    /// At exit: stop and reap every runner (blocking, bounded by
    /// `Sandbox::finish`).
    pub fn shutdown(&mut self, poll: &mio::Registry) {
        let ids: Vec<usize> = self.runners.keys().copied().collect();
        for rid in ids {
            if let Some(run) = self.runners.get(&rid) {
                run.r.kill();
            }
            self.reap(poll, rid);
        }
    }
}
