//! Errors of the sandbox crate. Every failure names the step that failed and,
//! where the kernel said why, the errno.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// A setup step, in the order [`crate::child`] runs them (parent steps first).
/// The numeric values travel over the parent↔child channel, so they are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum Step {
    // Parent side.
    Channel = 1,
    Pipes = 2,
    Cgroup = 3,
    Clone = 4,
    IdMap = 5,
    CgroupAttach = 6,
    Handshake = 7,
    /// Talking to the launcher process ([`crate::Launcher`]).
    Launcher = 8,
    // Child side.
    WaitParent = 20,
    DeathSignal = 21,
    SwitchIds = 22,
    CgroupNamespace = 23,
    Propagation = 24,
    OpenBinds = 25,
    BuildRoot = 26,
    Proc = 27,
    Dev = 28,
    Tmp = 29,
    WorkDir = 30,
    PivotRoot = 31,
    ReadOnlyRoot = 32,
    Hostname = 33,
    Rlimits = 34,
    Session = 35,
    Stdio = 36,
    Securebits = 37,
    CapBounding = 38,
    Caps = 39,
    CloseFds = 40,
    NoNewPrivs = 41,
    Landlock = 42,
    Ready = 43,
    Fork = 44,
    Signals = 45,
    Seccomp = 46,
    Exec = 47,
    Chdir = 48,
    /// The init waits for the caller's go ([`crate::Sandbox::start`]).
    Go = 49,
}

impl Step {
    /// Every step, for decoding what the child sends.
    const ALL: [Step; 38] = [
        Step::Channel,
        Step::Pipes,
        Step::Cgroup,
        Step::Clone,
        Step::IdMap,
        Step::CgroupAttach,
        Step::Handshake,
        Step::Launcher,
        Step::WaitParent,
        Step::DeathSignal,
        Step::SwitchIds,
        Step::CgroupNamespace,
        Step::Propagation,
        Step::OpenBinds,
        Step::BuildRoot,
        Step::Proc,
        Step::Dev,
        Step::Tmp,
        Step::WorkDir,
        Step::PivotRoot,
        Step::ReadOnlyRoot,
        Step::Hostname,
        Step::Rlimits,
        Step::Session,
        Step::Stdio,
        Step::Securebits,
        Step::CapBounding,
        Step::Caps,
        Step::CloseFds,
        Step::NoNewPrivs,
        Step::Landlock,
        Step::Ready,
        Step::Fork,
        Step::Signals,
        Step::Seccomp,
        Step::Exec,
        Step::Chdir,
        Step::Go,
    ];

    pub(crate) fn from_u16(v: u16) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u16 == v)
    }

    /// A stable snake_case name, used in logs and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Channel => "channel",
            Step::Pipes => "pipes",
            Step::Cgroup => "cgroup",
            Step::Clone => "clone",
            Step::IdMap => "id_map",
            Step::CgroupAttach => "cgroup_attach",
            Step::Handshake => "handshake",
            Step::Launcher => "launcher",
            Step::WaitParent => "wait_parent",
            Step::DeathSignal => "death_signal",
            Step::SwitchIds => "switch_ids",
            Step::CgroupNamespace => "cgroup_namespace",
            Step::Propagation => "mount_propagation",
            Step::OpenBinds => "open_binds",
            Step::BuildRoot => "build_root",
            Step::Proc => "proc",
            Step::Dev => "dev",
            Step::Tmp => "tmp",
            Step::WorkDir => "work_dir",
            Step::PivotRoot => "pivot_root",
            Step::ReadOnlyRoot => "read_only_root",
            Step::Hostname => "hostname",
            Step::Rlimits => "rlimits",
            Step::Session => "session",
            Step::Stdio => "stdio",
            Step::Securebits => "securebits",
            Step::CapBounding => "cap_bounding",
            Step::Caps => "caps",
            Step::CloseFds => "close_fds",
            Step::NoNewPrivs => "no_new_privs",
            Step::Landlock => "landlock",
            Step::Ready => "ready",
            Step::Fork => "fork",
            Step::Signals => "signals",
            Step::Seccomp => "seccomp",
            Step::Exec => "exec",
            Step::Chdir => "chdir",
            Step::Go => "go",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A raw syscall that failed: which call and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {errno}")]
pub struct SysError {
    pub call: &'static str,
    pub errno: Errno,
}

impl SysError {
    pub(crate) fn last(call: &'static str) -> SysError {
        SysError {
            call,
            errno: Errno::last(),
        }
    }
}

/// Attach a step to a lower-level error.
pub(crate) trait At<T> {
    fn at(self, step: Step) -> Result<T, ChildError>;
}

impl<T> At<T> for Result<T, SysError> {
    fn at(self, step: Step) -> Result<T, ChildError> {
        self.map_err(|e| ChildError {
            step,
            errno: e.errno,
        })
    }
}

impl<T> At<T> for Result<T, Errno> {
    fn at(self, step: Step) -> Result<T, ChildError> {
        self.map_err(|errno| ChildError { step, errno })
    }
}

/// What the child reports when a step fails: fixed-size, so it can be sent
/// without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildError {
    pub step: Step,
    pub errno: Errno,
}

/// Why a launch failed. Every variant names the step; nothing is left behind
/// when this is returned (the child is reaped, the cgroup removed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// A step in the child failed with an errno.
    #[error("sandbox setup failed at {step}: {errno}")]
    Child { step: Step, errno: Errno },
    /// A step in the parent failed.
    #[error("sandbox launch failed at {step}: {call}: {errno}")]
    Parent {
        step: Step,
        call: &'static str,
        errno: Errno,
    },
    /// A cgroup file could not be written or read.
    #[error("cgroup {op} {}", path.display())]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Landlock was required but the kernel could not enforce all of it.
    #[error("landlock required but only {0} on this kernel")]
    LandlockNotEnforced(&'static str),
    /// The calling process has more than one thread: cloning it is not fork-safe.
    #[error("spawn must be called from a single-threaded process ({0} threads)")]
    MultiThreaded(usize),
    /// The spec is not usable (a path that is not absolute, a NUL byte, …).
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    /// The child went away without saying why.
    #[error("sandbox child died during setup ({0})")]
    ChildDied(String),
    /// A launch made by a [`crate::Launcher`] failed there; this is what it
    /// reported (the step and errno, when it had them, and its message).
    #[error("{message}")]
    Launcher {
        step: Option<Step>,
        errno: Option<Errno>,
        message: String,
    },
}

impl SpawnError {
    /// The step that failed, when one is known.
    pub fn step(&self) -> Option<Step> {
        match self {
            SpawnError::Child { step, .. } | SpawnError::Parent { step, .. } => Some(*step),
            SpawnError::Cgroup { .. } => Some(Step::Cgroup),
            SpawnError::LandlockNotEnforced(_) => Some(Step::Landlock),
            SpawnError::Launcher { step, .. } => *step,
            _ => None,
        }
    }

    /// The errno, when the kernel gave one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            SpawnError::Child { errno, .. } | SpawnError::Parent { errno, .. } => Some(*errno),
            SpawnError::Cgroup { source, .. } => source.raw_os_error().map(Errno::from_raw),
            SpawnError::Launcher { errno, .. } => *errno,
            _ => None,
        }
    }

    pub(crate) fn parent(step: Step, e: SysError) -> SpawnError {
        SpawnError::Parent {
            step,
            call: e.call,
            errno: e.errno,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_codes_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::from_u16(s as u16), Some(s));
        }
        assert_eq!(Step::from_u16(0), None);
    }
}
