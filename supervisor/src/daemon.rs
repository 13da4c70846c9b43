//! `paddockd serve`: start-up, the socket, signals, and the one event loop.
//!
//! Single-threaded on purpose: sandboxes are cloned from this process, and a
//! clone of a multi-threaded process can inherit a lock held by another
//! thread. Everything (connections, runs' pipes and pidfds, signals via
//! signalfd) is one mio `Poll`; timers are the poll timeout.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use serde_json::{json, Value};

use paddock_policies::{DaemonConfig, GroupRef, Policy, Runtime};
use paddock_runtimes::oneshot::{self, Run};
use paddock_runtimes::{native, Invocation, LaunchContext, RunReport, Status};
use paddock_sandbox::{cgroup, CgroupParent, IdMap, Launcher};

use crate::conn::{Conn, Peer, ReadOutcome};
use crate::prepared::{self, Prepared};
use crate::protocol::{self, Code, ErrorReply, InvokeReq, Request};
use crate::registry::{Function, Registry};
use crate::result_json;
use crate::slots::{self, Slot};
use crate::stats::Stats;
// warm: pools of warm wasm runners (supervisor/src/warm.rs).
use crate::warm::{self, Warm, K_WARM};

/// Command-line overrides and timeouts of `paddockd serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub functions: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// How long SIGTERM lets running invocations finish before killing them.
    pub drain_timeout: Duration,
    /// A partial request line older than this closes the connection.
    pub idle_timeout: Duration,
    /// A client that takes none of its answers for this long is dropped.
    pub write_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            config: None,
            socket: None,
            functions: None,
            state_dir: None,
            drain_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] paddock_policies::ConfigError),
    #[error("paddockd needs root (it creates namespaces and cgroups); euid is {0}")]
    NotRoot(u32),
    #[error("cgroups: {0}")]
    Cgroup(io::Error),
    #[error("launcher: {0}")]
    Launcher(paddock_sandbox::SpawnError),
    #[error("socket {}: {msg}", path.display())]
    Socket { path: PathBuf, msg: String },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> ServeError {
    move |source| ServeError::Io { what, source }
}

pub(crate) fn log(msg: impl std::fmt::Display) {
    eprintln!("paddockd: {msg}");
}

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// The launcher's socket (id 0 is no connection's: they start at 1).
const LAUNCHER: Token = Token(2);
const K_CONN: usize = 2;
const K_PIDFD: usize = 3;
const K_STDOUT: usize = 4;
const K_STDERR: usize = 5;
const K_STDIN: usize = 6;
/// A run's report channel: the init says the command ended.
const K_REPORT: usize = 8;
/// Bits of a token that say which fd of an id it is (warm.rs's K_WARM too).
pub(crate) const KIND_BITS: usize = 4;

fn token(id: usize, kind: usize) -> Token {
    Token((id << KIND_BITS) | kind)
}

/// An invocation waiting for a slot.
#[derive(Debug)]
struct Queued {
    conn: usize,
    id: Value,
    func: Arc<Function>,
    inv: Invocation,
    arrived: Instant,
    /// `arrived` plus the (possibly lowered) timeout: queue time counts
    /// against it, and a queued invocation is answered `timeout` when it passes.
    deadline: Instant,
}

/// An invocation whose sandbox the launcher is making.
#[derive(Debug)]
struct Launching {
    q: Queued,
    /// A cold launch's uid slot (a claimed prepared sandbox has its own).
    slot: Option<Slot>,
    /// Cancelled meanwhile: stopped as soon as it runs.
    cancelled: bool,
}

/// An invocation whose sandbox runs.
#[derive(Debug)]
struct Running {
    conn: usize,
    id: Value,
    func: Arc<Function>,
    run: Run,
    execution_id: String,
    arrived: Instant,
    queued: Duration,
    next_timer: Option<Instant>,
    _slot: Slot,
}

struct Daemon {
    config: DaemonConfig,
    opts: ServeOptions,
    poll: Poll,
    listener: Option<UnixListener>,
    socket_path: PathBuf,
    signals: SignalFd,
    registry: Registry,
    cgroups: Arc<CgroupParent>,
    invoke_gids: Vec<u32>,
    admin_gids: Vec<u32>,
    conns: HashMap<usize, Conn>,
    next_conn: usize,
    runs: HashMap<usize, Running>,
    next_run: usize,
    queues: BTreeMap<String, VecDeque<Queued>>,
    /// Round-robin cursor over functions with queued invocations.
    last_served: Option<String>,
    running_per_fn: HashMap<String, u32>,
    stats: Stats,
    draining_until: Option<Instant>,
    accept_retry: Option<Instant>,
    next_housekeeping: Instant,
    /// Run cgroups of a killed predecessor that were still busy at start-up.
    stale_cgroups: Vec<String>,
    seq: u64,
    /// Connections kept at most, so that launches always find free fds.
    max_conns: usize,
    /// warm: runners of `mode = "warm"` functions and their calls.
    warm: Warm,
    /// The small process that clones every sandbox.
    launcher: Rc<Launcher>,
    /// Sandboxes made ahead for the next invocations (supervisor/src/prepared.rs).
    prepared: Prepared,
    /// Answered runs whose init is still exiting, by run id.
    reaping: HashMap<usize, paddock_sandbox::Sandbox>,
    /// Invocations whose sandbox the launcher is making, by its ticket.
    launching: HashMap<u64, Launching>,
}

fn resolve_groups(groups: &[GroupRef]) -> Vec<u32> {
    groups
        .iter()
        .filter_map(|g| match g {
            GroupRef::Gid(g) => Some(*g),
            GroupRef::Name(n) => match nix::unistd::Group::from_name(n) {
                Ok(Some(g)) => Some(g.gid.as_raw()),
                _ => {
                    log(format!("access: group {n:?} does not exist; ignored"));
                    None
                }
            },
        })
        .collect()
}

/// Whether only root can change the entries of the directory `meta`
/// describes: owned by root and writable by nobody else, or (when
/// `sticky_ok`) sticky, so that nobody else can rename or remove root's
/// entries in it.
fn root_controlled(meta: &std::fs::Metadata, sticky_ok: bool) -> bool {
    let mode = meta.mode();
    meta.is_dir() && meta.uid() == 0 && (mode & 0o022 == 0 || (sticky_ok && mode & 0o1000 != 0))
}

/// Checks every existing component above `dir` (not `dir` itself): a
/// root-controlled directory (sticky ones allowed), or a symbolic link owned
/// by root. A missing component ends the walk (the daemon creates it).
fn check_ancestors(dir: &Path) -> Result<(), String> {
    let mut prefix = PathBuf::new();
    let comps: Vec<_> = dir.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        prefix.push(c);
        let meta = match std::fs::symlink_metadata(&prefix) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", prefix.display())),
        };
        let ok = if meta.file_type().is_symlink() {
            meta.uid() == 0
        } else {
            root_controlled(&meta, true)
        };
        if !ok {
            return Err(format!(
                "{} (owner uid {}, mode {:o}) lets another user replace the socket's directory: \
                 every directory above the socket must belong to root and be writable only \
                 by root (or be sticky, like /tmp)",
                prefix.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// Create the listening socket safely, all before listen(2): the socket's
/// directory and every one above it only root can change, the socket mode
/// 0600 from birth (umask), then 0660 root:paddock when that group exists, a
/// planted symlink or file at the path refused (bind(2) never follows one).
///
/// The directory: a missing one is created, 0750 root:paddock (0700 root
/// without the group). An existing one is used as it is, never chmod'ed or
/// chown'ed -- except `own_dir`, the daemon's own runtime directory
/// (`run_dir`, which systemd creates root:root), which gets that same mode
/// and group -- and it is refused if anyone but root can write it (sticky
/// or not: in a shared directory another user could take the socket's name
/// while the daemon is down and impersonate it to clients).
fn bind_socket(
    path: &Path,
    group: Option<u32>,
    own_dir: &Path,
) -> Result<UnixListener, ServeError> {
    let fail = |msg: String| ServeError::Socket {
        path: path.to_path_buf(),
        msg,
    };
    let path = &std::path::absolute(path).map_err(|e| fail(format!("{e}")))?;
    let dir = path
        .parent()
        .filter(|d| d.file_name().is_some())
        .ok_or_else(|| fail("must be in a directory below /".into()))?;
    check_ancestors(dir).map_err(fail)?;
    let (mode, gid) = match group {
        Some(g) => (0o750, g),
        None => (0o700, 0),
    };
    let mut created = false;
    if std::fs::symlink_metadata(dir).is_err() {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| fail(format!("cannot create {}: {e}", parent.display())))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(fail(format!("cannot create {}: {e}", dir.display()))),
        }
    }
    // What `dir` names now, through any symlink: the same checks again.
    let real = std::fs::canonicalize(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    check_ancestors(&real).map_err(fail)?;
    let meta =
        std::fs::symlink_metadata(&real).map_err(|e| fail(format!("{}: {e}", real.display())))?;
    if !root_controlled(&meta, false) {
        return Err(fail(format!(
            "the directory {} (owner uid {}, mode {:o}) must be a directory only root can write; \
             paddockd does not change an existing directory's mode: name a socket in a new \
             directory (e.g. {}/paddock/paddockd.sock) and paddockd creates it 0{:o}, owned by root",
            real.display(),
            meta.uid(),
            meta.mode() & 0o7777,
            real.display(),
            mode
        )));
    }
    // Bind beneath the checked directory, not through the name given.
    let name = path
        .file_name()
        .ok_or_else(|| fail("does not end in a file name".into()))?;
    let path = &real.join(name);
    let ours = created || std::fs::canonicalize(own_dir).is_ok_and(|o| o == real);
    if ours {
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(format!("chmod directory: {e}")))?;
        nix::unistd::chown(
            &real,
            Some(nix::unistd::Uid::from_raw(0)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| fail(format!("chown directory: {e}")))?;
    } else if let Some(g) = group {
        let m = meta.mode();
        if !((meta.gid() == g && m & 0o010 != 0) || m & 0o001 != 0) {
            log(format!(
                "{} (mode {:o}) is not searchable by group {g}: its members cannot connect",
                real.display(),
                m & 0o7777
            ));
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(fail("another paddockd is listening on it".into()));
            }
            std::fs::remove_file(path).map_err(|e| fail(format!("remove stale socket: {e}")))?;
        }
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "not a socket"
            };
            return Err(fail(format!(
                "exists and is {what}; refusing to replace or follow it"
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| fail(format!("socket: {e}")))?;
    let addr = UnixAddr::new(path).map_err(|e| fail(format!("address: {e}")))?;
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = socket::bind(fd.as_raw_fd(), &addr);
    nix::sys::stat::umask(old);
    bound.map_err(|e| fail(format!("bind: {e}")))?;
    let sock_mode = if group.is_some() { 0o660 } else { 0o600 };
    // Only root can change the directory's entries, so `path` is still our
    // socket; lchown regardless.
    std::os::unix::fs::lchown(path, Some(0), Some(gid)).map_err(|e| fail(format!("chown: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(sock_mode))
        .map_err(|e| fail(format!("chmod: {e}")))?;
    socket::listen(&fd, Backlog::new(1024).expect("valid backlog"))
        .map_err(|e| fail(format!("listen: {e}")))?;
    Ok(UnixListener::from_std(
        std::os::unix::net::UnixListener::from(fd),
    ))
}

/// Whether the peer has closed both directions (not just its sending side).
fn peer_hung_up(stream: &UnixStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::empty())];
    poll(&mut fds, PollTimeout::ZERO).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

fn peer_of(stream: &UnixStream) -> Option<Peer> {
    let cred = socket::getsockopt(stream, sockopt::PeerCredentials).ok()?;
    let mut gids = vec![cred.gid()];
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", cred.pid())) {
        if let Some(line) = status.lines().find(|l| l.starts_with("Groups:")) {
            gids.extend(
                line[7..]
                    .split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    Some(Peer {
        pid: cred.pid(),
        uid: cred.uid(),
        gids,
    })
}

/// Run the daemon until SIGTERM (or SIGINT) and a drain.
pub fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    let mut config = match &opts.config {
        Some(p) => DaemonConfig::load(p)?,
        None => DaemonConfig::load_or_default(Path::new(crate::run::DEFAULT_CONFIG))?,
    };
    if let Some(s) = &opts.socket {
        config.socket = s.clone();
    }
    if let Some(f) = &opts.functions {
        config.functions_dir = f.clone();
    }
    if let Some(s) = &opts.state_dir {
        config.state_dir = s.clone();
    }
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(ServeError::NotRoot(euid));
    }
    let cgroups = CgroupParent::discover().map_err(ServeError::Cgroup)?;
    cgroups.prepare_v2().map_err(ServeError::Cgroup)?;
    // Every sandbox is cloned by this small copy of the daemon, made now
    // while the daemon is small (after prepare_v2: it shares our leaf).
    let launcher = Rc::new(Launcher::start().map_err(ServeError::Launcher)?);
    // A killed predecessor's sandboxes died with it (PDEATHSIG); its cgroups remain.
    let prefix = format!("{}-d-", config.sandbox.cgroup_name);
    let stale_cgroups = cgroup::reap_stale(&cgroups, &prefix, Duration::from_secs(2));
    if !stale_cgroups.is_empty() {
        log(format!(
            "{} cgroup(s) left by a previous instance are still busy; retrying in the background",
            stale_cgroups.len()
        ));
    }
    // Sandboxes (unprivileged uids) bind deployed functions from below it:
    // made here, it is 0755 whatever the umask; made by someone else, it
    // is left as it is, with a warning if they cannot get through it.
    if !config.state_dir.exists() {
        std::fs::create_dir_all(&config.state_dir).map_err(io_err("state directory"))?;
        std::fs::set_permissions(&config.state_dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("state directory"))?;
    } else if let Ok(m) = std::fs::metadata(&config.state_dir) {
        if m.permissions().mode() & 0o001 == 0 {
            log(format!(
                "{}: others may not search it (mode {:o}); deployed functions will fail to launch",
                config.state_dir.display(),
                m.permissions().mode() & 0o7777
            ));
        }
    }
    let mut registry = Registry::new(&config);
    for p in registry.load(&config) {
        log(p);
    }
    let invoke_gids = resolve_groups(&config.access.invoke.groups);
    let admin_gids = resolve_groups(&config.access.admin.groups);
    let socket_group = invoke_gids.first().copied();

    // Signals arrive as data on an fd; the sandboxes reset their own mask.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| io_err("sigprocmask")(e.into()))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| io_err("signalfd")(e.into()))?;

    // Connections may use what is left after a reserve for launches (each
    // holds about eight fds while it starts and runs).
    let max_conns = {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
        let soft = if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            hard
        } else {
            soft
        };
        let reserve = 32 + 8 * u64::from(config.limits.concurrency);
        soft.saturating_sub(reserve).max(8) as usize
    };
    let mut listener = bind_socket(&config.socket, socket_group, &config.run_dir)?;
    let poll = Poll::new().map_err(io_err("epoll"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(io_err("register listener"))?;
    poll.registry()
        .register(
            &mut SourceFd(&signals.as_fd().as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )
        .map_err(io_err("register signalfd"))?;
    log(format!(
        "listening on {} ({} functions)",
        config.socket.display(),
        registry.all().count()
    ));
    // systemd Type=notify: ready once the socket accepts (no-op elsewhere).
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        log(format!("sd_notify READY: {e}"));
    }
    let warm = Warm::new(config.limits.warm_idle);
    let mut d = Daemon {
        socket_path: config.socket.clone(),
        config,
        opts,
        poll,
        listener: Some(listener),
        signals,
        registry,
        cgroups: Arc::new(cgroups),
        invoke_gids,
        admin_gids,
        conns: HashMap::new(),
        next_conn: 1,
        runs: HashMap::new(),
        next_run: 1,
        queues: BTreeMap::new(),
        last_served: None,
        running_per_fn: HashMap::new(),
        stats: Stats::default(),
        draining_until: None,
        accept_retry: None,
        next_housekeeping: Instant::now() + Duration::from_secs(1),
        stale_cgroups,
        seq: 0,
        max_conns,
        warm,
        launcher,
        prepared: Prepared::default(),
        reaping: HashMap::new(),
        launching: HashMap::new(),
    };
    d.poll
        .registry()
        .register(
            &mut SourceFd(&d.launcher.fd().as_raw_fd()),
            LAUNCHER,
            Interest::READABLE,
        )
        .map_err(io_err("register launcher"))?;
    d.run_loop();
    // Answered runs whose init was still exiting: reaped, cgroups removed.
    d.reaping.clear();
    // prepared: their inits are killed and reaped, their cgroups removed;
    // those still being made are waited for (briefly) and dropped too.
    d.prepared.clear();
    let until = Instant::now() + Duration::from_secs(2);
    while d.prepared.len() > 0 && Instant::now() < until {
        d.on_launcher();
        d.prepared.clear();
        std::thread::sleep(Duration::from_millis(1));
    }
    // warm: nothing of a runner outlives the daemon.
    d.warm.shutdown(d.poll.registry());
    log("stopped");
    Ok(())
}

impl Daemon {
    fn run_loop(&mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .next_wakeup()
                .map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log(format!("poll: {e}"));
                }
            }
            for ev in events.iter() {
                let t = ev.token();
                match t {
                    LISTENER => self.accept(),
                    SIGNALS => self.on_signals(),
                    LAUNCHER => self.on_launcher(),
                    Token(n) => {
                        let (id, kind) = (n >> KIND_BITS, n & ((1 << KIND_BITS) - 1));
                        match kind {
                            // The peer closed both directions: nobody to answer.
                            K_CONN if ev.is_write_closed() => self.close_conn(id),
                            K_CONN => self.on_conn(id, ev.is_readable(), ev.is_writable()),
                            K_PIDFD | K_REPORT | K_STDOUT | K_STDERR | K_STDIN => {
                                self.on_run(id, kind)
                            }
                            // warm: a runner's pidfd, stdout or stdin.
                            K_WARM => {
                                let done = self.warm.on_event(self.poll.registry(), id);
                                let answered = !done.is_empty();
                                self.warm_done(done);
                                if answered {
                                    self.warm.tidy();
                                }
                                if self.warm.take_reaped() {
                                    self.registry.collect_garbage();
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            self.on_timers();
            if self.draining_until.is_none() {
                self.refill_prepared();
            }
            if let Some(until) = self.draining_until {
                let flushed = self.conns.values().all(|c| c.pending_write() == 0);
                if self.runs.is_empty()
                    && self.launching.is_empty()
                    && self.warm.busy() == 0
                    && (flushed || Instant::now() > until + Duration::from_secs(1))
                {
                    return;
                }
            }
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let mut t = Some(self.next_housekeeping);
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        for r in self.runs.values() {
            min(r.next_timer);
        }
        // A queued invocation's deadline passes while it waits.
        min(self.queues.values().flatten().map(|q| q.deadline).min());
        min(self.accept_retry);
        min(self.draining_until);
        min(self.warm.next_timer());
        t
    }

    // ---- connections -------------------------------------------------

    /// Close the longest-idle connection with nothing pending. False if none.
    fn evict_idle(&mut self) -> bool {
        let victim = self
            .conns
            .iter()
            .filter(|(id, c)| c.pending_write() == 0 && !self.has_pending(**id))
            .min_by_key(|(_, c)| c.last_activity)
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.close_conn(id);
                true
            }
            None => false,
        }
    }

    fn accept(&mut self) {
        loop {
            // Keep fds for launches: at the connection cap, an idle client
            // makes room for the new one, or the new one waits in the backlog.
            if self.conns.len() >= self.max_conns && !self.evict_idle() {
                self.accept_retry = Some(Instant::now() + Duration::from_millis(100));
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let Some(peer) = peer_of(&stream) else {
                        continue;
                    };
                    let id = self.next_conn;
                    self.next_conn += 1;
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token(id, K_CONN), Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    self.conns.insert(id, Conn::new(stream, peer));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the backlog keeps them. Make room by
                    // closing the longest-idle connection with nothing
                    // pending, so idle clients cannot lock out working ones,
                    // and try again shortly.
                    if self.evict_idle() {
                        continue;
                    }
                    log(format!("accept: {e}"));
                    self.accept_retry = Some(Instant::now() + Duration::from_millis(100));
                    return;
                }
            }
        }
    }

    fn on_conn(&mut self, id: usize, readable: bool, writable: bool) {
        if writable {
            self.flush(id);
        }
        if !readable {
            return;
        }
        let max_line = self.config.limits.max_line_bytes as usize;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.closing {
            return;
        }
        match c.read(max_line) {
            ReadOutcome::Open => {}
            ReadOutcome::Closed => {
                // A client that only shut its sending side (`echo req |
                // socat -`) still gets every answer; one that is gone
                // entirely has its runs stopped.
                let gone = peer_hung_up(&c.stream);
                self.process_lines(id);
                if gone {
                    self.close_conn(id);
                } else if let Some(c) = self.conns.get_mut(&id) {
                    c.read_closed = true;
                    let _ = self.poll.registry().reregister(
                        &mut c.stream,
                        token(id, K_CONN),
                        Interest::WRITABLE,
                    );
                    c.want_write = true;
                    self.finish_if_done(id);
                    self.flush(id);
                }
                return;
            }
            ReadOutcome::TooLarge => {
                let e = ErrorReply::new(
                    Code::TooLarge,
                    format!("request line longer than {max_line} bytes; closing"),
                );
                self.send(id, protocol::err_line(&Value::Null, &e));
                if let Some(c) = self.conns.get_mut(&id) {
                    c.closing = true;
                }
                self.flush(id);
                return;
            }
        }
        self.process_lines(id);
    }

    fn process_lines(&mut self, id: usize) {
        while let Some(line) = self.conns.get_mut(&id).and_then(|c| c.next_line()) {
            let (rid, req) = protocol::parse(&line);
            match req {
                Err(e) => self.send(id, protocol::err_line(&rid, &e)),
                Ok(r) => self.handle(id, rid, r),
            }
        }
    }

    fn send(&mut self, id: usize, line: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.queue(line);
        }
        self.finish_if_done(id);
        self.flush(id);
    }

    /// Whether an invocation of connection `id` runs or waits.
    fn has_pending(&self, id: usize) -> bool {
        self.runs.values().any(|r| r.conn == id)
            || self.launching.values().any(|l| l.q.conn == id)
            || self.warm.has_call(id, None)
            || self.queues.values().flatten().any(|q| q.conn == id)
    }

    /// A half-closed connection closes once nothing of it is pending.
    fn finish_if_done(&mut self, id: usize) {
        let pending = self.has_pending(id);
        if let Some(c) = self.conns.get_mut(&id) {
            if c.read_closed && !pending {
                c.closing = true;
            }
        }
    }

    fn flush(&mut self, id: usize) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match c.flush() {
            Ok(true) => {
                // A half-closed connection stays on WRITABLE: its read side
                // is at EOF and would wake us for ever.
                if c.want_write && !c.read_closed {
                    c.want_write = false;
                    let _ = self.poll.registry().reregister(
                        &mut c.stream,
                        token(id, K_CONN),
                        Interest::READABLE,
                    );
                }
                if c.closing {
                    self.close_conn(id);
                }
            }
            Ok(false) => {
                if !c.want_write {
                    c.want_write = true;
                    let _ = self.poll.registry().reregister(
                        &mut c.stream,
                        token(id, K_CONN),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                }
            }
            Err(_) => self.close_conn(id),
        }
    }

    /// Close a connection; its runs are stopped and its queued invocations dropped.
    fn close_conn(&mut self, id: usize) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        let now = Instant::now();
        for r in self.runs.values_mut().filter(|r| r.conn == id) {
            r.run.cancel(now);
            r.next_timer = r.run.on_timer(now);
        }
        self.warm.cancel(id, None);
        for q in self.queues.values_mut() {
            q.retain(|x| x.conn != id);
        }
        let launching: Vec<u64> = self
            .launching
            .iter()
            .filter(|(_, l)| !l.cancelled && l.q.conn == id)
            .map(|(t, _)| *t)
            .collect();
        for t in launching {
            self.cancel_launching(t);
        }
    }

    /// Cancel an invocation whose sandbox is being made: it is stopped as
    /// soon as it runs (SIGTERM, then SIGKILL after the grace), and answered
    /// `cancelled` then, like any cancelled run.
    fn cancel_launching(&mut self, ticket: u64) {
        if let Some(l) = self.launching.get_mut(&ticket) {
            l.cancelled = true;
        }
    }

    // ---- requests ----------------------------------------------------

    fn allowed(&self, conn: usize, admin: bool) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let (rule, gids) = if admin {
            (&self.config.access.admin, &self.admin_gids)
        } else {
            (&self.config.access.invoke, &self.invoke_gids)
        };
        rule.uids.contains(&c.peer.uid)
            || rule.allows_ids(c.peer.uid, &c.peer.gids)
            || c.peer.gids.iter().any(|g| gids.contains(g))
    }

    fn handle(&mut self, conn: usize, id: Value, req: Request) {
        if !self.allowed(conn, req.is_admin()) {
            let uid = self
                .conns
                .get(&conn)
                .map(|c| c.peer.uid)
                .unwrap_or(u32::MAX);
            let e = ErrorReply::new(
                Code::Forbidden,
                format!("uid {uid} may not use this operation (see [access] in paddockd.toml)"),
            );
            return self.send(conn, protocol::err_line(&id, &e));
        }
        let shutting = self.draining_until.is_some();
        // warm: a new version may retire warm runners.
        let registry_changed = matches!(
            req,
            Request::Deploy(_) | Request::Remove(_) | Request::Reload
        );
        if shutting
            && matches!(
                req,
                Request::Invoke(_) | Request::Deploy(_) | Request::Remove(_) | Request::Reload
            )
        {
            let e = ErrorReply::new(Code::ShuttingDown, "paddockd is shutting down");
            return self.send(conn, protocol::err_line(&id, &e));
        }
        let result = match req {
            Request::Hello => Ok(json!({
                "protocol": protocol::VERSION,
                "server": concat!("paddockd/", env!("CARGO_PKG_VERSION")),
                "ops": protocol::OPS,
                "limits": {
                    "max_line_bytes": self.config.limits.max_line_bytes,
                    "concurrency": self.config.limits.concurrency,
                    "queue": self.config.limits.queue,
                },
            })),
            Request::Invoke(inv) => return self.invoke(conn, id, inv),
            Request::Cancel(c) => Ok(self.cancel(conn, &c.request)),
            Request::List => Ok(json!({
                "functions": self.registry.all().map(|f| {
                    let p = &f.prepared.policy;
                    json!({
                        "name": p.name.to_string(),
                        "description": p.description,
                        "runtime": p.runtime.as_str(),
                        "protocol": p.protocol.as_str(),
                        "mode": p.mode.as_str(),
                        "origin": f.origin.as_str(),
                        "version": f.version,
                    })
                }).collect::<Vec<_>>()
            })),
            Request::Describe(r) => match self.registry.get(&r.function) {
                Some(f) => {
                    let mut v = describe(&f);
                    if let Some(h) = self.warm.module_sha256(&f) {
                        v["module_sha256"] = json!(h);
                    }
                    Ok(v)
                }
                None => Err(unknown_function(&r.function)),
            },
            Request::Deploy(r) => self
                .registry
                .deploy(
                    &r.function,
                    &r.policy,
                    &r.files,
                    &r.executable,
                    &self.config,
                )
                .map(|f| json!({ "function": r.function, "version": f.version })),
            Request::Remove(r) => self
                .registry
                .remove(&r.function)
                .map(|()| json!({ "removed": true })),
            Request::Reload => Ok(self.reload()),
            Request::Stats => {
                let mut s = self.stats.to_json();
                s["in_flight"] = json!(self.in_flight());
                s["warm_runners"] = json!(self.warm.runners());
                s["prepared"] = self.prepared.to_json();
                s["queued"] = json!(self.queues.values().map(VecDeque::len).sum::<usize>());
                Ok(s)
            }
        };
        let line = match result {
            Ok(v) => protocol::ok_line(&id, v),
            Err(e) => protocol::err_line(&id, &e),
        };
        self.send(conn, line);
        if registry_changed {
            self.warm.sweep(&self.registry, Instant::now(), false);
        }
    }

    fn reload(&mut self) -> Value {
        let problems = self.registry.load(&self.config);
        for p in &problems {
            log(format!("reload: {p}"));
        }
        json!({ "functions": self.registry.all().count(), "problems": problems })
    }

    fn cancel(&mut self, conn: usize, target: &Value) -> Value {
        let now = Instant::now();
        if self.warm.cancel(conn, Some(target)) {
            return json!({ "cancelled": true });
        }
        if let Some(r) = self
            .runs
            .values_mut()
            .find(|r| r.conn == conn && &r.id == target)
        {
            r.run.cancel(now);
            r.next_timer = r.run.on_timer(now);
            return json!({ "cancelled": true });
        }
        if let Some(ticket) = self
            .launching
            .iter()
            .find(|(_, l)| !l.cancelled && l.q.conn == conn && &l.q.id == target)
            .map(|(t, _)| *t)
        {
            self.cancel_launching(ticket);
            return json!({ "cancelled": true });
        }
        let mut found = None;
        for q in self.queues.values_mut() {
            if let Some(i) = q.iter().position(|x| x.conn == conn && &x.id == target) {
                found = q.remove(i);
                break;
            }
        }
        match found {
            Some(q) => {
                let mut v = not_run_result(&q, Status::FailedToStart, now);
                v["status"] = json!("cancelled");
                self.stats.record(
                    q.func.prepared.policy.name.as_str(),
                    "cancelled",
                    ms(now - q.arrived),
                );
                self.send(q.conn, protocol::ok_line(&q.id, v));
                json!({ "cancelled": true })
            }
            None => json!({ "cancelled": false }),
        }
    }

    fn invoke(&mut self, conn: usize, id: Value, req: InvokeReq) {
        let now = Instant::now();
        let Some(func) = self.registry.get(&req.function) else {
            return self.send(
                conn,
                protocol::err_line(&id, &unknown_function(&req.function)),
            );
        };
        let input = match (req.input, req.input_base64) {
            (Some(_), Some(_)) => {
                let e =
                    ErrorReply::new(Code::BadRequest, "give `input` or `input_base64`, not both");
                return self.send(conn, protocol::err_line(&id, &e));
            }
            (Some(s), None) => s.into_bytes(),
            (None, Some(b)) => match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(v) => v,
                Err(e) => {
                    let e = ErrorReply::new(Code::BadRequest, format!("input_base64: {e}"));
                    return self.send(conn, protocol::err_line(&id, &e));
                }
            },
            (None, None) => Vec::new(),
        };
        if self.runs.values().any(|r| r.conn == conn && r.id == id)
            || self
                .launching
                .values()
                .any(|l| l.q.conn == conn && l.q.id == id)
            || self.warm.has_call(conn, Some(&id))
            || self
                .queues
                .values()
                .flatten()
                .any(|q| q.conn == conn && q.id == id)
        {
            let e = ErrorReply::new(
                Code::BadRequest,
                format!("request id {id} is already in flight on this connection"),
            );
            return self.send(conn, protocol::err_line(&id, &e));
        }
        self.seq += 1;
        let inv = Invocation {
            execution_id: format!("{}-{}", crate::run::execution_id(), self.seq),
            trace_id: req.trace_id,
            input,
            timeout: req.timeout_ms.map(Duration::from_millis),
            env: req.env,
            command: None,
        };
        // Reject what can never run before it waits in a queue.
        let timeout = match check_invocation(&func.prepared.policy, &inv) {
            Ok(t) => t,
            Err(e) => return self.send(conn, protocol::err_line(&id, &e)),
        };
        let name = func.prepared.policy.name.to_string();
        let q = Queued {
            conn,
            id,
            func,
            inv,
            arrived: now,
            deadline: now + timeout,
        };
        let queue_empty = self.queues.get(&name).is_none_or(VecDeque::is_empty);
        if queue_empty && self.can_start(&q.func) {
            self.start(q);
        } else if self.queues.get(&name).map_or(0, VecDeque::len)
            < self.config.limits.queue as usize
        {
            self.queues.entry(name).or_default().push_back(q);
        } else {
            self.stats.rejected_busy += 1;
            let retry = self.stats.median_ms().unwrap_or(100.0).ceil().max(1.0) as u64;
            let e = ErrorReply::new(
                Code::Busy,
                format!(
                    "{name}: {} running and its queue is full",
                    self.running_per_fn.get(&name).copied().unwrap_or(0)
                ),
            )
            .with("retry_after_ms", json!(retry));
            self.send(q.conn, protocol::err_line(&q.id, &e));
        }
    }

    fn can_start(&self, f: &Function) -> bool {
        let running = self
            .running_per_fn
            .get(f.prepared.policy.name.as_str())
            .copied()
            .unwrap_or(0);
        self.in_flight() < self.config.limits.concurrency as usize
            && running < f.prepared.policy.limits.concurrency
    }

    /// Invocations running: oneshot sandboxes and warm calls.
    fn in_flight(&self) -> usize {
        self.runs.len() + self.launching.len() + self.warm.busy()
    }

    /// Start as many queued invocations as slots allow, round-robin over functions.
    fn schedule(&mut self) {
        let now = Instant::now();
        loop {
            if self.in_flight() >= self.config.limits.concurrency as usize {
                return;
            }
            let names: Vec<String> = self
                .queues
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(n, _)| n.clone())
                .collect();
            if names.is_empty() {
                return;
            }
            // Rotate so the function after the last one served goes first.
            let start = match &self.last_served {
                Some(l) => names.iter().position(|n| n > l).unwrap_or(0),
                None => 0,
            };
            let mut started = false;
            for i in 0..names.len() {
                let name = &names[(start + i) % names.len()];
                let ready = self.queues[name]
                    .front()
                    .is_some_and(|q| self.can_start(&q.func));
                if !ready {
                    continue;
                }
                let q = self
                    .queues
                    .get_mut(name)
                    .and_then(VecDeque::pop_front)
                    .expect("front exists");
                self.last_served = Some(name.clone());
                // Queue time counts against the deadline.
                if now >= q.deadline {
                    self.answer_queued_timeout(q, now);
                } else {
                    self.start(q);
                }
                started = true;
                break;
            }
            if !started {
                return;
            }
        }
    }

    /// Answer `timeout` to every queued invocation whose deadline has
    /// passed while it waited: it never gets a sandbox.
    fn expire_queued(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for q in self.queues.values_mut() {
            if q.iter().any(|x| x.deadline <= now) {
                let (gone, kept): (VecDeque<Queued>, VecDeque<Queued>) = std::mem::take(q)
                    .into_iter()
                    .partition(|x| x.deadline <= now);
                *q = kept;
                expired.extend(gone);
            }
        }
        for q in expired {
            self.answer_queued_timeout(q, now);
        }
    }

    fn answer_queued_timeout(&mut self, q: Queued, now: Instant) {
        let v = not_run_result(&q, Status::Timeout, now);
        self.stats.record(
            q.func.prepared.policy.name.as_str(),
            "timeout",
            ms(now - q.arrived),
        );
        self.send(q.conn, protocol::ok_line(&q.id, v));
    }

    /// Finish an ended run's sandbox once its init has exited: reap it and
    /// remove its cgroup (the pidfd, still watched, says when).
    fn reap_done(&mut self, rid: usize) {
        let Some(sb) = self.reaping.get_mut(&rid) else {
            return;
        };
        if sb.try_reap() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&sb.pidfd().as_raw_fd()));
            // Dropping it removes the cgroup (its processes are all gone).
            self.reaping.remove(&rid);
        }
    }

    /// What the prepared pool needs to make a sandbox.
    fn maker(&mut self) -> DaemonMaker<'_> {
        DaemonMaker {
            config: &self.config,
            cgroups: &self.cgroups,
            launcher: &self.launcher,
            seq: &mut self.seq,
        }
    }

    /// Replies from the launcher: the prepared pool's sandboxes.
    fn on_launcher(&mut self) {
        loop {
            match self.launcher.take_reply() {
                Ok(Some((ticket, result))) => match self.prepared.on_reply(ticket, result) {
                    prepared::Reply::Pooled => {}
                    prepared::Reply::Claimed(result, slot) => {
                        if let Some(l) = self.launching.remove(&ticket) {
                            self.launched(l, result, slot);
                        }
                    }
                    prepared::Reply::NotOurs(result) => match self.launching.remove(&ticket) {
                        Some(mut l) => {
                            let slot = l.slot.take().expect("a cold launch holds its slot");
                            self.launched(l, result, slot);
                        }
                        // A reply no one waits for any more: dropping it ends it.
                        None => drop(result),
                    },
                },
                Ok(None) => return,
                Err(e) => {
                    log(format!("launcher: {e}"));
                    return;
                }
            }
        }
    }

    /// Ask the launcher for a sandbox the pool is missing, if any, while
    /// no invocation waits in a queue.
    fn refill_prepared(&mut self) {
        if self.queues.values().any(|q| !q.is_empty()) {
            return;
        }
        let total = self.config.sandbox.prepared as usize;
        let mut maker = DaemonMaker {
            config: &self.config,
            cgroups: &self.cgroups,
            launcher: &self.launcher,
            seq: &mut self.seq,
        };
        self.prepared.refill(&mut maker, total);
    }

    /// Start a queued invocation: on a prepared sandbox when one is ready
    /// (it runs at once), else on one the launcher is already making for
    /// this function, else on a new one asked of the launcher. The event
    /// loop never waits for a sandbox to be made: [`Daemon::on_launcher`]
    /// picks the invocation up when it is.
    fn start(&mut self, q: Queued) {
        if warm::is_warm(&q.func) {
            return self.start_warm(q);
        }
        let name = q.func.prepared.policy.name.to_string();
        // It counts against the limits from now, launching or running.
        let running = self.running_per_fn.entry(name).or_default();
        *running += 1;
        // Have the next invocations' sandboxes made meanwhile.
        self.prepared.used(&q.func, *running as usize);
        let input_len = q.inv.input.len();
        if let Some((sb, slot)) = self.prepared.take(&q.func, input_len) {
            return self.begin_run(q, sb, slot, false);
        }
        if let Some(ticket) = self.prepared.claim(&q.func, input_len) {
            self.launching.insert(
                ticket,
                Launching {
                    q,
                    slot: None,
                    cancelled: false,
                },
            );
            return;
        }
        let mut context = prepared::Maker::context(&mut self.maker());
        // Prepared sandboxes of other functions give up their slots.
        while context.is_err() && self.prepared.evict_one() {
            context = prepared::Maker::context(&mut self.maker());
        }
        let (slot, ctx) = match context {
            Ok(c) => c,
            Err(e) => {
                let e = ErrorReply::new(Code::Busy, format!("no sandbox uid slot free: {e}"))
                    .with("retry_after_ms", json!(100));
                self.send(q.conn, protocol::err_line(&q.id, &e));
                return self.not_running(&q.func);
            }
        };
        let p = &q.func.prepared;
        let spec = native::run_env(p, &q.inv).and_then(|_| {
            let work = native::work_bytes(&p.policy, input_len);
            native::sandbox_spec(p, &ctx, q.inv.command.as_deref(), work)
        });
        let spec = match spec {
            Ok(s) => s,
            Err(e) => {
                let e = ErrorReply::new(Code::BadRequest, e.to_string());
                self.send(q.conn, protocol::err_line(&q.id, &e));
                return self.not_running(&q.func);
            }
        };
        match self.launcher.request(&spec) {
            Ok(ticket) => {
                self.launching.insert(
                    ticket,
                    Launching {
                        q,
                        slot: Some(slot),
                        cancelled: false,
                    },
                );
            }
            Err(e) => self.launch_failed(q, ctx.ids.host_uid, &e),
        }
    }

    /// An invocation that will not run after all: its place is free.
    fn not_running(&mut self, f: &Function) {
        if let Some(n) = self.running_per_fn.get_mut(f.prepared.policy.name.as_str()) {
            *n = n.saturating_sub(1);
        }
        self.schedule();
    }

    /// The sandbox for a launching invocation could not be made.
    fn launch_failed(&mut self, q: Queued, host_uid: u32, e: &paddock_sandbox::SpawnError) {
        let report = RunReport::failed(host_uid, Duration::ZERO, oneshot::start_error(e));
        self.answer_not_started(q, report);
    }

    /// Answer an invocation whose command never started (`failed_to_start`),
    /// and free its place.
    fn answer_not_started(&mut self, q: Queued, report: RunReport) {
        log(format!(
            "{}: failed to start: {}",
            q.func.prepared.policy.name,
            report
                .error
                .as_ref()
                .map(|e| e.message.as_str())
                .unwrap_or("?")
        ));
        let queued = q.arrived.elapsed();
        self.respond(
            q.conn,
            &q.id,
            &q.func,
            &q.inv.execution_id,
            report,
            queued,
            q.arrived,
            false,
            false,
        );
        self.not_running(&q.func);
    }

    /// The launcher answered for a launching invocation.
    fn launched(
        &mut self,
        l: Launching,
        result: Result<paddock_sandbox::Sandbox, paddock_sandbox::SpawnError>,
        slot: Slot,
    ) {
        match result {
            Ok(sb) => self.begin_run(l.q, sb, slot, l.cancelled),
            Err(e) => {
                let host = self.config.sandbox.uid_base + slot.index;
                drop(slot);
                self.launch_failed(l.q, host, &e);
            }
        }
    }

    /// Run an invocation in its (made) sandbox: input, go, watch; and stop
    /// it at once if it was `cancelled` while its sandbox was made.
    fn begin_run(&mut self, q: Queued, sb: paddock_sandbox::Sandbox, slot: Slot, cancelled: bool) {
        let now = Instant::now();
        let queued = now - q.arrived;
        let execution_id = q.inv.execution_id.clone();
        match oneshot::start_prepared(&q.func.prepared, sb, &q.inv, queued) {
            Err(e) => {
                let e = ErrorReply::new(Code::BadRequest, e.to_string());
                self.send(q.conn, protocol::err_line(&q.id, &e));
                self.not_running(&q.func);
            }
            Ok(Err(report)) => self.answer_not_started(q, report),
            Ok(Ok(run)) => {
                let rid = self.next_run;
                self.next_run += 1;
                let reg = self.poll.registry();
                let raw = |fd: std::os::fd::BorrowedFd<'_>| fd.as_raw_fd();
                let mut ok = true;
                for (fd, kind) in [
                    (Some(run.pidfd()), K_PIDFD),
                    (Some(run.report_fd()), K_REPORT),
                    (Some(run.stdout_fd()), K_STDOUT),
                    (Some(run.stderr_fd()), K_STDERR),
                ] {
                    if let Some(fd) = fd {
                        ok &= reg
                            .register(
                                &mut SourceFd(&raw(fd)),
                                token(rid, kind),
                                Interest::READABLE,
                            )
                            .is_ok();
                    }
                }
                if let Some(fd) = run.stdin_fd() {
                    ok &= reg
                        .register(
                            &mut SourceFd(&raw(fd)),
                            token(rid, K_STDIN),
                            Interest::WRITABLE,
                        )
                        .is_ok();
                }
                if !ok {
                    log("could not watch a run's fds; stopping it");
                }
                let mut r = Running {
                    conn: q.conn,
                    id: q.id,
                    func: q.func,
                    run,
                    execution_id,
                    arrived: q.arrived,
                    queued,
                    next_timer: None,
                    _slot: slot,
                };
                if !ok || cancelled {
                    r.run.cancel(now);
                }
                r.next_timer = r.run.on_timer(now);
                self.runs.insert(rid, r);
                // The sandbox may already have ended (a fast failure).
                self.on_run(rid, K_PIDFD);
            }
        }
    }

    fn on_run(&mut self, rid: usize, kind: usize) {
        let Some(r) = self.runs.get_mut(&rid) else {
            // An ended run whose init has now exited: reap it.
            if kind == K_PIDFD {
                self.reap_done(rid);
            }
            return;
        };
        match kind {
            K_STDOUT | K_STDERR => {
                r.run.on_output();
                // A flood starts the stop clock.
                r.next_timer = r.run.on_timer(Instant::now());
            }
            K_STDIN => {
                let fd = r.run.stdin_fd().map(|f| f.as_raw_fd());
                if r.run.on_stdin() {
                    if let Some(fd) = fd {
                        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                    }
                }
            }
            _ => {}
        }
        let Some(r) = self.runs.get_mut(&rid) else {
            return;
        };
        if r.run.on_exit() {
            self.complete(rid);
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        self.warm.on_timers(now);
        let due: Vec<usize> = self
            .runs
            .iter()
            .filter(|(_, r)| r.next_timer.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for rid in due {
            if let Some(r) = self.runs.get_mut(&rid) {
                r.next_timer = r.run.on_timer(now);
            }
            self.on_run(rid, K_PIDFD);
        }
        self.expire_queued(now);
        if self.accept_retry.is_some_and(|t| t <= now) {
            self.accept_retry = None;
            self.accept();
        }
        if let Some(until) = self.draining_until {
            if now >= until {
                for r in self.runs.values_mut() {
                    r.run.cancel(now);
                    r.next_timer = r.run.on_timer(now);
                }
                self.warm.cancel_all();
            }
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + Duration::from_millis(250);
            let (idle, wt) = (self.opts.idle_timeout, self.opts.write_timeout);
            let stalled: Vec<usize> = self
                .conns
                .iter()
                .filter(|(id, c)| {
                    c.stalled(now, idle, wt) || (c.idle(now, idle) && !self.has_pending(**id))
                })
                .map(|(id, _)| *id)
                .collect();
            for id in stalled {
                self.close_conn(id);
            }
            if !self.stale_cgroups.is_empty() {
                self.stale_cgroups = cgroup::try_reap(&self.cgroups, &self.stale_cgroups);
            }
            self.warm.sweep(&self.registry, now, false);
            self.prepared.sweep(&self.registry, now);
            self.registry.collect_garbage();
        }
    }

    fn complete(&mut self, rid: usize) {
        let Some(r) = self.runs.remove(&rid) else {
            return;
        };
        let reg = self.poll.registry();
        // The pidfd stays watched until the init is reaped (reap_done).
        for fd in [
            Some(r.run.report_fd()),
            Some(r.run.stdout_fd()),
            Some(r.run.stderr_fd()),
            r.run.stdin_fd(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = reg.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        let name = r.func.prepared.policy.name.to_string();
        if let Some(n) = self.running_per_fn.get_mut(&name) {
            *n = n.saturating_sub(1);
        }
        let finished = r.run.finish();
        // Answer first: the init may still be tearing its namespaces down.
        self.respond(
            r.conn,
            &r.id,
            &r.func,
            &r.execution_id,
            finished.report,
            r.queued,
            r.arrived,
            finished.cancelled,
            false,
        );
        self.reaping.insert(rid, finished.sandbox);
        self.reap_done(rid);
        drop(r.func);
        self.registry.collect_garbage();
        self.schedule();
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename them"
    )]
    fn respond(
        &mut self,
        conn: usize,
        id: &Value,
        func: &Function,
        execution_id: &str,
        report: RunReport,
        queued: Duration,
        arrived: Instant,
        cancelled: bool,
        warm: bool,
    ) {
        let status = if cancelled {
            "cancelled"
        } else {
            report.status.as_str()
        };
        let mut v = result_json::to_json(report);
        if warm {
            v["warm"] = json!(true);
        }
        v["status"] = json!(status);
        v["execution_id"] = json!(execution_id);
        v["function"] = json!(func.prepared.policy.name.to_string());
        v["version"] = json!(func.version);
        v["queue_ms"] = json!(queued.as_millis() as u64);
        self.stats.record(
            func.prepared.policy.name.as_str(),
            status,
            ms(arrived.elapsed()),
        );
        self.send(conn, protocol::ok_line(id, v));
    }

    // ---- warm (supervisor/src/warm.rs) ---------------------------------

    /// Start a warm function's invocation on one of its runners.
    fn start_warm(&mut self, q: Queued) {
        let name = q.func.prepared.policy.name.to_string();
        let launch = warm::Launch {
            cgroups: &self.cgroups,
            run_dir: &self.config.run_dir,
            uid_base: self.config.sandbox.uid_base,
            uid_count: self.config.sandbox.uid_count,
            cgroup_name: &self.config.sandbox.cgroup_name,
            launcher: &self.launcher,
            max_input: self.config.limits.max_line_bytes as usize,
        };
        let started = self.warm.start(
            self.poll.registry(),
            &launch,
            q.conn,
            q.id.clone(),
            q.func.clone(),
            &q.inv,
            q.arrived,
        );
        match started {
            Err(e) => self.send(q.conn, protocol::err_line(&q.id, &e)),
            Ok(done) => {
                *self.running_per_fn.entry(name).or_default() += 1;
                self.warm_done(done.into_iter().collect());
            }
        }
    }

    /// Answer finished warm calls.
    fn warm_done(&mut self, done: Vec<warm::Done>) {
        if done.is_empty() {
            return;
        }
        for d in done {
            let c = d.call;
            let name = c.func.prepared.policy.name.to_string();
            if let Some(n) = self.running_per_fn.get_mut(&name) {
                *n = n.saturating_sub(1);
            }
            self.respond(
                c.conn,
                &c.id,
                &c.func,
                &c.execution_id,
                d.report,
                c.queued,
                c.arrived,
                d.cancelled,
                true,
            );
            // A retired version may have been held by this call only.
            let current = self
                .registry
                .get(&name)
                .is_some_and(|f| Arc::ptr_eq(&f, &c.func));
            drop(c.func);
            if !current {
                self.registry.collect_garbage();
            }
        }
        self.schedule();
    }

    // ---- signals -----------------------------------------------------

    fn on_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGHUP) => {
                    let v = self.reload();
                    log(format!("SIGHUP: reloaded, {} functions", v["functions"]));
                }
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => self.begin_shutdown(),
                _ => {}
            }
        }
    }

    fn begin_shutdown(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        log(format!(
            "shutting down: {} running, draining for up to {:?}",
            self.runs.len(),
            self.opts.drain_timeout
        ));
        self.draining_until = Some(Instant::now() + self.opts.drain_timeout);
        self.warm.sweep(&self.registry, Instant::now(), true);
        self.prepared.clear();
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let _ = std::fs::remove_file(&self.socket_path);
        let queued: Vec<Queued> = std::mem::take(&mut self.queues)
            .into_values()
            .flatten()
            .collect();
        for q in queued {
            let e = ErrorReply::new(Code::ShuttingDown, "paddockd is shutting down");
            self.send(q.conn, protocol::err_line(&q.id, &e));
        }
    }
}

/// The daemon's side of making a sandbox: a uid slot, a cgroup name, the
/// launcher.
struct DaemonMaker<'a> {
    config: &'a DaemonConfig,
    cgroups: &'a Arc<CgroupParent>,
    launcher: &'a Rc<Launcher>,
    seq: &'a mut u64,
}

impl prepared::Maker for DaemonMaker<'_> {
    fn context(&mut self) -> Result<(Slot, LaunchContext), String> {
        let slot = slots::acquire(&self.config.run_dir, self.config.sandbox.uid_count)
            .map_err(|e| e.to_string())?;
        let host = self.config.sandbox.uid_base + slot.index;
        *self.seq += 1;
        let ctx = LaunchContext {
            cgroup_parent: self.cgroups.clone(),
            cgroup_name: format!(
                "{}-d-{}-{}",
                self.config.sandbox.cgroup_name, slot.index, self.seq
            ),
            ids: IdMap {
                host_uid: host,
                host_gid: host,
            },
            trace: false,
            launcher: Some(self.launcher.clone()),
        };
        Ok((slot, ctx))
    }

    fn request(
        &mut self,
        _ctx: &LaunchContext,
        spec: &paddock_sandbox::SandboxSpec,
    ) -> Result<u64, paddock_sandbox::SpawnError> {
        self.launcher.request(spec)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn unknown_function(name: &str) -> ErrorReply {
    ErrorReply::new(Code::UnknownFunction, format!("no function named {name:?}"))
}

/// Request checks that do not need a sandbox: env keys, timeout. (Wasm
/// functions run like native ones; a missing runner is a launch error.)
/// Returns the invocation's timeout.
fn check_invocation(p: &Policy, inv: &Invocation) -> Result<Duration, ErrorReply> {
    let timeout = inv
        .timeout(p)
        .map_err(|e| ErrorReply::new(Code::BadRequest, e.to_string()))?;
    for k in inv.env.keys() {
        if !p.env_passthrough.contains(k) {
            return Err(ErrorReply::new(
                Code::BadRequest,
                format!("env {k}: not in the policy's env_passthrough"),
            ));
        }
    }
    Ok(timeout)
}

/// The result of an invocation that never got a sandbox (cancelled or timed
/// out while queued).
fn not_run_result(q: &Queued, status: Status, now: Instant) -> Value {
    let waited = now - q.arrived;
    json!({
        "execution_id": q.inv.execution_id,
        "function": q.func.prepared.policy.name.to_string(),
        "version": q.func.version,
        "status": status.as_str(),
        "exit_code": null,
        "signal": null,
        "stdout": "",
        "stderr": "",
        "stdout_truncated": false,
        "stderr_truncated": false,
        "wall_ms": 0,
        "queue_ms": waited.as_millis() as u64,
        "cpu_user_ms": 0,
        "cpu_system_ms": 0,
        "memory_peak_bytes": 0,
        "limit": if status == Status::Timeout { json!("timeout") } else { Value::Null },
        "landlock": null,
        "host_uid": null,
        "error": null,
    })
}

fn describe(f: &Function) -> Value {
    let p = &f.prepared.policy;
    let l = &p.limits;
    let mut v = json!({
        "name": p.name.to_string(),
        "description": p.description,
        "runtime": p.runtime.as_str(),
        "protocol": p.protocol.as_str(),
        "mode": p.mode.as_str(),
        "origin": f.origin.as_str(),
        "version": f.version,
        "source": p.source.display().to_string(),
        "limits": {
            "timeout_ms": l.timeout.as_millis() as u64,
            "kill_grace_ms": l.kill_grace.as_millis() as u64,
            "memory_bytes": l.memory_bytes,
            "pids": l.pids,
            "cpu_millicores": l.cpu_millicores,
            "output_bytes": l.output_bytes,
            "tmp_bytes": l.tmp_bytes,
            "concurrency": l.concurrency,
            "wasm_fuel": l.wasm_fuel,
        },
        "filesystem": {
            "read_only": p.filesystem.read_only.iter().map(|b| b.path.display().to_string()).collect::<Vec<_>>(),
        },
        "seccomp": { "profile": p.seccomp.profile.as_str() },
        "landlock": p.landlock.as_str(),
        "env_passthrough": p.env_passthrough,
    });
    match &p.runtime {
        Runtime::Native { command } => v["command"] = json!(command),
        Runtime::Wasm { module } => v["module"] = json!(module.display().to_string()),
    }
    v
}
