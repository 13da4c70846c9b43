//! Sandboxes made ahead of their invocations, for oneshot functions.
//!
//! A cold launch spends most of its time before the command runs: the
//! namespaces, the new root, the cgroup, the capability drop, landlock. All
//! of it depends on the function, none of it on the invocation, so after a
//! function's first invocation the daemon asks its launcher for a sandbox
//! for the next one, in the background: an init that is set up to the last
//! step and waits for its go ([`paddock_sandbox::Sandbox::start`]). The
//! next invocation takes it, writes its input and sends the go with its own
//! environment; what it waits for is a fork, the seccomp install and the
//! exec. Every prepared sandbox is used once, by one invocation of the very
//! function version it was made for, and is as isolated as a cold one (the
//! same code makes both).
//!
//! How many are kept: per function, as many as it had running at once
//! lately (at least one, at most its concurrency and [`PER_FUNCTION`]),
//! `sandbox.prepared` of paddockd.toml in all (0: none); one that waited
//! [`IDLE`] unused is dropped, and so is every one of a function version
//! that is no longer current. A function whose preparation fails is left
//! alone for [`BACKOFF`]. The launcher makes one at a time, and only while
//! no invocation is queued: under load every launch is for a request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paddock_policies::{Mode, Protocol};
use paddock_runtimes::native;
use paddock_runtimes::LaunchContext;
use paddock_sandbox::{Sandbox, SpawnError};

use crate::registry::{Function, Registry};
use crate::slots::Slot;

/// Most prepared sandboxes per function.
pub(crate) const PER_FUNCTION: usize = 4;
/// A prepared sandbox unused this long is dropped; a function not invoked
/// this long gets no more.
const IDLE: Duration = Duration::from_secs(60);
/// After a failed preparation, the function's next one waits this long.
const BACKOFF: Duration = Duration::from_secs(5);

/// A sandbox waiting for its go.
#[derive(Debug)]
struct Ready {
    func: Arc<Function>,
    sb: Sandbox,
    slot: Slot,
    made: Instant,
    /// Size of its /work (FILE protocol).
    work_bytes: u64,
}

/// A preparation the launcher is working on.
#[derive(Debug)]
struct Pending {
    func: Arc<Function>,
    slot: Slot,
    work_bytes: u64,
    /// An invocation waits for this very sandbox ([`Prepared::claim`]).
    claimed: bool,
}

/// Whose a launcher reply is ([`Prepared::on_reply`]).
#[derive(Debug)]
pub(crate) enum Reply {
    /// A preparation: it is in the pool now (or was dropped, on an error).
    Pooled,
    /// A preparation an invocation claimed: the sandbox and its slot are
    /// the invocation's.
    Claimed(Result<Sandbox, SpawnError>, Slot),
    /// Not a preparation: the caller's own launch.
    NotOurs(Result<Sandbox, SpawnError>),
}

/// What a function should have ready.
#[derive(Debug)]
struct Want {
    func: Arc<Function>,
    count: usize,
    last_used: Instant,
    /// No preparation before this (after a failure).
    not_before: Option<Instant>,
}

/// The daemon's prepared sandboxes.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    ready: Vec<Ready>,
    pending: HashMap<u64, Pending>,
    want: HashMap<String, Want>,
    /// Since start: sandboxes made, and taken by an invocation.
    made: u64,
    used: u64,
}

/// The /work room an invocation of `f` with `input_len` bytes needs.
fn need(f: &Function, input_len: usize) -> u64 {
    let policy = &f.prepared.policy;
    match policy.protocol {
        Protocol::File => native::work_bytes(policy, input_len),
        Protocol::Stdio => 0,
    }
}

/// Whether `f`'s invocations can use prepared sandboxes.
pub(crate) fn eligible(f: &Function) -> bool {
    f.prepared.policy.mode == Mode::Oneshot
}

/// What preparing needs from the daemon: a slot and a context for it.
pub(crate) trait Maker {
    /// A free uid slot and the launch context that goes with it.
    fn context(&mut self) -> Result<(Slot, LaunchContext), String>;
    /// Send the request to the launcher; its ticket.
    fn request(
        &mut self,
        ctx: &LaunchContext,
        spec: &paddock_sandbox::SandboxSpec,
    ) -> Result<u64, SpawnError>;
}

impl Prepared {
    /// A sandbox for this invocation of `func`, if one is ready: made for
    /// this very version, with /work room for `input_len` bytes of input.
    pub(crate) fn take(
        &mut self,
        func: &Arc<Function>,
        input_len: usize,
    ) -> Option<(Sandbox, Slot)> {
        let need = need(func, input_len);
        let i = self
            .ready
            .iter()
            .position(|r| Arc::ptr_eq(&r.func, func) && r.work_bytes >= need)?;
        let r = self.ready.swap_remove(i);
        self.used += 1;
        Some((r.sb, r.slot))
    }

    /// The ticket of a sandbox being made for `func` (this version, /work
    /// room for `input_len`) that no invocation has claimed yet: the
    /// caller's invocation will take it when it arrives.
    pub(crate) fn claim(&mut self, func: &Arc<Function>, input_len: usize) -> Option<u64> {
        let need = need(func, input_len);
        let (ticket, p) = self
            .pending
            .iter_mut()
            .find(|(_, p)| !p.claimed && Arc::ptr_eq(&p.func, func) && p.work_bytes >= need)?;
        p.claimed = true;
        Some(*ticket)
    }

    /// An invocation of `func` started with `running` of its invocations in
    /// flight (this one included): keep that many ready for what follows.
    pub(crate) fn used(&mut self, func: &Arc<Function>, running: usize) {
        if !eligible(func) {
            return;
        }
        let cap = (func.prepared.policy.limits.concurrency as usize).clamp(1, PER_FUNCTION);
        let name = func.prepared.policy.name.to_string();
        let now = Instant::now();
        let w = self.want.entry(name).or_insert_with(|| Want {
            func: func.clone(),
            count: 0,
            last_used: now,
            not_before: None,
        });
        if !Arc::ptr_eq(&w.func, func) {
            // A new version: what is wanted now is for it.
            w.func = func.clone();
            w.count = 0;
            w.not_before = None;
        }
        w.count = w.count.max(running).clamp(1, cap);
        w.last_used = now;
    }

    /// Drop the oldest ready sandbox, freeing its uid slot for a run that
    /// needs one; false if none is ready.
    pub(crate) fn evict_one(&mut self) -> bool {
        let Some(i) = (0..self.ready.len()).min_by_key(|&i| self.ready[i].made) else {
            return false;
        };
        self.ready.swap_remove(i);
        true
    }

    /// For `stats`: ready now, being made, made and used since start.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ready": self.ready.len(),
            "making": self.pending.len(),
            "made": self.made,
            "used": self.used,
        })
    }

    /// How many are ready or on their way.
    pub(crate) fn len(&self) -> usize {
        self.ready.len() + self.pending.len()
    }

    /// Ask for what is missing, keeping at most `total` in all: one
    /// request at a time (the launcher works through them in order, and a
    /// cold launch should not wait behind many).
    pub(crate) fn refill(&mut self, maker: &mut dyn Maker, total: usize) {
        if !self.pending.is_empty() || self.len() >= total {
            return;
        }
        let now = Instant::now();
        let have = |f: &Arc<Function>, ready: &[Ready], pending: &HashMap<u64, Pending>| {
            ready.iter().filter(|r| Arc::ptr_eq(&r.func, f)).count()
                + pending.values().filter(|p| Arc::ptr_eq(&p.func, f)).count()
        };
        let Some(w) = self.want.values_mut().find(|w| {
            w.not_before.is_none_or(|t| now >= t)
                && have(&w.func, &self.ready, &self.pending) < w.count
        }) else {
            return;
        };
        let Ok((slot, ctx)) = maker.context() else {
            return;
        };
        let policy = &w.func.prepared.policy;
        let work_bytes = native::work_bytes(policy, 0);
        let requested = native::sandbox_spec(&w.func.prepared, &ctx, None, work_bytes)
            .map_err(|e| e.to_string())
            .and_then(|spec| maker.request(&ctx, &spec).map_err(|e| e.to_string()));
        match requested {
            Ok(ticket) => {
                self.pending.insert(
                    ticket,
                    Pending {
                        func: w.func.clone(),
                        slot,
                        work_bytes,
                        claimed: false,
                    },
                );
            }
            Err(e) => {
                crate::daemon::log(format!("{}: cannot prepare a sandbox: {e}", policy.name));
                w.not_before = Some(now + BACKOFF);
            }
        }
    }

    /// The launcher answered `ticket`: a preparation goes to the pool, or
    /// to the invocation that claimed it; another ticket is the caller's.
    pub(crate) fn on_reply(&mut self, ticket: u64, result: Result<Sandbox, SpawnError>) -> Reply {
        let Some(p) = self.pending.remove(&ticket) else {
            return Reply::NotOurs(result);
        };
        if p.claimed {
            if result.is_ok() {
                self.made += 1;
                self.used += 1;
            }
            return Reply::Claimed(result, p.slot);
        }
        match result {
            Ok(sb) => {
                self.made += 1;
                self.ready.push(Ready {
                    func: p.func,
                    sb,
                    slot: p.slot,
                    made: Instant::now(),
                    work_bytes: p.work_bytes,
                })
            }
            Err(e) => {
                let name = p.func.prepared.policy.name.to_string();
                crate::daemon::log(format!("{name}: preparing a sandbox failed: {e}"));
                if let Some(w) = self.want.get_mut(&name) {
                    w.not_before = Some(Instant::now() + BACKOFF);
                }
            }
        }
        Reply::Pooled
    }

    /// Drop what is stale: sandboxes of versions no longer current, unused
    /// for [`IDLE`], and wants of functions not invoked for as long.
    pub(crate) fn sweep(&mut self, registry: &Registry, now: Instant) {
        let current = |f: &Arc<Function>| {
            registry
                .get(f.prepared.policy.name.as_str())
                .is_some_and(|c| Arc::ptr_eq(&c, f))
        };
        // Dropping a sandbox kills its init, reaps it and removes its cgroup.
        self.ready
            .retain(|r| current(&r.func) && now.duration_since(r.made) < IDLE);
        self.want
            .retain(|_, w| current(&w.func) && now.duration_since(w.last_used) < IDLE);
    }

    /// Drop every prepared sandbox (shutdown). Pending ones arrive later
    /// ([`Prepared::on_reply`]) and are dropped by the next call.
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.want.clear();
    }
}
