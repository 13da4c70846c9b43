//! Errors before a sandbox is launched: the invocation cannot be turned into
//! a sandbox at all. Launch failures themselves are results (`failed_to_start`).

/// Why an invocation could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The policy's seccomp allowlist does not compile.
    #[error("seccomp profile of {function}: {source}")]
    Seccomp {
        function: String,
        #[source]
        source: paddock_sandbox::SeccompError,
    },
    /// The runtime named by the policy is not available in this build.
    #[error("runtime {0} is not available in this build of paddock")]
    RuntimeUnavailable(&'static str),
    /// A wasm function, and no `paddock-wasm` runner on this host.
    #[error("the wasm runner paddock-wasm was not found (tried {})", tried.join(", "))]
    WasmRunnerMissing { tried: Vec<String> },
    /// An environment key the policy does not let requests set.
    #[error("environment variable {0} may not be set by a request")]
    EnvNotAllowed(String),
    /// A request asked for a longer timeout than the policy's.
    #[error("requested timeout {requested_ms} ms exceeds the policy's {policy_ms} ms")]
    TimeoutTooLong { requested_ms: u64, policy_ms: u64 },
}
