//! Strict serde types for policy files and the daemon config, exactly as
//! written in TOML. Unknown keys are rejected everywhere
//! (`deny_unknown_fields`); values are converted into [`crate::policy`] and
//! [`crate::config`] types by [`crate::validate`] and [`crate::config`].

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::units::{MillisValue, SizeValue};

/// A policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    pub description: Option<String>,
    pub runtime: RuntimeKind,
    #[serde(default)]
    pub protocol: ProtocolKind,
    #[serde(default)]
    pub mode: ModeKind,
    pub command: Option<Vec<String>>,
    pub module: Option<String>,
    pub directory: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub env_passthrough: Vec<String>,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub filesystem: FilesystemFile,
    #[serde(default)]
    pub network: NetworkFile,
    #[serde(default)]
    pub seccomp: SeccompFile,
    #[serde(default)]
    pub landlock: LandlockFile,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RuntimeKind {
    Native,
    Wasm,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProtocolKind {
    #[default]
    Stdio,
    File,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModeKind {
    #[default]
    Oneshot,
    Warm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    pub timeout_ms: Option<MillisValue>,
    pub kill_grace_ms: Option<MillisValue>,
    pub memory: Option<SizeValue>,
    pub pids: Option<u64>,
    pub cpu: Option<f64>,
    pub output: Option<SizeValue>,
    pub tmp: Option<SizeValue>,
    pub tmp_inodes: Option<u64>,
    pub nofile: Option<u64>,
    pub fsize: Option<SizeValue>,
    pub concurrency: Option<u64>,
    pub wasm_fuel: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilesystemFile {
    pub read_only: Option<Vec<String>>,
    #[serde(default)]
    pub writable: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkFile {
    #[serde(default)]
    pub mode: NetworkKind,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NetworkKind {
    #[default]
    None,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeccompFile {
    pub profile: Option<ProfileKind>,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProfileKind {
    Default,
    Strict,
    Wasm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LandlockFile {
    #[serde(default)]
    pub mode: LandlockKind,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LandlockKind {
    #[default]
    Required,
    BestEffort,
}

/// The daemon config (`paddockd.toml`). Every key is optional; a missing key
/// takes the value in the embedded default file (see
/// [`crate::config::DaemonConfig::embedded_default`]), which a test keeps
/// equal to these defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    pub socket: Option<String>,
    pub functions_dir: Option<String>,
    pub state_dir: Option<String>,
    pub run_dir: Option<String>,
    #[serde(default)]
    pub access: AccessFile,
    #[serde(default)]
    pub limits: DaemonLimitsFile,
    #[serde(default)]
    pub sandbox: SandboxFile,
    #[serde(default)]
    pub ceilings: CeilingsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessFile {
    pub invoke: Option<AccessRuleFile>,
    pub admin: Option<AccessRuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessRuleFile {
    #[serde(default)]
    pub uids: Vec<u32>,
    #[serde(default)]
    pub groups: Vec<GroupFile>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum GroupFile {
    Gid(u32),
    Name(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaemonLimitsFile {
    pub concurrency: Option<u32>,
    pub queue: Option<u32>,
    pub max_line: Option<SizeValue>,
    pub warm_idle_ms: Option<MillisValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxFile {
    pub uid_base: Option<u32>,
    pub uid_count: Option<u32>,
    pub cgroup_name: Option<String>,
    pub prepared: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CeilingsFile {
    pub timeout_ms: Option<MillisValue>,
    pub kill_grace_ms: Option<MillisValue>,
    pub memory: Option<SizeValue>,
    pub pids: Option<u64>,
    pub cpu: Option<f64>,
    pub output: Option<SizeValue>,
    pub tmp: Option<SizeValue>,
    pub tmp_inodes: Option<u64>,
    pub nofile: Option<u64>,
    pub fsize: Option<SizeValue>,
    pub concurrency: Option<u32>,
    pub wasm_fuel: Option<u64>,
    pub read_only_paths: Option<Vec<String>>,
    pub writable_paths: Option<Vec<String>>,
    pub clamp: Option<bool>,
}
