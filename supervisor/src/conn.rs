//! One client connection: its buffers, framing and timeouts. Knows nothing
//! of ops; the event loop feeds it bytes and takes complete lines.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::UnixStream;

/// Who is on the other end (SO_PEERCRED, plus supplementary groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gids: Vec<u32>,
}

/// What reading produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Keep going.
    Open,
    /// The client closed its end (or the read failed).
    Closed,
    /// A line grew past the cap without a newline.
    TooLarge,
}

/// A connection's state.
#[derive(Debug)]
pub struct Conn {
    pub stream: UnixStream,
    pub peer: Peer,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already written.
    wpos: usize,
    /// Close once `wbuf` is flushed.
    pub closing: bool,
    /// When the current partial line began (slowloris guard).
    partial_since: Option<Instant>,
    /// Last time anything was read or written.
    pub last_activity: Instant,
    /// When writes last made progress while bytes were waiting.
    write_blocked_since: Option<Instant>,
    /// Whether WRITABLE interest is registered.
    pub want_write: bool,
    /// The client shut its sending side; answer what is pending, then close.
    pub read_closed: bool,
}

/// Buffers keep this much capacity while empty; a connection that once
/// carried a big line (a 16 MiB output, an 8 MiB deploy) does not keep the
/// memory for the rest of its life.
const KEEP: usize = 64 * 1024;

/// Frees an empty buffer's capacity beyond [`KEEP`].
fn release(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > KEEP {
        *buf = Vec::new();
    }
}

impl Conn {
    pub fn new(stream: UnixStream, peer: Peer) -> Conn {
        Conn {
            stream,
            peer,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            closing: false,
            partial_since: None,
            last_activity: Instant::now(),
            write_blocked_since: None,
            want_write: false,
            read_closed: false,
        }
    }

    /// Read everything available (edge-triggered).
    pub fn read(&mut self, max_line: usize) -> ReadOutcome {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => {
                    self.last_activity = Instant::now();
                    self.rbuf.extend_from_slice(&buf[..n]);
                    // Only the unterminated tail counts against the cap.
                    let tail = match self.rbuf.iter().rposition(|b| *b == b'\n') {
                        Some(i) => self.rbuf.len() - i - 1,
                        None => self.rbuf.len(),
                    };
                    if tail > max_line {
                        self.rbuf.clear();
                        return ReadOutcome::TooLarge;
                    }
                    if tail > 0 && self.partial_since.is_none() {
                        self.partial_since = Some(Instant::now());
                    } else if tail == 0 {
                        self.partial_since = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }

    /// Take the next complete line (without `\n`, and without a `\r` before it).
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let i = self.rbuf.iter().position(|b| *b == b'\n')?;
            let mut line: Vec<u8> = self.rbuf.drain(..=i).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if self.rbuf.is_empty() {
                release(&mut self.rbuf);
                self.partial_since = None;
            } else {
                self.partial_since.get_or_insert_with(Instant::now);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(line);
        }
    }

    /// Queue a response line (taken as it is when nothing else waits).
    pub fn queue(&mut self, line: Vec<u8>) {
        if self.wbuf.len() == self.wpos {
            self.wbuf = line;
            self.wpos = 0;
            return;
        }
        self.wbuf.extend_from_slice(&line);
    }

    /// Write what the socket takes. Ok(true) when everything is written.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wpos += n;
                    self.last_activity = Instant::now();
                    self.write_blocked_since = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked_since.get_or_insert_with(Instant::now);
                    // Answers that keep coming never let the buffer empty:
                    // drop what is written (at most as many bytes move as
                    // were written), or it would hold every answer so far.
                    if self.wpos >= KEEP && self.wpos * 2 >= self.wbuf.len() {
                        self.wbuf.drain(..self.wpos);
                        self.wpos = 0;
                    }
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        release(&mut self.wbuf);
        self.wpos = 0;
        self.write_blocked_since = None;
        Ok(true)
    }

    /// Bytes waiting to be written.
    pub fn pending_write(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// A partial line older than `idle`, or a client that has not taken
    /// its answers for `write_timeout`.
    pub fn stalled(&self, now: Instant, idle: Duration, write_timeout: Duration) -> bool {
        self.partial_since.is_some_and(|t| now - t > idle)
            || self
                .write_blocked_since
                .is_some_and(|t| now - t > write_timeout)
    }

    /// Nothing read or written for `idle`, nothing half-read, nothing to
    /// write (the caller checks that no invocation of it is pending).
    pub fn idle(&self, now: Instant, idle: Duration) -> bool {
        self.partial_since.is_none() && self.pending_write() == 0 && now - self.last_activity > idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Conn, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let peer = Peer {
            pid: 1,
            uid: 0,
            gids: vec![],
        };
        (Conn::new(UnixStream::from_std(a), peer), b)
    }

    #[test]
    fn conn_splits_pipelined_crlf_and_one_byte_writes() {
        let (mut c, mut b) = pair();
        b.write_all(b"{\"a\":1}\n{\"b\":2}\r\n\n{\"c\"").unwrap();
        assert_eq!(c.read(1024), ReadOutcome::Open);
        assert_eq!(c.next_line().unwrap(), b"{\"a\":1}");
        assert_eq!(c.next_line().unwrap(), b"{\"b\":2}");
        assert_eq!(c.next_line(), None);
        for byte in b":3}\n" {
            b.write_all(&[*byte]).unwrap();
            c.read(1024);
        }
        assert_eq!(c.next_line().unwrap(), b"{\"c\":3}");
    }

    #[test]
    fn conn_line_over_cap_is_too_large() {
        let (mut c, mut b) = pair();
        b.write_all(&[b'x'; 2000]).unwrap();
        assert_eq!(c.read(1000), ReadOutcome::TooLarge);
    }

    #[test]
    fn conn_partial_line_stalls_after_idle() {
        let (mut c, mut b) = pair();
        b.write_all(b"{").unwrap();
        c.read(100);
        let later = Instant::now() + Duration::from_secs(5);
        assert!(c.stalled(later, Duration::from_secs(1), Duration::from_secs(100)));
        assert!(!c.stalled(
            Instant::now(),
            Duration::from_secs(1),
            Duration::from_secs(100)
        ));
    }

    #[test]
    fn conn_quiet_connection_is_idle_after_the_timeout() {
        let (c, _b) = pair();
        assert!(!c.idle(Instant::now(), Duration::from_secs(1)));
        assert!(c.idle(
            Instant::now() + Duration::from_secs(2),
            Duration::from_secs(1)
        ));
    }

    /// A client that reads while answers keep coming, so the buffer never
    /// empties: it holds what is not written yet, not everything queued
    /// since it last emptied, and frees its capacity once empty.
    #[test]
    fn conn_written_answers_are_dropped_while_more_keep_coming() {
        use std::io::Read as _;
        let (mut c, mut b) = pair();
        let answer = vec![b'a'; 1 << 20];
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        // One answer ahead of the reader all along.
        c.queue(answer.clone());
        for _ in 0..20 {
            c.queue(answer.clone());
            let mut took = 0;
            while took < answer.len() {
                c.flush().unwrap();
                let want = (answer.len() - took).min(buf.len());
                let n = b.read(&mut buf[..want]).unwrap();
                took += n;
            }
            got += took;
            assert!(c.pending_write() > 0, "the buffer emptied");
            assert!(
                c.wbuf.len() <= 2 * c.pending_write() + KEEP,
                "{} bytes buffered for {} pending",
                c.wbuf.len(),
                c.pending_write()
            );
        }
        b.set_nonblocking(true).unwrap();
        loop {
            let done = c.flush().unwrap();
            match b.read(&mut buf) {
                Ok(n) => got += n,
                Err(_) if done => break,
                Err(_) => {}
            }
        }
        assert_eq!(got, 21 << 20, "every byte arrives");
        assert_eq!(c.pending_write(), 0);
        assert!(c.wbuf.capacity() <= KEEP, "{}", c.wbuf.capacity());
    }

    #[test]
    fn conn_eof_is_closed() {
        let (mut c, b) = pair();
        drop(b);
        assert_eq!(c.read(100), ReadOutcome::Closed);
    }
}
