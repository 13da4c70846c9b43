//! Validated domain types. Every value here has passed validation against
//! the daemon's ceilings; nothing here is deserialized directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::name::FunctionName;
use crate::seccomp_profiles;

/// Environment keys the daemon sets itself; a policy may neither set nor
/// pass them through.
pub const RESERVED_ENV: &[&str] = &[
    "FUNCTION_NAME",
    "EXECUTION_ID",
    "TIMEOUT_MS",
    "TRACE_ID",
    "INPUT_FILE",
    "OUTPUT_FILE",
];

/// The function's own files are mounted read-only here in the sandbox.
pub const FUNCTION_MOUNT: &str = "/fn";

/// Read-only host paths when a policy has no `filesystem.read_only`.
pub const DEFAULT_READ_ONLY: &[&str] = &["/usr", "/lib", "/lib64", "/bin"];

/// One function's policy, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The function name (the policy file stem).
    pub name: FunctionName,
    /// Free text.
    pub description: Option<String>,
    /// What runs.
    pub runtime: Runtime,
    /// How input and output travel.
    pub protocol: Protocol,
    /// One sandbox per invocation, or a warm one.
    pub mode: Mode,
    /// Host directory mounted read-only at `/fn`: absolute, normalised.
    pub directory: Option<PathBuf>,
    /// Fixed environment.
    pub env: BTreeMap<String, String>,
    /// Keys an invoke request may set.
    pub env_passthrough: BTreeSet<String>,
    /// Resource limits, within the ceilings.
    pub limits: Limits,
    /// Host paths in the sandbox.
    pub filesystem: Filesystem,
    /// Network access.
    pub network: Network,
    /// Syscall allowlist.
    pub seccomp: SeccompPolicy,
    /// Whether landlock must be enforced.
    pub landlock: LandlockMode,
    /// The policy file this came from.
    pub source: PathBuf,
}

/// What runs in the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Runtime {
    /// An executable: `command[0]` is an absolute path inside the sandbox.
    Native {
        /// argv, non-empty.
        command: Vec<String>,
    },
    /// A WASM module run by `paddock-wasm`.
    Wasm {
        /// Relative to the function directory; normal components only.
        module: PathBuf,
    },
}

impl Runtime {
    /// `"native"` or `"wasm"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Runtime::Native { .. } => "native",
            Runtime::Wasm { .. } => "wasm",
        }
    }
}

/// How the payload reaches the function and the result comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Payload on stdin, response on stdout.
    #[default]
    Stdio,
    /// Payload at `$INPUT_FILE`, response from `$OUTPUT_FILE`.
    File,
}

impl Protocol {
    /// `"stdio"` or `"file"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Stdio => "stdio",
            Protocol::File => "file",
        }
    }
}

/// Sandbox lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A fresh sandbox per invocation.
    #[default]
    Oneshot,
    /// A sandboxed runner kept alive between invocations.
    Warm,
}

impl Mode {
    /// `"oneshot"` or `"warm"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Oneshot => "oneshot",
            Mode::Warm => "warm",
        }
    }
}

/// Resource limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock limit per invocation.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// cgroup memory.max.
    pub memory_bytes: u64,
    /// cgroup pids.max.
    pub pids: u64,
    /// CPU quota in thousandths of a core.
    pub cpu_millicores: u64,
    /// Cap on captured stdout and on stderr, each.
    pub output_bytes: u64,
    /// Size of the /tmp tmpfs.
    pub tmp_bytes: u64,
    /// Inodes of the /tmp tmpfs.
    pub tmp_inodes: u64,
    /// RLIMIT_NOFILE.
    pub nofile: u64,
    /// RLIMIT_FSIZE.
    pub fsize_bytes: u64,
    /// Concurrent runs of this function.
    pub concurrency: u32,
    /// wasmi fuel per invocation.
    pub wasm_fuel: u64,
}

impl Default for Limits {
    /// The documented defaults (before any ceiling lowers them).
    fn default() -> Self {
        Limits {
            timeout: Duration::from_millis(5000),
            kill_grace: Duration::from_millis(100),
            memory_bytes: 128 << 20,
            pids: 32,
            cpu_millicores: 1000,
            output_bytes: 1 << 20,
            tmp_bytes: 16 << 20,
            tmp_inodes: 4096,
            nofile: 256,
            fsize_bytes: 16 << 20,
            concurrency: 4,
            wasm_fuel: 5_000_000_000,
        }
    }
}

/// A host path shown in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPath {
    /// Where it appears in the sandbox (the path as the policy wrote it).
    pub path: PathBuf,
    /// What to bind from on the host: `path`, or its checked symlink target
    /// (`/lib` → `/usr/lib` on merged-/usr systems).
    pub host: PathBuf,
}

/// Host paths in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filesystem {
    /// Bound read-only.
    pub read_only: Vec<BindPath>,
    /// Bound read-write (only where the daemon config allows).
    pub writable: Vec<BindPath>,
}

/// Network access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// An empty network namespace: loopback only.
    #[default]
    None,
}

impl Network {
    /// `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
        }
    }
}

/// A built-in seccomp profile, see [`crate::seccomp_profiles`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeccompProfile {
    /// General interpreters and tools.
    #[default]
    Default,
    /// Single-process scripts: no sockets, no new processes.
    Strict,
    /// The in-sandbox WASM runner.
    Wasm,
}

impl SeccompProfile {
    /// Every profile.
    pub const ALL: [SeccompProfile; 3] = [
        SeccompProfile::Default,
        SeccompProfile::Strict,
        SeccompProfile::Wasm,
    ];

    /// `"default"`, `"strict"` or `"wasm"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeccompProfile::Default => "default",
            SeccompProfile::Strict => "strict",
            SeccompProfile::Wasm => "wasm",
        }
    }
}

/// The seccomp part of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeccompPolicy {
    /// The base allowlist.
    pub profile: SeccompProfile,
    /// Added to the profile (known syscalls, none never-allowed).
    pub allow: BTreeSet<String>,
    /// Removed from the profile.
    pub deny: BTreeSet<String>,
}

impl SeccompPolicy {
    /// The allowed syscalls: profile + allow − deny.
    pub fn syscalls(&self) -> BTreeSet<&str> {
        let mut set: BTreeSet<&str> = seccomp_profiles::syscalls(self.profile)
            .iter()
            .copied()
            .collect();
        set.extend(self.allow.iter().map(String::as_str));
        for d in &self.deny {
            set.remove(d.as_str());
        }
        set
    }
}

/// Whether landlock must be enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LandlockMode {
    /// The launch fails if landlock cannot be enforced.
    #[default]
    Required,
    /// Enforce what the kernel supports; the launch reply says what was.
    BestEffort,
}

impl LandlockMode {
    /// `"required"` or `"best_effort"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LandlockMode::Required => "required",
            LandlockMode::BestEffort => "best_effort",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_syscalls_apply_allow_and_deny() {
        let p = SeccompPolicy {
            profile: SeccompProfile::Strict,
            allow: ["socket".to_owned()].into(),
            deny: ["chmod".to_owned()].into(),
        };
        let s = p.syscalls();
        assert!(s.contains("socket"));
        assert!(!s.contains("chmod"));
        assert!(s.contains("read"));
    }
}
