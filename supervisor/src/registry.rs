//! The function registry: policies from the functions directory
//! (admin-written) plus functions deployed over the socket, persisted under
//! the state directory.
//!
//! A deployed function lives in `STATE/functions/NAME/`: each version in
//! `vN/` (`vN/NAME.toml` and its files in `vN/NAME/`), and a pointer file
//! `current` naming the live version. A deploy writes the new version beside
//! the old (files fsynced, directory fsynced), then replaces `current`
//! atomically (temp file, fsync, rename, fsync of the directory). A crash at
//! any point leaves the old version or the new one, never neither. A deploy
//! answered with an error leaves the old version live: when the directory's
//! fsync after the switch fails, the old pointer is put back. Old
//! versions are deleted only when no running invocation still uses them
//! (each run holds an `Arc` of the version it started with).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

use paddock_policies::{load_policy, validate_function_name, DaemonConfig};
use paddock_runtimes::PreparedPolicy;

use crate::protocol::{Code, ErrorReply};

/// Where a function comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A policy file in the functions directory.
    Config,
    /// Deployed over the socket.
    Deployed,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Deployed => "deployed",
        }
    }
}

/// One version of a function, ready to run.
#[derive(Debug)]
pub struct Function {
    pub prepared: PreparedPolicy,
    pub origin: Origin,
    pub version: u64,
    /// Deployed: the version directory (`vN/`).
    pub version_dir: Option<PathBuf>,
}

/// All functions.
#[derive(Debug)]
pub struct Registry {
    fns: BTreeMap<String, Arc<Function>>,
    /// Superseded deployed versions, deleted once unused.
    retired: Vec<Arc<Function>>,
    functions_dir: PathBuf,
    deployed_dir: PathBuf,
}

fn internal(e: impl std::fmt::Display) -> ErrorReply {
    ErrorReply::new(Code::Internal, e.to_string())
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_synced(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(data)?;
    // The mode must not depend on the daemon's umask: sandboxes read these.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

/// Replaces `dir/current` with `text` atomically: a temp file, fsynced,
/// renamed over it (the caller fsyncs the directory).
fn write_pointer(dir: &Path, text: &[u8]) -> io::Result<()> {
    let tmp = dir.join(".current.tmp");
    let _ = fs::remove_file(&tmp);
    write_synced(&tmp, text, 0o644)?;
    fs::rename(&tmp, dir.join("current"))
}

/// A plain file name for a deployed file.
fn check_file_name(name: &str) -> Result<(), ErrorReply> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(ErrorReply::new(
            Code::BadRequest,
            format!("file name {name:?} must be a plain name (no '/', not '.' or '..')"),
        ))
    }
}

fn version_of(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.parse().ok()
}

impl Registry {
    /// An empty registry over the configured directories.
    pub fn new(config: &DaemonConfig) -> Registry {
        Registry {
            fns: BTreeMap::new(),
            retired: Vec::new(),
            functions_dir: config.functions_dir.clone(),
            deployed_dir: config.state_dir.join("functions"),
        }
    }

    /// (Re)load everything. Returns the problems found; good entries are kept.
    pub fn load(&mut self, config: &DaemonConfig) -> Vec<String> {
        let mut problems = Vec::new();
        let mut fns = BTreeMap::new();
        if let Ok(rd) = fs::read_dir(&self.functions_dir) {
            let mut paths: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for p in paths {
                match load_policy(&p, config)
                    .map_err(|e| e.to_string())
                    .and_then(|pol| PreparedPolicy::new(pol).map_err(|e| e.to_string()))
                {
                    Ok(prepared) => {
                        let name = prepared.policy.name.to_string();
                        let version = self.fns.get(&name).map(|f| f.version + 1).unwrap_or(1);
                        fns.insert(
                            name,
                            Arc::new(Function {
                                prepared,
                                origin: Origin::Config,
                                version,
                                version_dir: None,
                            }),
                        );
                    }
                    Err(e) => problems.push(e),
                }
            }
        }
        if let Ok(rd) = fs::read_dir(&self.deployed_dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                if validate_function_name(&name).is_err() {
                    problems.push(format!("{}: not a function name", e.path().display()));
                    continue;
                }
                if fns.contains_key(&name) {
                    problems.push(format!(
                        "{name}: deployed function shadowed by {}/{name}.toml",
                        self.functions_dir.display()
                    ));
                    continue;
                }
                match self.load_deployed(&name, config) {
                    Ok(Some(f)) => {
                        fns.insert(name, f);
                    }
                    Ok(None) => {}
                    Err(msg) => problems.push(msg),
                }
            }
        }
        for (name, old) in std::mem::take(&mut self.fns) {
            if old.origin == Origin::Deployed
                && fns.get(&name).map(|n| n.version) != Some(old.version)
            {
                self.retired.push(old);
            }
        }
        self.fns = fns;
        self.collect_garbage();
        problems
    }

    fn load_deployed(
        &self,
        name: &str,
        config: &DaemonConfig,
    ) -> Result<Option<Arc<Function>>, String> {
        let dir = self.deployed_dir.join(name);
        let cur = match fs::read_to_string(dir.join("current")) {
            Ok(s) => s,
            // Removed (or never completed): nothing is live.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{name}: cannot read current version: {e}")),
        };
        let version = version_of(cur.trim())
            .ok_or_else(|| format!("{name}: corrupt current version pointer {:?}", cur.trim()))?;
        let vdir = dir.join(format!("v{version}"));
        let policy = load_policy(&vdir.join(format!("{name}.toml")), config)
            .map_err(|e| format!("{name} v{version}: {e}"))?;
        let prepared =
            PreparedPolicy::new(policy).map_err(|e| format!("{name} v{version}: {e}"))?;
        Ok(Some(Arc::new(Function {
            prepared,
            origin: Origin::Deployed,
            version,
            version_dir: Some(vdir),
        })))
    }

    /// The live version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Function>> {
        self.fns.get(name).cloned()
    }

    /// Every live function.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.fns.values()
    }

    /// Deploy a new version of `name`. On failure nothing of it stays on disk.
    pub fn deploy(
        &mut self,
        name: &str,
        policy_text: &str,
        files: &BTreeMap<String, String>,
        executable: &[String],
        config: &DaemonConfig,
    ) -> Result<Arc<Function>, ErrorReply> {
        let r = self.deploy_inner(name, policy_text, files, executable, config);
        if r.is_err() {
            self.collect_garbage();
        }
        r
    }

    fn deploy_inner(
        &mut self,
        name: &str,
        policy_text: &str,
        files: &BTreeMap<String, String>,
        executable: &[String],
        config: &DaemonConfig,
    ) -> Result<Arc<Function>, ErrorReply> {
        validate_function_name(name)
            .map_err(|e| ErrorReply::new(Code::BadRequest, e.to_string()))?;
        if self.get(name).is_some_and(|f| f.origin == Origin::Config) {
            return Err(ErrorReply::new(
                Code::Forbidden,
                format!(
                    "{name} is defined by {}/{name}.toml; it cannot be replaced over the socket",
                    self.functions_dir.display()
                ),
            ));
        }
        let table: toml::Table = policy_text
            .parse()
            .map_err(|e| ErrorReply::new(Code::InvalidPolicy, format!("{name}.toml: {e}")))?;
        if table.contains_key("directory") {
            return Err(ErrorReply::new(
                Code::InvalidPolicy,
                format!("{name}.toml: a deployed policy may not set `directory`; send the files instead"),
            ));
        }
        let mut decoded = Vec::new();
        for (fname, b64) in files {
            check_file_name(fname)?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| {
                    ErrorReply::new(Code::BadRequest, format!("files.{fname}: bad base64: {e}"))
                })?;
            decoded.push((fname.clone(), data, executable.contains(fname)));
        }
        for x in executable {
            if !files.contains_key(x) {
                return Err(ErrorReply::new(
                    Code::BadRequest,
                    format!("executable {x:?} is not among files"),
                ));
            }
        }

        let dir = self.deployed_dir.join(name);
        fs::create_dir_all(&dir).map_err(internal)?;
        // Sandboxes pass through both as their own uid: 0755 whatever the
        // daemon's umask made them.
        for d in [&self.deployed_dir, &dir] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).map_err(internal)?;
        }
        let next = fs::read_dir(&dir)
            .map_err(internal)?
            .flatten()
            .filter_map(|e| version_of(&e.file_name().to_string_lossy()))
            .max()
            .unwrap_or(0)
            + 1;
        let tmp = dir.join(format!(".tmp-v{next}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let build = || -> io::Result<()> {
            fs::create_dir(&tmp)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))?;
            write_synced(
                &tmp.join(format!("{name}.toml")),
                policy_text.as_bytes(),
                0o644,
            )?;
            let files_dir = tmp.join(name);
            fs::create_dir(&files_dir)?;
            fs::set_permissions(&files_dir, fs::Permissions::from_mode(0o755))?;
            for (fname, data, exec) in &decoded {
                write_synced(
                    &files_dir.join(fname),
                    data,
                    if *exec { 0o755 } else { 0o644 },
                )?;
            }
            fsync_dir(&files_dir)?;
            fsync_dir(&tmp)
        };
        if let Err(e) = build() {
            let _ = fs::remove_dir_all(&tmp);
            return Err(internal(e));
        }
        // Validate before anything becomes visible.
        if let Err(e) = load_policy(&tmp.join(format!("{name}.toml")), config) {
            let _ = fs::remove_dir_all(&tmp);
            // Name the policy as the client sent it, not our temp path.
            let msg = e.to_string().replace(&format!("{}/", tmp.display()), "");
            return Err(ErrorReply::new(Code::InvalidPolicy, msg));
        }
        let vdir = dir.join(format!("v{next}"));
        fs::rename(&tmp, &vdir).map_err(internal)?;
        fsync_dir(&dir).map_err(internal)?;
        let f = match self.load_version(name, next, config) {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_dir_all(&vdir);
                return Err(e);
            }
        };
        // The switch: one atomic rename of the pointer.
        let old_ptr = fs::read(dir.join("current")).ok();
        write_pointer(&dir, format!("v{next}\n").as_bytes()).map_err(internal)?;
        if let Err(e) = fsync_dir(&dir) {
            // The new pointer is visible but not known to be on disk. Put
            // the old one back so that the error means what it says: the
            // old version stays live, here and after a restart. Whatever
            // that manages, memory follows what the directory names, so
            // that a restart changes nothing.
            let _ = match &old_ptr {
                Some(old) => write_pointer(&dir, old).and_then(|()| fsync_dir(&dir)),
                None => fs::remove_file(dir.join("current")).and_then(|()| fsync_dir(&dir)),
            };
            let named = fs::read_to_string(dir.join("current")).ok();
            if named.as_deref().and_then(|s| version_of(s.trim())) == Some(next) {
                if let Some(old) = self.fns.insert(name.to_owned(), f) {
                    self.retired.push(old);
                }
            }
            return Err(internal(e));
        }
        if let Some(old) = self.fns.insert(name.to_owned(), f.clone()) {
            self.retired.push(old);
        }
        self.collect_garbage();
        Ok(f)
    }

    fn load_version(
        &self,
        name: &str,
        v: u64,
        config: &DaemonConfig,
    ) -> Result<Arc<Function>, ErrorReply> {
        let vdir = self.deployed_dir.join(name).join(format!("v{v}"));
        let policy = load_policy(&vdir.join(format!("{name}.toml")), config)
            .map_err(|e| ErrorReply::new(Code::InvalidPolicy, e.to_string()))?;
        let prepared = PreparedPolicy::new(policy)
            .map_err(|e| ErrorReply::new(Code::InvalidPolicy, e.to_string()))?;
        Ok(Arc::new(Function {
            prepared,
            origin: Origin::Deployed,
            version: v,
            version_dir: Some(vdir),
        }))
    }

    /// Remove a deployed function (running invocations finish on their version).
    pub fn remove(&mut self, name: &str) -> Result<(), ErrorReply> {
        let origin = self.get(name).map(|f| f.origin).ok_or_else(|| {
            ErrorReply::new(Code::UnknownFunction, format!("no function named {name:?}"))
        })?;
        if origin == Origin::Config {
            return Err(ErrorReply::new(
                Code::Forbidden,
                format!(
                    "{name} is defined by {}/{name}.toml; remove that file and reload",
                    self.functions_dir.display()
                ),
            ));
        }
        let dir = self.deployed_dir.join(name);
        match fs::remove_file(dir.join("current")) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(e)),
        }
        fsync_dir(&dir).map_err(internal)?;
        if let Some(old) = self.fns.remove(name) {
            self.retired.push(old);
        }
        self.collect_garbage();
        Ok(())
    }

    /// Delete version directories that are neither live nor in use, and
    /// leftovers of interrupted deploys. A function whose `current` pointer
    /// cannot be read keeps every version, so an admin can repair it.
    pub fn collect_garbage(&mut self) {
        // Versions still held by a running invocation stay.
        self.retired.retain(|f| Arc::strong_count(f) > 1);
        let keep: Vec<PathBuf> = self
            .fns
            .values()
            .chain(self.retired.iter())
            .filter_map(|f| f.version_dir.clone())
            .collect();
        let Ok(rd) = fs::read_dir(&self.deployed_dir) else {
            return;
        };
        for fn_dir in rd.flatten() {
            let dir = fn_dir.path();
            let current = match fs::read_to_string(dir.join("current")) {
                Ok(s) => match version_of(s.trim()) {
                    Some(v) => Some(v),
                    None => continue, // corrupt pointer: touch nothing
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(_) => continue,
            };
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut left = 0;
            for v in entries.flatten() {
                let n = v.file_name().to_string_lossy().into_owned();
                let p = v.path();
                let stale = match version_of(&n) {
                    Some(ver) => Some(ver) != current && !keep.contains(&p),
                    None => n.starts_with(".tmp-") || n == ".current.tmp",
                };
                if stale {
                    let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
                } else {
                    left += 1;
                }
            }
            if left == 0 {
                let _ = fs::remove_dir(&dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// FS6: a deployed file name is one plain path component, never a path.
    #[test]
    fn registry_file_names_that_are_not_one_plain_component_are_bad_request() {
        let long = "a".repeat(300);
        for bad in [
            "/abs",
            "a/passwd",
            "../x",
            "../../etc/cron.d/x",
            "..",
            ".",
            "",
            "a\0b",
            "x/",
            "/",
            long.as_str(),
        ] {
            let e = check_file_name(bad).expect_err(bad);
            assert_eq!(e.code, Code::BadRequest, "{bad:?}: {e:?}");
            assert!(e.message.contains("plain name"), "{bad:?}: {e:?}");
        }
        // The longest a file system takes is fine, one byte more is not.
        assert!(check_file_name(&"b".repeat(255)).is_ok());
        assert!(check_file_name(&"b".repeat(256)).is_err());
        for good in ["h.sh", "a..b", ".hidden", "...", "-rf", "x y"] {
            assert!(check_file_name(good).is_ok(), "{good:?} refused");
        }
    }

    fn registry_in(dir: &Path) -> (Registry, DaemonConfig) {
        let config = DaemonConfig {
            functions_dir: dir.join("functions.d"),
            state_dir: dir.join("state"),
            ..DaemonConfig::default()
        };
        fs::create_dir_all(&config.state_dir).unwrap();
        (Registry::new(&config), config)
    }

    fn b64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    const POLICY: &str = "runtime = \"native\"\ncommand = [\"/bin/sh\", \"/fn/h.sh\"]\n";

    /// FS6: a hostile name anywhere in the map refuses the whole deploy, and
    /// nothing of it reaches the state directory.
    #[test]
    fn registry_hostile_file_name_refuses_the_deploy_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut reg, config) = registry_in(tmp.path());
        let long = "n".repeat(300);
        for bad in [
            "/abs",
            "a/passwd",
            "../x",
            "..",
            ".",
            "",
            "a\0b",
            long.as_str(),
        ] {
            let files: BTreeMap<String, String> = [
                ("h.sh".to_string(), b64(b"echo hi\n")),
                ("a".to_string(), b64(b"x")),
                (bad.to_string(), b64(b"x")),
            ]
            .into();
            let e = reg
                .deploy("f", POLICY, &files, &["h.sh".into()], &config)
                .expect_err(bad);
            assert_eq!(e.code, Code::BadRequest, "{bad:?}: {e:?}");
            let left: Vec<_> = fs::read_dir(&config.state_dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "{bad:?} left {left:?}");
            assert!(reg.get("f").is_none());
        }
    }

    /// FS6: files are created new with exactly 0644, or 0755 when listed
    /// executable, whatever the umask; no set-id or sticky bit can come from
    /// the request (it carries names and bytes only).
    #[test]
    fn registry_deployed_files_are_exactly_0644_or_0755() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut reg, config) = registry_in(tmp.path());
        let files: BTreeMap<String, String> = [
            ("h.sh".to_string(), b64(b"echo hi\n")),
            ("data".to_string(), b64(b"\x00\x01")),
        ]
        .into();
        let f = reg
            .deploy("f", POLICY, &files, &["h.sh".into()], &config)
            .expect("deploy");
        let vdir = f.version_dir.clone().expect("deployed");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&vdir.join("f/h.sh")), 0o755);
        assert_eq!(mode(&vdir.join("f/data")), 0o644);
        assert_eq!(mode(&vdir.join("f.toml")), 0o644);
        assert_eq!(mode(&vdir.join("f")), 0o755);
        assert_eq!(mode(&vdir), 0o755);
        assert_eq!(fs::read(vdir.join("f/data")).unwrap(), b"\x00\x01");
        let e = reg
            .deploy("g", POLICY, &files, &["nope".into()], &config)
            .expect_err("executable not among files");
        assert_eq!(e.code, Code::BadRequest, "{e:?}");
    }
}
