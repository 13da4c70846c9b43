//! paddock-runtimes: how a function runs inside a sandbox.
//!
//! A validated [`paddock_policies::Policy`] is prepared once
//! ([`PreparedPolicy`]: its seccomp program compiled), then each invocation
//! becomes a [`paddock_sandbox::SandboxSpec`] ([`native::sandbox_spec`]) and is
//! driven to completion ([`oneshot::run`]): input written, output drained
//! under caps, the deadline enforced with SIGTERM then SIGKILL, the cost read
//! from the cgroup.

#![forbid(unsafe_code)]

pub mod error;
pub mod native;
pub mod oneshot;
pub mod report;
pub mod warm;
pub mod wasm;

pub use error::RuntimeError;
pub use native::{Invocation, LaunchContext, PreparedPolicy};
pub use report::{Limit, RunReport, StartError, Status};
