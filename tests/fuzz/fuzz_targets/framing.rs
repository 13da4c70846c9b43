//! Any byte stream split at any points: the connection framer yields exactly
//! the newline-terminated lines, never panics, and enforces the line cap.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use paddock_supervisor::conn::{Conn, Peer, ReadOutcome};

fuzz_target!(|data: &[u8]| {
    let Ok((a, mut b)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    a.set_nonblocking(true).unwrap();
    let mut c = Conn::new(
        mio::net::UnixStream::from_std(a),
        Peer {
            pid: 1,
            uid: 0,
            gids: vec![],
        },
    );
    let cap = 4096;
    let chunk = 1 + data.first().copied().unwrap_or(0) as usize % 64;
    let mut lines = 0usize;
    for part in data.chunks(chunk) {
        if b.write_all(part).is_err() {
            return;
        }
        match c.read(cap) {
            ReadOutcome::TooLarge => return,
            ReadOutcome::Closed => return,
            ReadOutcome::Open => {}
        }
        while let Some(l) = c.next_line() {
            assert!(!l.contains(&b'\n'));
            assert!(l.len() <= cap + chunk);
            lines += 1;
        }
    }
    assert!(lines <= data.iter().filter(|x| **x == b'\n').count());
});
