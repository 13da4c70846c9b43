//! The resolved description of one sandbox: plain Rust values, no parsing.
//! Defaults are the secure choice; callers narrow further, never widen.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupParent;
use crate::seccomp::CompiledSeccomp;

/// Everything `spawn` needs to launch one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// What to execute inside the sandbox (paths as seen inside).
    pub exec: ExecSpec,
    /// The host identity that sandbox uid/gid 0 map to.
    pub ids: IdMap,
    /// The new root.
    pub root: RootSpec,
    /// Limits enforced through the cgroup.
    pub cgroup: CgroupSpec,
    /// Resource limits set with setrlimit.
    pub rlimits: Rlimits,
    /// How landlock must be applied.
    pub landlock: LandlockMode,
    /// The seccomp program, compiled once and shared.
    #[serde(with = "crate::launcher::seccomp_by_digest")]
    pub seccomp: Arc<CompiledSeccomp>,
    /// UTS name inside the sandbox.
    pub hostname: String,
    /// Whether the sandbox gets a stdin pipe (`true`) or /dev/null.
    pub stdin_pipe: bool,
    /// Record per-step launch timings ([`crate::Sandbox::launch_trace`]).
    pub trace: bool,
}

/// The command and its environment, as seen inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Absolute path of the program inside the sandbox.
    pub path: PathBuf,
    /// argv, including argv[0].
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from the caller).
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
}

/// Sandbox uid/gid 0 map to these host ids (one id each, nothing else mapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
}

/// The new root: a tmpfs holding only what is listed here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootSpec {
    /// Host paths bound read-only (nosuid, nodev) at the same path. A path that
    /// is a symlink on the host is recreated as the same symlink.
    pub read_only: Vec<PathBuf>,
    /// Host paths bound read-write (nosuid, nodev) at the same path, with
    /// the same symlink rule as `read_only`. They are the host's own
    /// directories, shared with the host and with every other run given the
    /// same path; the sandbox writes there as its unprivileged host uid.
    /// A path may not be in both lists.
    pub writable: Vec<PathBuf>,
    /// The function's own directory, bound read-only at `/fn`.
    pub function_dir: Option<PathBuf>,
    /// Further read-only binds of a host file or directory at another path
    /// (e.g. the WASM runner at `/run/paddock/paddock-wasm`). Targets must not
    /// lie under /fn, /proc, /dev, /tmp or /work.
    pub extra: Vec<ExtraBind>,
    /// Size and inode count of the `/tmp` tmpfs.
    pub tmp_bytes: u64,
    pub tmp_inodes: u64,
    /// A writable tmpfs at `/work` (FILE protocol), handed back as a dir fd.
    pub work: Option<WorkSpec>,
}

/// A read-only bind of `host` at `target` (inside the sandbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraBind {
    pub host: PathBuf,
    pub target: PathBuf,
}

/// The FILE protocol's work directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkSpec {
    /// Size and inode count of the `/work` tmpfs.
    pub bytes: u64,
    pub inodes: u64,
    /// Files written into `/work` before the command starts (name, contents),
    /// owned by the sandbox's uid 0.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The per-run cgroup and its limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupSpec {
    /// Where run cgroups are created (resolved once per process).
    pub parent: Arc<CgroupParent>,
    /// Name of this run's cgroup (unique among concurrent runs).
    pub name: String,
    pub memory_bytes: u64,
    pub pids: u64,
    /// CPU quota in thousandths of a core.
    pub cpu_millicores: u64,
}

/// setrlimit values. RLIMIT_CORE is always 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    pub nofile: u64,
    pub fsize_bytes: u64,
}

/// Whether landlock must be fully enforced or is applied as far as the kernel can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LandlockMode {
    /// Fail the launch unless every right we ask for is enforced.
    Required,
    /// Enforce what the kernel supports; the handle reports what that was.
    BestEffort,
}
