//! The parent↔child channel: a SOCK_SEQPACKET socketpair (CLOEXEC, so the
//! payload's exec closes its end) carrying fixed-size messages, plus the /work
//! directory fd by SCM_RIGHTS. Fixed-size so the child can send without
//! allocating, and a closed channel (EOF) is itself a message: the other side died.
//! One message is longer: `Go`, whose datagram carries the run's extra
//! environment after the header (read only by the init, which may allocate).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use crate::error::Step;

/// One message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    /// Parent → child: ids are mapped and the cgroup joined; go on.
    Proceed,
    /// Child → parent: setup done; the landlock status code (and maybe an fd).
    Ready { landlock: i64 },
    /// Child → parent: a setup step failed.
    Failed { step: Step, errno: Errno },
    /// Payload → parent: execve failed.
    ExecFailed { errno: Errno },
    /// Init → parent: the payload ended with this wait status.
    Exit { status: i32 },
    /// Child → parent (tracing only): `step` ended at `ns` (CLOCK_MONOTONIC).
    Mark { step: Step, ns: u64 },
    /// Parent → init: start the payload. `env_len` bytes of environment
    /// (`K=V\0` entries) follow the header in the same datagram.
    Go { env_len: u32 },
}

const SIZE: usize = 16;

/// The most environment a `Go` may carry.
pub(crate) const MAX_GO_ENV: usize = 64 * 1024;

impl Msg {
    fn encode(self) -> [u8; SIZE] {
        let (kind, step, errno, value): (u16, u16, i32, i64) = match self {
            Msg::Proceed => (1, 0, 0, 0),
            Msg::Ready { landlock } => (2, 0, 0, landlock),
            Msg::Failed { step, errno } => (3, step as u16, errno as i32, 0),
            Msg::ExecFailed { errno } => (4, Step::Exec as u16, errno as i32, 0),
            Msg::Exit { status } => (5, 0, 0, status as i64),
            Msg::Mark { step, ns } => (6, step as u16, 0, ns as i64),
            Msg::Go { env_len } => (7, 0, 0, env_len as i64),
        };
        let mut b = [0u8; SIZE];
        b[0..2].copy_from_slice(&kind.to_ne_bytes());
        b[2..4].copy_from_slice(&step.to_ne_bytes());
        b[4..8].copy_from_slice(&errno.to_ne_bytes());
        b[8..16].copy_from_slice(&value.to_ne_bytes());
        b
    }

    fn decode(b: &[u8; SIZE]) -> Option<Msg> {
        let kind = u16::from_ne_bytes([b[0], b[1]]);
        let step = u16::from_ne_bytes([b[2], b[3]]);
        let errno = Errno::from_raw(i32::from_ne_bytes([b[4], b[5], b[6], b[7]]));
        let value = i64::from_ne_bytes(b[8..16].try_into().ok()?);
        Some(match kind {
            1 => Msg::Proceed,
            2 => Msg::Ready { landlock: value },
            3 => Msg::Failed {
                step: Step::from_u16(step)?,
                errno,
            },
            4 => Msg::ExecFailed { errno },
            5 => Msg::Exit {
                status: value as i32,
            },
            6 => Msg::Mark {
                step: Step::from_u16(step)?,
                ns: value as u64,
            },
            7 => Msg::Go {
                env_len: u32::try_from(value).ok()?,
            },
            _ => return None,
        })
    }
}

/// Both ends: (parent, child).
pub(crate) fn channel() -> Result<(OwnedFd, OwnedFd), Errno> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Send one message, with an fd when given.
pub(crate) fn send(
    sock: BorrowedFd<'_>,
    msg: Msg,
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    let buf = msg.encode();
    let iov = [IoSlice::new(&buf)];
    let fds: [RawFd; 1] = [fd.map(|f| f.as_raw_fd()).unwrap_or(-1)];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage] = if fd.is_some() { &cmsg } else { &[] };
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Receive one message. `Ok(None)` is EOF (the peer is gone); with
/// `nonblock`, `Err(EAGAIN)` means nothing is waiting.
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    nonblock: bool,
) -> Result<Option<(Msg, Option<OwnedFd>)>, Errno> {
    let mut buf = [0u8; SIZE];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; 1]);
    let flags = if nonblock {
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC
    } else {
        MsgFlags::MSG_CMSG_CLOEXEC
    };
    let (n, fd) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg_buf), flags) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(m) => {
                let mut fd = None;
                for c in m.cmsgs().map_err(|_| Errno::EPROTO)? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            fd.get_or_insert(crate::sys::own_received_fd(f));
                        }
                    }
                }
                break (m.bytes, fd);
            }
        }
    };
    if n == 0 {
        return Ok(None);
    }
    if n != SIZE {
        return Err(Errno::EPROTO);
    }
    Ok(Some((Msg::decode(&buf).ok_or(Errno::EPROTO)?, fd)))
}

/// Parent → init: `Go` with the extra environment (`K=V\0` entries).
pub(crate) fn send_go(sock: BorrowedFd<'_>, env: &[u8]) -> Result<(), Errno> {
    if env.len() > MAX_GO_ENV {
        return Err(Errno::E2BIG);
    }
    let head = Msg::Go {
        env_len: env.len() as u32,
    }
    .encode();
    let iov = [IoSlice::new(&head), IoSlice::new(env)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// The size of a buffer that holds any `Go` datagram.
pub(crate) const GO_DATAGRAM: usize = SIZE + MAX_GO_ENV;

/// Payload: block until `Go` (read(2) into `buf`, which must be
/// [`GO_DATAGRAM`] long: nothing is allocated); returns its environment
/// bytes, or `Ok(None)` when the parent is gone (EOF). Anything else is
/// EPROTO.
pub(crate) fn read_go<'b>(
    sock: BorrowedFd<'_>,
    buf: &'b mut [u8],
) -> Result<Option<&'b [u8]>, Errno> {
    let n = loop {
        match nix::unistd::read(sock, buf) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(n) => break n,
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let head: &[u8; SIZE] = buf
        .get(..SIZE)
        .and_then(|h| h.try_into().ok())
        .ok_or(Errno::EPROTO)?;
    match Msg::decode(head) {
        Some(Msg::Go { env_len }) if env_len as usize == n - SIZE => Ok(Some(&buf[SIZE..n])),
        _ => Err(Errno::EPROTO),
    }
}

/// Send one message with write(2) (no fd, no allocation): what the payload
/// can do under any seccomp profile. A gone parent is EPIPE (or SIGPIPE in
/// the payload, whose signals are back to their defaults: it dies, as it
/// should with no one to report to).
pub(crate) fn send_plain(sock: BorrowedFd<'_>, msg: Msg) -> Result<(), Errno> {
    let buf = msg.encode();
    loop {
        match nix::unistd::write(sock, &buf) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// Whether the other end has closed (a dead launcher), without waiting.
pub(crate) fn peer_gone(sock: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(sock, PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn sync_messages_round_trip_with_fd() {
        let (a, b) = channel().unwrap();
        let msgs = [
            Msg::Proceed,
            Msg::Ready { landlock: 2 },
            Msg::Failed {
                step: Step::PivotRoot,
                errno: Errno::EPERM,
            },
            Msg::ExecFailed {
                errno: Errno::ENOENT,
            },
            Msg::Exit { status: 9 },
            Msg::Go { env_len: 0 },
        ];
        for m in msgs {
            send(a.as_fd(), m, None).unwrap();
            let (got, fd) = recv(b.as_fd(), false).unwrap().unwrap();
            assert_eq!(got, m);
            assert!(fd.is_none());
        }
        let file = std::fs::File::open("/dev/null").unwrap();
        send(a.as_fd(), Msg::Ready { landlock: 1 }, Some(file.as_fd())).unwrap();
        let (_, fd) = recv(b.as_fd(), false).unwrap().unwrap();
        assert!(fd.is_some());
        assert_eq!(recv(b.as_fd(), true).unwrap_err(), Errno::EAGAIN);
        assert!(!peer_gone(b.as_fd()));
        drop(a);
        // A test in another thread may fork and briefly hold a copy of `a`.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !peer_gone(b.as_fd()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(peer_gone(b.as_fd()));
        assert!(recv(b.as_fd(), false).unwrap().is_none());
    }

    #[test]
    fn sync_go_carries_its_environment_and_refuses_oversize() {
        let (a, b) = channel().unwrap();
        let mut buf = vec![0u8; GO_DATAGRAM];
        send_go(a.as_fd(), b"A=1\0B=two\0").unwrap();
        assert_eq!(
            read_go(b.as_fd(), &mut buf).unwrap().unwrap(),
            b"A=1\0B=two\0"
        );
        send_go(a.as_fd(), b"").unwrap();
        assert_eq!(read_go(b.as_fd(), &mut buf).unwrap().unwrap(), b"");
        let big = vec![b'x'; MAX_GO_ENV + 1];
        assert_eq!(send_go(a.as_fd(), &big).unwrap_err(), Errno::E2BIG);
        let most = vec![b'x'; MAX_GO_ENV];
        send_go(a.as_fd(), &most).unwrap();
        assert_eq!(
            read_go(b.as_fd(), &mut buf).unwrap().unwrap().len(),
            MAX_GO_ENV
        );
        // Anything but Go where Go is awaited is a protocol error.
        send_plain(a.as_fd(), Msg::Proceed).unwrap();
        assert_eq!(read_go(b.as_fd(), &mut buf).unwrap_err(), Errno::EPROTO);
        drop(a);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match read_go(b.as_fd(), &mut buf) {
                Ok(None) => break,
                r if std::time::Instant::now() > deadline => panic!("no EOF: {r:?}"),
                _ => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
    }
}
