//! The `paddock` client: one request per run over the daemon's Unix socket
//! (protocol v1, docs/protocol.md), answered in human form or as the raw
//! response line (`--json`).
//!
//! The split keeps what needs a daemon small: [`request_for`] turns a parsed
//! command line into the request object (reading input and deploy files),
//! [`call`] does the one round trip, and [`render`] turns the answer into
//! output and an exit code. The exit code of `invoke` mirrors the function's
//! (see [`exit_code`]), like `timeout(1)` and shells do.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use clap::{Parser, Subcommand};
use serde_json::{json, Map, Value};

/// Where paddockd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/paddock/paddockd.sock";

/// How long connecting may take (a full listen backlog blocks `connect`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Exit codes that are not the function's own.
pub mod exit {
    /// A daemon error answer, or a client-side failure.
    pub const ERROR: u8 = 2;
    /// `busy`: try again later (sysexits EX_TEMPFAIL).
    pub const BUSY: u8 = 75;
    /// The run hit its timeout (as `timeout(1)`).
    pub const TIMEOUT: u8 = 124;
    /// The sandbox could not start the function.
    pub const FAILED_TO_START: u8 = 125;
    /// The run was cancelled (as for SIGINT).
    pub const CANCELLED: u8 = 130;
    /// Killed by the memory limit (as for SIGKILL).
    pub const OOM: u8 = 137;
}

/// `paddock`: talk to paddockd.
#[derive(Debug, Parser)]
#[command(
    name = "paddock",
    version,
    about = "Invoke and manage Paddock functions through paddockd's socket",
    after_help = "Exit status of `invoke`: the function's exit code; 128+N when killed by \
                  signal N; 124 timeout; 125 failed to start; 130 cancelled; 137 out of memory. \
                  Daemon errors exit 2 (busy: 75)."
)]
pub struct Cli {
    /// The daemon's socket.
    #[arg(long, global = true, default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print the daemon's response line as it came instead of a human rendering.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up waiting for the answer after this many milliseconds (0: wait for ever).
    #[arg(long, global = true, default_value_t = 0, value_name = "MS")]
    pub reply_timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

/// One subcommand per protocol op.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Run a function and print its output; exit with its exit code.
    Invoke {
        /// The function.
        name: String,
        /// The payload, as text.
        #[arg(long, conflicts_with = "input_file")]
        input: Option<String>,
        /// Read the payload from this file (`-`: standard input). Without --input
        /// or --input-file, standard input is read when it is not a terminal.
        #[arg(long, value_name = "FILE")]
        input_file: Option<PathBuf>,
        /// Lower the policy's timeout to this many milliseconds.
        #[arg(long, value_name = "MS")]
        timeout: Option<u64>,
        /// Passed to the function as TRACE_ID.
        #[arg(long, value_name = "ID")]
        trace_id: Option<String>,
        /// An environment variable the policy's env_passthrough allows (repeatable).
        #[arg(long, value_name = "K=V", value_parser = parse_env)]
        env: Vec<(String, String)>,
    },
    /// List the functions (name, runtime, protocol, mode, origin, version).
    List,
    /// Show a function's resolved policy.
    Describe {
        /// The function.
        name: String,
    },
    /// Deploy (or redeploy) a function: a policy plus its files (admin).
    Deploy {
        /// The function.
        name: String,
        /// The policy file (TOML; without `directory`).
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// One file, sent under its base name (e.g. a .wasm module).
        #[arg(long, value_name = "FILE", conflicts_with = "dir")]
        module: Option<PathBuf>,
        /// Every regular file at the top level of this directory; executable
        /// ones stay executable. Symbolic links and subdirectories are refused.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Remove a deployed function (admin).
    Remove {
        /// The function.
        name: String,
    },
    /// Re-read the policy files and deployed functions (admin).
    Reload,
    /// Show counters: in flight, queued, outcomes, latency percentiles.
    Stats,
    /// Show the daemon's protocol version, ops and limits.
    Hello,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

/// What went wrong on the client's side (daemon error answers are not errors
/// here: they are rendered and mapped to an exit code).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot connect to {}: {}{}", path.display(), errno_text(source), connect_hint(source))]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to {}: no answer within {} s", path.display(), CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout { path: PathBuf },
    #[error("{what} {}: {}", path.display(), errno_text(source))]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("deploy --dir: {}: {reason}", path.display())]
    NotAPlainFile { path: PathBuf, reason: &'static str },
    #[error("{} is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("reading standard input: {}", errno_text(source))]
    Stdin {
        #[source]
        source: io::Error,
    },
    #[error("talking to paddockd: {}", errno_text(source))]
    Io {
        #[source]
        source: io::Error,
    },
    #[error("paddockd closed the connection without answering")]
    NoAnswer,
    #[error("no answer from paddockd within {0} ms")]
    ReplyTimeout(u64),
    #[error("paddockd sent a line that is not a protocol response: {0}")]
    BadResponse(String),
}

/// An io::Error as the C library words it, without Rust's "(os error N)".
fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_owned(),
        None => e.to_string(),
    }
}

fn connect_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => " (is paddockd running?)",
        io::ErrorKind::PermissionDenied => " (only root and the group `paddock` may connect)",
        _ => "",
    }
}

/// Connect, failing within [`CONNECT_TIMEOUT`] with the path and errno.
pub fn connect(path: &Path) -> Result<UnixStream, ClientError> {
    // std has no connect timeout for Unix sockets; a helper thread does it
    // (on timeout it is left behind, and the process exits soon anyway).
    let (tx, rx) = mpsc::channel();
    let p = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(&p));
    });
    match rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(ClientError::Connect {
            path: path.to_owned(),
            source,
        }),
        Err(_) => Err(ClientError::ConnectTimeout {
            path: path.to_owned(),
        }),
    }
}

/// One answer: the line as received (without `\n`) and its parsed form.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub line: String,
    pub value: Value,
}

/// Send `request` (an object without id; `id` is added) as one line and read
/// lines until the answer with that id (or an id-less error, such as
/// `too_large`, which the daemon cannot attribute).
pub fn call(
    stream: &mut UnixStream,
    id: u64,
    request: &Value,
    reply_timeout: Option<Duration>,
) -> Result<Answer, ClientError> {
    let mut req = Map::new();
    req.insert("id".into(), json!(id));
    if let Value::Object(m) = request {
        for (k, v) in m {
            req.insert(k.clone(), v.clone());
        }
    }
    let mut line = serde_json::to_vec(&Value::Object(req)).expect("a Value serialises");
    line.push(b'\n');
    let io_err = |source| ClientError::Io { source };
    stream.set_read_timeout(reply_timeout).map_err(io_err)?;
    stream.write_all(&line).map_err(io_err)?;
    stream.flush().map_err(io_err)?;
    let mut reader = BufReader::new(&*stream);
    loop {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return Err(ClientError::NoAnswer),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let ms = reply_timeout.map_or(0, |d| d.as_millis() as u64);
                return Err(ClientError::ReplyTimeout(ms));
            }
            Err(e) => return Err(io_err(e)),
        }
        if buf.last() != Some(&b'\n') {
            return Err(ClientError::NoAnswer);
        }
        buf.pop();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let value: Value = serde_json::from_str(&text)
            .map_err(|_| ClientError::BadResponse(text.chars().take(200).collect()))?;
        if value.get("ok").and_then(Value::as_bool).is_none() {
            return Err(ClientError::BadResponse(text.chars().take(200).collect()));
        }
        if value["id"] == json!(id) || value["id"].is_null() {
            return Ok(Answer { line: text, value });
        }
        // An answer to someone else's id: not ours (one request per connection).
    }
}

/// Where `invoke` takes its payload from when neither --input nor
/// --input-file is given.
pub trait Stdin {
    /// The bytes of standard input, or None when it is a terminal.
    fn read_if_piped(&mut self) -> io::Result<Option<Vec<u8>>>;
    /// All of standard input (for `--input-file -`).
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
}

/// The process's real standard input.
#[derive(Debug)]
pub struct RealStdin;

impl Stdin for RealStdin {
    fn read_if_piped(&mut self) -> io::Result<Option<Vec<u8>>> {
        use std::io::IsTerminal;
        if io::stdin().is_terminal() {
            return Ok(None);
        }
        self.read_all().map(Some)
    }

    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        io::stdin().lock().read_to_end(&mut v)?;
        Ok(v)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Put the payload in the request: `input` when it is UTF-8, else `input_base64`.
pub fn put_input(req: &mut Map<String, Value>, bytes: Vec<u8>) {
    match String::from_utf8(bytes) {
        Ok(s) => {
            req.insert("input".into(), Value::String(s));
        }
        Err(e) => {
            req.insert("input_base64".into(), Value::String(b64(e.as_bytes())));
        }
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    fs::read(path).map_err(|source| ClientError::File {
        what,
        path: path.to_owned(),
        source,
    })
}

/// The files a `deploy` sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployFiles {
    /// File name → contents.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Names among `files` to make executable.
    pub executable: Vec<String>,
}

/// The files of `deploy --dir`: every regular file at the top level, by
/// name, and the names of the executable ones. Anything else (a symbolic
/// link, a directory, a device) is an error rather than silently left out.
pub fn collect_dir(dir: &Path) -> Result<DeployFiles, ClientError> {
    let file_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| ClientError::File { what, path, source }
    };
    let mut files = BTreeMap::new();
    let mut executable = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(file_err("cannot read directory", dir))?
        .collect::<Result<_, _>>()
        .map_err(file_err("cannot read directory", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            return Err(ClientError::NotAPlainFile {
                path,
                reason: "the file name is not UTF-8",
            });
        };
        // O_NOFOLLOW, then fstat: what is checked is what is read, even if
        // the entry changes in between.
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path);
        let mut f = match f {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(ClientError::NotAPlainFile {
                    path,
                    reason: "a symbolic link; only regular files are sent",
                })
            }
            Err(e) => return Err(file_err("cannot open", &path)(e)),
        };
        let meta = f.metadata().map_err(file_err("cannot stat", &path))?;
        if !meta.is_file() {
            return Err(ClientError::NotAPlainFile {
                path,
                reason: if meta.is_dir() {
                    "a directory; only regular files at the top level are sent"
                } else {
                    "not a regular file"
                },
            });
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data)
            .map_err(file_err("cannot read", &path))?;
        if meta.permissions().mode() & 0o111 != 0 {
            executable.push(name.clone());
        }
        files.insert(name, data);
    }
    Ok(DeployFiles { files, executable })
}

/// The request object (without `id`) for a command line.
pub fn request_for(cmd: &Command, stdin: &mut dyn Stdin) -> Result<Value, ClientError> {
    let mut req = Map::new();
    let op = match cmd {
        Command::Invoke {
            name,
            input,
            input_file,
            timeout,
            trace_id,
            env,
        } => {
            req.insert("function".into(), json!(name));
            let payload = match (input, input_file) {
                (Some(s), _) => Some(s.clone().into_bytes()),
                (None, Some(p)) if p.as_os_str() == "-" => Some(
                    stdin
                        .read_all()
                        .map_err(|source| ClientError::Stdin { source })?,
                ),
                (None, Some(p)) => Some(read_file("cannot read input file", p)?),
                (None, None) => stdin
                    .read_if_piped()
                    .map_err(|source| ClientError::Stdin { source })?,
            };
            if let Some(bytes) = payload {
                put_input(&mut req, bytes);
            }
            if let Some(t) = timeout {
                req.insert("timeout_ms".into(), json!(t));
            }
            if let Some(t) = trace_id {
                req.insert("trace_id".into(), json!(t));
            }
            if !env.is_empty() {
                let env: BTreeMap<&str, &str> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                req.insert("env".into(), json!(env));
            }
            "invoke"
        }
        Command::List => "list",
        Command::Describe { name } => {
            req.insert("function".into(), json!(name));
            "describe"
        }
        Command::Deploy {
            name,
            policy,
            module,
            dir,
        } => {
            let text =
                String::from_utf8(read_file("cannot read policy", policy)?).map_err(|_| {
                    ClientError::NotUtf8 {
                        path: policy.clone(),
                    }
                })?;
            let DeployFiles { files, executable } = match (module, dir) {
                (Some(m), _) => {
                    let name = m
                        .file_name()
                        .and_then(|n| n.to_str())
                        .ok_or_else(|| ClientError::NotAPlainFile {
                            path: m.clone(),
                            reason: "no UTF-8 file name",
                        })?
                        .to_owned();
                    let data = read_file("cannot read module", m)?;
                    DeployFiles {
                        files: BTreeMap::from([(name, data)]),
                        executable: Vec::new(),
                    }
                }
                (None, Some(d)) => collect_dir(d)?,
                (None, None) => DeployFiles::default(),
            };
            req.insert("function".into(), json!(name));
            req.insert("policy".into(), json!(text));
            if !files.is_empty() {
                let files: BTreeMap<String, String> =
                    files.into_iter().map(|(k, v)| (k, b64(&v))).collect();
                req.insert("files".into(), json!(files));
            }
            if !executable.is_empty() {
                req.insert("executable".into(), json!(executable));
            }
            "deploy"
        }
        Command::Remove { name } => {
            req.insert("function".into(), json!(name));
            "remove"
        }
        Command::Reload => "reload",
        Command::Stats => "stats",
        Command::Hello => "hello",
    };
    req.insert("op".into(), json!(op));
    Ok(Value::Object(req))
}

/// The exit code an answer stands for: the function's for an invoke result,
/// 2 for a daemon error (75 for busy), 0 for any other success.
pub fn exit_code(answer: &Value) -> u8 {
    if answer["ok"] != json!(true) {
        return match answer["error"]["code"].as_str() {
            Some("busy") => exit::BUSY,
            _ => exit::ERROR,
        };
    }
    let r = &answer["result"];
    match r["status"].as_str() {
        None => 0,
        Some("exited") => r["exit_code"]
            .as_i64()
            .map_or(exit::ERROR, |c| c.clamp(0, 255) as u8),
        Some("signaled") => r["signal"]
            .as_u64()
            .map_or(exit::ERROR, |s| 128u64.saturating_add(s).min(255) as u8),
        Some("timeout") => exit::TIMEOUT,
        Some("oom") => exit::OOM,
        Some("failed_to_start") => exit::FAILED_TO_START,
        Some("cancelled") => exit::CANCELLED,
        Some(_) => exit::ERROR,
    }
}

/// A result's bytes under `key` (text) or `key_base64`.
fn bytes_of(r: &Value, key: &str) -> Option<Vec<u8>> {
    if let Some(s) = r[key].as_str() {
        return Some(s.as_bytes().to_vec());
    }
    r[format!("{key}_base64").as_str()].as_str().and_then(unb64)
}

fn signal_name(n: u64) -> String {
    i32::try_from(n)
        .ok()
        .and_then(|n| nix::sys::signal::Signal::try_from(n).ok())
        .map_or_else(|| format!("signal {n}"), |s| s.as_str().to_owned())
}

/// The one status line of an invoke (without the `paddock: ` prefix).
pub fn status_line(r: &Value) -> String {
    let name = r["function"].as_str().unwrap_or("function");
    let wall = r["wall_ms"].as_u64().unwrap_or(0);
    let mut s = match r["status"].as_str().unwrap_or("?") {
        "exited" => format!("{name} exited {} in {wall} ms", r["exit_code"]),
        "signaled" => {
            let sig = r["signal"].as_u64().unwrap_or(0);
            format!("{name} killed by {} after {wall} ms", signal_name(sig))
        }
        "timeout" => format!("{name} timeout after {wall} ms"),
        "oom" => format!("{name} oom (memory limit) after {wall} ms"),
        "failed_to_start" => {
            let e = &r["error"];
            let mut t = format!("{name} failed_to_start");
            if let Some(step) = e["step"].as_str() {
                t.push_str(&format!(" at {step}"));
            }
            if let Some(m) = e["message"].as_str() {
                t.push_str(&format!(": {m}"));
            }
            t
        }
        "cancelled" => format!("{name} cancelled after {wall} ms"),
        other => format!("{name} {other}"),
    };
    let mut notes = Vec::new();
    if let Some(l) = r["limit"].as_str() {
        if !matches!(r["status"].as_str(), Some("timeout" | "oom")) {
            notes.push(format!("{l} limit"));
        }
    }
    for k in ["stdout", "stderr", "output"] {
        if r[format!("{k}_truncated").as_str()] == json!(true) {
            notes.push(format!("{k} truncated"));
        }
    }
    if !notes.is_empty() {
        s.push_str(&format!(" ({})", notes.join(", ")));
    }
    s
}

/// Space-padded columns; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("a Value serialises") + "\n"
}

/// Write the answer for `cmd` to `out`/`err`; returns the exit code.
pub fn render(
    cmd: &Command,
    answer: &Answer,
    json_out: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<u8> {
    let code = exit_code(&answer.value);
    if json_out {
        writeln!(out, "{}", answer.line)?;
        return Ok(code);
    }
    let v = &answer.value;
    if v["ok"] != json!(true) {
        let e = &v["error"];
        write!(
            err,
            "paddock: {}: {}",
            text(&e["code"]),
            e["message"].as_str().unwrap_or("")
        )?;
        if let Some(ms) = e["retry_after_ms"].as_u64() {
            write!(err, " (retry after {ms} ms)")?;
        }
        writeln!(err)?;
        return Ok(code);
    }
    let r = &v["result"];
    match cmd {
        Command::Invoke { .. } => {
            let stdout = bytes_of(r, "stdout").unwrap_or_default();
            let stderr = bytes_of(r, "stderr").unwrap_or_default();
            let output = bytes_of(r, "output");
            err.write_all(&stderr)?;
            match &output {
                // FILE protocol: the response is the output file; the
                // function's stdout is a log, kept off our stdout so the
                // response can be piped.
                Some(o) => {
                    err.write_all(&stdout)?;
                    out.write_all(o)?;
                }
                None => out.write_all(&stdout)?,
            }
            out.flush()?;
            if let Some(m) = r["output_error"].as_str() {
                writeln!(err, "paddock: output: {m}")?;
            }
            writeln!(err, "paddock: {}", status_line(r))?;
        }
        Command::List => {
            let fns = r["functions"].as_array().cloned().unwrap_or_default();
            if fns.is_empty() {
                writeln!(err, "paddock: no functions")?;
                return Ok(code);
            }
            let mut rows = vec![[
                "NAME",
                "RUNTIME",
                "PROTOCOL",
                "MODE",
                "ORIGIN",
                "VERSION",
                "DESCRIPTION",
            ]
            .map(String::from)
            .to_vec()];
            for f in &fns {
                rows.push(
                    [
                        "name",
                        "runtime",
                        "protocol",
                        "mode",
                        "origin",
                        "version",
                        "description",
                    ]
                    .iter()
                    .map(|k| text(&f[*k]))
                    .collect(),
                );
            }
            out.write_all(table(&rows).as_bytes())?;
        }
        Command::Deploy { name, .. } => {
            writeln!(
                out,
                "paddock: deployed {name} version {}",
                text(&r["version"])
            )?;
        }
        Command::Remove { name } => writeln!(out, "paddock: removed {name}")?,
        Command::Reload => {
            writeln!(
                out,
                "paddock: reloaded, {} functions",
                text(&r["functions"])
            )?;
            let problems = r["problems"].as_array().cloned().unwrap_or_default();
            for p in &problems {
                writeln!(err, "paddock: problem: {}", text(p))?;
            }
            if !problems.is_empty() {
                return Ok(1);
            }
        }
        Command::Describe { .. } | Command::Stats | Command::Hello => {
            out.write_all(pretty(r).as_bytes())?;
        }
    }
    Ok(code)
}

/// The whole client: build the request, do the round trip, render.
pub fn run(cli: &Cli) -> Result<u8, ClientError> {
    let req = request_for(&cli.command, &mut RealStdin)?;
    let mut stream = connect(&cli.socket)?;
    let timeout = (cli.reply_timeout > 0).then(|| Duration::from_millis(cli.reply_timeout));
    let answer = call(&mut stream, 1, &req, timeout)?;
    let stdout = io::stdout();
    let stderr = io::stderr();
    match render(
        &cli.command,
        &answer,
        cli.json,
        &mut stdout.lock(),
        &mut stderr.lock(),
    ) {
        Ok(code) => Ok(code),
        // A closed pipe downstream (`paddock invoke f | head`) is not our failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit_code(&answer.value)),
        Err(source) => Err(ClientError::Io { source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    struct FakeStdin(Option<Vec<u8>>);

    impl Stdin for FakeStdin {
        fn read_if_piped(&mut self) -> io::Result<Option<Vec<u8>>> {
            Ok(self.0.clone())
        }
        fn read_all(&mut self) -> io::Result<Vec<u8>> {
            Ok(self.0.clone().unwrap_or_default())
        }
    }

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["paddock"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).expect("arguments parse")
    }

    fn req(args: &[&str]) -> Value {
        request_for(&cli(args).command, &mut FakeStdin(None)).expect("request")
    }

    fn ok(result: Value) -> Value {
        json!({"id": 1, "ok": true, "result": result})
    }

    fn rendered(cmd: &Command, v: Value) -> (u8, Vec<u8>, String) {
        let answer = Answer {
            line: v.to_string(),
            value: v,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = render(cmd, &answer, false, &mut out, &mut err).expect("render");
        (code, out, String::from_utf8(err).expect("utf-8"))
    }

    #[test]
    fn args_simple_ops_become_bare_requests() {
        assert_eq!(req(&["hello"]), json!({"op": "hello"}));
        assert_eq!(req(&["list"]), json!({"op": "list"}));
        assert_eq!(req(&["reload"]), json!({"op": "reload"}));
        assert_eq!(req(&["stats", "--json"]), json!({"op": "stats"}));
        assert_eq!(
            req(&["describe", "hello-python"]),
            json!({"op": "describe", "function": "hello-python"})
        );
        assert_eq!(
            req(&["remove", "sleepy"]),
            json!({"op": "remove", "function": "sleepy"})
        );
        let c = cli(&["--socket", "/tmp/s", "list", "--json"]);
        assert_eq!(c.socket, PathBuf::from("/tmp/s"));
        assert!(c.json);
        assert_eq!(cli(&["hello"]).socket, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn args_invoke_options_become_request_fields() {
        assert_eq!(
            req(&[
                "invoke",
                "hello-python",
                "--input",
                r#"{"name":"Ada"}"#,
                "--timeout",
                "500",
                "--trace-id",
                "t-1",
                "--env",
                "A=1",
                "--env",
                "B=x=y",
            ]),
            json!({
                "op": "invoke",
                "function": "hello-python",
                "input": "{\"name\":\"Ada\"}",
                "timeout_ms": 500,
                "trace_id": "t-1",
                "env": {"A": "1", "B": "x=y"},
            })
        );
        // No input and a terminal on stdin: no input field at all.
        assert_eq!(
            req(&["invoke", "f"]),
            json!({"op": "invoke", "function": "f"})
        );
        // Piped stdin is the payload.
        let piped = request_for(
            &cli(&["invoke", "f"]).command,
            &mut FakeStdin(Some(b"hi".to_vec())),
        )
        .expect("request");
        assert_eq!(piped["input"], "hi");
    }

    #[test]
    fn args_bad_env_and_conflicting_inputs_are_rejected() {
        let bad = |a: &[&str]| {
            let mut v = vec!["paddock"];
            v.extend_from_slice(a);
            Cli::try_parse_from(v).is_err()
        };
        assert!(bad(&["invoke", "f", "--env", "NOEQUALS"]));
        assert!(bad(&["invoke", "f", "--env", "=v"]));
        assert!(bad(&["invoke", "f", "--input", "a", "--input-file", "b"]));
        assert!(bad(&[
            "deploy", "f", "--policy", "p", "--module", "m", "--dir", "d"
        ]));
        assert!(bad(&["deploy", "f"]));
        assert!(bad(&["frobnicate"]));
    }

    #[test]
    fn input_non_utf8_goes_as_base64_and_text_as_input() {
        let mut m = Map::new();
        put_input(&mut m, vec![0xff, 0x00, b'a']);
        assert_eq!(Value::Object(m.clone()), json!({"input_base64": "/wBh"}));
        let mut m = Map::new();
        put_input(&mut m, "héllo\n".as_bytes().to_vec());
        assert_eq!(Value::Object(m), json!({"input": "héllo\n"}));
    }

    #[test]
    fn input_file_non_utf8_is_sent_as_base64() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("in.bin");
        fs::write(&f, [0x80u8, 0x81]).expect("write");
        let v = req(&["invoke", "f", "--input-file", f.to_str().expect("utf-8")]);
        assert_eq!(v["input_base64"], "gIE=");
        assert!(v.get("input").is_none());
        let missing = request_for(
            &cli(&["invoke", "f", "--input-file", "/nonexistent/x"]).command,
            &mut FakeStdin(None),
        );
        assert!(matches!(missing, Err(ClientError::File { .. })));
    }

    #[test]
    fn deploy_module_and_dir_become_files_and_executable() {
        let d = tempfile::tempdir().expect("tempdir");
        let policy = d.path().join("p.toml");
        fs::write(&policy, "runtime = \"native\"\n").expect("write");
        let m = d.path().join("echo.wasm");
        fs::write(&m, b"\0asm").expect("write");
        let p = policy.to_str().expect("utf-8");
        let v = req(&[
            "deploy",
            "echo",
            "--policy",
            p,
            "--module",
            m.to_str().expect("utf-8"),
        ]);
        assert_eq!(
            v,
            json!({"op": "deploy", "function": "echo", "policy": "runtime = \"native\"\n",
                   "files": {"echo.wasm": "AGFzbQ=="}})
        );
        let fd = d.path().join("fn");
        fs::create_dir(&fd).expect("mkdir");
        fs::write(fd.join("handler.sh"), "#!/bin/sh\n").expect("write");
        fs::set_permissions(fd.join("handler.sh"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        fs::write(fd.join("data.txt"), "x").expect("write");
        let v = req(&[
            "deploy",
            "wc",
            "--policy",
            p,
            "--dir",
            fd.to_str().expect("utf-8"),
        ]);
        assert_eq!(
            v["files"],
            json!({"data.txt": "eA==", "handler.sh": b64(b"#!/bin/sh\n")})
        );
        assert_eq!(v["executable"], json!(["handler.sh"]));
        // No files: neither key.
        let v = req(&["deploy", "sleepy", "--policy", p]);
        assert!(v.get("files").is_none() && v.get("executable").is_none());
    }

    #[test]
    fn deploy_dir_with_a_symlink_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        fs::write(d.path().join("real"), "x").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).expect("symlink");
        let r = collect_dir(d.path());
        assert!(
            matches!(&r, Err(ClientError::NotAPlainFile { path, .. }) if path.ends_with("link")),
            "{r:?}"
        );
        let d2 = tempfile::tempdir().expect("tempdir");
        fs::create_dir(d2.path().join("sub")).expect("mkdir");
        assert!(matches!(
            collect_dir(d2.path()),
            Err(ClientError::NotAPlainFile { .. })
        ));
    }

    #[test]
    fn exit_code_mirrors_the_function_and_daemon_errors() {
        let inv = |r: Value| exit_code(&ok(r));
        assert_eq!(inv(json!({"status": "exited", "exit_code": 0})), 0);
        assert_eq!(inv(json!({"status": "exited", "exit_code": 3})), 3);
        assert_eq!(inv(json!({"status": "exited", "exit_code": 300})), 255);
        assert_eq!(inv(json!({"status": "signaled", "signal": 9})), 137);
        assert_eq!(inv(json!({"status": "signaled", "signal": 15})), 143);
        assert_eq!(inv(json!({"status": "timeout"})), 124);
        assert_eq!(inv(json!({"status": "oom"})), 137);
        assert_eq!(inv(json!({"status": "failed_to_start"})), 125);
        assert_eq!(inv(json!({"status": "cancelled"})), 130);
        assert_eq!(inv(json!({"functions": []})), 0);
        let err = |c: &str| {
            exit_code(&json!({"id": 1, "ok": false, "error": {"code": c, "message": "m"}}))
        };
        assert_eq!(err("unknown_function"), 2);
        assert_eq!(err("forbidden"), 2);
        assert_eq!(err("busy"), 75);
    }

    #[test]
    fn render_invoke_writes_raw_output_and_a_status_line() {
        let cmd = cli(&["invoke", "hello-python"]).command;
        let (code, out, err) = rendered(
            &cmd,
            ok(
                json!({"function": "hello-python", "status": "exited", "exit_code": 0,
                      "signal": null, "stdout_base64": "/wA=", "stderr": "warn\n",
                      "wall_ms": 23, "limit": null}),
            ),
        );
        assert_eq!(code, 0);
        assert_eq!(out, vec![0xff, 0x00]);
        assert_eq!(err, "warn\npaddock: hello-python exited 0 in 23 ms\n");
        let (code, _, err) = rendered(
            &cmd,
            ok(json!({"function": "f", "status": "timeout", "wall_ms": 5000, "limit": "timeout"})),
        );
        assert_eq!(
            (code, err.as_str()),
            (124, "paddock: f timeout after 5000 ms\n")
        );
        let (code, _, err) = rendered(
            &cmd,
            ok(json!({"function": "f", "status": "failed_to_start",
                      "error": {"step": "exec", "errno": 2, "message": "No such file"}})),
        );
        assert_eq!(code, 125);
        assert_eq!(err, "paddock: f failed_to_start at exec: No such file\n");
        // FILE protocol: the output file is what goes to stdout.
        let (_, out, err) = rendered(
            &cmd,
            ok(
                json!({"function": "wc", "status": "exited", "exit_code": 0, "stdout": "log\n",
                      "stderr": "", "output": "{\"lines\": 1}\n", "output_truncated": false,
                      "wall_ms": 5}),
            ),
        );
        assert_eq!(out, b"{\"lines\": 1}\n");
        assert_eq!(err, "log\npaddock: wc exited 0 in 5 ms\n");
    }

    #[test]
    fn render_error_and_list_become_a_message_and_a_table() {
        let (code, out, err) = rendered(
            &Command::Hello,
            json!({"id": 1, "ok": false, "error": {"code": "busy", "message": "full", "retry_after_ms": 40}}),
        );
        assert_eq!(code, 75);
        assert!(out.is_empty());
        assert_eq!(err, "paddock: busy: full (retry after 40 ms)\n");
        let (code, out, _) = rendered(
            &Command::List,
            ok(json!({"functions": [
                {"name": "hello-python", "runtime": "native", "protocol": "stdio", "mode": "oneshot",
                 "origin": "config", "version": 1, "description": "Greets"},
                {"name": "w", "runtime": "wasm", "protocol": "file", "mode": "warm",
                 "origin": "deployed", "version": 12, "description": null}]})),
        );
        assert_eq!(code, 0);
        let out = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("NAME          RUNTIME  PROTOCOL"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("hello-python  native   stdio"),
            "{out}"
        );
        assert!(lines[2].ends_with("12       -"), "{out}");
    }

    #[test]
    fn call_fake_server_gets_one_line_with_an_id_and_answer_is_parsed() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = d.path().join("s.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            let mut r = BufReader::new(&s);
            let mut line = String::new();
            r.read_line(&mut line).expect("read");
            let v: Value = serde_json::from_str(&line).expect("request is JSON");
            let mut w = &s;
            // Someone else's answer first, then ours.
            w.write_all(b"{\"id\":99,\"ok\":true,\"result\":{}}\n")
                .expect("write");
            let ans = json!({"id": v["id"], "ok": true, "result": {"protocol": 1}});
            w.write_all(format!("{ans}\n").as_bytes()).expect("write");
            line
        });
        let mut s = connect(&path).expect("connect");
        let a = call(
            &mut s,
            7,
            &json!({"op": "hello"}),
            Some(Duration::from_secs(10)),
        )
        .expect("answer");
        assert_eq!(a.value["result"]["protocol"], 1);
        assert_eq!(a.value["id"], 7);
        let sent = server.join().expect("server");
        assert!(
            sent.ends_with('\n') && sent.matches('\n').count() == 1,
            "{sent:?}"
        );
        let v: Value = serde_json::from_str(&sent).expect("json");
        assert_eq!(v, json!({"id": 7, "op": "hello"}));
    }

    #[test]
    fn call_server_closing_without_answer_is_no_answer() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = d.path().join("s.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).expect("read");
        });
        let mut s = connect(&path).expect("connect");
        let r = call(
            &mut s,
            1,
            &json!({"op": "list"}),
            Some(Duration::from_secs(10)),
        );
        server.join().expect("server");
        assert!(matches!(r, Err(ClientError::NoAnswer)), "{r:?}");
    }

    #[test]
    fn connect_missing_socket_names_path_and_errno() {
        let d = tempfile::tempdir().expect("tempdir");
        let path = d.path().join("paddockd.sock");
        let e = connect(&path).expect_err("no socket");
        assert!(matches!(e, ClientError::Connect { .. }));
        assert_eq!(
            e.to_string(),
            format!(
                "cannot connect to {}: No such file or directory (is paddockd running?)",
                path.display()
            )
        );
    }

    /// Every `<!-- fixture: PATH -->` marker in docs/protocol.md is followed
    /// by a fenced block equal to PATH byte for byte; every fixture file is
    /// used by the doc and holds one JSON object per line.
    #[test]
    fn docs_protocol_examples_match_fixtures() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let doc = fs::read_to_string(root.join("docs/protocol.md")).expect("docs/protocol.md");
        let lines: Vec<&str> = doc.split('\n').collect();
        let mut seen = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let Some(rest) = l.trim().strip_prefix("<!-- fixture:") else {
                continue;
            };
            let rel = rest.trim_end_matches("-->").trim();
            assert!(
                lines.get(i + 1).is_some_and(|f| f.starts_with("```")),
                "docs/protocol.md:{}: the fixture marker for {rel} must be followed by a code fence",
                i + 1
            );
            let body: Vec<&str> = lines[i + 2..]
                .iter()
                .take_while(|l| !l.starts_with("```"))
                .copied()
                .collect();
            assert!(
                i + 2 + body.len() < lines.len(),
                "docs/protocol.md:{}: unclosed block",
                i + 1
            );
            let block: String = body.iter().map(|l| format!("{l}\n")).collect();
            let file = fs::read_to_string(root.join(rel))
                .unwrap_or_else(|e| panic!("docs/protocol.md:{}: {rel}: {e}", i + 1));
            assert_eq!(
                block,
                file,
                "docs/protocol.md:{}: block differs from {rel}",
                i + 1
            );
            seen.push(rel.to_owned());
        }
        assert!(!seen.is_empty(), "no fixture markers in docs/protocol.md");
        let dir = root.join("tests/fixtures/protocol");
        for e in fs::read_dir(&dir)
            .expect("tests/fixtures/protocol")
            .flatten()
        {
            let rel = format!(
                "tests/fixtures/protocol/{}",
                e.file_name().to_string_lossy()
            );
            assert!(
                seen.contains(&rel),
                "{rel} is not shown in docs/protocol.md"
            );
            let text = fs::read_to_string(e.path()).expect("read fixture");
            assert!(text.ends_with('\n'), "{rel}: must end with a newline");
            let (mut requests, mut responses) = (0, 0);
            for (n, line) in text.lines().enumerate() {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{rel}:{}: not JSON: {e}", n + 1));
                assert!(v.is_object(), "{rel}:{}: not an object", n + 1);
                if v.get("ok").is_some() {
                    responses += 1;
                } else {
                    assert_eq!(responses, 0, "{rel}:{}: a request after a response", n + 1);
                    requests += 1;
                }
            }
            assert!(
                requests > 0 && responses > 0,
                "{rel}: requests, then responses"
            );
        }
    }
}
