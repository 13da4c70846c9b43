//! `paddockd run`: one command in the sandbox a policy describes, one JSON
//! result. Like `bwrap` or `nsjail -Mo`, for one-off use and for tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use paddock_policies::{load_policy, DaemonConfig};
use paddock_runtimes::{oneshot, Invocation, LaunchContext, PreparedPolicy, RunReport};
use paddock_sandbox::{CgroupParent, IdMap};

use crate::slots;

/// The default daemon configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/paddock/paddockd.toml";

/// What `paddockd run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    pub policy: PathBuf,
    pub input: Option<PathBuf>,
    pub config: Option<PathBuf>,
    /// Replaces the policy's command when non-empty.
    pub command: Vec<String>,
}

/// Why `paddockd run` could not run anything (usage or policy errors; a
/// sandbox that failed to start is a result, not one of these).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("{0}")]
    Config(#[from] paddock_policies::ConfigError),
    #[error("{0}")]
    Policy(#[from] paddock_policies::PolicyError),
    #[error("{0}")]
    Runtime(#[from] paddock_runtimes::RuntimeError),
    #[error("cannot read input {}: {source}", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroups: {0}")]
    Cgroup(std::io::Error),
    #[error("sandbox uid slot: {0}")]
    Slot(std::io::Error),
    #[error("paddockd run needs root (it creates namespaces and cgroups); euid is {0}")]
    NotRoot(u32),
}

/// A short unique id for this execution.
pub fn execution_id() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), t & 0xffff_ffff_ffff)
}

/// Load the configuration and the policy, run, and return the report.
pub fn run(req: &RunRequest) -> Result<RunReport, RunError> {
    let config_path = req.config.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG));
    let config = match &req.config {
        Some(p) => DaemonConfig::load(p)?,
        None => DaemonConfig::load_or_default(config_path)?,
    };
    let policy = load_policy(&req.policy, &config)?;
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Err(RunError::NotRoot(euid));
    }
    let prepared = PreparedPolicy::new(policy)?;
    let input = match &req.input {
        None => Vec::new(),
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|source| {
                RunError::Input {
                    path: p.clone(),
                    source,
                }
            })?;
            buf
        }
        Some(p) => std::fs::read(p).map_err(|source| RunError::Input {
            path: p.clone(),
            source,
        })?,
    };
    let parent = CgroupParent::discover().map_err(RunError::Cgroup)?;
    parent.prepare_v2().map_err(RunError::Cgroup)?;
    let slot = slots::acquire(&config.run_dir, config.sandbox.uid_count).map_err(RunError::Slot)?;
    let host = config.sandbox.uid_base + slot.index;
    let ctx = LaunchContext {
        cgroup_parent: Arc::new(parent),
        cgroup_name: format!(
            "{}-run-{}-{}",
            config.sandbox.cgroup_name,
            slot.index,
            std::process::id()
        ),
        ids: IdMap {
            host_uid: host,
            host_gid: host,
        },
        // A one-shot process is small: it clones the sandbox itself.
        launcher: None,
        // PADDOCK_TRACE=1: where the launch time goes, step by step, on stderr.
        trace: std::env::var_os("PADDOCK_TRACE").is_some_and(|v| v == "1"),
    };
    let inv = Invocation {
        execution_id: execution_id(),
        input,
        command: (!req.command.is_empty()).then(|| req.command.clone()),
        ..Invocation::default()
    };
    let report = oneshot::run(&prepared, &inv, &ctx)?;
    let mut prev = std::time::Duration::ZERO;
    for (label, at) in &report.launch_trace {
        eprintln!(
            "trace {:>9.1} us  +{:>8.1} us  {label}",
            at.as_secs_f64() * 1e6,
            at.saturating_sub(prev).as_secs_f64() * 1e6
        );
        prev = *at;
    }
    drop(slot);
    Ok(report)
}
