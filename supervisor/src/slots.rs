//! Host uid slots: concurrent sandboxes get different host uids
//! (`uid_base + slot`). A slot is held by an flock on a lock file under the
//! run directory, so separate `paddockd run` processes never share one and a
//! crashed holder frees its slot automatically.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// A held slot; dropping it releases the slot.
#[derive(Debug)]
pub struct Slot {
    pub index: u32,
    _lock: Flock<File>,
}

/// Take a free slot among `count`, starting the search at a per-process offset.
pub fn acquire(run_dir: &Path, count: u32) -> io::Result<Slot> {
    if count == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "uid_count is 0",
        ));
    }
    let dir: PathBuf = run_dir.join("slots");
    fs::create_dir_all(&dir)?;
    let start = std::process::id() % count;
    for i in 0..count {
        let index = (start + i) % count;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{index}.lock")))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Slot { index, _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
            Err((_, e)) => return Err(e.into()),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("all {count} sandbox uid slots are in use"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_held_concurrently_are_distinct_and_freed_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), 2).unwrap();
        let b = acquire(d.path(), 2).unwrap();
        assert_ne!(a.index, b.index);
        assert!(acquire(d.path(), 2).is_err(), "only two slots");
        let freed = a.index;
        drop(a);
        assert_eq!(acquire(d.path(), 2).unwrap().index, freed);
    }
}
