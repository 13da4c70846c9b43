//! The launcher: a small process that clones sandboxes on its parent's
//! behalf, so that what a launch costs does not grow with the parent.
//!
//! Cloning copies the caller's page tables: a daemon holding hundreds of MiB
//! (buffered requests, caches) would pay milliseconds per launch, and a busy
//! daemon blocks its event loop for the whole set-up. [`Launcher::start`]
//! forks once, early, while the caller is small; the launcher then receives
//! [`SandboxSpec`]s over a socket, runs [`crate::spawn`]'s launch with
//! CLONE_PARENT (so every sandbox init is the *caller's* child: its pidfd
//! can be waited on, its death signal follows the caller) and sends back
//! the sandbox's fds (SCM_RIGHTS) and what the caller's [`Sandbox`] needs.
//! Requests may be answered later ([`Launcher::request`] and
//! [`Launcher::take_reply`], for an event loop) or at once
//! ([`Launcher::spawn`]).
//!
//! Frames on the socket: a u32 length (native endian), then JSON; a reply's
//! fds ride on its first byte. The launcher exits when the socket closes,
//! and dies with its parent (PDEATHSIG).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

use crate::cgroup::{Cgroup, CgroupVersion};
use crate::error::{SpawnError, Step};
use crate::fd::ParentStdio;
use crate::landlock::LandlockStatus;
use crate::seccomp::CompiledSeccomp;
use crate::spawn::{self, Sandbox};
use crate::spec::SandboxSpec;
use crate::sys;
use crate::trace::Mark;

/// The largest frame either side accepts (a spec with work files in it can
/// be large; replies are small).
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// fds a reply carries at most: pidfd, channel, stdout, stderr, stdin, /work.
const MAX_FDS: usize = 6;

/// A running launcher process and the socket to it.
#[derive(Debug)]
pub struct Launcher {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    sock: OwnedFd,
    state: RefCell<State>,
}

/// A launcher's answer to one ticket.
pub type Reply = (u64, Result<Sandbox, SpawnError>);

#[derive(Debug, Default)]
struct State {
    next_ticket: u64,
    /// Replies read while waiting for another ticket.
    stash: VecDeque<Reply>,
    /// Seccomp programs the launcher has (by digest).
    sent: HashSet<[u8; 32]>,
}

/// What the caller sends. A spec names its seccomp program by digest
/// ([`seccomp_by_digest`]); the program itself goes once, before the first
/// spec that uses it: a launch then costs a few hundred bytes of JSON.
#[derive(Serialize, Deserialize)]
enum Request {
    Program(CompiledSeccomp),
    Spawn { ticket: u64, spec: Box<SandboxSpec> },
}

thread_local! {
    /// In the launcher: the programs received, by digest.
    static PROGRAMS: RefCell<HashMap<[u8; 32], Arc<CompiledSeccomp>>> =
        RefCell::new(HashMap::new());
}

/// `SandboxSpec::seccomp` on the wire: the program's digest, resolved in
/// the launcher against the programs it was sent. An unknown digest is an
/// error, never a default.
pub(crate) mod seccomp_by_digest {
    use super::*;

    pub(crate) fn serialize<S: serde::Serializer>(
        c: &Arc<CompiledSeccomp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&c.digest())
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<CompiledSeccomp>, D::Error> {
        use serde::de::Error;
        let bytes = Vec::<u8>::deserialize(d)?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| D::Error::custom("seccomp digest length"))?;
        PROGRAMS
            .with(|p| p.borrow().get(&digest).cloned())
            .ok_or_else(|| D::Error::custom("unknown seccomp program"))
    }
}

#[derive(Serialize, Deserialize)]
struct WireReply {
    ticket: u64,
    /// Present whenever a sandbox child exists, also with an error: only
    /// the caller (its parent) can reap it.
    sandbox: Option<WireSandbox>,
    error: Option<WireError>,
}

#[derive(Serialize, Deserialize)]
struct WireSandbox {
    pid: libc::pid_t,
    landlock: i64,
    host_uid: u32,
    host_gid: u32,
    cgroup: Option<(CgroupVersion, Vec<PathBuf>)>,
    has_stdin: bool,
    has_work: bool,
    /// Child steps (code, ns) and parent moments (label, ns).
    child_marks: Vec<(u16, u64)>,
    parent_marks: Vec<(String, u64)>,
}

#[derive(Serialize, Deserialize)]
enum WireError {
    Child {
        step: u16,
        errno: i32,
    },
    Landlock(i64),
    Other {
        step: Option<u16>,
        errno: Option<i32>,
        message: String,
    },
}

impl WireError {
    fn from_error(e: &SpawnError) -> WireError {
        match e {
            SpawnError::Child { step, errno } => WireError::Child {
                step: *step as u16,
                errno: *errno as i32,
            },
            SpawnError::LandlockNotEnforced(s) => WireError::Landlock(
                [
                    LandlockStatus::NotEnforced,
                    LandlockStatus::PartiallyEnforced,
                ]
                .into_iter()
                .find(|l| l.as_str() == *s)
                .unwrap_or(LandlockStatus::NotEnforced)
                .code(),
            ),
            other => WireError::Other {
                step: other.step().map(|s| s as u16),
                errno: other.errno().map(|e| e as i32),
                message: other.to_string(),
            },
        }
    }

    fn into_error(self) -> SpawnError {
        match self {
            WireError::Child { step, errno } => match Step::from_u16(step) {
                Some(step) => SpawnError::Child {
                    step,
                    errno: Errno::from_raw(errno),
                },
                None => SpawnError::Launcher {
                    step: None,
                    errno: Some(Errno::from_raw(errno)),
                    message: format!("sandbox setup failed at step {step}"),
                },
            },
            WireError::Landlock(code) => {
                SpawnError::LandlockNotEnforced(LandlockStatus::from_code(code).as_str())
            }
            WireError::Other {
                step,
                errno,
                message,
            } => SpawnError::Launcher {
                step: step.and_then(Step::from_u16),
                errno: errno.map(Errno::from_raw),
                message,
            },
        }
    }
}

fn launcher_err(call: &'static str, errno: Errno) -> SpawnError {
    SpawnError::Parent {
        step: Step::Launcher,
        call,
        errno,
    }
}

impl Launcher {
    /// Fork the launcher. Call it early, from a single-threaded process,
    /// before the caller grows: the launcher is a copy of it as it is now.
    pub fn start() -> Result<Launcher, SpawnError> {
        let threads = sys::thread_count();
        if threads != 1 {
            return Err(SpawnError::MultiThreaded(threads));
        }
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| launcher_err("socketpair", e))?;
        let parent = nix::unistd::getpid();
        match sys::clone3(0, None, false).map_err(|e| launcher_err("clone3", e.errno))? {
            sys::Cloned::Child => {
                drop(ours);
                serve(theirs, parent)
            }
            sys::Cloned::Parent { pid, pidfd } => {
                drop(theirs);
                Ok(Launcher {
                    pid,
                    pidfd,
                    sock: ours,
                    state: RefCell::default(),
                })
            }
        }
    }

    /// The launcher's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Readable when a reply waits ([`Launcher::take_reply`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Ask for a sandbox; the answer comes from [`Launcher::take_reply`]
    /// under the returned ticket.
    pub fn request(&self, spec: &SandboxSpec) -> Result<u64, SpawnError> {
        let digest = spec.seccomp.digest();
        if !self.state.borrow().sent.contains(&digest) {
            self.send(&Request::Program((*spec.seccomp).clone()))?;
            self.state.borrow_mut().sent.insert(digest);
        }
        let ticket = {
            let mut st = self.state.borrow_mut();
            st.next_ticket += 1;
            st.next_ticket
        };
        self.send(&Request::Spawn {
            ticket,
            spec: Box::new(spec.clone()),
        })?;
        Ok(ticket)
    }

    fn send(&self, req: &Request) -> Result<(), SpawnError> {
        let body = serde_json::to_vec(req)
            .map_err(|e| SpawnError::InvalidSpec(format!("spec does not serialise: {e}")))?;
        write_frame(self.sock.as_fd(), &body, &[]).map_err(|e| launcher_err("sendmsg", e))
    }

    /// One reply, if one is waiting (a stashed one first, else what the
    /// socket holds now). Errors reading the socket mean the launcher is
    /// gone.
    pub fn take_reply(&self) -> Result<Option<Reply>, SpawnError> {
        if let Some(r) = self.state.borrow_mut().stash.pop_front() {
            return Ok(Some(r));
        }
        if !readable(self.sock.as_fd(), 0) {
            return Ok(None);
        }
        self.read_reply().map(Some)
    }

    /// Ask for a sandbox and wait for it (replies to other tickets are kept
    /// for [`Launcher::take_reply`]).
    pub fn spawn(&self, spec: &SandboxSpec) -> Result<Sandbox, SpawnError> {
        let ticket = self.request(spec)?;
        loop {
            let (t, r) = self.read_reply()?;
            if t == ticket {
                return r;
            }
            self.state.borrow_mut().stash.push_back((t, r));
        }
    }

    fn read_reply(&self) -> Result<Reply, SpawnError> {
        let (body, mut fds) = read_frame(self.sock.as_fd())
            .map_err(|e| launcher_err("recvmsg", e))?
            .ok_or_else(|| launcher_err("recvmsg", Errno::EPIPE))?;
        let reply: WireReply =
            serde_json::from_slice(&body).map_err(|_| launcher_err("recvmsg", Errno::EPROTO))?;
        let sandbox = match reply.sandbox {
            None => None,
            Some(w) => {
                Some(adopt(w, &mut fds).ok_or_else(|| launcher_err("recvmsg", Errno::EPROTO))?)
            }
        };
        let result = match (sandbox, reply.error) {
            (Some(sb), None) => Ok(sb),
            // Dropping the half-made sandbox kills, reaps and removes it here.
            (_, Some(e)) => Err(e.into_error()),
            (None, None) => Err(launcher_err("recvmsg", Errno::EPROTO)),
        };
        Ok((reply.ticket, result))
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        // Closing the socket ends it; make sure, and reap it.
        let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match sys::waitid_pidfd(self.pidfd.as_fd(), true) {
                Ok(None) => std::thread::sleep(Duration::from_micros(200)),
                _ => break,
            }
        }
    }
}

/// Rebuild the caller's handle from a reply and its fds (in the order
/// [`hand_over`] sends them).
fn adopt(w: WireSandbox, fds: &mut VecDeque<OwnedFd>) -> Option<Sandbox> {
    let pidfd = fds.pop_front()?;
    let sock = fds.pop_front()?;
    let stdout = fds.pop_front()?;
    let stderr = fds.pop_front()?;
    let stdin = if w.has_stdin {
        Some(fds.pop_front()?)
    } else {
        None
    };
    let work = if w.has_work {
        Some(fds.pop_front()?)
    } else {
        None
    };
    let mut trace: Vec<(Mark, u64)> = w
        .child_marks
        .iter()
        .filter_map(|&(step, ns)| Some((Mark::Child(Step::from_u16(step)?), ns)))
        .collect();
    trace.extend(
        w.parent_marks
            .iter()
            .map(|(label, ns)| (Mark::Parent(Mark::parent_label(label)), *ns)),
    );
    trace.sort_by_key(|&(_, ns)| ns);
    Some(Sandbox::adopt(spawn::Adopted {
        pid: w.pid,
        pidfd,
        sock,
        stdio: ParentStdio {
            stdin,
            stdout,
            stderr,
        },
        work_dir: work,
        cgroup: w.cgroup.map(|(v, dirs)| Cgroup::adopt(v, dirs)),
        landlock: LandlockStatus::from_code(w.landlock),
        host_uid: w.host_uid,
        host_gid: w.host_gid,
        trace,
    }))
}

/// The launcher's side of a sandbox: describe it, send it with its fds, and
/// let go of it without ending it (it belongs to the caller now).
fn hand_over(sock: BorrowedFd<'_>, ticket: u64, sb: Sandbox, error: Option<&SpawnError>) {
    let (wire, fds) = sb.hand_over();
    let reply = WireReply {
        ticket,
        sandbox: Some(wire_sandbox(wire)),
        error: error.map(WireError::from_error),
    };
    send_reply(sock, &reply, &fds);
    // `fds` (our copies) close here: the caller holds the only ones now.
}

fn wire_sandbox(w: spawn::HandedOver) -> WireSandbox {
    WireSandbox {
        pid: w.pid,
        landlock: w.landlock.code(),
        host_uid: w.host_uid,
        host_gid: w.host_gid,
        cgroup: w.cgroup,
        has_stdin: w.has_stdin,
        has_work: w.has_work,
        child_marks: w
            .trace
            .iter()
            .filter_map(|(m, ns)| match m {
                Mark::Child(s) => Some((*s as u16, *ns)),
                Mark::Parent(_) => None,
            })
            .collect(),
        parent_marks: w
            .trace
            .iter()
            .filter_map(|(m, ns)| match m {
                Mark::Parent(l) => Some((l.to_string(), *ns)),
                Mark::Child(_) => None,
            })
            .collect(),
    }
}

fn send_reply(sock: BorrowedFd<'_>, reply: &WireReply, fds: &[OwnedFd]) {
    let body = serde_json::to_vec(reply).expect("a reply always serialises");
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    if write_frame(sock, &body, &raw).is_err() {
        // The caller is gone; so are we.
        sys::exit_now(0);
    }
}

/// The launcher process: serve requests until the socket closes.
fn serve(sock: OwnedFd, parent: nix::unistd::Pid) -> ! {
    // Die with the caller; and if it already died, go now.
    if sys::set_pdeathsig(libc::SIGKILL).is_err() || nix::unistd::getppid() != parent {
        sys::exit_now(0);
    }
    // Nothing of the caller's but the socket: not its listening socket, not
    // its clients, not its sandboxes' pipes.
    if crate::fd::close_all_except(&[sock.as_raw_fd()]).is_err() {
        sys::exit_now(1);
    }
    // A terminal's Ctrl-C is for the daemon, which drains; the launcher
    // ends when the daemon closes the socket or dies. (Each sandbox sets
    // its own mask.)
    let mut quiet = nix::sys::signal::SigSet::empty();
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        quiet.add(sig);
    }
    let _ = quiet.thread_block();
    loop {
        let body = match read_frame(sock.as_fd()) {
            Ok(Some((body, _))) => body,
            _ => sys::exit_now(0),
        };
        let (ticket, spec) = match serde_json::from_slice(&body) {
            Ok(Request::Program(p)) => {
                PROGRAMS.with(|m| m.borrow_mut().insert(p.digest(), Arc::new(p)));
                continue;
            }
            Ok(Request::Spawn { ticket, spec }) => (ticket, spec),
            Err(e) => {
                // Not a request we can answer by ticket: the stream is broken.
                eprintln!("paddock launcher: bad request: {e}");
                sys::exit_now(1);
            }
        };
        match spawn::launch(&spec, true) {
            Ok(sb) => hand_over(sock.as_fd(), ticket, sb, None),
            Err((e, Some(sb))) => {
                sb.kill();
                hand_over(sock.as_fd(), ticket, sb, Some(&e));
            }
            Err((e, None)) => send_reply(
                sock.as_fd(),
                &WireReply {
                    ticket,
                    sandbox: None,
                    error: Some(WireError::from_error(&e)),
                },
                &[],
            ),
        }
    }
}

fn readable(fd: BorrowedFd<'_>, timeout_ms: u16) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(timeout_ms)), Ok(n) if n > 0)
}

/// One frame: length, body; `fds` ride on the first byte.
fn write_frame(sock: BorrowedFd<'_>, body: &[u8], fds: &[RawFd]) -> Result<(), Errno> {
    if body.len() > MAX_FRAME {
        return Err(Errno::E2BIG);
    }
    let head = (body.len() as u32).to_ne_bytes();
    let cmsg = [ControlMessage::ScmRights(fds)];
    let mut sent = 0usize;
    let total = head.len() + body.len();
    while sent < total {
        let iov: [IoSlice<'_>; 2] = if sent < head.len() {
            [IoSlice::new(&head[sent..]), IoSlice::new(body)]
        } else {
            [IoSlice::new(&body[sent - head.len()..]), IoSlice::new(&[])]
        };
        let cmsgs: &[ControlMessage<'_>] = if sent == 0 && !fds.is_empty() {
            &cmsg
        } else {
            &[]
        };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read exactly `buf.len()` bytes, collecting any fds that come with them.
/// `Ok(false)` at a clean EOF before the first byte.
fn read_exact(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> Result<bool, Errno> {
    let mut got = 0;
    while got < buf.len() {
        let mut cmsg_buf = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut iov = [IoSliceMut::new(&mut buf[got..])];
        let m = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        for c in m.cmsgs().map_err(|_| Errno::EPROTO)? {
            if let ControlMessageOwned::ScmRights(received) = c {
                fds.extend(received.into_iter().map(sys::own_received_fd));
            }
        }
        if m.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(Errno::EPROTO);
        }
        match m.bytes {
            0 if got == 0 => return Ok(false),
            0 => return Err(Errno::EPIPE),
            n => got += n,
        }
    }
    Ok(true)
}

/// One frame, or None at EOF.
#[allow(clippy::type_complexity, reason = "a private helper's pair")]
fn read_frame(sock: BorrowedFd<'_>) -> Result<Option<(Vec<u8>, VecDeque<OwnedFd>)>, Errno> {
    let mut fds = VecDeque::new();
    let mut head = [0u8; 4];
    if !read_exact(sock, &mut head, &mut fds)? {
        return Ok(None);
    }
    let len = u32::from_ne_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(Errno::E2BIG);
    }
    let mut body = vec![0u8; len];
    if !read_exact(sock, &mut body, &mut fds)? && len > 0 {
        return Err(Errno::EPIPE);
    }
    Ok(Some((body, fds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupParent;
    use crate::seccomp::SeccompSpec;
    use crate::spec::*;

    fn spec(allow: &[u32]) -> SandboxSpec {
        let seccomp = CompiledSeccomp::compile(&SeccompSpec {
            allow: allow.iter().copied().collect(),
        })
        .unwrap();
        SandboxSpec {
            exec: ExecSpec {
                path: "/bin/true".into(),
                argv: vec!["true".into()],
                env: vec![("PATH".into(), "/usr/bin".into())],
                cwd: "/".into(),
            },
            ids: IdMap {
                host_uid: 100_007,
                host_gid: 100_007,
            },
            root: RootSpec {
                read_only: vec!["/usr".into(), "/lib".into()],
                writable: vec![],
                function_dir: Some("/srv/fn".into()),
                extra: vec![],
                tmp_bytes: 1 << 20,
                tmp_inodes: 64,
                work: None,
            },
            cgroup: CgroupSpec {
                parent: Arc::new(CgroupParent::V2 {
                    dir: "/sys/fs/cgroup/x".into(),
                }),
                name: "run-1".into(),
                memory_bytes: 1 << 26,
                pids: 8,
                cpu_millicores: 500,
            },
            rlimits: Rlimits {
                nofile: 64,
                fsize_bytes: 1 << 20,
            },
            landlock: LandlockMode::Required,
            seccomp: Arc::new(seccomp),
            hostname: "paddock".into(),
            stdin_pipe: true,
            trace: false,
        }
    }

    #[test]
    fn launcher_spec_names_its_seccomp_program_and_an_unknown_one_is_refused() {
        let s = spec(&[0, 1, 60, 231]);
        let text = serde_json::to_string(&Request::Spawn {
            ticket: 7,
            spec: Box::new(s.clone()),
        })
        .unwrap();
        // Far smaller than the program itself: only its digest travels.
        assert!(text.len() < 1500, "{} bytes", text.len());
        // Before the program is known, the spec does not resolve.
        PROGRAMS.with(|p| p.borrow_mut().clear());
        assert!(serde_json::from_str::<Request>(&text).is_err());
        let prog = serde_json::to_string(&Request::Program((*s.seccomp).clone())).unwrap();
        match serde_json::from_str::<Request>(&prog).unwrap() {
            Request::Program(p) => {
                PROGRAMS.with(|m| m.borrow_mut().insert(p.digest(), Arc::new(p)));
            }
            Request::Spawn { .. } => panic!("not a program"),
        }
        let Request::Spawn { ticket, spec: back } = serde_json::from_str(&text).unwrap() else {
            panic!("not a spawn")
        };
        assert_eq!(ticket, 7);
        assert_eq!(back.seccomp.digest(), s.seccomp.digest());
        assert_eq!(back.exec, s.exec);
        assert_eq!(back.root, s.root);
        assert_eq!(back.ids, s.ids);
        assert_eq!(*back.cgroup.parent, *s.cgroup.parent);
        // Another program is another digest: never mistaken for this one.
        assert_ne!(spec(&[0, 1]).seccomp.digest(), s.seccomp.digest());
    }

    #[test]
    fn launcher_errors_keep_their_step_and_errno() {
        let child = WireError::from_error(&SpawnError::Child {
            step: Step::PivotRoot,
            errno: Errno::EPERM,
        })
        .into_error();
        assert_eq!(child.step(), Some(Step::PivotRoot));
        assert_eq!(child.errno(), Some(Errno::EPERM));
        let landlock = WireError::from_error(&SpawnError::LandlockNotEnforced(
            LandlockStatus::PartiallyEnforced.as_str(),
        ))
        .into_error();
        assert!(
            matches!(landlock, SpawnError::LandlockNotEnforced(s) if s == "partially_enforced")
        );
        let parent = SpawnError::Parent {
            step: Step::IdMap,
            call: "write",
            errno: Errno::EACCES,
        };
        let msg = parent.to_string();
        let back = WireError::from_error(&parent).into_error();
        assert_eq!(back.step(), Some(Step::IdMap));
        assert_eq!(back.errno(), Some(Errno::EACCES));
        assert_eq!(back.to_string(), msg);
    }

    #[test]
    fn launcher_frames_carry_bodies_and_fds_and_end_cleanly() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        let big = vec![b'x'; 300_000];
        write_frame(a.as_fd(), b"hello", &[f.as_raw_fd()]).unwrap();
        let (body, fds) = read_frame(b.as_fd()).unwrap().unwrap();
        assert_eq!((body.as_slice(), fds.len()), (&b"hello"[..], 1));
        // Bigger than a socket buffer: written and read in pieces.
        let writer = std::thread::spawn(move || {
            write_frame(a.as_fd(), &big, &[]).unwrap();
            a
        });
        let (body, fds) = read_frame(b.as_fd()).unwrap().unwrap();
        assert_eq!((body.len(), fds.len()), (300_000, 0));
        drop(writer.join().unwrap());
        assert!(read_frame(b.as_fd()).unwrap().is_none());
    }
}
