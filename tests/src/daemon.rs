//! A real `paddockd serve` for the daemon tests, and a line-oriented client.
//!
//! Each [`TestDaemon`] gets its own temporary directory under /var/tmp (a
//! sandbox's read-only paths may not lie under /tmp) holding the socket, the
//! functions directory (seeded with `policies/examples`), the state directory
//! and a daemon config with a cgroup name of its own, so that one daemon's
//! start-up reaping (`<cgroup_name>-d-*`) never touches another's sandboxes.
//! Everything is bounded in time, and Drop stops the daemon (SIGTERM, then
//! SIGKILL).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::bin_path;

/// How long a client waits for one answer unless told otherwise.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(20);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `serve` flags and the daemon config's extra sections.
#[derive(Debug, Clone, Default)]
pub struct DaemonOpts {
    /// TOML appended to the config (`[limits]`, `[access]`; not `[sandbox]`).
    pub config: String,
    pub idle_timeout_ms: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub drain_timeout_ms: Option<u64>,
    /// RLIMIT_NOFILE for the daemon (started through `prlimit`).
    pub nofile: Option<u64>,
    /// Listen here instead of `<root>/run/paddockd.sock`.
    pub socket: Option<PathBuf>,
    /// The daemon's umask (started through `sh -c 'umask ...; exec ...'`).
    pub umask: Option<u32>,
    /// `[sandbox] prepared`: sandboxes made ahead. 0 (no pool) unless a
    /// test is about the pool, so host-state checks between invocations
    /// see only the runs themselves.
    pub prepared: u32,
}

impl DaemonOpts {
    /// Options with this config text.
    pub fn config(toml: &str) -> Self {
        DaemonOpts {
            config: toml.into(),
            ..Default::default()
        }
    }
}

/// A running `paddockd serve`.
#[derive(Debug)]
pub struct TestDaemon {
    tmp: tempfile::TempDir,
    child: Option<Child>,
    opts: DaemonOpts,
    /// The `[sandbox] cgroup_name` of this daemon.
    pub cgroup_name: String,
    starts: usize,
    _shared: Option<crate::SharedRuns>,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let dst = to.join(e.file_name());
        if e.file_type().expect("file_type").is_dir() {
            copy_dir(&p, &dst);
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        } else {
            std::fs::copy(&p, &dst).expect("copy");
        }
    }
}

/// The repository's `policies/examples`.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("policies/examples")
}

impl TestDaemon {
    /// A daemon with the default config.
    pub fn start() -> TestDaemon {
        TestDaemon::with(DaemonOpts::default())
    }

    /// A daemon with these options.
    pub fn with(opts: DaemonOpts) -> TestDaemon {
        let mut d = TestDaemon::prepare(opts);
        if let Err(e) = d.try_spawn() {
            panic!("{e}");
        }
        d
    }

    /// A daemon with these options, or what it wrote to stderr when it
    /// exited instead of listening.
    pub fn try_with(opts: DaemonOpts) -> Result<TestDaemon, String> {
        let mut d = TestDaemon::prepare(opts);
        match d.try_spawn() {
            Ok(()) => Ok(d),
            Err(_) => Err(d.stderr()),
        }
    }

    fn prepare(opts: DaemonOpts) -> TestDaemon {
        let shared = crate::run_guard();
        let tmp = tempfile::Builder::new()
            .prefix("paddockd-test-")
            .tempdir_in("/var/tmp")
            .expect("tempdir");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        copy_dir(&examples_dir(), &tmp.path().join("functions"));
        std::fs::set_permissions(
            tmp.path().join("functions"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let cgroup_name = format!("paddockt{}x{n}", std::process::id());
        let d = TestDaemon {
            tmp,
            child: None,
            opts,
            cgroup_name,
            starts: 0,
            _shared: shared,
        };
        d.write_config();
        d
    }

    fn write_config(&self) {
        let text = format!(
            "{}\n\n[sandbox]\ncgroup_name = \"{}\"\nprepared = {}\n",
            self.opts.config, self.cgroup_name, self.opts.prepared
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// The temporary directory holding everything.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        match &self.opts.socket {
            Some(s) => s.clone(),
            None => self.root().join("run/paddockd.sock"),
        }
    }

    /// The functions directory (policy files).
    pub fn functions_dir(&self) -> PathBuf {
        self.root().join("functions")
    }

    /// The state directory (deployed functions live in `functions/` below it).
    pub fn state_dir(&self) -> PathBuf {
        self.root().join("state")
    }

    /// The daemon config file.
    pub fn config_path(&self) -> PathBuf {
        self.root().join("paddockd.toml")
    }

    fn stderr_path(&self) -> PathBuf {
        self.root().join(format!("stderr-{}.log", self.starts))
    }

    /// What the current daemon process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("daemon running").id() as i32
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        self.starts += 1;
        let err = std::fs::File::create(self.stderr_path()).expect("stderr file");
        // Wrappers exec what follows, so the daemon keeps the child's pid.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(m) = self.opts.umask {
            argv.extend(["/bin/sh", "-c"].map(Into::into));
            argv.push(format!("umask {m:03o} && exec \"$@\"").into());
            argv.push("sh".into());
        }
        if let Some(n) = self.opts.nofile {
            argv.extend([
                "prlimit".into(),
                format!("--nofile={n}:{n}").into(),
                "--".into(),
            ]);
        }
        argv.push(bin_path("paddockd").into());
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c.arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .arg("--socket")
            .arg(self.socket())
            .arg("--functions")
            .arg(self.functions_dir())
            .arg("--state-dir")
            .arg(self.state_dir());
        if let Some(v) = self.opts.idle_timeout_ms {
            c.arg("--idle-timeout-ms").arg(v.to_string());
        }
        if let Some(v) = self.opts.write_timeout_ms {
            c.arg("--write-timeout-ms").arg(v.to_string());
        }
        if let Some(v) = self.opts.drain_timeout_ms {
            c.arg("--drain-timeout-ms").arg(v.to_string());
        }
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let child = c.spawn().expect("spawn paddockd serve");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if UnixStream::connect(self.socket()).is_ok() {
                return Ok(());
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "paddockd serve exited with {st}: {}",
                    self.stderr()
                ));
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!(
                    "paddockd serve did not listen within 10 s: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new client connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket())
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// Waits up to `within` for the daemon to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if start.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `kill -9` the daemon and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again over the same directories (after kill9 or exit).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: the daemon still runs");
        self.spawn();
    }

    /// SIGTERM, then SIGKILL after 15 s; returns how it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.as_ref()?;
        self.signal(libc::SIGTERM);
        if let Some(st) = self.wait_exit(Duration::from_secs(15)) {
            return Some(st);
        }
        self.kill9();
        None
    }

    /// The daemon's resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The daemon's peak resident set size in KiB (VmHWM) since it started
    /// or since [`TestDaemon::reset_peak_rss`].
    pub fn peak_rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Resets the daemon's VmHWM to its current RSS (`clear_refs` 5), so
    /// that [`TestDaemon::peak_rss_kib`] measures from now.
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("clear_refs");
    }

    /// Zombies among the daemon's descendants (its launcher, sandboxes,
    /// runners): children nobody has reaped.
    pub fn zombie_descendants(&self) -> Vec<u32> {
        crate::zombie_descendants(self.pid() as u32)
    }

    /// Deploys `name` (files: name, contents, executable) over a fresh
    /// connection; returns the whole answer.
    pub fn deploy(&self, name: &str, policy: &str, files: &[(&str, &[u8], bool)]) -> Value {
        self.client().call(&deploy_req(0, name, policy, files))
    }

    /// Deploys and asserts success; returns the version.
    pub fn deploy_ok(&self, name: &str, policy: &str, files: &[(&str, &[u8], bool)]) -> u64 {
        let v = self.deploy(name, policy, files);
        assert_eq!(v["ok"], true, "deploy {name}: {v}\n{}", self.stderr());
        v["result"]["version"].as_u64().expect("version")
    }

    /// Deploys an `sh` function running `script` (as /fn/h.sh) with extra
    /// top-level and `[limits]` TOML.
    pub fn deploy_sh(&self, name: &str, script: &str, limits: &str) -> u64 {
        self.deploy_ok(
            name,
            &sh_policy(limits, ""),
            &[("h.sh", script.as_bytes(), true)],
        )
    }

    /// Invokes over a fresh connection and returns the whole answer.
    pub fn invoke(&self, function: &str, input: &str) -> Value {
        self.client()
            .call(&json!({"id": 1, "op": "invoke", "function": function, "input": input}))
    }

    /// Open fds of the daemon process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The `stats` result.
    pub fn stats(&self) -> Value {
        let v = self.client().call(&json!({"id": "s", "op": "stats"}));
        assert_eq!(v["ok"], true, "{v}");
        v["result"].clone()
    }

    /// Directories named `<cgroup_name>-d-*` anywhere under this process's cgroups.
    pub fn run_cgroups(&self) -> Vec<String> {
        let pat = format!("{}-d-", self.cgroup_name);
        crate::paddock_cgroups()
            .into_iter()
            .filter(|p| p.contains(&pat))
            .collect()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

/// A policy running `/bin/sh /fn/h.sh`: `top` goes before `[limits]`.
pub fn sh_policy(limits: &str, top: &str) -> String {
    format!(
        "runtime = \"native\"\ncommand = [\"/bin/sh\", \"/fn/h.sh\"]\n{top}\n[limits]\n{limits}\n"
    )
}

/// A `deploy` request.
pub fn deploy_req(id: u64, name: &str, policy: &str, files: &[(&str, &[u8], bool)]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let f: serde_json::Map<String, Value> = files
        .iter()
        .map(|(n, c, _)| (n.to_string(), json!(b64.encode(c))))
        .collect();
    let x: Vec<&str> = files.iter().filter(|f| f.2).map(|f| f.0).collect();
    json!({"id": id, "op": "deploy", "function": name, "policy": policy, "files": f, "executable": x})
}

/// What waiting for a line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    Line(Vec<u8>),
    Eof,
    Timeout,
}

/// A client connection speaking newline-delimited JSON.
#[derive(Debug)]
pub struct Client {
    pub stream: UnixStream,
    buf: Vec<u8>,
    /// Bytes of `buf` known to hold no newline (a long line is scanned once).
    scanned: usize,
}

impl Client {
    /// Connects (panics on failure).
    pub fn connect(path: &Path) -> Client {
        let stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        Client::from_stream(stream)
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: UnixStream) -> Client {
        stream
            .set_write_timeout(Some(Duration::from_secs(20)))
            .expect("write timeout");
        Client {
            stream,
            buf: Vec::new(),
            scanned: 0,
        }
    }

    /// Writes raw bytes.
    pub fn write_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(b)
    }

    /// Sends one request line.
    pub fn send(&mut self, v: &Value) {
        let mut line = serde_json::to_vec(v).expect("json");
        line.push(b'\n');
        self.write_bytes(&line).expect("send request");
    }

    /// The next line, waiting at most `within`.
    pub fn recv_line(&mut self, within: Duration) -> Recv {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(self.scanned + i + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                self.scanned = 0;
                return Recv::Line(line);
            }
            self.scanned = self.buf.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Recv::Eof,
            }
        }
    }

    /// The next answer (panics on timeout, EOF or a line that is not JSON).
    pub fn recv_within(&mut self, within: Duration) -> Value {
        match self.recv_line(within) {
            Recv::Line(l) => serde_json::from_slice(&l).unwrap_or_else(|e| {
                panic!(
                    "answer is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&l)
                )
            }),
            other => panic!("no answer within {within:?}: {other:?}"),
        }
    }

    /// The next answer within [`RECV_TIMEOUT`].
    pub fn recv(&mut self) -> Value {
        self.recv_within(RECV_TIMEOUT)
    }

    /// Sends a request and returns the next answer.
    pub fn call(&mut self, v: &Value) -> Value {
        self.send(v);
        self.recv()
    }

    /// True if the daemon closes the connection within `within` (lines before EOF are skipped).
    pub fn wait_eof(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_line(left) {
                Recv::Eof => return true,
                Recv::Timeout => return false,
                Recv::Line(_) => {}
            }
        }
    }
}

/// The error code of an answer (None when it is a success).
pub fn code(v: &Value) -> Option<&str> {
    if v["ok"] == true {
        None
    } else {
        v["error"]["code"].as_str()
    }
}

/// Decodes `stdout` or `stdout_base64` (or another `*` / `*_base64` pair).
pub fn bytes_field(result: &Value, key: &str) -> Option<Vec<u8>> {
    if let Some(s) = result[key].as_str() {
        return Some(s.as_bytes().to_vec());
    }
    result[format!("{key}_base64")].as_str().map(|b| {
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("valid base64")
    })
}
