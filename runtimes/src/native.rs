//! Policy + invocation → sandbox spec, for native executables and for the
//! WASM runner (`paddock-wasm`, bound at [`wasm::RUNNER_PATH`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use paddock_policies::policy::FUNCTION_MOUNT;
use paddock_policies::{seccomp_profiles, Policy, Protocol, Runtime};
use paddock_sandbox::{
    CgroupParent, CgroupSpec, CompiledSeccomp, ExecSpec, ExtraBind, IdMap, LandlockMode, Launcher,
    Rlimits, RootSpec, Sandbox, SandboxSpec, SeccompError, SeccompSpec, SpawnError, WorkSpec,
};

use crate::error::RuntimeError;
use crate::wasm;

/// Where the FILE protocol's files live inside the sandbox.
pub const WORK_DIR: &str = "/work";
pub const INPUT_NAME: &str = "input";
pub const OUTPUT_NAME: &str = "output";

/// PATH given to a function whose policy sets none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A policy with what can be computed once: its compiled seccomp program.
#[derive(Debug, Clone)]
pub struct PreparedPolicy {
    pub policy: Policy,
    pub seccomp: Arc<CompiledSeccomp>,
}

impl PreparedPolicy {
    pub fn new(policy: Policy) -> Result<PreparedPolicy, RuntimeError> {
        // Names were checked against the same table when the policy was
        // validated; one that still does not resolve is an error, not a gap.
        let mut allow = std::collections::BTreeSet::new();
        for name in policy.seccomp.syscalls() {
            let nr =
                seccomp_profiles::syscall_number(name).ok_or_else(|| RuntimeError::Seccomp {
                    function: policy.name.to_string(),
                    source: SeccompError::Compile(format!("unknown syscall {name:?}")),
                })?;
            allow.insert(nr);
        }
        let spec = SeccompSpec { allow };
        let seccomp = CompiledSeccomp::compile(&spec).map_err(|source| RuntimeError::Seccomp {
            function: policy.name.to_string(),
            source,
        })?;
        Ok(PreparedPolicy {
            policy,
            seccomp: Arc::new(seccomp),
        })
    }
}

/// What the launcher decides per run, beside the policy.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    pub cgroup_parent: Arc<CgroupParent>,
    /// The run's cgroup name, unique among concurrent runs.
    pub cgroup_name: String,
    /// The host ids for sandbox uid/gid 0 (unique among concurrent runs).
    pub ids: IdMap,
    /// Record per-step launch timings into the report (`launch_trace`).
    pub trace: bool,
    /// Clone through this launcher process (the daemon's, so a launch does
    /// not copy the daemon), or here when None (`paddockd run`, tests).
    pub launcher: Option<Rc<Launcher>>,
}

impl LaunchContext {
    /// Make the sandbox, through the launcher when there is one.
    pub fn spawn(&self, spec: &SandboxSpec) -> Result<Sandbox, SpawnError> {
        match &self.launcher {
            Some(l) => l.spawn(spec),
            None => paddock_sandbox::spawn(spec),
        }
    }
}

/// One invocation's own inputs.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub execution_id: String,
    pub trace_id: Option<String>,
    pub input: Vec<u8>,
    /// A shorter timeout than the policy's (never longer).
    pub timeout: Option<Duration>,
    /// Request environment (keys must be in the policy's env_passthrough).
    pub env: BTreeMap<String, String>,
    /// Replace the policy's command (the `paddockd run -- CMD` form).
    pub command: Option<Vec<String>>,
}

impl Invocation {
    /// The effective timeout: the policy's, or the request's if shorter.
    pub fn timeout(&self, policy: &Policy) -> Result<Duration, RuntimeError> {
        match self.timeout {
            None => Ok(policy.limits.timeout),
            Some(t) if t <= policy.limits.timeout => Ok(t),
            Some(t) => Err(RuntimeError::TimeoutTooLong {
                requested_ms: t.as_millis() as u64,
                policy_ms: policy.limits.timeout.as_millis() as u64,
            }),
        }
    }
}

/// The size of the FILE protocol's /work tmpfs for an input of
/// `input_len` bytes: room for the input and the largest output.
pub fn work_bytes(policy: &Policy, input_len: usize) -> u64 {
    policy
        .limits
        .tmp_bytes
        .max(input_len as u64 + policy.limits.output_bytes)
}

/// The invocation's own environment, sent when the sandbox starts
/// ([`paddock_sandbox::Sandbox::start`]): EXECUTION_ID, TIMEOUT_MS, TRACE_ID,
/// and each passed-through variable (the request's value, else the
/// policy's). None of these names is in the spec's environment.
pub fn run_env(
    p: &PreparedPolicy,
    inv: &Invocation,
) -> Result<Vec<(String, String)>, RuntimeError> {
    let policy = &p.policy;
    for k in inv.env.keys() {
        if !policy.env_passthrough.contains(k) {
            return Err(RuntimeError::EnvNotAllowed(k.clone()));
        }
    }
    let timeout = inv.timeout(policy)?;
    let mut env = vec![
        ("EXECUTION_ID".to_owned(), inv.execution_id.clone()),
        ("TIMEOUT_MS".to_owned(), timeout.as_millis().to_string()),
    ];
    if let Some(t) = &inv.trace_id {
        env.push(("TRACE_ID".into(), t.clone()));
    }
    for k in &policy.env_passthrough {
        if let Some(v) = inv.env.get(k).or_else(|| policy.env.get(k)) {
            env.push((k.clone(), v.clone()));
        }
    }
    Ok(env)
}

/// The environment every run of the function gets: the policy's `env`
/// (less the passed-through names, which come with the run: [`run_env`]),
/// PATH and FUNCTION_NAME.
pub(crate) fn base_env(policy: &Policy) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = policy
        .env
        .iter()
        .filter(|(k, _)| !policy.env_passthrough.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.entry("PATH".into())
        .or_insert_with(|| DEFAULT_PATH.into());
    env.insert("FUNCTION_NAME".into(), policy.name.to_string());
    env
}

/// Build the sandbox for a function, ready for any invocation of it: the
/// invocation's own environment and input come when it starts. `command`
/// replaces the policy's (the `paddockd run -- CMD` form); `work_bytes` sizes
/// /work for the FILE protocol ([`work_bytes`]).
pub fn sandbox_spec(
    p: &PreparedPolicy,
    ctx: &LaunchContext,
    command: Option<&[String]>,
    work_bytes: u64,
) -> Result<SandboxSpec, RuntimeError> {
    let policy = &p.policy;
    let mut extra = Vec::new();
    let command = match (command, &policy.runtime) {
        (Some(c), _) => c.to_vec(),
        (None, Runtime::Native { command }) => command.clone(),
        // A wasm function runs the runner, bound read-only into the sandbox.
        (None, Runtime::Wasm { module }) => {
            let host = wasm::find_runner().map_err(|tried| RuntimeError::WasmRunnerMissing {
                tried: tried.iter().map(|p| p.display().to_string()).collect(),
            })?;
            extra.push(ExtraBind {
                host,
                target: PathBuf::from(wasm::RUNNER_PATH),
            });
            let args = wasm::RunnerArgs {
                fuel: policy.limits.wasm_fuel,
                memory_bytes: wasm::memory_cap(policy.limits.memory_bytes),
                protocol: policy.protocol,
                module: Path::new(FUNCTION_MOUNT).join(module),
                warm: None,
            };
            args.to_argv(wasm::RUNNER_PATH)
        }
    };
    let mut env = base_env(policy);
    let (work, stdin_pipe) = match policy.protocol {
        Protocol::Stdio => (None, true),
        Protocol::File => {
            env.insert("INPUT_FILE".into(), format!("{WORK_DIR}/{INPUT_NAME}"));
            env.insert("OUTPUT_FILE".into(), format!("{WORK_DIR}/{OUTPUT_NAME}"));
            (
                Some(WorkSpec {
                    bytes: work_bytes,
                    inodes: policy.limits.tmp_inodes,
                    files: Vec::new(),
                }),
                false,
            )
        }
    };
    let cwd = if policy.directory.is_some() {
        "/fn"
    } else {
        "/"
    };
    Ok(SandboxSpec {
        exec: ExecSpec {
            path: PathBuf::from(&command[0]),
            argv: command,
            env: env.into_iter().collect(),
            cwd: PathBuf::from(cwd),
        },
        ids: ctx.ids,
        root: RootSpec {
            read_only: policy
                .filesystem
                .read_only
                .iter()
                .map(|b| b.path.clone())
                .collect(),
            writable: policy
                .filesystem
                .writable
                .iter()
                .map(|b| b.path.clone())
                .collect(),
            function_dir: policy.directory.clone(),
            extra,
            tmp_bytes: policy.limits.tmp_bytes,
            tmp_inodes: policy.limits.tmp_inodes,
            work,
        },
        cgroup: CgroupSpec {
            parent: ctx.cgroup_parent.clone(),
            name: ctx.cgroup_name.clone(),
            memory_bytes: policy.limits.memory_bytes,
            pids: policy.limits.pids,
            cpu_millicores: policy.limits.cpu_millicores,
        },
        rlimits: Rlimits {
            nofile: policy.limits.nofile,
            fsize_bytes: policy.limits.fsize_bytes,
        },
        landlock: match policy.landlock {
            paddock_policies::LandlockMode::Required => LandlockMode::Required,
            paddock_policies::LandlockMode::BestEffort => LandlockMode::BestEffort,
        },
        seccomp: p.seccomp.clone(),
        hostname: "paddock".into(),
        stdin_pipe,
        trace: ctx.trace,
    })
}
