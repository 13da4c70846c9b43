//! paddock-sandbox: launch one process in isolation and hand back a handle.
//!
//! Describe the sandbox as a [`SandboxSpec`] (plain values, secure defaults
//! chosen by the caller), then [`spawn`] it — or have a [`Launcher`], a small
//! helper process, clone it for you. The child runs these steps, in this
//! order (see `child.rs`): wait for the parent (uid/gid maps, cgroup),
//! switch to the namespace's uid 0, cgroup namespace, hostname, new root
//! (tmpfs, read-only binds, /fn, /proc, /dev, /tmp, /work, pivot_root,
//! read-only root), rlimits, setsid, stdio, drop every capability and lock
//! securebits, close every other fd, no_new_privs, landlock; then, as the
//! sandbox's init, it forks the payload, which installs seccomp and waits.
//! [`Sandbox::start`] sends the go with the run's own environment, and the
//! payload execs: a sandbox can be made well before it is needed.
//!
//! The crate knows nothing about functions or policies; JSON only crosses
//! between a caller and its launcher.

mod caps;
pub mod cgroup;
mod child;
pub mod error;
mod fd;
pub mod landlock;
mod launcher;
mod mount;
mod namespaces;
mod rlimit;
pub mod seccomp;
mod spawn;
pub mod spec;
mod sync;
mod sys;
pub mod trace;
pub mod work;

pub use cgroup::{Cgroup, CgroupParent, CgroupUsage, CgroupVersion};
pub use error::{SpawnError, Step};
pub use landlock::LandlockStatus;
pub use launcher::{Launcher, Reply as LaunchReply};
pub use seccomp::{CompiledSeccomp, SeccompError, SeccompSpec};
pub use spawn::{spawn, Exit, Sandbox};
pub use spec::{
    CgroupSpec, ExecSpec, ExtraBind, IdMap, LandlockMode, Rlimits, RootSpec, SandboxSpec, WorkSpec,
};
pub use sys::pidfd_send_signal;
pub use trace::Mark;
pub use work::{clear_work_dir, read_work_file, WorkFile, WorkFileError};
