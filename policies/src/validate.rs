//! Schema → domain: every rule a policy must follow, checked against the
//! daemon's ceilings. All problems are collected, so `paddock check` can
//! report them together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{cpu_to_millicores, DaemonConfig, MIN_MEMORY_BYTES, MIN_NOFILE, MIN_TMP_BYTES};
use crate::error::{Problem, Severity};
use crate::load::line_of_key;
use crate::name::FunctionName;
use crate::paths::{self, check_function_dir, check_spelling, normalize, PathError};
use crate::policy::{
    BindPath, Filesystem, LandlockMode, Limits, Mode, Network, Policy, Protocol, Runtime,
    SeccompPolicy, SeccompProfile, DEFAULT_READ_ONLY, FUNCTION_MOUNT, RESERVED_ENV,
};
use crate::schema::{
    LandlockKind, LimitsFile, ModeKind, NetworkKind, PolicyFile, ProfileKind, ProtocolKind,
    RuntimeKind,
};
use crate::seccomp_profiles::{is_known_syscall, is_never_allowed};
use crate::units::{format_size, MillisValue, SizeValue};

/// Checks a parsed policy file. `Ok` carries the policy and any warnings;
/// `Err` carries every error (warnings dropped).
pub(crate) fn validate(
    name: FunctionName,
    raw: PolicyFile,
    text: &str,
    source: &Path,
    config: &DaemonConfig,
) -> Result<(Policy, Vec<Problem>), Vec<Problem>> {
    let mut v = Check {
        file: source,
        text,
        config,
        problems: Vec::new(),
    };
    let policy = v.policy(name, raw);
    if v.problems.iter().any(Problem::is_error) {
        Err(v.problems.into_iter().filter(Problem::is_error).collect())
    } else {
        Ok((policy, v.problems))
    }
}

struct Check<'a> {
    file: &'a Path,
    text: &'a str,
    config: &'a DaemonConfig,
    problems: Vec<Problem>,
}

/// One limit: its key, value as given, default, minimum and ceiling.
struct Limit<'a> {
    key: &'a str,
    given: Option<(u64, String)>,
    default: u64,
    min: u64,
    ceiling: u64,
    show: fn(u64) -> String,
}

fn plain(v: u64) -> String {
    v.to_string()
}

fn size(v: Option<SizeValue>) -> Option<(u64, String)> {
    v.map(|s| (s.bytes, s.text))
}

fn millis(v: Option<MillisValue>) -> Option<(u64, String)> {
    v.map(|m| (m.millis, m.text))
}

fn count(v: Option<u64>) -> Option<(u64, String)> {
    v.map(|n| (n, n.to_string()))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Check<'_> {
    fn push(&mut self, severity: Severity, key: &str, message: String) {
        let line = line_of_key(self.text, key);
        let mut p = Problem::error(self.file, line, Some(key), message);
        p.severity = severity;
        self.problems.push(p);
    }

    fn error(&mut self, key: &str, message: String) {
        self.push(Severity::Error, key, message);
    }

    fn warn(&mut self, key: &str, message: String) {
        self.push(Severity::Warning, key, message);
    }

    fn policy(&mut self, name: FunctionName, raw: PolicyFile) -> Policy {
        let limits = self.limits(raw.limits);
        let filesystem = self.filesystem(raw.filesystem.read_only, raw.filesystem.writable);
        let directory = self.directory(&name, raw.directory);
        let runtime = self.runtime(
            raw.runtime,
            raw.command,
            raw.module,
            &filesystem,
            directory.is_some(),
        );
        let env = self.env(raw.env);
        let env_passthrough = self.env_passthrough(raw.env_passthrough);
        let seccomp = self.seccomp(
            &runtime,
            raw.seccomp.profile,
            raw.seccomp.allow,
            raw.seccomp.deny,
        );
        let protocol = match raw.protocol {
            ProtocolKind::Stdio => Protocol::Stdio,
            ProtocolKind::File => Protocol::File,
        };
        let mode = match raw.mode {
            ModeKind::Oneshot => Mode::Oneshot,
            ModeKind::Warm => Mode::Warm,
        };
        self.warm(mode, &runtime);
        Policy {
            name,
            description: raw.description,
            runtime,
            protocol,
            mode,
            directory,
            env,
            env_passthrough,
            limits,
            filesystem,
            network: match raw.network.mode {
                NetworkKind::None => Network::None,
            },
            seccomp,
            landlock: match raw.landlock.mode {
                LandlockKind::Required => LandlockMode::Required,
                LandlockKind::BestEffort => LandlockMode::BestEffort,
            },
            source: self.file.to_owned(),
        }
    }

    /// A limit not given takes its default, lowered to the ceiling if the
    /// admin set the ceiling below it. A limit given above its ceiling is an
    /// error, or with `ceilings.clamp` a warning and the ceiling.
    fn limit(&mut self, l: Limit<'_>) -> u64 {
        let Some((v, text)) = l.given else {
            return l.default.min(l.ceiling);
        };
        let key = l.key;
        if v < l.min {
            self.error(
                key,
                format!("{key} = {text} is below the minimum {}", (l.show)(l.min)),
            );
            return l.min;
        }
        if v > l.ceiling {
            let ceiling_key = key.replacen("limits.", "ceilings.", 1);
            let msg = format!(
                "{key} = {text} exceeds the ceiling {} ({} {ceiling_key})",
                (l.show)(l.ceiling),
                self.config.source_name()
            );
            if self.config.ceilings.clamp {
                self.warn(key, format!("{msg}; clamped to the ceiling"));
            } else {
                self.error(key, msg);
            }
            return l.ceiling;
        }
        v
    }

    fn limits(&mut self, f: LimitsFile) -> Limits {
        let c = self.config.ceilings.clone();
        let d = Limits::default();
        let timeout = self.limit(Limit {
            key: "limits.timeout_ms",
            given: millis(f.timeout_ms),
            default: ms(d.timeout),
            min: 1,
            ceiling: ms(c.timeout),
            show: plain,
        });
        let kill_grace = self.limit(Limit {
            key: "limits.kill_grace_ms",
            given: millis(f.kill_grace_ms),
            default: ms(d.kill_grace),
            min: 0,
            ceiling: ms(c.kill_grace),
            show: plain,
        });
        let memory_bytes = self.limit(Limit {
            key: "limits.memory",
            given: size(f.memory),
            default: d.memory_bytes,
            min: MIN_MEMORY_BYTES,
            ceiling: c.memory_bytes,
            show: format_size,
        });
        let pids = self.limit(Limit {
            key: "limits.pids",
            given: count(f.pids),
            default: d.pids,
            min: 1,
            ceiling: c.pids,
            show: plain,
        });
        let cpu_millicores = match f.cpu {
            None => d.cpu_millicores.min(c.cpu_millicores),
            Some(cpu) => match cpu_to_millicores(cpu) {
                Err(why) => {
                    self.error("limits.cpu", format!("limits.cpu = {cpu} {why}"));
                    d.cpu_millicores
                }
                Ok(m) => self.limit(Limit {
                    key: "limits.cpu",
                    given: Some((m, cpu.to_string())),
                    default: d.cpu_millicores,
                    min: 1,
                    ceiling: c.cpu_millicores,
                    show: show_cores,
                }),
            },
        };
        let output_bytes = self.limit(Limit {
            key: "limits.output",
            given: size(f.output),
            default: d.output_bytes,
            min: 0,
            ceiling: c.output_bytes,
            show: format_size,
        });
        let tmp_bytes = self.limit(Limit {
            key: "limits.tmp",
            given: size(f.tmp),
            default: d.tmp_bytes,
            min: MIN_TMP_BYTES,
            ceiling: c.tmp_bytes,
            show: format_size,
        });
        let tmp_inodes = self.limit(Limit {
            key: "limits.tmp_inodes",
            given: count(f.tmp_inodes),
            default: d.tmp_inodes,
            min: 1,
            ceiling: c.tmp_inodes,
            show: plain,
        });
        let nofile = self.limit(Limit {
            key: "limits.nofile",
            given: count(f.nofile),
            default: d.nofile,
            min: MIN_NOFILE,
            ceiling: c.nofile,
            show: plain,
        });
        let fsize_bytes = self.limit(Limit {
            key: "limits.fsize",
            given: size(f.fsize),
            // Defaults to the /tmp size: nothing bigger fits anyway.
            default: tmp_bytes,
            min: 0,
            ceiling: c.fsize_bytes,
            show: format_size,
        });
        let concurrency = self.limit(Limit {
            key: "limits.concurrency",
            given: count(f.concurrency),
            default: d.concurrency.into(),
            min: 1,
            ceiling: c.concurrency.into(),
            show: plain,
        });
        let wasm_fuel = self.limit(Limit {
            key: "limits.wasm_fuel",
            given: count(f.wasm_fuel),
            default: d.wasm_fuel,
            min: 1,
            ceiling: c.wasm_fuel,
            show: plain,
        });
        Limits {
            timeout: Duration::from_millis(timeout),
            kill_grace: Duration::from_millis(kill_grace),
            memory_bytes,
            pids,
            cpu_millicores,
            output_bytes,
            tmp_bytes,
            tmp_inodes,
            nofile,
            fsize_bytes,
            // The ceiling is a u32, so this never saturates.
            concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
            wasm_fuel,
        }
    }

    fn bind_paths(&mut self, key: &str, list: Vec<String>, allowed: &[PathBuf]) -> Vec<BindPath> {
        let mut out: Vec<BindPath> = Vec::new();
        for s in list {
            let checked = check_spelling(&s).and_then(|p| {
                paths::check_not_sandbox_mount(&p)?;
                let host = paths::resolve(&p, allowed, 0)?;
                Ok(BindPath { path: p, host })
            });
            match checked {
                Ok(b) => {
                    if !out.iter().any(|o| o.path == b.path) {
                        out.push(b);
                    }
                }
                Err(e) => self.error(key, format!("{s:?}: {e}")),
            }
        }
        out
    }

    fn filesystem(&mut self, read_only: Option<Vec<String>>, writable: Vec<String>) -> Filesystem {
        let ceilings = self.config.ceilings.clone();
        let read_only = match read_only {
            Some(list) => self.bind_paths("filesystem.read_only", list, &ceilings.read_only_paths),
            // The default list narrows to what this host has and the
            // ceilings allow; it is not the policy author's doing.
            None => DEFAULT_READ_ONLY
                .iter()
                .filter_map(|s| {
                    let p = PathBuf::from(s);
                    let host = paths::resolve(&p, &ceilings.read_only_paths, 0).ok()?;
                    Some(BindPath { path: p, host })
                })
                .collect(),
        };
        let writable = if !writable.is_empty() && ceilings.writable_paths.is_empty() {
            self.error(
                "filesystem.writable",
                format!(
                    "writable paths are not allowed ({} ceilings.writable_paths is empty)",
                    self.config.source_name()
                ),
            );
            Vec::new()
        } else {
            self.bind_paths("filesystem.writable", writable, &ceilings.writable_paths)
        };
        // A path is bound one way: the sandbox would otherwise get two mounts
        // stacked at the same place and the policy would not say which wins.
        for w in &writable {
            if read_only.iter().any(|r| r.path == w.path) {
                self.error(
                    "filesystem.writable",
                    format!(
                        "{:?} is also in filesystem.read_only; list it in one of them",
                        w.path.display().to_string()
                    ),
                );
            }
        }
        Filesystem {
            read_only,
            writable,
        }
    }

    fn directory(&mut self, name: &FunctionName, given: Option<String>) -> Option<PathBuf> {
        const KEY: &str = "directory";
        let parent = match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let policy_dir =
            normalize(&std::path::absolute(parent).unwrap_or_else(|_| parent.to_owned()));
        let Some(s) = given else {
            let p = policy_dir.join(name.as_str());
            if std::fs::symlink_metadata(&p).is_err() {
                return None;
            }
            return match check_function_dir(&p) {
                Ok(()) => Some(p),
                Err(e) => {
                    self.error(
                        KEY,
                        format!("default function directory {}: {e}", p.display()),
                    );
                    None
                }
            };
        };
        // A relative directory is spelled like an absolute one without the
        // leading '/': no '.', '..', '//' or trailing '/'.
        let spelled = if s.starts_with('/') {
            check_spelling(&s)
        } else {
            check_spelling(&format!("/{s}")).map(|_| policy_dir.join(&s))
        };
        let checked = spelled.and_then(|p| check_function_dir(&p).map(|()| p));
        match checked {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(KEY, format!("{s:?}: {e}"));
                None
            }
        }
    }

    fn runtime(
        &mut self,
        kind: RuntimeKind,
        command: Option<Vec<String>>,
        module: Option<String>,
        fs: &Filesystem,
        has_dir: bool,
    ) -> Runtime {
        match kind {
            RuntimeKind::Native => {
                if module.is_some() {
                    self.error(
                        "module",
                        "module is only for runtime = \"wasm\"; native functions use command"
                            .into(),
                    );
                }
                let command = match command {
                    None => {
                        self.error("command", "runtime = \"native\" needs a command".into());
                        Vec::new()
                    }
                    Some(c) => c,
                };
                if let Some(exe) = command.first() {
                    self.check_command(&command, exe, fs, has_dir);
                } else if !self
                    .problems
                    .iter()
                    .any(|p| p.key.as_deref() == Some("command"))
                {
                    self.error("command", "command is empty".into());
                }
                Runtime::Native { command }
            }
            RuntimeKind::Wasm => {
                if command.is_some() {
                    self.error(
                        "command",
                        "command is only for runtime = \"native\"; wasm functions use module"
                            .into(),
                    );
                }
                let Some(m) = module else {
                    self.error("module", "runtime = \"wasm\" needs a module".into());
                    return Runtime::Wasm {
                        module: PathBuf::new(),
                    };
                };
                match check_module(&m) {
                    Ok(()) => {}
                    Err(why) => self.error("module", format!("{m:?}: {why}")),
                }
                if !has_dir
                    && !self
                        .problems
                        .iter()
                        .any(|p| p.key.as_deref() == Some("directory"))
                {
                    self.error(
                        "module",
                        "the module is looked up in the function directory, and there is none (set directory, or create <policy dir>/<name>/)".into(),
                    );
                }
                // The module file itself only has to exist at run time.
                Runtime::Wasm {
                    module: PathBuf::from(m),
                }
            }
        }
    }

    fn check_command(&mut self, command: &[String], exe: &str, fs: &Filesystem, has_dir: bool) {
        if command.iter().any(|a| a.contains('\0')) {
            self.error("command", "command contains a NUL byte".into());
            return;
        }
        let p = match check_spelling(exe) {
            Ok(p) => p,
            Err(e) => {
                self.error(
                    "command",
                    format!("command[0] {exe:?}: {e} (it is a path inside the sandbox)"),
                );
                return;
            }
        };
        if p.starts_with(FUNCTION_MOUNT) {
            if !has_dir {
                self.error(
                    "command",
                    format!("command[0] {exe:?} is under /fn, but the function has no directory"),
                );
            }
        } else if !fs.read_only.iter().any(|b| p.starts_with(&b.path))
            // A rejected read_only entry was reported already; its absence
            // from the list is not a second problem.
            && !self.problems.iter().any(|p| p.key.as_deref() == Some("filesystem.read_only"))
        {
            self.error(
                "command",
                format!("command[0] {exe:?} is neither under /fn nor under a filesystem.read_only path, so it would not exist in the sandbox"),
            );
        }
    }

    /// `mode = "warm"`: a wasm runner that gives every invocation a fresh
    /// instance (and, over FILE, an emptied /work). A native process cannot
    /// be reset between invocations.
    fn warm(&mut self, mode: Mode, runtime: &Runtime) {
        if mode != Mode::Warm {
            return;
        }
        if let Runtime::Native { .. } = runtime {
            self.error(
                "mode",
                "mode = \"warm\" is for wasm functions (a native process cannot be reset between invocations); use mode = \"oneshot\"".into(),
            );
        }
    }

    fn env_key(&mut self, key: &str, k: &str) -> bool {
        if !is_env_key(k) {
            self.error(
                key,
                format!("{k:?} is not a valid variable name (^[A-Z_][A-Z0-9_]*$)"),
            );
            false
        } else if RESERVED_ENV.contains(&k) {
            self.error(key, format!("{k} is reserved: the daemon sets it"));
            false
        } else {
            true
        }
    }

    fn env(&mut self, env: BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in env {
            let key = format!("env.{k}");
            if !self.env_key(&key, &k) {
                continue;
            }
            if v.contains('\0') {
                self.error(&key, format!("the value of {k} contains a NUL byte"));
                continue;
            }
            out.insert(k, v);
        }
        out
    }

    fn env_passthrough(&mut self, list: Vec<String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for k in list {
            if self.env_key("env_passthrough", &k) {
                out.insert(k);
            }
        }
        out
    }

    fn seccomp(
        &mut self,
        runtime: &Runtime,
        profile: Option<ProfileKind>,
        allow: Vec<String>,
        deny: Vec<String>,
    ) -> SeccompPolicy {
        let profile = match profile {
            Some(ProfileKind::Default) => SeccompProfile::Default,
            Some(ProfileKind::Strict) => SeccompProfile::Strict,
            Some(ProfileKind::Wasm) => SeccompProfile::Wasm,
            // Wasm functions run paddock-wasm, which needs only the wasm set.
            None => match runtime {
                Runtime::Wasm { .. } => SeccompProfile::Wasm,
                Runtime::Native { .. } => SeccompProfile::Default,
            },
        };
        let mut allowed = BTreeSet::new();
        for s in allow {
            if !is_known_syscall(&s) {
                self.error("seccomp.allow", format!("{s:?} is not an x86_64 syscall"));
            } else if is_never_allowed(&s) {
                self.error("seccomp.allow", format!("{s} is never allowed"));
            } else {
                allowed.insert(s);
            }
        }
        let mut denied = BTreeSet::new();
        for s in deny {
            if is_known_syscall(&s) {
                denied.insert(s);
            } else {
                self.error("seccomp.deny", format!("{s:?} is not an x86_64 syscall"));
            }
        }
        SeccompPolicy {
            profile,
            allow: allowed,
            deny: denied,
        }
    }
}

fn show_cores(millicores: u64) -> String {
    (millicores as f64 / 1000.0).to_string()
}

/// `^[A-Z_][A-Z0-9_]*$`.
pub(crate) fn is_env_key(k: &str) -> bool {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) if c.is_ascii_uppercase() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A module path: relative, normal components only.
fn check_module(m: &str) -> Result<(), PathError> {
    if m.is_empty() {
        return Err(PathError::Empty);
    }
    if m.starts_with('/') {
        return Err(PathError::NotRelative);
    }
    check_spelling(&format!("/{m}")).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_key_rule_is_enforced() {
        for ok in ["LANG", "_X", "A1_B"] {
            assert!(is_env_key(ok), "{ok}");
        }
        for bad in ["", "lang", "1A", "A-B", "A=B", "Ä"] {
            assert!(!is_env_key(bad), "{bad}");
        }
    }

    #[test]
    fn module_spelling_is_enforced() {
        assert!(check_module("module.wasm").is_ok());
        assert!(check_module("lib/module.wasm").is_ok());
        for bad in [
            "",
            "/module.wasm",
            "../x.wasm",
            "a/../b",
            "./m.wasm",
            "a//b",
            "dir/",
            "m\0",
        ] {
            assert!(check_module(bad).is_err(), "{bad:?}");
        }
    }
}
