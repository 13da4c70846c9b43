//! What one run produced and cost.

use std::time::Duration;

use paddock_sandbox::LandlockStatus;

use crate::wasm::WasmError;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command exited (any exit code).
    Exited,
    /// The command was killed by a signal it did not get from us.
    Signaled,
    /// The deadline passed; the sandbox was terminated.
    Timeout,
    /// The kernel's OOM killer fired inside the run's cgroup.
    Oom,
    /// The sandbox or the command could not be started.
    FailedToStart,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Exited => "exited",
            Status::Signaled => "signaled",
            Status::Timeout => "timeout",
            Status::Oom => "oom",
            Status::FailedToStart => "failed_to_start",
        }
    }
}

/// Which limit fired, when one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Timeout,
    Memory,
    Pids,
    Output,
    Fsize,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Timeout => "timeout",
            Limit::Memory => "memory",
            Limit::Pids => "pids",
            Limit::Output => "output",
            Limit::Fsize => "fsize",
        }
    }
}

/// Why a run did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The setup step (snake_case), e.g. `pivot_root`, `exec`.
    pub step: String,
    /// The errno, when the kernel gave one.
    pub errno: Option<i32>,
    pub message: String,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// FILE protocol: the content of $OUTPUT_FILE (None for STDIO, or when
    /// it could not be read: see `output_error`).
    pub output: Option<Vec<u8>>,
    pub output_truncated: bool,
    pub output_error: Option<String>,
    pub wall: Duration,
    pub cpu_user: Duration,
    pub cpu_system: Duration,
    pub memory_peak_bytes: u64,
    pub limit: Option<Limit>,
    pub landlock: Option<LandlockStatus>,
    pub host_uid: u32,
    pub error: Option<StartError>,
    /// With tracing: each launch step and when it ended, from the start of
    /// the launch (empty otherwise).
    pub launch_trace: Vec<(String, Duration)>,
    /// WASM functions: why the module did not run to its end (the runner's
    /// report line, removed from `stderr`).
    pub wasm_error: Option<WasmError>,
}

impl RunReport {
    /// A report for a run that never started.
    pub fn failed(host_uid: u32, wall: Duration, error: StartError) -> RunReport {
        RunReport {
            status: Status::FailedToStart,
            exit_code: None,
            signal: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            output: None,
            output_truncated: false,
            output_error: None,
            wall,
            cpu_user: Duration::ZERO,
            cpu_system: Duration::ZERO,
            memory_peak_bytes: 0,
            limit: None,
            landlock: None,
            host_uid,
            error: Some(error),
            launch_trace: Vec::new(),
            wasm_error: None,
        }
    }
}
