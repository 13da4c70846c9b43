//! A small WASI preview1 host for `paddock-wasm` (see the module doc of
//! [`crate::wasm`] for why it is ours and what it covers).
//!
//! Every call checks guest pointers against the memory's length (`EFAULT`),
//! never panics on guest input, and reaches the file system only through
//! `openat2` beneath a directory fd that descends from the one preopen.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{lseek, symlinkat, unlinkat, UnlinkatFlags, Whence};
use wasmi::{Caller, Error, Extern, FuncType, Linker, Module, Val, ValType};

use crate::wasm::engine::StoreData;

/// The preview1 import module.
pub const WASI: &str = "wasi_snapshot_preview1";

/// At most this many open WASI fds.
const MAX_FDS: usize = 128;
/// The trap message of output past the cap (warm mode).
pub const OUTPUT_LIMIT: &str = "output past the cap";

/// At most this much is read or written per fd_read / fd_write call.
const MAX_IO: usize = 1 << 20;

/// WASI errno values (preview1 `errno`).
#[allow(
    dead_code,
    reason = "the complete table reads better than the subset in use"
)]
mod errno {
    pub const SUCCESS: u16 = 0;
    pub const ACCES: u16 = 2;
    pub const AGAIN: u16 = 6;
    pub const BADF: u16 = 8;
    pub const BUSY: u16 = 10;
    pub const EXIST: u16 = 20;
    pub const FAULT: u16 = 21;
    pub const FBIG: u16 = 22;
    pub const INTR: u16 = 27;
    pub const INVAL: u16 = 28;
    pub const IO: u16 = 29;
    pub const ISDIR: u16 = 31;
    pub const LOOP: u16 = 32;
    pub const MFILE: u16 = 33;
    pub const MLINK: u16 = 34;
    pub const NAMETOOLONG: u16 = 37;
    pub const NFILE: u16 = 41;
    pub const NOENT: u16 = 44;
    pub const NOMEM: u16 = 48;
    pub const NOSPC: u16 = 51;
    pub const NOSYS: u16 = 52;
    pub const NOTDIR: u16 = 54;
    pub const NOTEMPTY: u16 = 55;
    pub const NOTSUP: u16 = 58;
    pub const PERM: u16 = 63;
    pub const PIPE: u16 = 64;
    pub const ROFS: u16 = 69;
    pub const SPIPE: u16 = 70;
    pub const XDEV: u16 = 75;
    pub const NOTCAPABLE: u16 = 76;
}

/// WASI filetype values.
mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const BLOCK_DEVICE: u8 = 1;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SOCKET_STREAM: u8 = 6;
    pub const SYMBOLIC_LINK: u8 = 7;
}

const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
/// Every right preview1 defines (bits 0..=29): we do not restrict by rights,
/// the directory fds and openat2 do.
const ALL_RIGHTS: u64 = (1 << 30) - 1;

const OFLAG_CREAT: i32 = 1;
const OFLAG_DIRECTORY: i32 = 2;
const OFLAG_EXCL: i32 = 4;
const OFLAG_TRUNC: i32 = 8;
const FDFLAG_APPEND: i32 = 1;

type R<T = ()> = Result<T, u16>;

/// Host errno to WASI errno.
fn wasi_errno(e: Errno) -> u16 {
    use errno::*;
    match e {
        Errno::EACCES => ACCES,
        Errno::EAGAIN => AGAIN,
        Errno::EBADF => BADF,
        Errno::EBUSY => BUSY,
        Errno::EEXIST => EXIST,
        Errno::EFAULT => FAULT,
        Errno::EFBIG => FBIG,
        Errno::EINTR => INTR,
        Errno::EINVAL => INVAL,
        Errno::EISDIR => ISDIR,
        Errno::ELOOP => LOOP,
        Errno::EMFILE => MFILE,
        Errno::EMLINK => MLINK,
        Errno::ENAMETOOLONG => NAMETOOLONG,
        Errno::ENFILE => NFILE,
        Errno::ENOENT => NOENT,
        Errno::ENOMEM => NOMEM,
        Errno::ENOSPC | Errno::EDQUOT => NOSPC,
        Errno::ENOSYS => NOSYS,
        Errno::ENOTDIR => NOTDIR,
        Errno::ENOTEMPTY => NOTEMPTY,
        Errno::EOPNOTSUPP => NOTSUP,
        Errno::EPERM => PERM,
        Errno::EPIPE => PIPE,
        Errno::EROFS => ROFS,
        Errno::ESPIPE => SPIPE,
        Errno::EXDEV => XDEV,
        _ => IO,
    }
}

/// Errors of a path lookup: leaving the directory (EXDEV from
/// RESOLVE_BENEATH) and meeting a symlink (ELOOP from RESOLVE_NO_SYMLINKS)
/// are both "not capable".
fn lookup_errno(e: Errno) -> u16 {
    match e {
        Errno::EXDEV | Errno::ELOOP => errno::NOTCAPABLE,
        other => wasi_errno(other),
    }
}

#[derive(Debug)]
enum Kind {
    /// The module's stdin, stdout or stderr (0, 1, 2): the runner's own.
    Stdio(u8),
    /// The module's stdin, stdout or stderr (0, 1, 2) in memory
    /// ([`MemStdio`], warm mode): no fd behind it.
    Mem(u8),
    File,
    /// A directory; `preopen` is its name for `fd_prestat_*`.
    Dir {
        preopen: Option<String>,
    },
}

#[derive(Debug)]
struct Entry {
    /// None for [`Kind::Mem`].
    fd: Option<OwnedFd>,
    kind: Kind,
}

impl Entry {
    fn os(&self) -> R<&OwnedFd> {
        self.fd.as_ref().ok_or(errno::BADF)
    }
}

/// In-memory stdin, stdout and stderr for one invocation (warm mode): the
/// input is read from memory, output is kept up to `cap` bytes per stream.
/// Output past the cap ends the invocation ([`Host::flooded`]), as the
/// daemon stops a oneshot run whose output passes the cap.
#[derive(Debug, Default)]
pub struct MemStdio {
    pub input: Vec<u8>,
    read: usize,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    cap: usize,
}

impl MemStdio {
    /// `input` as stdin; at most `cap` bytes kept of stdout and of stderr.
    pub fn new(input: Vec<u8>, cap: u64) -> MemStdio {
        MemStdio {
            input,
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            ..MemStdio::default()
        }
    }

    fn write(&mut self, stream: u8, data: &[u8]) {
        let (buf, truncated) = if stream == 1 {
            (&mut self.stdout, &mut self.stdout_truncated)
        } else {
            (&mut self.stderr, &mut self.stderr_truncated)
        };
        let room = self.cap.saturating_sub(buf.len());
        if data.len() > room {
            *truncated = true;
        }
        buf.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// The per-instance WASI state.
#[derive(Debug)]
pub struct Host {
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    fds: Vec<Option<Entry>>,
    started: Instant,
    /// Whether the module's stderr output so far ends a line (the runner's
    /// report must start on a line of its own).
    stderr_at_line_start: bool,
    /// Warm mode: the module's stdio in memory.
    mem: Option<MemStdio>,
}

impl Host {
    /// `args` and `env` as the module will see them; `preopen` is a directory
    /// given to the module as fd 3 under the given name.
    pub fn new(
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        preopen: Option<(OwnedFd, String)>,
    ) -> std::io::Result<Host> {
        let fds = vec![
            Some(Entry {
                fd: Some(std::io::stdin().as_fd().try_clone_to_owned()?),
                kind: Kind::Stdio(0),
            }),
            Some(Entry {
                fd: Some(std::io::stdout().as_fd().try_clone_to_owned()?),
                kind: Kind::Stdio(1),
            }),
            Some(Entry {
                fd: Some(std::io::stderr().as_fd().try_clone_to_owned()?),
                kind: Kind::Stdio(2),
            }),
        ];
        Ok(Host::with_fds(args, env, fds, preopen, None))
    }

    /// A host whose stdin, stdout and stderr are `stdio`, in memory (warm
    /// mode: one per invocation); `preopen` as for [`Host::new`] (warm FILE
    /// protocol: /work, emptied by the daemon between invocations).
    pub fn in_memory(
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        stdio: MemStdio,
        preopen: Option<(OwnedFd, String)>,
    ) -> Host {
        let fds = (0..3)
            .map(|i| {
                Some(Entry {
                    fd: None,
                    kind: Kind::Mem(i),
                })
            })
            .collect();
        Host::with_fds(args, env, fds, preopen, Some(stdio))
    }

    /// `fds` are 0, 1 and 2; the preopen, if any, becomes fd 3.
    fn with_fds(
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        mut fds: Vec<Option<Entry>>,
        preopen: Option<(OwnedFd, String)>,
        mem: Option<MemStdio>,
    ) -> Host {
        if let Some((fd, name)) = preopen {
            fds.push(Some(Entry {
                fd: Some(fd),
                kind: Kind::Dir {
                    preopen: Some(name),
                },
            }));
        }
        Host {
            args: args.into_iter().map(OsString::into_vec).collect(),
            env: env
                .into_iter()
                .map(|(k, v)| {
                    let mut e = k.into_vec();
                    e.push(b'=');
                    e.extend(v.into_vec());
                    e
                })
                .collect(),
            fds,
            started: Instant::now(),
            stderr_at_line_start: true,
            mem,
        }
    }

    /// The in-memory stdio (warm mode), with what the module wrote.
    pub fn take_mem(&mut self) -> Option<MemStdio> {
        self.mem.take()
    }

    /// Whether in-memory output passed its cap (the invocation is stopped).
    pub fn flooded(&self) -> bool {
        self.mem
            .as_ref()
            .is_some_and(|m| m.stdout_truncated || m.stderr_truncated)
    }

    /// Whether the module's stderr output ends a line.
    pub fn stderr_at_line_start(&self) -> bool {
        self.stderr_at_line_start
    }

    fn entry(&self, fd: i32) -> R<&Entry> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .and_then(Option::as_ref)
            .ok_or(errno::BADF)
    }

    fn dir(&self, fd: i32) -> R<&OwnedFd> {
        let e = self.entry(fd)?;
        match e.kind {
            Kind::Dir { .. } => e.os(),
            _ => Err(errno::NOTDIR),
        }
    }

    fn insert(&mut self, e: Entry) -> R<u32> {
        let i = match self.fds.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.fds.len() < MAX_FDS => {
                self.fds.push(None);
                self.fds.len() - 1
            }
            None => return Err(errno::MFILE),
        };
        self.fds[i] = Some(e);
        Ok(i as u32)
    }
}

// ------------------------------------------------------------ guest memory

fn span(mem: &[u8], ptr: i32, len: u64) -> R<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let len = usize::try_from(len).map_err(|_| errno::FAULT)?;
    let end = start.checked_add(len).ok_or(errno::FAULT)?;
    if end > mem.len() {
        return Err(errno::FAULT);
    }
    Ok(start..end)
}

fn bytes(mem: &[u8], ptr: i32, len: i32) -> R<&[u8]> {
    Ok(&mem[span(mem, ptr, len as u32 as u64)?])
}

fn get_u32(mem: &[u8], ptr: i32) -> R<u32> {
    let b = &mem[span(mem, ptr, 4)?];
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn put(mem: &mut [u8], ptr: i32, data: &[u8]) -> R {
    let r = span(mem, ptr, data.len() as u64)?;
    mem[r].copy_from_slice(data);
    Ok(())
}

fn put_u32(mem: &mut [u8], ptr: i32, v: u32) -> R {
    put(mem, ptr, &v.to_le_bytes())
}

fn put_u64(mem: &mut [u8], ptr: i32, v: u64) -> R {
    put(mem, ptr, &v.to_le_bytes())
}

/// The (start, len) ranges of an iovec array, checked against memory.
fn iovecs(mem: &[u8], iovs: i32, n: i32) -> R<Vec<std::ops::Range<usize>>> {
    let n = n as u32;
    if n > 1024 {
        return Err(errno::INVAL);
    }
    (0..n)
        .map(|i| {
            let at = (iovs as u32).checked_add(i * 8).ok_or(errno::FAULT)? as i32;
            let buf = get_u32(mem, at)?;
            let len = get_u32(mem, at.wrapping_add(4))?;
            span(mem, buf as i32, len as u64)
        })
        .collect()
}

/// Runs `f` on the guest memory and the host state; `f`'s WASI errno is the
/// call's result.
fn with_mem(caller: &mut Caller<'_, StoreData>, f: impl FnOnce(&mut [u8], &mut Host) -> R) -> i32 {
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return i32::from(errno::NOSYS);
    };
    let (mem, data) = memory.data_and_store_mut(caller);
    match f(mem, &mut data.host) {
        Ok(()) => 0,
        Err(e) => i32::from(e),
    }
}

// ------------------------------------------------------------ file system

const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS)
    .union(ResolveFlag::RESOLVE_NO_XDEV);

/// A guest path: relative, no NUL. Absolute paths are not capable: only
/// lookups beneath a directory fd exist.
fn guest_path(mem: &[u8], ptr: i32, len: i32) -> R<Vec<u8>> {
    let p = bytes(mem, ptr, len)?;
    if p.is_empty() {
        return Err(errno::NOENT);
    }
    if p[0] == b'/' {
        return Err(errno::NOTCAPABLE);
    }
    if p.contains(&0) {
        return Err(errno::INVAL);
    }
    Ok(p.to_vec())
}

/// openat2 beneath `dir`, no symlinks, no magic links, no mount crossing.
pub fn open_beneath(dir: &OwnedFd, path: &[u8], flags: OFlag, mode: Mode) -> R<OwnedFd> {
    let c = CString::new(path).map_err(|_| errno::INVAL)?;
    // openat2 rejects a mode without O_CREAT.
    let mode = if flags.contains(OFlag::O_CREAT) {
        mode
    } else {
        Mode::empty()
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(mode)
        .resolve(RESOLVE);
    openat2(dir, c.as_c_str(), how).map_err(lookup_errno)
}

/// Splits `path` into its parent directory (opened beneath `dir`) and its
/// last component, for the calls that act on a name (mkdir, unlink, ...).
fn parent_of(dir: &OwnedFd, path: &[u8]) -> R<(OwnedFd, CString)> {
    let trimmed = match path.iter().rposition(|&b| b != b'/') {
        Some(i) => &path[..=i],
        None => return Err(errno::NOTCAPABLE),
    };
    let (parent, last) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b""[..], trimmed),
    };
    match last {
        b"." => return Err(errno::INVAL),
        b".." => return Err(errno::NOTCAPABLE),
        _ => {}
    }
    let pfd = if parent.iter().all(|&b| b == b'/') {
        dir.try_clone().map_err(|_| errno::MFILE)?
    } else {
        open_beneath(
            dir,
            parent,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )?
    };
    let last = CString::new(last).map_err(|_| errno::INVAL)?;
    Ok((pfd, last))
}

fn file_type(st: &FileStat) -> u8 {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => filetype::REGULAR_FILE,
        libc::S_IFDIR => filetype::DIRECTORY,
        libc::S_IFCHR => filetype::CHARACTER_DEVICE,
        libc::S_IFBLK => filetype::BLOCK_DEVICE,
        libc::S_IFLNK => filetype::SYMBOLIC_LINK,
        libc::S_IFSOCK => filetype::SOCKET_STREAM,
        _ => filetype::UNKNOWN,
    }
}

fn ns(sec: i64, nsec: i64) -> u64 {
    (sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec.max(0) as u64)
}

/// preview1 `filestat` (64 bytes).
fn put_filestat(mem: &mut [u8], ptr: i32, st: &FileStat) -> R {
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&st.st_dev.to_le_bytes());
    b[8..16].copy_from_slice(&st.st_ino.to_le_bytes());
    b[16] = file_type(st);
    b[24..32].copy_from_slice(&st.st_nlink.to_le_bytes());
    b[32..40].copy_from_slice(&(st.st_size.max(0) as u64).to_le_bytes());
    b[40..48].copy_from_slice(&ns(st.st_atime, st.st_atime_nsec).to_le_bytes());
    b[48..56].copy_from_slice(&ns(st.st_mtime, st.st_mtime_nsec).to_le_bytes());
    b[56..64].copy_from_slice(&ns(st.st_ctime, st.st_ctime_nsec).to_le_bytes());
    put(mem, ptr, &b)
}

// ------------------------------------------------------------ the calls

/// Which in-memory stream an fd is (`Some`), or that it is an OS fd (`None`).
fn mem_stream(host: &Host, fd: i32) -> R<Option<u8>> {
    match host.entry(fd)?.kind {
        Kind::Dir { .. } => Err(errno::ISDIR),
        Kind::Mem(s) => Ok(Some(s)),
        Kind::Stdio(_) | Kind::File => Ok(None),
    }
}

fn fd_write(host: &mut Host, mem: &mut [u8], fd: i32, iovs: i32, n: i32, out: i32) -> R {
    let stream = mem_stream(host, fd)?;
    let mut data = Vec::new();
    for r in iovecs(mem, iovs, n)? {
        let room = MAX_IO - data.len();
        data.extend_from_slice(&mem[r.start..r.end.min(r.start + room)]);
        if data.len() == MAX_IO {
            break;
        }
    }
    let written = match stream {
        Some(0) => return Err(errno::BADF),
        Some(s) => {
            host.mem.as_mut().ok_or(errno::BADF)?.write(s, &data);
            data.len()
        }
        None => {
            let e = host.entry(fd)?;
            let written = loop {
                match nix::unistd::write(e.os()?, &data) {
                    Err(Errno::EINTR) => continue,
                    other => break other.map_err(wasi_errno)?,
                }
            };
            if matches!(e.kind, Kind::Stdio(2)) && written > 0 {
                host.stderr_at_line_start = data[written - 1] == b'\n';
            }
            written
        }
    };
    put_u32(mem, out, written as u32)
}

fn fd_read(host: &mut Host, mem: &mut [u8], fd: i32, iovs: i32, n: i32, out: i32) -> R {
    let stream = mem_stream(host, fd)?;
    let ranges = iovecs(mem, iovs, n)?;
    let total: usize = ranges.iter().map(|r| r.len()).sum::<usize>().min(MAX_IO);
    let mut buf = vec![0u8; total];
    let got = match stream {
        Some(0) => {
            let m = host.mem.as_mut().ok_or(errno::BADF)?;
            let left = &m.input[m.read..];
            let k = left.len().min(total);
            buf[..k].copy_from_slice(&left[..k]);
            m.read += k;
            k
        }
        Some(_) => return Err(errno::BADF),
        None => {
            let e = host.entry(fd)?;
            loop {
                match nix::unistd::read(e.os()?, &mut buf) {
                    Err(Errno::EINTR) => continue,
                    other => break other.map_err(wasi_errno)?,
                }
            }
        }
    };
    let mut left = &buf[..got];
    for r in ranges {
        if left.is_empty() {
            break;
        }
        let k = r.len().min(left.len());
        mem[r.start..r.start + k].copy_from_slice(&left[..k]);
        left = &left[k..];
    }
    put_u32(mem, out, got as u32)
}

#[allow(clippy::too_many_arguments, reason = "the preview1 signature")]
fn path_open(
    host: &mut Host,
    mem: &mut [u8],
    dirfd: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    rights: i64,
    fdflags: i32,
    out: i32,
) -> R {
    let dir = host.dir(dirfd)?;
    let path = guest_path(mem, path, path_len)?;
    let rights = rights as u64;
    let read = rights & RIGHT_FD_READ != 0;
    let write = rights & RIGHT_FD_WRITE != 0 || fdflags & FDFLAG_APPEND != 0;
    let mut flags = match (read, write) {
        (_, false) => OFlag::O_RDONLY,
        (false, true) => OFlag::O_WRONLY,
        (true, true) => OFlag::O_RDWR,
    };
    if oflags & OFLAG_DIRECTORY != 0 {
        flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    }
    if oflags & OFLAG_CREAT != 0 {
        flags |= OFlag::O_CREAT;
    }
    if oflags & OFLAG_EXCL != 0 {
        flags |= OFlag::O_EXCL;
    }
    if oflags & OFLAG_TRUNC != 0 {
        flags |= OFlag::O_TRUNC;
    }
    if fdflags & FDFLAG_APPEND != 0 {
        flags |= OFlag::O_APPEND;
    }
    let fd = open_beneath(dir, &path, flags, Mode::from_bits_truncate(0o644))?;
    let st = fstat(&fd).map_err(wasi_errno)?;
    let kind = if file_type(&st) == filetype::DIRECTORY {
        Kind::Dir { preopen: None }
    } else {
        Kind::File
    };
    let n = host.insert(Entry { fd: Some(fd), kind })?;
    put_u32(mem, out, n)
}

fn args_or_env_sizes(list: &[Vec<u8>], mem: &mut [u8], count: i32, size: i32) -> R {
    let total: usize = list.iter().map(|a| a.len() + 1).sum();
    put_u32(mem, count, list.len() as u32)?;
    put_u32(mem, size, total as u32)
}

fn args_or_env_get(list: &[Vec<u8>], mem: &mut [u8], ptrs: i32, buf: i32) -> R {
    let mut at = buf as u32;
    for (i, a) in list.iter().enumerate() {
        put_u32(mem, ptrs.wrapping_add(4 * i as i32), at)?;
        put(mem, at as i32, a)?;
        put(mem, at.wrapping_add(a.len() as u32) as i32, &[0])?;
        at = at.wrapping_add(a.len() as u32 + 1);
    }
    Ok(())
}

fn clock_ns(host: &Host, id: i32) -> R<u64> {
    match id {
        // realtime
        0 => {
            let d = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| errno::IO)?;
            Ok(d.as_nanos() as u64)
        }
        // monotonic; the process and thread CPU clocks are approximated by it
        1..=3 => Ok(host.started.elapsed().as_nanos() as u64 + 1),
        _ => Err(errno::INVAL),
    }
}

/// The preview1 calls defined by [`add_to_linker`] itself.
const IMPLEMENTED: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_seek",
    "fd_tell",
    "fd_sync",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_filestat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "path_open",
    "path_filestat_get",
    "path_create_directory",
    "path_unlink_file",
    "path_remove_directory",
    "path_symlink",
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "sched_yield",
    "proc_exit",
];

/// Defines every preview1 call `module` imports: ours, and `ENOSYS` stubs
/// for the rest (so that a module importing, say, `sock_accept` still links
/// and gets an error if it calls it). Imports from other modules are left
/// undefined, so instantiation fails with a link error.
pub fn add_to_linker(linker: &mut Linker<StoreData>, module: &Module) -> Result<(), Error> {
    macro_rules! def {
        ($name:literal, |$h:ident, $m:ident $(, $a:ident : $t:ty)*| $body:expr) => {
            linker.func_wrap(
                WASI,
                $name,
                |mut caller: Caller<'_, StoreData> $(, $a: $t)*| -> i32 {
                    with_mem(&mut caller, |$m, $h| $body)
                },
            )?;
        };
    }
    // In-memory output past its cap stops the invocation (a trap the
    // engine reports as `output_limit`).
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, StoreData>,
         fd: i32,
         iovs: i32,
         n: i32,
         out: i32|
         -> Result<i32, Error> {
            let r = with_mem(&mut caller, |m, h| fd_write(h, m, fd, iovs, n, out));
            if caller.data().host.flooded() {
                return Err(Error::new(OUTPUT_LIMIT));
            }
            Ok(r)
        },
    )?;
    def!("fd_read", |h, m, fd: i32, iovs: i32, n: i32, out: i32| {
        fd_read(h, m, fd, iovs, n, out)
    });
    def!("fd_close", |h, _m, fd: i32| {
        h.entry(fd)?;
        h.fds[fd as usize] = None;
        Ok(())
    });
    def!("fd_seek", |h,
                     m,
                     fd: i32,
                     offset: i64,
                     whence: i32,
                     out: i32| {
        let e = h.entry(fd)?;
        if !matches!(e.kind, Kind::File) {
            return Err(errno::SPIPE);
        }
        let whence = match whence {
            0 => Whence::SeekSet,
            1 => Whence::SeekCur,
            2 => Whence::SeekEnd,
            _ => return Err(errno::INVAL),
        };
        let pos = lseek(e.os()?, offset, whence).map_err(wasi_errno)?;
        put_u64(m, out, pos as u64)
    });
    def!("fd_tell", |h, m, fd: i32, out: i32| {
        let e = h.entry(fd)?;
        if !matches!(e.kind, Kind::File) {
            return Err(errno::SPIPE);
        }
        let pos = lseek(e.os()?, 0, Whence::SeekCur).map_err(wasi_errno)?;
        put_u64(m, out, pos as u64)
    });
    def!("fd_sync", |h, _m, fd: i32| {
        h.entry(fd)?;
        Ok(())
    });
    def!("fd_datasync", |h, _m, fd: i32| {
        h.entry(fd)?;
        Ok(())
    });
    def!("fd_fdstat_get", |h, m, fd: i32, out: i32| {
        let e = h.entry(fd)?;
        let mut b = [0u8; 24];
        // In-memory stdio looks like the pipes of a oneshot run (a FIFO is
        // an unknown filetype to preview1).
        b[0] = match &e.fd {
            Some(os) => file_type(&fstat(os).map_err(wasi_errno)?),
            None => filetype::UNKNOWN,
        };
        let rights = match e.kind {
            // Not seekable: wasi-libc's isatty() and stdio buffering look at this.
            Kind::Stdio(_) | Kind::Mem(_) => ALL_RIGHTS & !((1 << 2) | (1 << 5)),
            _ => ALL_RIGHTS,
        };
        b[8..16].copy_from_slice(&rights.to_le_bytes());
        b[16..24].copy_from_slice(&ALL_RIGHTS.to_le_bytes());
        put(m, out, &b)
    });
    def!("fd_fdstat_set_flags", |h, _m, fd: i32, _flags: i32| {
        h.entry(fd)?;
        Err(errno::NOTSUP)
    });
    def!("fd_filestat_get", |h, m, fd: i32, out: i32| {
        let e = h.entry(fd)?;
        match &e.fd {
            Some(os) => put_filestat(m, out, &fstat(os).map_err(wasi_errno)?),
            // In-memory stdio: everything zero, filetype unknown.
            None => put(m, out, &[0u8; 64]),
        }
    });
    def!("fd_prestat_get", |h, m, fd: i32, out: i32| {
        match &h.entry(fd)?.kind {
            Kind::Dir {
                preopen: Some(name),
            } => {
                put(m, out, &[0, 0, 0, 0])?;
                put_u32(m, out.wrapping_add(4), name.len() as u32)
            }
            _ => Err(errno::BADF),
        }
    });
    def!(
        "fd_prestat_dir_name",
        |h, m, fd: i32, path: i32, len: i32| {
            match &h.entry(fd)?.kind {
                Kind::Dir {
                    preopen: Some(name),
                } => {
                    if (len as u32 as usize) < name.len() {
                        return Err(errno::NAMETOOLONG);
                    }
                    put(m, path, name.as_bytes())
                }
                _ => Err(errno::BADF),
            }
        }
    );
    def!("path_open", |h,
                       m,
                       dirfd: i32,
                       _lookup: i32,
                       path: i32,
                       path_len: i32,
                       oflags: i32,
                       rights: i64,
                       _inheriting: i64,
                       fdflags: i32,
                       out: i32| {
        path_open(h, m, dirfd, path, path_len, oflags, rights, fdflags, out)
    });
    def!(
        "path_filestat_get",
        |h, m, dirfd: i32, _lookup: i32, path: i32, len: i32, out: i32| {
            let p = guest_path(m, path, len)?;
            let (parent, last) = parent_of(h.dir(dirfd)?, &p)?;
            let st = fstatat(
                &parent,
                last.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(wasi_errno)?;
            put_filestat(m, out, &st)
        }
    );
    def!(
        "path_create_directory",
        |h, m, dirfd: i32, path: i32, len: i32| {
            let p = guest_path(m, path, len)?;
            let (parent, last) = parent_of(h.dir(dirfd)?, &p)?;
            mkdirat(&parent, last.as_c_str(), Mode::from_bits_truncate(0o755)).map_err(wasi_errno)
        }
    );
    def!("path_unlink_file", |h,
                              m,
                              dirfd: i32,
                              path: i32,
                              len: i32| {
        let p = guest_path(m, path, len)?;
        let (parent, last) = parent_of(h.dir(dirfd)?, &p)?;
        unlinkat(&parent, last.as_c_str(), UnlinkatFlags::NoRemoveDir).map_err(wasi_errno)
    });
    def!(
        "path_remove_directory",
        |h, m, dirfd: i32, path: i32, len: i32| {
            let p = guest_path(m, path, len)?;
            let (parent, last) = parent_of(h.dir(dirfd)?, &p)?;
            unlinkat(&parent, last.as_c_str(), UnlinkatFlags::RemoveDir).map_err(wasi_errno)
        }
    );
    // The link's content is the module's business: nothing here follows it.
    def!("path_symlink", |h,
                          m,
                          old: i32,
                          old_len: i32,
                          dirfd: i32,
                          new: i32,
                          new_len: i32| {
        let target = bytes(m, old, old_len)?;
        let target = CString::new(target).map_err(|_| errno::INVAL)?;
        let p = guest_path(m, new, new_len)?;
        let (parent, last) = parent_of(h.dir(dirfd)?, &p)?;
        symlinkat(target.as_c_str(), &parent, last.as_c_str()).map_err(wasi_errno)
    });
    def!("args_sizes_get", |h, m, count: i32, size: i32| {
        args_or_env_sizes(&h.args, m, count, size)
    });
    def!("args_get", |h, m, ptrs: i32, buf: i32| {
        args_or_env_get(&h.args, m, ptrs, buf)
    });
    def!("environ_sizes_get", |h, m, count: i32, size: i32| {
        args_or_env_sizes(&h.env, m, count, size)
    });
    def!("environ_get", |h, m, ptrs: i32, buf: i32| {
        args_or_env_get(&h.env, m, ptrs, buf)
    });
    def!("clock_time_get", |h,
                            m,
                            id: i32,
                            _precision: i64,
                            out: i32| {
        let t = clock_ns(h, id)?;
        put_u64(m, out, t)
    });
    def!("clock_res_get", |h, m, id: i32, out: i32| {
        clock_ns(h, id)?;
        put_u64(m, out, 1)
    });
    def!("random_get", |_h, m, buf: i32, len: i32| {
        let r = span(m, buf, len as u32 as u64)?;
        getrandom::fill(&mut m[r]).map_err(|_| errno::IO)
    });
    linker.func_wrap(WASI, "sched_yield", |_: Caller<'_, StoreData>| -> i32 { 0 })?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_: Caller<'_, StoreData>, code: i32| -> Result<(), Error> { Err(Error::i32_exit(code)) },
    )?;
    // Everything else the module imports from preview1: ENOSYS.
    for import in module.imports() {
        if import.module() != WASI {
            continue;
        }
        let wasmi::ExternType::Func(ty) = import.ty() else {
            continue;
        };
        if IMPLEMENTED.contains(&import.name()) {
            continue;
        }
        let ty: FuncType = ty.clone();
        let result_types: Vec<ValType> = ty.results().to_vec();
        linker.func_new(WASI, import.name(), ty, move |_caller, _params, results| {
            for (r, t) in results.iter_mut().zip(&result_types) {
                *r = match t {
                    ValType::I32 => Val::I32(i32::from(errno::NOSYS)),
                    ValType::I64 => Val::I64(i64::from(errno::NOSYS)),
                    _ => return Err(Error::new("unsupported WASI call")),
                };
            }
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::open;

    /// A temp dir with `work/` opened as the preopen would be.
    fn work() -> (tempfile::TempDir, OwnedFd) {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("work")).unwrap();
        std::fs::write(t.path().join("secret"), b"s").unwrap();
        std::fs::write(t.path().join("work/f"), b"f").unwrap();
        let fd = open(
            &t.path().join("work"),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        (t, fd)
    }

    fn open_ro(dir: &OwnedFd, p: &[u8]) -> R<OwnedFd> {
        open_beneath(dir, p, OFlag::O_RDONLY, Mode::empty())
    }

    #[test]
    fn wasm_path_dotdot_out_of_the_preopen_is_not_capable() {
        let (_t, w) = work();
        assert_eq!(open_ro(&w, b"../secret").err(), Some(errno::NOTCAPABLE));
        assert_eq!(
            open_ro(&w, b"../../../../etc/passwd").err(),
            Some(errno::NOTCAPABLE)
        );
        assert_eq!(open_ro(&w, b"../work/f").err(), Some(errno::NOTCAPABLE));
        assert!(open_ro(&w, b"f").is_ok());
    }

    #[test]
    fn wasm_path_absolute_is_not_capable() {
        let mem = b"/etc/passwd".to_vec();
        assert_eq!(guest_path(&mem, 0, 11).err(), Some(errno::NOTCAPABLE));
    }

    #[test]
    fn wasm_path_symlinks_are_never_followed() {
        let (t, w) = work();
        std::os::unix::fs::symlink("/etc", t.path().join("work/l")).unwrap();
        std::os::unix::fs::symlink("f", t.path().join("work/inside")).unwrap();
        assert_eq!(open_ro(&w, b"l/passwd").err(), Some(errno::NOTCAPABLE));
        assert_eq!(open_ro(&w, b"l").err(), Some(errno::NOTCAPABLE));
        assert_eq!(open_ro(&w, b"inside").err(), Some(errno::NOTCAPABLE));
    }

    #[test]
    fn wasm_path_parent_of_rejects_dotdot_and_symlinked_parents() {
        let (t, w) = work();
        std::os::unix::fs::symlink("..", t.path().join("work/up")).unwrap();
        assert_eq!(parent_of(&w, b"..").err(), Some(errno::NOTCAPABLE));
        // O_PATH|O_NOFOLLOW stops at the link itself, which is no directory.
        assert_eq!(parent_of(&w, b"up/secret").err(), Some(errno::NOTDIR));
        assert_eq!(parent_of(&w, b"up/x/secret").err(), Some(errno::NOTCAPABLE));
        assert_eq!(parent_of(&w, b"../x").err(), Some(errno::NOTCAPABLE));
        let (_, last) = parent_of(&w, b"d/").map_err(|_| ()).unwrap();
        assert_eq!(last.as_bytes(), b"d");
    }

    #[test]
    fn wasm_guest_pointers_out_of_memory_are_efault() {
        let mem = [0u8; 16];
        assert_eq!(get_u32(&mem, 13).err(), Some(errno::FAULT));
        assert_eq!(get_u32(&mem, -1).err(), Some(errno::FAULT));
        assert_eq!(bytes(&mem, 8, -1).err(), Some(errno::FAULT));
        assert!(iovecs(&mem, 0, 1).is_ok());
        assert_eq!(iovecs(&mem, 12, 1).err(), Some(errno::FAULT));
    }
}
