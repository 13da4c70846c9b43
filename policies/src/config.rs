//! The daemon config, `paddockd.toml`: socket and directories, access
//! rules, global limits, sandbox uid range, and the ceilings that bound
//! every policy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ConfigError, Problem};
use crate::load::{line_of_key, read_capped, syntax_problem};
use crate::paths::{check_never_allowed, check_spelling};
use crate::schema::{AccessRuleFile, ConfigFile, GroupFile};
use crate::units::format_size;

/// The default config, shipped as `/etc/paddock/paddockd.toml`.
pub const EMBEDDED_CONFIG: &str = include_str!("../paddockd.toml");

/// Where the daemon looks for its config.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/paddock/paddockd.toml";

/// Smallest memory limit a policy may have (and a ceiling may be).
pub const MIN_MEMORY_BYTES: u64 = 4 << 20;
/// Smallest /tmp size: a tmpfs of size 0 would be unlimited.
pub const MIN_TMP_BYTES: u64 = 4 << 10;
/// Smallest RLIMIT_NOFILE.
pub const MIN_NOFILE: u64 = 8;

/// The daemon config, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    /// The Unix socket clients connect to.
    pub socket: PathBuf,
    /// Admin-written policies, `NAME.toml`.
    pub functions_dir: PathBuf,
    /// Deployed functions and other state.
    pub state_dir: PathBuf,
    /// Per-run work directories.
    pub run_dir: PathBuf,
    /// Who may do what over the socket.
    pub access: Access,
    /// Global limits.
    pub limits: DaemonLimits,
    /// Sandbox identity and cgroup.
    pub sandbox: SandboxConfig,
    /// The most any policy may ask for.
    pub ceilings: Ceilings,
    /// The file this came from; `None` for the embedded default.
    pub source: Option<PathBuf>,
}

/// Access rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// invoke, cancel, list, describe, stats.
    pub invoke: AccessRule,
    /// deploy, remove, reload.
    pub admin: AccessRule,
}

/// Peers allowed by uid or by group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessRule {
    /// Allowed uids.
    pub uids: BTreeSet<u32>,
    /// Allowed groups (the supervisor resolves names).
    pub groups: Vec<GroupRef>,
}

impl AccessRule {
    /// True if `uid` is listed, or any of `gids` matches a numeric group.
    /// Group names must be resolved by the caller, see [`GroupRef::Name`].
    pub fn allows_ids(&self, uid: u32, gids: &[u32]) -> bool {
        self.uids.contains(&uid)
            || self
                .groups
                .iter()
                .any(|g| matches!(g, GroupRef::Gid(id) if gids.contains(id)))
    }
}

/// A group by name or gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    /// Resolved with getgrnam by the supervisor.
    Name(String),
    /// A numeric gid.
    Gid(u32),
}

/// Global limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonLimits {
    /// Concurrent runs over all functions.
    pub concurrency: u32,
    /// Queue length per function.
    pub queue: u32,
    /// Longest request line.
    pub max_line_bytes: u64,
    /// A warm runner idle this long is stopped.
    pub warm_idle: Duration,
}

/// Sandbox identity and cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Host uid of sandbox uid 0 in slot 0.
    pub uid_base: u32,
    /// Number of slots.
    pub uid_count: u32,
    /// Sub-cgroup created beneath the daemon's own cgroup.
    pub cgroup_name: String,
    /// Most sandboxes made ahead of their invocations (0: none).
    pub prepared: u32,
}

/// The most any policy may ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Ceilings {
    /// Max `limits.timeout_ms`.
    pub timeout: Duration,
    /// Max `limits.kill_grace_ms`.
    pub kill_grace: Duration,
    /// Max `limits.memory`.
    pub memory_bytes: u64,
    /// Max `limits.pids`.
    pub pids: u64,
    /// Max `limits.cpu`, in millicores.
    pub cpu_millicores: u64,
    /// Max `limits.output`.
    pub output_bytes: u64,
    /// Max `limits.tmp`.
    pub tmp_bytes: u64,
    /// Max `limits.tmp_inodes`.
    pub tmp_inodes: u64,
    /// Max `limits.nofile`.
    pub nofile: u64,
    /// Max `limits.fsize`.
    pub fsize_bytes: u64,
    /// Max `limits.concurrency`.
    pub concurrency: u32,
    /// Max `limits.wasm_fuel`.
    pub wasm_fuel: u64,
    /// A policy's read-only path must equal or lie beneath one of these.
    pub read_only_paths: Vec<PathBuf>,
    /// A policy's writable path must equal or lie beneath one of these;
    /// empty means no writable paths.
    pub writable_paths: Vec<PathBuf>,
    /// Clamp over-ceiling limits (with a warning) instead of rejecting.
    pub clamp: bool,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            timeout: Duration::from_millis(60_000),
            kill_grace: Duration::from_millis(5_000),
            memory_bytes: 1 << 30,
            pids: 256,
            cpu_millicores: 2000,
            output_bytes: 16 << 20,
            tmp_bytes: 256 << 20,
            tmp_inodes: 65536,
            nofile: 4096,
            fsize_bytes: 256 << 20,
            concurrency: 16,
            wasm_fuel: 100_000_000_000,
            read_only_paths: [
                "/usr",
                "/lib",
                "/lib64",
                "/bin",
                "/etc/alternatives",
                "/etc/ssl/certs",
                "/etc/ca-certificates",
                "/etc/localtime",
                "/etc/ld.so.cache",
                "/etc/nsswitch.conf",
                "/etc/passwd",
                "/etc/group",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            writable_paths: Vec::new(),
            clamp: false,
        }
    }
}

impl Default for DaemonConfig {
    /// The same values as [`EMBEDDED_CONFIG`] (a test keeps them equal).
    fn default() -> Self {
        DaemonConfig {
            socket: "/run/paddock/paddockd.sock".into(),
            functions_dir: "/etc/paddock/functions".into(),
            state_dir: "/var/lib/paddock".into(),
            run_dir: "/run/paddock".into(),
            access: Access {
                invoke: AccessRule {
                    uids: [0].into(),
                    groups: vec![GroupRef::Name("paddock".into())],
                },
                admin: AccessRule {
                    uids: [0].into(),
                    groups: Vec::new(),
                },
            },
            limits: DaemonLimits {
                concurrency: 8,
                queue: 64,
                max_line_bytes: 8 << 20,
                warm_idle: Duration::from_secs(60),
            },
            sandbox: SandboxConfig {
                uid_base: 100_000,
                uid_count: 1024,
                cgroup_name: "paddock".into(),
                prepared: 8,
            },
            ceilings: Ceilings::default(),
            source: None,
        }
    }
}

impl DaemonConfig {
    /// Parses the embedded `paddockd.toml`.
    pub fn embedded_default() -> DaemonConfig {
        match Self::parse_inner(EMBEDDED_CONFIG, Path::new("paddockd.toml (embedded)"), None) {
            Ok(c) => c,
            // A unit test parses the embedded file, so this cannot happen in a
            // tested build.
            Err(e) => panic!("the embedded paddockd.toml is invalid: {e}"),
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
        let text = read_capped(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Like [`DaemonConfig::load`], but the embedded default when `path`
    /// does not exist. A file that exists but is invalid is an error.
    pub fn load_or_default(path: &Path) -> Result<DaemonConfig, ConfigError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::embedded_default()),
            _ => Self::load(path),
        }
    }

    /// Parses and validates config text; `file` is used in messages and as
    /// [`DaemonConfig::source`].
    pub fn parse(text: &str, file: &Path) -> Result<DaemonConfig, ConfigError> {
        Self::parse_inner(text, file, Some(file.to_owned()))
    }

    fn parse_inner(
        text: &str,
        file: &Path,
        source: Option<PathBuf>,
    ) -> Result<DaemonConfig, ConfigError> {
        let raw: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            problem: syntax_problem(file, text, &e),
        })?;
        let mut v = ConfigCheck {
            file,
            text,
            problems: Vec::new(),
        };
        let c = v.convert(raw, source);
        if v.problems.is_empty() {
            Ok(c)
        } else {
            Err(ConfigError::Invalid {
                problems: v.problems,
            })
        }
    }

    /// How messages name this config: its path, or `paddockd.toml`.
    pub fn source_name(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => "paddockd.toml".to_owned(),
        }
    }
}

struct ConfigCheck<'a> {
    file: &'a Path,
    text: &'a str,
    problems: Vec<Problem>,
}

impl ConfigCheck<'_> {
    fn error(&mut self, key: &str, message: String) {
        let line = line_of_key(self.text, key);
        self.problems
            .push(Problem::error(self.file, line, Some(key), message));
    }

    fn dir(&mut self, key: &str, given: Option<String>, default: PathBuf) -> PathBuf {
        let Some(s) = given else { return default };
        match check_spelling(&s) {
            Ok(p) if p != Path::new("/") => p,
            Ok(_) => {
                self.error(key, "must not be /".into());
                default
            }
            Err(e) => {
                self.error(key, format!("{s:?}: {e}"));
                default
            }
        }
    }

    fn rule(
        &mut self,
        key: &str,
        given: Option<AccessRuleFile>,
        default: AccessRule,
    ) -> AccessRule {
        let Some(r) = given else { return default };
        let mut groups = Vec::new();
        for g in r.groups {
            match g {
                GroupFile::Gid(id) => groups.push(GroupRef::Gid(id)),
                GroupFile::Name(n) => {
                    let ok = !n.is_empty()
                        && n.len() <= 32
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                        && !n.starts_with('-');
                    if ok {
                        groups.push(GroupRef::Name(n));
                    } else {
                        self.error(key, format!("{n:?} is not a valid group name"));
                    }
                }
            }
        }
        AccessRule {
            uids: r.uids.into_iter().collect(),
            groups,
        }
    }

    fn at_least(&mut self, key: &str, v: u64, min: u64, show: fn(u64) -> String) -> u64 {
        if v < min {
            self.error(
                key,
                format!("{key} = {} is below the minimum {}", show(v), show(min)),
            );
            min
        } else {
            v
        }
    }

    fn paths(
        &mut self,
        key: &str,
        given: Option<Vec<String>>,
        default: Vec<PathBuf>,
    ) -> Vec<PathBuf> {
        let Some(list) = given else { return default };
        let mut out = Vec::new();
        for s in list {
            let checked = check_spelling(&s).and_then(|p| check_never_allowed(&p).map(|()| p));
            match checked {
                Ok(p) => {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
                Err(e) => self.error(key, format!("{s:?}: {e}")),
            }
        }
        out
    }

    fn convert(&mut self, raw: ConfigFile, source: Option<PathBuf>) -> DaemonConfig {
        let d = DaemonConfig::default();
        let plain = |v: u64| v.to_string();

        let socket = self.dir("socket", raw.socket, d.socket);
        let functions_dir = self.dir("functions_dir", raw.functions_dir, d.functions_dir);
        let state_dir = self.dir("state_dir", raw.state_dir, d.state_dir);
        let run_dir = self.dir("run_dir", raw.run_dir, d.run_dir);

        let access = Access {
            invoke: self.rule("access.invoke", raw.access.invoke, d.access.invoke),
            admin: self.rule("access.admin", raw.access.admin, d.access.admin),
        };

        let l = raw.limits;
        let concurrency = l.concurrency.unwrap_or(d.limits.concurrency);
        let concurrency = self.at_least("limits.concurrency", concurrency.into(), 1, plain);
        let max_line = l.max_line.map_or(d.limits.max_line_bytes, |s| s.bytes);
        let max_line = self.at_least("limits.max_line", max_line, 1 << 10, format_size);
        let warm_idle = l
            .warm_idle_ms
            .map_or(d.limits.warm_idle.as_millis() as u64, |m| m.millis);
        let warm_idle = self.at_least("limits.warm_idle_ms", warm_idle, 1, plain);
        let limits = DaemonLimits {
            concurrency: u32::try_from(concurrency).unwrap_or(u32::MAX),
            queue: l.queue.unwrap_or(d.limits.queue),
            max_line_bytes: max_line,
            warm_idle: Duration::from_millis(warm_idle),
        };

        let s = raw.sandbox;
        let uid_base = s.uid_base.unwrap_or(d.sandbox.uid_base);
        let uid_count = s.uid_count.unwrap_or(d.sandbox.uid_count);
        if uid_base == 0 {
            self.error(
                "sandbox.uid_base",
                "must not be 0: sandbox root would be host root".into(),
            );
        }
        if uid_count == 0 {
            self.error("sandbox.uid_count", "must be at least 1".into());
        }
        // (uid_t)-1 is not a valid id, so the last slot must stay below it.
        if u64::from(uid_base) + u64::from(uid_count) >= u64::from(u32::MAX) {
            self.error(
                "sandbox.uid_count",
                format!("uid_base {uid_base} + uid_count {uid_count} overflows the uid range"),
            );
        }
        let cgroup_name = s.cgroup_name.unwrap_or(d.sandbox.cgroup_name);
        let cg_ok = !cgroup_name.is_empty()
            && cgroup_name.len() <= 64
            && !cgroup_name.starts_with('.')
            && cgroup_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !cg_ok {
            self.error("sandbox.cgroup_name", format!("{cgroup_name:?} is not a valid cgroup name (a-z, A-Z, 0-9, '_', '-', '.', not starting with '.')"));
        }
        let prepared = s.prepared.unwrap_or(d.sandbox.prepared);
        let sandbox = SandboxConfig {
            uid_base,
            uid_count,
            cgroup_name,
            prepared,
        };

        let c = raw.ceilings;
        let dc = d.ceilings;
        let timeout = c
            .timeout_ms
            .map_or(dc.timeout.as_millis() as u64, |m| m.millis);
        let timeout = self.at_least("ceilings.timeout_ms", timeout, 1, plain);
        let kill_grace = c
            .kill_grace_ms
            .map_or(dc.kill_grace.as_millis() as u64, |m| m.millis);
        let memory = c.memory.map_or(dc.memory_bytes, |s| s.bytes);
        let memory = self.at_least("ceilings.memory", memory, MIN_MEMORY_BYTES, format_size);
        let pids = self.at_least("ceilings.pids", c.pids.unwrap_or(dc.pids), 1, plain);
        let cpu_millicores = match c.cpu {
            None => dc.cpu_millicores,
            Some(cpu) => match cpu_to_millicores(cpu) {
                Ok(m) => m,
                Err(why) => {
                    self.error("ceilings.cpu", format!("ceilings.cpu = {cpu} {why}"));
                    dc.cpu_millicores
                }
            },
        };
        let tmp = c.tmp.map_or(dc.tmp_bytes, |s| s.bytes);
        let tmp = self.at_least("ceilings.tmp", tmp, MIN_TMP_BYTES, format_size);
        let tmp_inodes = self.at_least(
            "ceilings.tmp_inodes",
            c.tmp_inodes.unwrap_or(dc.tmp_inodes),
            1,
            plain,
        );
        let nofile = self.at_least(
            "ceilings.nofile",
            c.nofile.unwrap_or(dc.nofile),
            MIN_NOFILE,
            plain,
        );
        let conc = self.at_least(
            "ceilings.concurrency",
            c.concurrency.unwrap_or(dc.concurrency).into(),
            1,
            plain,
        );
        let wasm_fuel = self.at_least(
            "ceilings.wasm_fuel",
            c.wasm_fuel.unwrap_or(dc.wasm_fuel),
            1,
            plain,
        );
        let ceilings = Ceilings {
            timeout: Duration::from_millis(timeout),
            kill_grace: Duration::from_millis(kill_grace),
            memory_bytes: memory,
            pids,
            cpu_millicores,
            output_bytes: c.output.map_or(dc.output_bytes, |s| s.bytes),
            tmp_bytes: tmp,
            tmp_inodes,
            nofile,
            fsize_bytes: c.fsize.map_or(dc.fsize_bytes, |s| s.bytes),
            concurrency: u32::try_from(conc).unwrap_or(u32::MAX),
            wasm_fuel,
            read_only_paths: self.paths(
                "ceilings.read_only_paths",
                c.read_only_paths,
                dc.read_only_paths,
            ),
            writable_paths: self.paths(
                "ceilings.writable_paths",
                c.writable_paths,
                dc.writable_paths,
            ),
            clamp: c.clamp.unwrap_or(dc.clamp),
        };

        DaemonConfig {
            socket,
            functions_dir,
            state_dir,
            run_dir,
            access,
            limits,
            sandbox,
            ceilings,
            source,
        }
    }
}

/// Converts cores to millicores: finite, positive, at least 0.001, at most
/// 4096 cores.
pub(crate) fn cpu_to_millicores(cpu: f64) -> Result<u64, &'static str> {
    if !cpu.is_finite() {
        return Err("is not a finite number");
    }
    if cpu <= 0.0 {
        return Err("must be greater than 0");
    }
    if cpu > 4096.0 {
        return Err("is more cores than any host has");
    }
    let m = (cpu * 1000.0).round();
    if m < 1.0 {
        return Err("is below the minimum 0.001");
    }
    // In range 1..=4_096_000 by the checks above.
    Ok(m as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_embedded_default_parses() {
        let c = DaemonConfig::embedded_default();
        assert_eq!(c.ceilings.memory_bytes, 1 << 30);
        assert_eq!(c.ceilings.wasm_fuel, 100_000_000_000);
        assert_eq!(
            c.access.invoke.groups,
            vec![GroupRef::Name("paddock".into())]
        );
        assert!(!c.ceilings.clamp);
        assert!(c.ceilings.writable_paths.is_empty());
    }

    #[test]
    fn config_embedded_default_equals_code_defaults() {
        assert_eq!(DaemonConfig::embedded_default(), DaemonConfig::default());
        let empty = DaemonConfig::parse("", Path::new("empty.toml")).unwrap();
        assert_eq!(
            DaemonConfig {
                source: None,
                ..empty
            },
            DaemonConfig::default()
        );
    }

    #[test]
    fn config_unknown_key_is_rejected() {
        let e = DaemonConfig::parse("[ceilings]\nmemroy = \"1GiB\"\n", Path::new("c.toml"))
            .unwrap_err();
        let ConfigError::Syntax { problem } = &e else {
            panic!("{e}")
        };
        assert_eq!(problem.line, Some(2));
        assert!(problem.message.contains("memroy"), "{e}");
    }

    #[test]
    fn config_never_allowed_ceiling_path_is_rejected() {
        for p in ["/", "/proc", "/etc", "/var/run/docker.sock", "usr"] {
            let text = format!("[ceilings]\nread_only_paths = [{p:?}]\n");
            let e = DaemonConfig::parse(&text, Path::new("c.toml")).unwrap_err();
            assert!(matches!(e, ConfigError::Invalid { .. }), "{p}: {e}");
        }
    }

    #[test]
    fn config_uid_base_zero_is_rejected() {
        let e = DaemonConfig::parse("[sandbox]\nuid_base = 0\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("c.toml:2: sandbox.uid_base"), "{e}");
    }

    #[test]
    fn config_gid_and_group_name_are_accepted() {
        let c = DaemonConfig::parse(
            "[access]\ninvoke = { uids = [1000], groups = [\"wheel\", 27] }\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            c.access.invoke.groups,
            vec![GroupRef::Name("wheel".into()), GroupRef::Gid(27)]
        );
        assert!(c.access.invoke.allows_ids(5, &[27]));
        assert!(c.access.invoke.allows_ids(1000, &[]));
        assert!(!c.access.invoke.allows_ids(5, &[28]));
    }

    #[test]
    fn config_load_or_default_missing_file_gives_default() {
        let dir = tempfile::tempdir().unwrap();
        let c = DaemonConfig::load_or_default(&dir.path().join("none.toml")).unwrap();
        assert_eq!(c, DaemonConfig::default());
        std::fs::write(dir.path().join("bad.toml"), "bogus = 1\n").unwrap();
        assert!(DaemonConfig::load_or_default(&dir.path().join("bad.toml")).is_err());
    }

    #[test]
    fn config_warm_idle_ms_is_read_and_zero_is_rejected() {
        assert_eq!(
            DaemonConfig::default().limits.warm_idle,
            Duration::from_secs(60)
        );
        let c =
            DaemonConfig::parse("[limits]\nwarm_idle_ms = 1500\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.limits.warm_idle, Duration::from_millis(1500));
        let c =
            DaemonConfig::parse("[limits]\nwarm_idle_ms = \"5m\"\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.limits.warm_idle, Duration::from_secs(300));
        let e =
            DaemonConfig::parse("[limits]\nwarm_idle_ms = 0\n", Path::new("c.toml")).unwrap_err();
        assert!(
            e.to_string().contains("c.toml:2: limits.warm_idle_ms"),
            "{e}"
        );
    }

    #[test]
    fn config_cpu_conversion_rejects_nonsense() {
        assert_eq!(cpu_to_millicores(1.0), Ok(1000));
        assert_eq!(cpu_to_millicores(0.25), Ok(250));
        assert!(cpu_to_millicores(0.0).is_err());
        assert!(cpu_to_millicores(-1.0).is_err());
        assert!(cpu_to_millicores(f64::INFINITY).is_err());
        assert!(cpu_to_millicores(f64::NAN).is_err());
        assert!(cpu_to_millicores(0.0001).is_err());
    }
}
