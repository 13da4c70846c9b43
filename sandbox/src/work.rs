//! Reading the FILE protocol's output out of a finished sandbox's /work,
//! through the directory fd the child handed over: openat2 with
//! RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS and O_NOFOLLOW,
//! regular files only, size checked before reading, read bounded. Never by a
//! path such as /proc/<pid>/root/work/output.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;

use crate::sys;

/// A file read out of /work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkFile {
    pub data: Vec<u8>,
    /// The file was larger than the cap; `data` holds the first `cap` bytes.
    pub truncated: bool,
    /// The file's size as the kernel reported it.
    pub size: u64,
}

/// Why a work file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkFileError {
    #[error("output file {0:?} is not a plain file name")]
    BadName(String),
    #[error("output file is missing")]
    Missing,
    #[error("output file is a symlink or resolves outside the work directory")]
    Link,
    #[error("output file is not a regular file")]
    NotRegular,
    #[error("output file could not be read: {0}")]
    Io(Errno),
}

/// Read `name` from the work directory `dir`, at most `cap` bytes.
pub fn read_work_file(
    dir: BorrowedFd<'_>,
    name: &str,
    cap: u64,
) -> Result<WorkFile, WorkFileError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(WorkFileError::BadName(name.to_owned()));
    }
    let cname = CString::new(name).map_err(|_| WorkFileError::BadName(name.to_owned()))?;
    let fd = sys::openat2_beneath(dir, &cname).map_err(|e| match e.errno {
        Errno::ENOENT => WorkFileError::Missing,
        Errno::ELOOP | Errno::EXDEV => WorkFileError::Link,
        other => WorkFileError::Io(other),
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(WorkFileError::Io)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(WorkFileError::NotRegular);
    }
    let size = st.st_size as u64;
    let want = size.min(cap);
    let mut data = Vec::with_capacity(want as usize);
    let mut file = std::fs::File::from(fd);
    (&mut file)
        .take(want)
        .read_to_end(&mut data)
        .map_err(|e| WorkFileError::Io(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    Ok(WorkFile {
        truncated: size > cap,
        data,
        size,
    })
}

/// Create `name` in the work directory `dir` with `data`, mode 0644, as
/// `uid`/`gid`: resolved beneath `dir` with no symlink and no `..`, O_EXCL
/// (an existing entry is an error, never reused).
///
/// The file is created with the calling thread's filesystem ids switched to
/// `uid`/`gid` (setfsuid/setfsgid), restored before returning: /work is a
/// tmpfs mounted in the sandbox's user namespace, which refuses inodes owned
/// by ids it does not map (EOVERFLOW), and this way the kernel checks the
/// sandbox's own permissions, not root's.
pub(crate) fn write_work_file(
    dir: BorrowedFd<'_>,
    name: &str,
    data: &[u8],
    uid: u32,
    gid: u32,
) -> Result<(), Errno> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Errno::EINVAL);
    }
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    let fd = {
        let _ids = FsIds::switch(uid, gid);
        sys::openat2_create_beneath(dir, &cname, 0o644).map_err(|e| e.errno)?
    };
    let mut rest = data;
    while !rest.is_empty() {
        match nix::unistd::write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A directory being emptied by [`clear_work_dir`].
struct Level {
    /// Its name in its parent, and its parent's (st_dev, st_ino): what its
    /// `..` must be on the way back up. None: the work directory itself.
    name: Option<(CString, (u64, u64))>,
    /// Subdirectories still to empty and remove.
    subdirs: Vec<CString>,
}

fn dir_id(fd: BorrowedFd<'_>) -> Result<(u64, u64), Errno> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// The directory `name` beneath `parent` ([`sys::openat2_dir_beneath`]),
/// opened for listing.
fn open_dir(parent: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<nix::dir::Dir, Errno> {
    let fd = sys::openat2_dir_beneath(parent, name).map_err(|e| e.errno)?;
    nix::dir::Dir::from_fd(fd)
}

/// Remove every entry of the directory `dir` (freshly opened: listed from
/// its start) but its subdirectories, which are returned (names only;
/// never followed here).
fn remove_files(dir: &mut nix::dir::Dir) -> Result<Vec<CString>, Errno> {
    use nix::dir::Type;
    use nix::fcntl::AtFlags;
    use nix::unistd::UnlinkatFlags;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        names.push((name.to_owned(), entry.file_type()));
    }
    let fd = dir.as_fd();
    let mut subdirs = Vec::new();
    for (name, kind) in names {
        let is_dir = match kind {
            Some(t) => t == Type::Directory,
            // A filesystem that does not fill d_type: ask, without following.
            None => {
                let st =
                    nix::sys::stat::fstatat(fd, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
                st.st_mode & libc::S_IFMT == libc::S_IFDIR
            }
        };
        if is_dir {
            subdirs.push(name);
        } else {
            nix::unistd::unlinkat(fd, name.as_c_str(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    Ok(subdirs)
}

/// Empty the work directory `dir`: every file, link, fifo, socket and
/// directory beneath it removed, nothing followed. A warm runner's /work
/// is emptied between invocations, so no file crosses from one to the next.
///
/// Call it only while nothing in the sandbox can change the tree (the
/// runner is between calls). Directories are descended one at a time
/// through openat2 beneath their parent with no symlink (a symlink is
/// unlinked, never entered), and climbed back through `..`, checked against
/// the (device, inode) recorded on the way down: however deep the module
/// nested its directories, two descriptors are open at a time. Any
/// surprise is an error, and the caller then discards the sandbox.
pub fn clear_work_dir(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    use nix::fcntl::OFlag;
    use nix::unistd::UnlinkatFlags;
    let mut cur = open_dir(dir, c".")?;
    let mut stack = vec![Level {
        name: None,
        subdirs: remove_files(&mut cur)?,
    }];
    loop {
        let top = stack
            .last_mut()
            .expect("the work directory stays on the stack");
        if let Some(name) = top.subdirs.pop() {
            let mut child = open_dir(cur.as_fd(), &name)?;
            let parent = dir_id(cur.as_fd())?;
            stack.push(Level {
                subdirs: remove_files(&mut child)?,
                name: Some((name, parent)),
            });
            cur = child;
            continue;
        }
        let done = stack.pop().expect("not empty");
        let Some((name, want)) = done.name else {
            return Ok(());
        };
        let parent = nix::fcntl::openat(
            cur.as_fd(),
            "..",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        if dir_id(parent.as_fd())? != want {
            // The tree moved while we walked it.
            return Err(Errno::ESTALE);
        }
        nix::unistd::unlinkat(parent.as_fd(), name.as_c_str(), UnlinkatFlags::RemoveDir)?;
        // Its files are gone and its other subdirectories are on the stack:
        // it is not listed again.
        cur = nix::dir::Dir::from_fd(parent)?;
    }
}

/// The calling thread's filesystem ids, switched until dropped.
struct FsIds {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
}

impl FsIds {
    fn switch(uid: u32, gid: u32) -> FsIds {
        let gid = nix::unistd::setfsgid(gid.into());
        let uid = nix::unistd::setfsuid(uid.into());
        FsIds { uid, gid }
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        nix::unistd::setfsuid(self.uid);
        nix::unistd::setfsgid(self.gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn dir() -> (tempfile::TempDir, std::fs::File) {
        let t = tempfile::tempdir().unwrap();
        let f = std::fs::File::open(t.path()).unwrap();
        (t, f)
    }

    #[test]
    fn work_file_regular_file_is_read_and_capped() {
        let (t, d) = dir();
        std::fs::write(t.path().join("out"), b"hello world").unwrap();
        let w = read_work_file(d.as_fd(), "out", 5).unwrap();
        assert_eq!(w.data, b"hello");
        assert!(w.truncated);
        assert_eq!(w.size, 11);
        let w = read_work_file(d.as_fd(), "out", 100).unwrap();
        assert_eq!(w.data, b"hello world");
        assert!(!w.truncated);
    }

    #[test]
    fn work_file_symlink_is_refused() {
        let (t, d) = dir();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("out")).unwrap();
        assert_eq!(
            read_work_file(d.as_fd(), "out", 100),
            Err(WorkFileError::Link)
        );
    }

    #[test]
    fn work_file_dotdot_and_slashes_are_refused() {
        let (_t, d) = dir();
        for bad in ["../../../etc/passwd", "a/b", "..", ""] {
            assert!(matches!(
                read_work_file(d.as_fd(), bad, 100),
                Err(WorkFileError::BadName(_))
            ));
        }
    }

    #[test]
    fn work_file_directory_or_fifo_is_not_regular() {
        let (t, d) = dir();
        std::fs::create_dir(t.path().join("out")).unwrap();
        assert_eq!(
            read_work_file(d.as_fd(), "out", 100),
            Err(WorkFileError::NotRegular)
        );
        nix::unistd::mkfifo(
            &t.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert_eq!(
            read_work_file(d.as_fd(), "fifo", 100),
            Err(WorkFileError::NotRegular)
        );
    }

    #[test]
    fn work_file_huge_sparse_file_is_checked_by_size_first() {
        let (t, d) = dir();
        let f = std::fs::File::create(t.path().join("out")).unwrap();
        f.set_len(1 << 40).unwrap();
        let w = read_work_file(d.as_fd(), "out", 16).unwrap();
        assert_eq!(w.data.len(), 16);
        assert!(w.truncated);
    }

    #[test]
    fn work_file_missing_is_reported() {
        let (_t, d) = dir();
        assert_eq!(
            read_work_file(d.as_fd(), "out", 1),
            Err(WorkFileError::Missing)
        );
    }

    #[test]
    fn work_input_is_created_owned_and_never_through_a_link_or_twice() {
        use std::os::unix::fs::MetadataExt;
        let (t, d) = dir();
        // As in a sandbox: /work belongs to the sandbox's ids, which create the file.
        std::os::unix::fs::chown(t.path(), Some(4242), Some(4343)).unwrap();
        write_work_file(d.as_fd(), "input", b"payload", 4242, 4343).unwrap();
        // The thread's own filesystem ids are back: root can still create here.
        std::fs::write(t.path().join("by-root"), b"").unwrap();
        assert_eq!(
            std::fs::metadata(t.path().join("by-root")).unwrap().uid(),
            0
        );
        let m = std::fs::metadata(t.path().join("input")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (4242, 4343, 0o644));
        assert_eq!(std::fs::read(t.path().join("input")).unwrap(), b"payload");
        // O_EXCL: an existing entry is never reused or truncated.
        assert_eq!(
            write_work_file(d.as_fd(), "input", b"x", 4242, 4343),
            Err(Errno::EEXIST)
        );
        // A planted symlink is not followed, whatever it points at.
        let target = t.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, t.path().join("link")).unwrap();
        assert!(write_work_file(d.as_fd(), "link", b"x", 4242, 4343).is_err());
        assert!(!target.exists());
        for bad in ["../x", "a/b", "..", ".", ""] {
            assert_eq!(
                write_work_file(d.as_fd(), bad, b"x", 0, 0),
                Err(Errno::EINVAL),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn work_clear_empties_the_tree_and_never_follows_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let (t, d) = dir();
        let w = t.path();
        // Outside the work directory: must survive whatever points at it.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"precious").unwrap();
        std::fs::write(w.join("input"), b"in").unwrap();
        std::fs::write(w.join("output"), b"out").unwrap();
        std::os::unix::fs::symlink(outside.path(), w.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("keep"), w.join("filelink")).unwrap();
        std::os::unix::fs::symlink("nowhere", w.join("dangling")).unwrap();
        nix::unistd::mkfifo(
            &w.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(w.join("sock")).unwrap();
        std::fs::create_dir_all(w.join("a/b/c")).unwrap();
        std::fs::write(w.join("a/b/c/f"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), w.join("a/b/link")).unwrap();
        std::fs::create_dir(w.join("a/empty")).unwrap();
        // A directory nobody may enter or write: still emptied (the daemon is root).
        std::fs::create_dir(w.join("locked")).unwrap();
        std::fs::write(w.join("locked/f"), b"x").unwrap();
        std::fs::set_permissions(w.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
        clear_work_dir(d.as_fd()).unwrap();
        assert_eq!(std::fs::read_dir(w).unwrap().count(), 0);
        assert!(w.is_dir(), "the work directory itself stays");
        assert_eq!(
            std::fs::read(outside.path().join("keep")).unwrap(),
            b"precious"
        );
        // Emptying an empty directory is a no-op.
        clear_work_dir(d.as_fd()).unwrap();
    }

    #[test]
    fn work_clear_removes_three_thousand_levels_of_nesting() {
        let (t, d) = dir();
        // 3000 levels (a path of ~6 KB: past PATH_MAX, so built step by step).
        let mut cur = std::fs::File::open(t.path()).unwrap();
        for _ in 0..3000 {
            nix::sys::stat::mkdirat(&cur, "d", nix::sys::stat::Mode::from_bits_truncate(0o755))
                .unwrap();
            nix::sys::stat::mkdirat(&cur, "e", nix::sys::stat::Mode::from_bits_truncate(0o755))
                .unwrap();
            let next = nix::fcntl::openat(
                &cur,
                "d",
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap();
            cur = std::fs::File::from(next);
        }
        drop(cur);
        clear_work_dir(d.as_fd()).unwrap();
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
