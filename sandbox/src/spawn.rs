//! The parent half: plan, clone, map ids, place in the cgroup, hand over, and
//! then the [`Sandbox`] handle that watches, stops and cleans up the run.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cgroup::{Cgroup, CgroupLimits, CgroupUsage};
use crate::child::{self, ChildPlan, ExecPlan};
use crate::error::{SpawnError, Step};
use crate::fd::{self, ParentStdio};
use crate::landlock::{LandlockPlan, LandlockStatus};
use crate::mount::RootPlan;
use crate::namespaces;
use crate::rlimit::RlimitPlan;
use crate::spec::{LandlockMode, SandboxSpec};
use crate::sync::{self, Msg};
use crate::sys::{self, Cloned, WaitStatus};
use crate::trace::{self, Mark};

/// How the sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command exited with this code.
    Exited(i32),
    /// The command was killed by this signal.
    Signaled(i32),
    /// The command could not be executed (execve failed with this errno).
    ExecFailed(Errno),
    /// The sandbox's init was killed (by [`Sandbox::kill`] or the kernel)
    /// before the command's status was known.
    Killed(i32),
}

/// A running sandbox. Dropping it kills and reaps everything and removes the
/// cgroup; call [`Sandbox::finish`] to also get the usage.
#[derive(Debug)]
pub struct Sandbox {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    sock: OwnedFd,
    stdio: ParentStdio,
    work_dir: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
    landlock: LandlockStatus,
    host_uid: u32,
    host_gid: u32,
    started: Instant,
    /// The command's end, once known (the init's report, or its own end).
    exit: Option<Exit>,
    /// Whether the init has been reaped (it can outlive its report briefly).
    reaped: bool,
    exec_failed: Option<Errno>,
    payload_status: Option<WaitStatus>,
    /// Whether [`Sandbox::start`] has sent the go.
    go: bool,
    /// Launch stamps (CLOCK_MONOTONIC ns), when tracing.
    trace: Vec<(Mark, u64)>,
    /// The start of `spawn`, which trace stamps count from.
    t0: Instant,
}

/// Prepare one sandbox: every isolation layer set up, its init waiting for
/// [`Sandbox::start`] to run the command. Must be called from a
/// single-threaded process (the child is a raw clone3 copy of the caller and
/// allocates).
///
/// A prepared sandbox can wait as long as its caller likes (a pool of them
/// takes the set-up off an invocation's path); it is used once.
pub fn spawn(spec: &SandboxSpec) -> Result<Sandbox, SpawnError> {
    // A half-made sandbox is dropped with the error: killed, reaped, removed.
    launch(spec, false).map_err(|(e, _)| e)
}

/// Who becomes the sandbox init's parent.
pub(crate) type CloneParent = bool;

/// The launch itself. With `clone_parent` the init becomes a child of the
/// caller's parent (CLONE_PARENT: a [`crate::Launcher`] clones for the
/// daemon, which alone can then reap it), so on a failure after the clone
/// the half-made sandbox comes back with the error, for its handing over.
#[allow(
    clippy::result_large_err,
    reason = "once per launch, and the half-made sandbox must come back by value"
)]
pub(crate) fn launch(
    spec: &SandboxSpec,
    clone_parent: CloneParent,
) -> Result<Sandbox, (SpawnError, Option<Sandbox>)> {
    let t0 = Instant::now();
    let mut marks: Vec<(Mark, u64)> = Vec::new();
    let mark = |m: &'static str, marks: &mut Vec<(Mark, u64)>| {
        if spec.trace {
            marks.push((Mark::Parent(m), trace::since(t0)));
        }
    };
    let threads = sys::thread_count();
    if threads != 1 {
        return Err((SpawnError::MultiThreaded(threads), None));
    }
    // Everything that allocates or reads the host happens before the clone.
    let root = RootPlan::new(&spec.root).map_err(|e| (e, None))?;
    let mut write = vec![PathBuf::from("/tmp")];
    if spec.root.work.is_some() {
        write.push(PathBuf::from("/work"));
    }
    write.extend(root.write_paths.iter().cloned());
    let plan = ChildPlan {
        landlock: LandlockPlan {
            mode: spec.landlock,
            read: root.read_paths.clone(),
            write,
        },
        root,
        hostname: spec.hostname.clone(),
        rlimits: RlimitPlan::new(&spec.rlimits),
        last_cap: sys::last_cap(),
        seccomp: spec.seccomp.clone(),
        exec: ExecPlan::new(&spec.exec).map_err(|e| (e, None))?,
        trace: spec.trace.then_some(t0),
    };
    mark("plan", &mut marks);
    let (parent_sock, child_sock) = sync::channel().map_err(|errno| {
        let e = SpawnError::Parent {
            step: Step::Channel,
            call: "socketpair",
            errno,
        };
        (e, None)
    })?;
    let (parent_stdio, child_stdio) = fd::stdio_pipes(spec.stdin_pipe).map_err(|e| (e, None))?;
    mark("channel and pipes", &mut marks);
    let cgroup = Cgroup::create(
        &spec.cgroup.parent,
        &spec.cgroup.name,
        CgroupLimits {
            memory_bytes: spec.cgroup.memory_bytes,
            pids: spec.cgroup.pids,
            cpu_millicores: spec.cgroup.cpu_millicores,
        },
    )
    .map_err(|e| (e, None))?;
    mark("cgroup created", &mut marks);
    let cloned = sys::clone3(
        namespaces::clone_flags(),
        cgroup.clone_into_fd(),
        clone_parent,
    );
    let (pid, pidfd) = match cloned {
        Ok(Cloned::Child) => {
            drop(parent_sock);
            drop(parent_stdio);
            child::child_main(&plan, child_stdio, child_sock)
        }
        Ok(Cloned::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            let _ = cgroup.remove();
            return Err((SpawnError::parent(Step::Clone, e), None));
        }
    };
    drop(child_sock);
    drop(child_stdio);
    mark("clone3", &mut marks);
    let mut sb = Sandbox {
        pid,
        pidfd,
        sock: parent_sock,
        stdio: parent_stdio,
        work_dir: None,
        cgroup: Some(cgroup),
        landlock: LandlockStatus::NotEnforced,
        host_uid: spec.ids.host_uid,
        host_gid: spec.ids.host_gid,
        started: Instant::now(),
        exit: None,
        reaped: false,
        exec_failed: None,
        payload_status: None,
        go: false,
        trace: marks,
        t0,
    };
    match handshake(&mut sb, spec) {
        Ok(()) => Ok(sb),
        Err(e) => Err((e, Some(sb))),
    }
}

/// After the clone: map ids, join the cgroup, let the child go and wait for
/// it to be ready. On error the caller still holds the sandbox to clean up.
fn handshake(sb: &mut Sandbox, spec: &SandboxSpec) -> Result<(), SpawnError> {
    let t0 = sb.t0;
    let mark = |m: &'static str, marks: &mut Vec<(Mark, u64)>| {
        if spec.trace {
            marks.push((Mark::Parent(m), trace::since(t0)));
        }
    };
    let pid = sb.pid;
    namespaces::write_maps(pid, &spec.ids)?;
    mark("id maps", &mut sb.trace);
    if let Some(cg) = &sb.cgroup {
        cg.attach(pid)?;
    }
    mark("cgroup attach", &mut sb.trace);
    sync::send(sb.sock.as_fd(), Msg::Proceed, None).map_err(|errno| SpawnError::Parent {
        step: Step::Handshake,
        call: "sendmsg",
        errno,
    })?;
    let mut reply = sync::recv(sb.sock.as_fd(), false);
    while let Ok(Some((Msg::Mark { step, ns }, _))) = reply {
        sb.trace.push((Mark::Child(step), ns));
        reply = sync::recv(sb.sock.as_fd(), false);
    }
    match reply {
        Ok(Some((Msg::Ready { landlock }, fd))) => {
            sb.landlock = LandlockStatus::from_code(landlock);
            sb.work_dir = fd;
            mark("ready received", &mut sb.trace);
        }
        Ok(Some((Msg::Failed { step, errno }, _))) => {
            return Err(SpawnError::Child { step, errno })
        }
        Ok(Some((m, _))) => return Err(SpawnError::ChildDied(format!("unexpected {m:?}"))),
        Ok(None) => {
            let how = match sys::waitid_pidfd(sb.pidfd.as_fd(), false) {
                Ok(Some(st)) => {
                    sb.exit = Some(Exit::Killed(0));
                    format!("{st:?}")
                }
                _ => "no status".into(),
            };
            return Err(SpawnError::ChildDied(how));
        }
        Err(errno) => {
            return Err(SpawnError::Parent {
                step: Step::Handshake,
                call: "recvmsg",
                errno,
            })
        }
    }
    if spec.landlock == LandlockMode::Required && sb.landlock != LandlockStatus::FullyEnforced {
        return Err(SpawnError::LandlockNotEnforced(sb.landlock.as_str()));
    }
    Ok(())
}

/// A sandbox made by another process (a [`crate::Launcher`]), as the
/// caller receives it: the init is the caller's child.
pub(crate) struct Adopted {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    pub sock: OwnedFd,
    pub stdio: ParentStdio,
    pub work_dir: Option<OwnedFd>,
    pub cgroup: Option<Cgroup>,
    pub landlock: LandlockStatus,
    pub host_uid: u32,
    pub host_gid: u32,
    pub trace: Vec<(Mark, u64)>,
}

/// What the launcher sends of a sandbox besides its fds.
pub(crate) struct HandedOver {
    pub pid: libc::pid_t,
    pub landlock: LandlockStatus,
    pub host_uid: u32,
    pub host_gid: u32,
    pub cgroup: Option<(crate::cgroup::CgroupVersion, Vec<PathBuf>)>,
    pub has_stdin: bool,
    pub has_work: bool,
    pub trace: Vec<(Mark, u64)>,
}

impl Sandbox {
    pub(crate) fn adopt(a: Adopted) -> Sandbox {
        let trace_end = a.trace.last().map(|&(_, ns)| ns).unwrap_or(0);
        let now = Instant::now();
        Sandbox {
            pid: a.pid,
            pidfd: a.pidfd,
            sock: a.sock,
            stdio: a.stdio,
            work_dir: a.work_dir,
            cgroup: a.cgroup,
            landlock: a.landlock,
            host_uid: a.host_uid,
            host_gid: a.host_gid,
            started: now,
            exit: None,
            reaped: false,
            exec_failed: None,
            payload_status: None,
            go: false,
            trace: a.trace,
            // Later stamps continue the launcher's clock, near enough.
            t0: now
                .checked_sub(Duration::from_nanos(trace_end))
                .unwrap_or(now),
        }
    }

    /// The launcher's side: describe the sandbox, give up its fds (pidfd,
    /// channel, stdout, stderr, then stdin and /work when present) and
    /// forget it without ending it: it is the caller's now.
    pub(crate) fn hand_over(mut self) -> (HandedOver, Vec<OwnedFd>) {
        let cgroup = self.cgroup.take().map(|c| (c.version(), c.dirs().to_vec()));
        let mut fds = Vec::with_capacity(6);
        let stdin = self.stdio.stdin.take();
        let work = self.work_dir.take();
        let info = HandedOver {
            pid: self.pid,
            landlock: self.landlock,
            host_uid: self.host_uid,
            host_gid: self.host_gid,
            cgroup,
            has_stdin: stdin.is_some(),
            has_work: work.is_some(),
            trace: std::mem::take(&mut self.trace),
        };
        let dup = |f: BorrowedFd<'_>| f.try_clone_to_owned();
        // The handle's own fds close with it; duplicates travel.
        for f in [
            self.pidfd.as_fd(),
            self.sock.as_fd(),
            self.stdio.stdout.as_fd(),
            self.stdio.stderr.as_fd(),
        ] {
            if let Ok(d) = dup(f) {
                fds.push(d);
            }
        }
        fds.extend(stdin);
        fds.extend(work);
        // Nothing to end here: mark it ended so dropping only closes fds.
        self.exit = Some(Exit::Killed(0));
        self.reaped = true;
        (info, fds)
    }

    /// Run the command: the init forks the payload, which installs seccomp
    /// and execs with `env` added to the spec's environment (these entries
    /// come first, so they win for getenv; repeat no name of the spec's).
    /// [`Sandbox::started`] restarts now. Once only.
    pub fn start(&mut self, env: &[(String, String)]) -> Result<(), SpawnError> {
        if self.go {
            return Err(SpawnError::InvalidSpec("sandbox already started".into()));
        }
        let mut bytes = Vec::new();
        for (k, v) in env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(SpawnError::InvalidSpec(format!("environment name {k:?}")));
            }
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(b'=');
            bytes.extend_from_slice(v.as_bytes());
            bytes.push(0);
        }
        if bytes.len() > sync::MAX_GO_ENV {
            return Err(SpawnError::InvalidSpec(format!(
                "run environment of {} bytes, more than {}",
                bytes.len(),
                sync::MAX_GO_ENV
            )));
        }
        sync::send_go(self.sock.as_fd(), &bytes).map_err(|errno| SpawnError::Parent {
            step: Step::Go,
            call: "sendmsg",
            errno,
        })?;
        self.go = true;
        self.started = Instant::now();
        if !self.trace.is_empty() {
            self.trace
                .push((Mark::Parent("go sent"), trace::since(self.t0)));
        }
        Ok(())
    }

    /// Write `name` into /work (FILE protocol) before [`Sandbox::start`]:
    /// created beneath the work directory fd (no symlink, no `..`), mode
    /// 0644, owned by the sandbox's uid 0.
    pub fn write_work_file(&self, name: &str, data: &[u8]) -> Result<(), SpawnError> {
        if self.go {
            return Err(SpawnError::InvalidSpec(
                "work files are written before the sandbox starts".into(),
            ));
        }
        self.put_work_file(name, data)
    }

    /// The /work directory fd, or an error for a sandbox without one.
    fn work(&self) -> Result<BorrowedFd<'_>, SpawnError> {
        self.work_dir
            .as_ref()
            .map(|f| f.as_fd())
            .ok_or_else(|| SpawnError::InvalidSpec("the sandbox has no /work".into()))
    }

    fn put_work_file(&self, name: &str, data: &[u8]) -> Result<(), SpawnError> {
        crate::work::write_work_file(self.work()?, name, data, self.host_uid, self.host_gid)
            .map_err(|errno| SpawnError::Parent {
                step: Step::WorkDir,
                call: "openat2",
                errno,
            })
    }

    /// For a command that serves calls one at a time (a warm runner), while
    /// it is between two and nothing in the sandbox runs module code: empty
    /// /work ([`crate::work::clear_work_dir`]), so no file of one call is
    /// left for the next. An error leaves /work in an unknown state: the
    /// caller discards the sandbox.
    pub fn clear_work_dir(&self) -> Result<(), SpawnError> {
        crate::work::clear_work_dir(self.work()?).map_err(|errno| SpawnError::Parent {
            step: Step::WorkDir,
            call: "unlinkat",
            errno,
        })
    }

    /// [`Sandbox::write_work_file`] for a command that serves calls one at
    /// a time, between two (after [`Sandbox::clear_work_dir`]): the next
    /// call's input.
    pub fn write_call_input(&self, name: &str, data: &[u8]) -> Result<(), SpawnError> {
        self.put_work_file(name, data)
    }

    /// The init's pid (in the caller's pid namespace).
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// A pidfd of the init: readable once the sandbox has ended.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// The channel on which the init reports; readable when a report waits.
    pub fn report_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Take the write end of the command's stdin (None with /dev/null stdin).
    pub fn take_stdin(&mut self) -> Option<OwnedFd> {
        self.stdio.stdin.take()
    }

    /// The read ends of the command's stdout and stderr (non-blocking).
    pub fn stdout(&self) -> BorrowedFd<'_> {
        self.stdio.stdout.as_fd()
    }

    pub fn stderr(&self) -> BorrowedFd<'_> {
        self.stdio.stderr.as_fd()
    }

    /// The /work directory (FILE protocol), if one was asked for. Read it
    /// with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), never by path.
    pub fn work_dir(&self) -> Option<BorrowedFd<'_>> {
        self.work_dir.as_ref().map(|f| f.as_fd())
    }

    /// Launch stamps when the spec asked for tracing: each mark with its
    /// time in ns since `spawn` began.
    pub fn launch_trace(&self) -> &[(Mark, u64)] {
        &self.trace
    }

    /// What landlock enforced.
    pub fn landlock(&self) -> LandlockStatus {
        self.landlock
    }

    /// The host uid that sandbox uid 0 maps to.
    pub fn host_uid(&self) -> u32 {
        self.host_uid
    }

    /// When the sandbox was started: the go, or the end of `spawn` before it.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The run cgroup's directories.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        self.cgroup
            .as_ref()
            .map(|c| c.dirs().to_vec())
            .unwrap_or_default()
    }

    /// SIGTERM to the init, which forwards it to every process of the sandbox.
    pub fn terminate(&self) {
        if self.exit.is_none() {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGTERM);
        }
    }

    /// SIGKILL to the init: the kernel then kills every process of the pid namespace.
    pub fn kill(&self) {
        if self.exit.is_none() {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        }
    }

    /// Read whatever the init and the payload reported so far.
    fn drain_reports(&mut self) {
        while let Ok(Some((m, _))) = sync::recv(self.sock.as_fd(), true) {
            match m {
                Msg::ExecFailed { errno } => self.exec_failed = Some(errno),
                Msg::Failed { errno, .. } => self.exec_failed = Some(errno),
                Msg::Exit { status } => self.payload_status = Some(WaitStatus::from_raw(status)),
                Msg::Mark { step, ns } => self.trace.push((Mark::Child(step), ns)),
                _ => {}
            }
        }
    }

    /// The command's end as the init reported it, if it has.
    fn reported(&self) -> Option<Exit> {
        match (self.exec_failed, self.payload_status) {
            (Some(errno), _) => Some(Exit::ExecFailed(errno)),
            (None, Some(WaitStatus::Exited(c))) => Some(Exit::Exited(c)),
            (None, Some(WaitStatus::Signaled(s))) => Some(Exit::Signaled(s)),
            (None, None) => None,
        }
    }

    /// The command's end, as soon as it is known (non-blocking): the init's
    /// report once it has sent it, after it has reaped every process of the
    /// sandbox (the init itself may still be exiting: [`Sandbox::try_reap`]
    /// or dropping the handle reaps it), else the init's own end.
    pub fn try_wait(&mut self) -> Result<Option<Exit>, Errno> {
        if let Some(e) = self.exit {
            return Ok(Some(e));
        }
        self.drain_reports();
        if let Some(e) = self.reported() {
            self.exit = Some(e);
            return Ok(Some(e));
        }
        match sys::waitid_pidfd(self.pidfd.as_fd(), true).map_err(|e| e.errno)? {
            None => Ok(None),
            Some(init) => {
                self.reaped = true;
                Ok(Some(self.record_exit(init)))
            }
        }
    }

    /// Block until the sandbox has ended (the init reaped).
    pub fn wait(&mut self) -> Result<Exit, Errno> {
        if !self.reaped {
            let init = sys::waitid_pidfd(self.pidfd.as_fd(), false)
                .map_err(|e| e.errno)?
                .ok_or(Errno::ECHILD)?;
            self.reaped = true;
            if self.exit.is_none() {
                self.record_exit(init);
            }
        }
        self.exit.ok_or(Errno::ECHILD)
    }

    /// Reap the init if it has exited, without waiting; true once it is
    /// gone (then dropping the handle only removes the cgroup).
    pub fn try_reap(&mut self) -> bool {
        if !self.reaped {
            match sys::waitid_pidfd(self.pidfd.as_fd(), true) {
                Ok(None) => return false,
                Ok(Some(init)) => {
                    if self.exit.is_none() {
                        self.record_exit(init);
                    }
                }
                Err(_) => {}
            }
            self.reaped = true;
        }
        true
    }

    fn record_exit(&mut self, init: WaitStatus) -> Exit {
        // The init writes its report before exiting, so it is already queued.
        self.drain_reports();
        let exit = self.reported().unwrap_or(match init {
            WaitStatus::Signaled(s) => Exit::Killed(s),
            WaitStatus::Exited(c) => Exit::Killed(c),
        });
        self.exit = Some(exit);
        exit
    }

    /// What the run cost so far.
    pub fn usage(&self) -> CgroupUsage {
        self.cgroup.as_ref().map(Cgroup::usage).unwrap_or_default()
    }

    /// End the run for good: kill and reap the init if it still runs, sweep
    /// the cgroup, read the usage, remove the cgroup. Returns the usage.
    pub fn finish(mut self) -> Result<CgroupUsage, SpawnError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<CgroupUsage, SpawnError> {
        if !self.reaped {
            // Still running, or exiting after its report: either way, now.
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.try_reap() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        match self.cgroup.take() {
            None => Ok(CgroupUsage::default()),
            Some(cg) => {
                cg.kill_all();
                let usage = cg.usage();
                cg.remove()?;
                Ok(usage)
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
