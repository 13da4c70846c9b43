//! Support for Paddock's integration tests: locating the built binaries, function
//! directories with the `probe` in them, policy files, running `paddockd run`, and
//! snapshots of host state to prove that a run left nothing behind.

pub mod daemon;

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Host uids a sandbox's uid 0 may map to (100000 + slot).
pub const SANDBOX_UIDS: std::ops::RangeInclusive<u32> = 100_000..=101_023;

/// How long the host side waits for one `paddockd run` before declaring it hung.
const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// Fails the test (never skips it) unless it runs as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (euid is {euid}): it creates real sandboxes; run the root suite as root"
    );
}

/// Directory holding the built binaries: `$PADDOCK_BIN_DIR`, else two levels above
/// the running test executable (`target/debug/deps/root-xxxx` gives `target/debug`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PADDOCK_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable has no grandparent directory")
        .to_path_buf()
}

/// Path of a built binary (`paddockd`, `probe`); panics with a hint when missing.
pub fn bin_path(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.is_file(),
        "{} not found: build the workspace first (cargo build --workspace) or set PADDOCK_BIN_DIR",
        p.display()
    );
    p
}

// ---------------------------------------------------------------- serialising runs

/// Runs take this lock shared; leak checks take it exclusively so that no other
/// test's sandbox is alive while host state is compared.
static RUNS: RwLock<()> = RwLock::new(());

thread_local! {
    static EXCLUSIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Held by a test that must be the only one running sandboxes.
#[derive(Debug)]
pub struct Exclusive {
    _guard: RwLockWriteGuard<'static, ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        EXCLUSIVE.with(|e| e.set(false));
    }
}

/// Waits until no other test is running a sandbox and keeps it that way.
pub fn exclusive() -> Exclusive {
    let guard = RUNS.write().unwrap_or_else(|e| e.into_inner());
    EXCLUSIVE.with(|e| e.set(true));
    Exclusive { _guard: guard }
}

/// The shared side of the run lock, held while any returned handle lives.
pub type SharedRuns = std::rc::Rc<RwLockReadGuard<'static, ()>>;

thread_local! {
    /// This thread's shared guard while any handle to it lives: taking the
    /// read lock again on a thread that holds it would deadlock as soon as
    /// another test waits for the write side (the lock prefers writers).
    static SHARED: std::cell::RefCell<std::rc::Weak<RwLockReadGuard<'static, ()>>> =
        const { std::cell::RefCell::new(std::rc::Weak::new()) };
}

fn shared() -> Option<SharedRuns> {
    if EXCLUSIVE.with(std::cell::Cell::get) {
        return None;
    }
    SHARED.with(|held| {
        if let Some(g) = held.borrow().upgrade() {
            return Some(g);
        }
        let g = std::rc::Rc::new(RUNS.read().unwrap_or_else(|e| e.into_inner()));
        *held.borrow_mut() = std::rc::Rc::downgrade(&g);
        Some(g)
    })
}

// ---------------------------------------------------------------- function directories

/// A temporary function directory (`<tmp>/fn`, mounted at `/fn`) holding the probe,
/// with policy files written next to it (`<tmp>/<name>.toml`).
#[derive(Debug)]
pub struct FnDir {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Default for FnDir {
    fn default() -> Self {
        Self::new()
    }
}

impl FnDir {
    /// A fresh directory with `/fn/probe` in it.
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("paddock-test-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        set_mode(tmp.path(), 0o755);
        let dir = tmp.path().join("fn");
        std::fs::create_dir(&dir).expect("mkdir fn");
        set_mode(&dir, 0o755);
        let fd = Self { tmp, dir };
        let probe = std::fs::read(bin_path("probe")).expect("read probe");
        fd.add_file("probe", &probe, 0o755);
        fd
    }

    /// The function directory (what the sandbox sees as `/fn`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The scratch directory around it (policies, input files).
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Adds a file to the function directory.
    pub fn add_file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, contents).expect("write fn file");
        set_mode(&p, mode);
        p
    }

    /// Adds a symlink `name -> target` to the function directory.
    pub fn add_symlink(&self, name: &str, target: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::os::unix::fs::symlink(target, &p).expect("symlink");
        p
    }

    /// A policy for this directory running the probe, with the default limits.
    pub fn policy(&self) -> Policy {
        Policy::new(&self.dir)
    }
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A policy file under construction. Values given to [`Policy::limit`] and
/// [`Policy::raw`] are TOML literals (`"64MiB"` must include its quotes).
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    directory: PathBuf,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    limits: BTreeMap<String, String>,
    read_only: Vec<String>,
    seccomp: String,
    landlock: String,
    top: String,
    extra: String,
}

impl Policy {
    fn new(dir: &Path) -> Self {
        let limits = [
            ("timeout_ms", "5000"),
            ("kill_grace_ms", "100"),
            ("memory", "\"64MiB\""),
            ("pids", "32"),
            ("cpu", "1.0"),
            ("output", "\"1MiB\""),
            ("tmp", "\"16MiB\""),
            ("tmp_inodes", "4096"),
            ("nofile", "256"),
            ("fsize", "\"16MiB\""),
        ];
        Self {
            name: "probe".into(),
            directory: dir.to_path_buf(),
            command: vec!["/fn/probe".into(), "status".into()],
            env: [("LANG".to_string(), "C.UTF-8".to_string())].into(),
            limits: limits
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            read_only: ["/usr", "/lib", "/lib64", "/bin"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            seccomp: "default".into(),
            landlock: "required".into(),
            top: String::new(),
            extra: String::new(),
        }
    }

    /// Function name (the policy file's stem).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.into();
        self
    }

    /// The policy's own `command`.
    pub fn command(mut self, cmd: &[&str]) -> Self {
        self.command = cmd.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets `[limits] key = literal`.
    pub fn limit(mut self, key: &str, literal: &str) -> Self {
        self.limits.insert(key.into(), literal.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Adds a read-only bind.
    pub fn read_only(mut self, path: &str) -> Self {
        self.read_only.push(path.into());
        self
    }

    /// Adds raw top-level TOML (before the first table).
    pub fn top(mut self, toml: &str) -> Self {
        self.top.push_str(toml);
        self.top.push('\n');
        self
    }

    /// Appends raw TOML at the end of the file.
    pub fn raw(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("string"); // JSON strings are TOML basic strings
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let mut t = String::new();
        let _ = writeln!(t, "runtime = \"native\"\nprotocol = \"stdio\"");
        let _ = writeln!(t, "command = [{}]", list(&self.command));
        let _ = writeln!(t, "directory = {}", q(&self.directory.to_string_lossy()));
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k} = {}", q(v)))
            .collect();
        let _ = writeln!(t, "env = {{ {} }}", env.join(", "));
        t.push_str(&self.top);
        let _ = writeln!(t, "\n[limits]");
        for (k, v) in &self.limits {
            let _ = writeln!(t, "{k} = {v}");
        }
        let _ = writeln!(t, "\n[filesystem]\nread_only = [{}]", list(&self.read_only));
        let _ = writeln!(t, "\n[seccomp]\nprofile = {}", q(&self.seccomp));
        let _ = writeln!(t, "\n[landlock]\nmode = {}", q(&self.landlock));
        t.push_str(&self.extra);
        t
    }

    /// Writes `<dir>/../<name>.toml` and returns its path.
    pub fn write(&self) -> PathBuf {
        let p = self
            .directory
            .parent()
            .expect("fn dir has a parent")
            .join(format!("{}.toml", self.name));
        std::fs::write(&p, self.to_toml()).expect("write policy");
        p
    }
}

// ---------------------------------------------------------------- running

/// What `paddockd run` printed.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The whole JSON object.
    pub json: Value,
    /// paddockd's own stderr (diagnostics).
    pub daemon_stderr: String,
}

impl RunResult {
    fn str_field(&self, k: &str) -> Option<&str> {
        self.json.get(k).and_then(Value::as_str)
    }

    /// `status`: exited | signaled | timeout | oom | failed_to_start.
    pub fn status(&self) -> &str {
        self.str_field("status").unwrap_or("<missing>")
    }

    /// `exit_code`.
    pub fn exit_code(&self) -> Option<i64> {
        self.json.get("exit_code").and_then(Value::as_i64)
    }

    /// `signal`.
    pub fn signal(&self) -> Option<i64> {
        self.json.get("signal").and_then(Value::as_i64)
    }

    /// `limit` (None when null).
    pub fn limit(&self) -> Option<&str> {
        self.str_field("limit")
    }

    /// An integer field such as `wall_ms` or `host_uid`.
    pub fn int(&self, k: &str) -> i64 {
        self.json
            .get(k)
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("no integer {k} in {self}"))
    }

    /// The sandbox's stdout (empty when absent or base64).
    pub fn stdout(&self) -> &str {
        self.str_field("stdout").unwrap_or("")
    }

    /// The sandbox's stderr.
    pub fn stderr(&self) -> &str {
        self.str_field("stderr").unwrap_or("")
    }

    /// The probe's JSON line: the first line of stdout that parses as an object.
    pub fn probe(&self) -> Value {
        self.stdout()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(Value::is_object)
            .unwrap_or_else(|| panic!("no probe JSON line in the sandbox's stdout: {self}"))
    }

    /// Asserts the command exited 0 and returns the probe's line.
    pub fn probe_exited(&self) -> Value {
        assert_eq!(self.status(), "exited", "{self}");
        assert_eq!(self.exit_code(), Some(0), "{self}");
        self.probe()
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run result {}", self.json)?;
        if !self.daemon_stderr.is_empty() {
            write!(f, "\npaddockd stderr: {}", self.daemon_stderr.trim_end())?;
        }
        Ok(())
    }
}

/// A `paddockd run` in progress.
#[derive(Debug)]
pub struct Running {
    child: Child,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
    _input: Option<tempfile::NamedTempFile>,
    _shared: Option<SharedRuns>,
    what: String,
}

/// Starts `paddockd run --policy FILE [--input FILE] -- CMD...` (CMD may be empty:
/// the policy's command then runs).
pub fn spawn(policy: &Path, cmd: &[&str], input: Option<&[u8]>) -> Running {
    let shared = shared();
    let out = tempfile::NamedTempFile::new().expect("tmp");
    let err = tempfile::NamedTempFile::new().expect("tmp");
    let mut c = Command::new(bin_path("paddockd"));
    c.arg("run").arg("--policy").arg(policy);
    let input_file = input.map(|data| {
        let f = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(f.path(), data).expect("write input");
        c.arg("--input").arg(f.path());
        f
    });
    if !cmd.is_empty() {
        c.arg("--").args(cmd);
    }
    // Host secrets that must never reach a sandbox (IX3).
    c.env("NOTIFY_SOCKET", "/run/systemd/notify")
        .env("PADDOCK_TEST_SECRET", "hunter2")
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("reopen"))
        .stderr(err.reopen().expect("reopen"));
    let child = c.spawn().expect("spawn paddockd");
    Running {
        child,
        out,
        err,
        _input: input_file,
        _shared: shared,
        what: format!("{cmd:?}"),
    }
}

impl Running {
    /// Waits (at most 30 s), checks paddockd exited 0 and parses its JSON.
    pub fn wait(mut self) -> RunResult {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if start.elapsed() > RUN_DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "paddockd run {} did not finish in {RUN_DEADLINE:?}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = std::fs::read_to_string(self.out.path()).unwrap_or_default();
        let stderr = std::fs::read_to_string(self.err.path()).unwrap_or_default();
        assert!(
            status.success(),
            "paddockd run {} failed with {status}\nstdout: {stdout}\nstderr: {stderr}",
            self.what
        );
        let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "paddockd run {} printed no single JSON object ({e}): {stdout:?}\nstderr: {stderr}",
                self.what
            )
        });
        assert!(json.is_object(), "not an object: {json}");
        RunResult {
            json,
            daemon_stderr: stderr,
        }
    }
}

/// Runs `paddockd run` expecting it to refuse (non-zero exit, no sandbox); returns its stderr.
pub fn run_rejected(policy: &Path, cmd: &[&str]) -> String {
    let mut c = Command::new(bin_path("paddockd"));
    c.arg("run").arg("--policy").arg(policy);
    if !cmd.is_empty() {
        c.arg("--").args(cmd);
    }
    let out = c.stdin(Stdio::null()).output().expect("spawn paddockd");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "paddockd accepted it: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line error expected: {stderr:?}"
    );
    stderr
}

/// Runs one sandbox to completion.
pub fn run(policy: &Path, cmd: &[&str], input: Option<&[u8]>) -> RunResult {
    spawn(policy, cmd, input).wait()
}

/// Runs the probe with `args` under `policy` and returns its line (asserting exit 0).
pub fn probe(policy: &Path, args: &[&str]) -> Value {
    let mut cmd = vec!["/fn/probe"];
    cmd.extend_from_slice(args);
    run(policy, &cmd, None).probe_exited()
}

/// A fresh function directory with the default policy; returns both.
pub fn setup() -> (FnDir, PathBuf) {
    let d = FnDir::new();
    let p = d.policy().write();
    (d, p)
}

/// Asserts a probe line failed with `errno_name`.
#[track_caller]
pub fn assert_errno(line: &Value, errno_name: &str) {
    assert_eq!(
        line["ok"],
        Value::Bool(false),
        "expected {errno_name}, got {line}"
    );
    assert_eq!(
        line["errno_name"].as_str(),
        Some(errno_name),
        "expected {errno_name}, got {line}"
    );
}

/// Asserts a probe line failed with one of `names`.
#[track_caller]
pub fn assert_errno_in(line: &Value, names: &[&str]) {
    assert_eq!(
        line["ok"],
        Value::Bool(false),
        "expected one of {names:?}, got {line}"
    );
    let n = line["errno_name"].as_str().unwrap_or("");
    assert!(names.contains(&n), "expected one of {names:?}, got {line}");
}

/// Asserts a probe line succeeded.
#[track_caller]
pub fn assert_ok(line: &Value) {
    assert_eq!(
        line["ok"],
        Value::Bool(true),
        "expected success, got {line}"
    );
}

// ---------------------------------------------------------------- host state

/// Counts of host state that a run must leave as it found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSnapshot {
    /// Lines of the host's /proc/self/mountinfo.
    pub mounts: usize,
    /// Directories named `paddock*` beneath this process's own cgroup, per hierarchy.
    pub cgroups: Vec<String>,
    /// Pids of processes whose uid is a sandbox uid.
    pub sandbox_pids: Vec<u32>,
}

impl HostSnapshot {
    /// Takes a snapshot now.
    pub fn take() -> Self {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|s| s.lines().count())
            .unwrap_or(0);
        Self {
            mounts,
            cgroups: paddock_cgroups(),
            sandbox_pids: sandbox_processes(SANDBOX_UIDS),
        }
    }
}

/// `paddock*` directories beneath this process's cgroup in every hierarchy.
pub fn paddock_cgroups() -> Vec<String> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let mounts: Vec<String> = if ctrls.is_empty() {
            vec!["unified".into()]
        } else if let Some(name) = ctrls.strip_prefix("name=") {
            vec![name.into()]
        } else {
            ctrls.split(',').map(String::from).collect()
        };
        for m in mounts {
            let base = Path::new("/sys/fs/cgroup")
                .join(&m)
                .join(path.trim_start_matches('/'));
            walk_paddock(&base, 0, &mut found);
        }
    }
    found.sort();
    found.dedup();
    found
}

fn walk_paddock(dir: &Path, depth: usize, found: &mut Vec<String>) {
    if depth > 6 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with("paddock") {
            found.push(p.display().to_string());
        }
        walk_paddock(&p, depth + 1, found);
    }
}

/// Pids of live host processes with any of real/effective/saved/fs uid in
/// `uids`. Zombies are left out: a dead sandbox init orphaned by a killed
/// daemon waits for the host's pid 1 to reap it, holds nothing, and runs nothing.
pub fn sandbox_processes(uids: std::ops::RangeInclusive<u32>) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let zombie = status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|v| v.trim_start().starts_with('Z'));
        let hit = !zombie
            && status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .is_some_and(|v| {
                    v.split_whitespace()
                        .filter_map(|x| x.parse::<u32>().ok())
                        .any(|u| uids.contains(&u))
                });
        if hit {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// Pids of host zombies (state Z) with any of real/effective/saved/fs uid in
/// `uids`: the processes [`sandbox_processes`] leaves out.
pub fn sandbox_zombies(uids: std::ops::RangeInclusive<u32>) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k));
        let zombie = field("State:").is_some_and(|v| v.trim_start().starts_with('Z'));
        let ours = field("Uid:").is_some_and(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse::<u32>().ok())
                .any(|u| uids.contains(&u))
        });
        if zombie && ours {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// The state letter of a host process (`R`, `S`, `T`, `Z`, ...), if it exists.
pub fn process_state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|v| v.trim_start().chars().next())
}

/// Polls `cond` every 20 ms for up to `within`.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The shared side of the run lock (None when this thread holds [`exclusive`]):
/// a long-lived sandbox owner such as a test daemon holds it for its life.
pub fn run_guard() -> Option<SharedRuns> {
    shared()
}

/// Every path beneath `dir` (not following symlinks), sorted; empty when
/// `dir` does not exist.
pub fn walk_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            out.push(p.clone());
            if is_dir {
                out.extend(walk_tree(&p));
            }
        }
    }
    out.sort();
    out
}

/// Host processes descending from `ancestor` (not itself), with their state
/// letter, zombies included (a zombie keeps its parent until reaped).
pub fn descendants(ancestor: u32) -> Vec<(u32, char)> {
    let mut procs: Vec<(u32, u32, char)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // After the command's closing parenthesis: state ppid ...
            let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
            let ppid = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            procs.push((pid, ppid, state));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![ancestor];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, state) in &procs {
            if ppid == parent && !out.iter().any(|(p, _)| *p == pid) {
                out.push((pid, state));
                frontier.push(pid);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Zombies (state Z) among the descendants of `ancestor`: children its
/// processes have not reaped.
pub fn zombie_descendants(ancestor: u32) -> Vec<u32> {
    descendants(ancestor)
        .into_iter()
        .filter(|(_, s)| *s == 'Z')
        .map(|(p, _)| p)
        .collect()
}
