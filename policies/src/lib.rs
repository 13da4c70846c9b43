//! Paddock policy files and the daemon config: strict schema, validation
//! against the daemon's ceilings, and the built-in seccomp profiles.
//!
//! Flow: TOML → [`schema`] (serde, unknown keys rejected) → [`validate`]
//! (every rule, every ceiling) → [`Policy`] (only valid states). Callers use
//! [`load_policy`] / [`parse_policy`], [`DaemonConfig`], [`check_paths`] and
//! [`seccomp_profiles`]. The full field reference is `docs/policy.md`.

#![forbid(unsafe_code)]

pub mod check;
pub mod config;
pub mod error;
pub mod load;
pub mod name;
pub mod paths;
pub mod policy;
mod schema;
pub mod seccomp_profiles;
pub mod units;
mod validate;

pub use check::check_paths;
pub use config::{
    Access, AccessRule, Ceilings, DaemonConfig, DaemonLimits, GroupRef, SandboxConfig,
    DEFAULT_CONFIG_PATH, EMBEDDED_CONFIG,
};
pub use error::{ConfigError, PolicyError, Problem, Severity};
pub use load::{load_policy, load_policy_with_warnings, parse_policy, parse_policy_with_warnings};
pub use name::{validate_function_name, FunctionName, NameError};
pub use paths::{resolve_checked, PathError};
pub use policy::{
    BindPath, Filesystem, LandlockMode, Limits, Mode, Network, Policy, Protocol, Runtime,
    SeccompPolicy, SeccompProfile, RESERVED_ENV,
};
