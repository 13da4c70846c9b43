//! File descriptors: the stdio pipes, and closing everything else in the child.
//! Landlock does not govern fds opened before it applies (CVE-2024-21626), so
//! the child keeps nothing but stdio and its channel to the parent.

use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{At, ChildError, SpawnError, Step};
use crate::sys;

/// The parent's ends of the stdio pipes (non-blocking, CLOEXEC).
#[derive(Debug)]
pub struct ParentStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The child's ends, installed as 0, 1 and 2.
#[derive(Debug)]
pub(crate) struct ChildStdio {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| SpawnError::Parent {
        step: Step::Pipes,
        call: "pipe2",
        errno,
    })
}

fn set_nonblock(fd: &OwnedFd) -> Result<(), SpawnError> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).and_then(|f| {
        let f = OFlag::from_bits_truncate(f) | OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(f))
    });
    flags.map(drop).map_err(|errno| SpawnError::Parent {
        step: Step::Pipes,
        call: "fcntl",
        errno,
    })
}

/// Create the pipes. With `stdin_pipe` false the child's stdin is /dev/null.
pub(crate) fn stdio_pipes(stdin_pipe: bool) -> Result<(ParentStdio, ChildStdio), SpawnError> {
    let (stdin_child, stdin_parent) = if stdin_pipe {
        let (r, w) = pipe()?;
        set_nonblock(&w)?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblock(&out_r)?;
    set_nonblock(&err_r)?;
    Ok((
        ParentStdio {
            stdin: stdin_parent,
            stdout: out_r,
            stderr: err_r,
        },
        ChildStdio {
            stdin: stdin_child,
            stdout: out_w,
            stderr: err_w,
        },
    ))
}

/// In the child, after pivot_root (so /dev/null is the sandbox's own).
pub(crate) fn install_stdio(s: &ChildStdio) -> Result<(), ChildError> {
    match &s.stdin {
        Some(fd) => nix::unistd::dup2_stdin(fd).at(Step::Stdio)?,
        None => {
            let null = open(
                "/dev/null",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .at(Step::Stdio)?;
            nix::unistd::dup2_stdin(&null).at(Step::Stdio)?;
        }
    }
    nix::unistd::dup2_stdout(s.stdout.as_fd()).at(Step::Stdio)?;
    nix::unistd::dup2_stderr(s.stderr.as_fd()).at(Step::Stdio)?;
    Ok(())
}

/// In the child: close every fd above 2 except those in `keep`. The Rust
/// objects owning the kept fds stay valid; the objects owning the closed ones
/// (the child's copies of pipe ends, other sandboxes' fds in a daemon) are
/// leaked with `mem::forget` by the caller's `_exit`, never used again.
pub(crate) fn close_all_except(keep: &[RawFd]) -> Result<(), ChildError> {
    let mut keep: Vec<u32> = keep.iter().map(|&f| f as u32).filter(|&f| f > 2).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for k in keep {
        if k > first {
            sys::close_range(first, k - 1, 0).at(Step::CloseFds)?;
        }
        first = k + 1;
    }
    sys::close_range(first, u32::MAX, 0).at(Step::CloseFds)
}
