//! The WASM runtime: `paddock-wasm`, the runner the sandbox execs for
//! `runtime = "wasm"`, and what the daemon side needs to launch it and read
//! its report.
//!
//! The runner loads the module (binary `.wasm`, or `.wat` text through
//! wasmi's `wat` support), links WASI preview1, and runs `_start` in the
//! wasmi interpreter under:
//! - **fuel** (`limits.wasm_fuel`), charged from instantiation on, so a
//!   `(start)` function that loops runs out of fuel too (ATTACKS WA1);
//! - **linear-memory and table caps** through wasmi's `StoreLimits`: a
//!   `memory.grow` past the cap returns -1 and a module whose initial memory
//!   is over the cap fails to instantiate (WA3). The memory cap sits under the
//!   cgroup limit ([`memory_cap`]) so the interpreter fails first, cleanly;
//! - a **call-depth cap** and a value-stack cap. wasmi keeps both on the
//!   heap, so deep recursion is a `StackOverflow` trap, never a host SIGSEGV
//!   (WA4); module parsing runs under wasmi's `EnforcedLimits::strict()`.
//!
//! ## WASI: our own small preview1 host, not `wasmi_wasi`
//!
//! `wasmi_wasi` 2.0 is built on Wasmtime's legacy `wasi-common` 36 (LTS line)
//! with wiggle and cap-std: about 81 crates and 150 s of compile time for a
//! runner that needs a dozen calls, and path resolution done in user space
//! by cap-std. [`host`] implements the preview1 calls that WAT, C (wasi-libc)
//! and Rust (`wasm32-wasip1`) programs use for STDIO and FILE functions:
//! args, environ, clocks, random, `proc_exit`, `sched_yield`, stdin, stdout
//! and stderr, and one preopened directory `/work` (FILE protocol only) with
//! `path_open`, `fd_read`/`fd_write`/`fd_seek`/`fd_tell`/`fd_close`,
//! `fd_filestat_get`, `fd_fdstat_get`, `fd_prestat_*`, `path_filestat_get`,
//! `path_create_directory`, `path_unlink_file`, `path_remove_directory` and
//! `path_symlink`. Every other preview1 import links to a stub returning
//! `ENOSYS`; imports from any other module are a link error.
//!
//! Paths are resolved by the kernel, never by us: `openat2` beneath the
//! directory's fd with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`. Absolute paths, `..` out of the
//! preopen and every symlink (a module may create one with `path_symlink`,
//! but nothing ever follows it) fail with `ENOTCAPABLE` (WA5). The `wasm`
//! seccomp profile therefore includes `openat2`.
//!
//! ## Reporting
//!
//! The runner exits with the module's `proc_exit` code, or 0 when `_start`
//! returns. When the module cannot run to its end (invalid module, link
//! error, failed instantiation, trap, out of fuel, memory limit), it writes
//! one last line to stderr, `paddock-wasm: {"kind":"…","message":"…"}`, and
//! exits with [`RESERVED_EXIT`] (125). A module's own `proc_exit(125)` (or a
//! code above 255) is itself reported that way (`kind = "exit_code"`), so a
//! module cannot forge the line: with exit code 125 the last line of stderr
//! is always the runner's. [`take_report`] turns it into the result's
//! `wasm_error` and removes it from the captured stderr.
//!
//! ## Warm mode
//!
//! `paddock-wasm --warm --output-bytes N [--sha256 HEX]` compiles the module
//! once and serves invocations from stdin until EOF, one response per
//! request, in the frames of [`frame`]: `u32le length` + `u32le header
//! length` + JSON header + body. A request carries the invocation's fuel,
//! the module's whole environment (FUNCTION_NAME, EXECUTION_ID, TIMEOUT_MS,
//! TRACE_ID, the policy's and the request's variables) and its input; a
//! response carries the exit code, stdout and stderr (each capped at
//! `--output-bytes`, with truncation flags) and the `wasm_error`, with the
//! same exit-125 convention as above (no report line: the error travels in
//! the header). Every invocation gets a fresh `Store`, a fresh WASI
//! [`host::Host`] whose stdin/stdout/stderr are in memory
//! ([`host::MemStdio`]) and a fresh instance; only the compiled module and
//! the linker (host functions, no state) are shared. Output past the cap
//! traps the instance (`output_limit`). A module that does not compile, or
//! whose bytes do not match `--sha256` (the daemon's pool key), is answered
//! with its error for every request. The runner makes the same syscalls as
//! a oneshot one (read, write, mmap, ...), so the `wasm` seccomp profile is
//! unchanged. The daemon side is [`crate::warm`].

pub mod engine;
pub mod frame;
pub mod host;

use std::path::{Path, PathBuf};

use paddock_policies::Protocol;

/// The exit code of a runner that reports an error on its last stderr line.
pub const RESERVED_EXIT: i32 = 125;

/// The prefix of the runner's report line.
pub const LINE_PREFIX: &str = "paddock-wasm: ";

/// Where the runner appears inside the sandbox.
pub const RUNNER_PATH: &str = "/run/paddock/paddock-wasm";

/// Environment variable naming the runner binary on the host.
pub const RUNNER_ENV: &str = "PADDOCK_WASM_RUNNER";

/// Where packages install the runner.
pub const RUNNER_INSTALLED: &str = "/usr/lib/paddock/paddock-wasm";

/// Why a module did not run to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fuel ran out (in `_start`, or in the start function during instantiation).
    OutOfFuel,
    /// A trap: unreachable, out-of-bounds access, call stack exhausted, ...
    Trap,
    /// The module does not parse, validate or translate (or is too big).
    InvalidModule,
    /// An import the runner does not provide, or with the wrong type.
    Link,
    /// Instantiation failed for another reason (e.g. a data segment out of bounds).
    Instantiate,
    /// A memory over the cap (initial size, or growth made to trap).
    MemoryLimit,
    /// A table over the cap.
    TableLimit,
    /// The module exited with a code the runner reserves (125, or above 255).
    ExitCode,
    /// Warm mode: the module's stdout or stderr passed `limits.output`; the
    /// invocation was stopped.
    OutputLimit,
    /// The runner could not read the module or was misused.
    Runner,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::OutOfFuel => "out_of_fuel",
            ErrorKind::Trap => "trap",
            ErrorKind::InvalidModule => "invalid_module",
            ErrorKind::Link => "link",
            ErrorKind::Instantiate => "instantiate",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::TableLimit => "table_limit",
            ErrorKind::ExitCode => "exit_code",
            ErrorKind::OutputLimit => "output_limit",
            ErrorKind::Runner => "runner",
        }
    }
}

/// The `wasm_error` of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmError {
    /// snake_case, one of [`ErrorKind`] (or `unreported`, see [`take_report`]).
    pub kind: String,
    pub message: String,
}

impl WasmError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> WasmError {
        WasmError {
            kind: kind.as_str().to_owned(),
            message: message.into(),
        }
    }

    /// The runner's report line, newline included.
    pub fn line(&self) -> String {
        let v = serde_json::json!({ "kind": self.kind, "message": self.message });
        format!("{LINE_PREFIX}{v}\n")
    }
}

/// After a run that exited with [`RESERVED_EXIT`]: the runner's report,
/// removed from the end of `stderr`. If the line is missing (stderr was
/// truncated at the output cap before the runner wrote it) the kind is
/// `unreported`.
pub fn take_report(stderr: &mut Vec<u8>) -> WasmError {
    let body = stderr.strip_suffix(b"\n").unwrap_or(stderr);
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let parsed = std::str::from_utf8(&body[start..])
        .ok()
        .and_then(|l| l.strip_prefix(LINE_PREFIX))
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .and_then(|v| {
            Some(WasmError {
                kind: v.get("kind")?.as_str()?.to_owned(),
                message: v.get("message")?.as_str()?.to_owned(),
            })
        });
    match parsed {
        Some(e) => {
            stderr.truncate(start);
            e
        }
        None => WasmError {
            kind: "unreported".into(),
            message: format!(
                "paddock-wasm exited with {RESERVED_EXIT} but its report line was not captured (stderr truncated?)"
            ),
        },
    }
}

/// The runner's linear-memory cap for a function whose cgroup allows
/// `memory_bytes`: a quarter (at least 12 MiB) is left to the runner itself,
/// its compiled code and its value stack, so the interpreter refuses growth
/// before the kernel's OOM killer fires.
pub fn memory_cap(memory_bytes: u64) -> u64 {
    memory_bytes.saturating_sub((memory_bytes / 4).max(12 << 20))
}

/// What the runner is told on its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerArgs {
    pub fuel: u64,
    /// Linear-memory cap in bytes.
    pub memory_bytes: u64,
    pub protocol: Protocol,
    /// The module, as seen by the runner.
    pub module: PathBuf,
    /// Warm mode: serve invocations from stdin ([`frame`]).
    pub warm: Option<WarmArgs>,
}

/// What a warm runner is told beside [`RunnerArgs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmArgs {
    /// Cap on each invocation's stdout and on its stderr.
    pub output_bytes: u64,
    /// The module's sha256 (hex) as the daemon hashed it: a module that no
    /// longer matches is refused, so a warm pool never serves other bytes
    /// than its key says.
    pub sha256: Option<String>,
}

impl RunnerArgs {
    /// argv, with `argv[0]` = `program`.
    pub fn to_argv(&self, program: &str) -> Vec<String> {
        let mut v = vec![
            program.to_owned(),
            "--fuel".into(),
            self.fuel.to_string(),
            "--memory-bytes".into(),
            self.memory_bytes.to_string(),
            "--protocol".into(),
            self.protocol.as_str().into(),
        ];
        if let Some(w) = &self.warm {
            v.push("--warm".into());
            v.push("--output-bytes".into());
            v.push(w.output_bytes.to_string());
            if let Some(h) = &w.sha256 {
                v.push("--sha256".into());
                v.push(h.clone());
            }
        }
        v.push("--".into());
        v.push(self.module.display().to_string());
        v
    }

    /// Parses argv (without argv[0]).
    pub fn parse(args: &[String]) -> Result<RunnerArgs, String> {
        let mut fuel = None;
        let mut memory = None;
        let mut protocol = Protocol::Stdio;
        let mut module = None;
        let mut warm = false;
        let mut output = None;
        let mut sha256 = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--fuel" => fuel = Some(value("--fuel")?),
                "--memory-bytes" => memory = Some(value("--memory-bytes")?),
                "--warm" => warm = true,
                "--output-bytes" => output = Some(value("--output-bytes")?),
                "--sha256" => sha256 = Some(value("--sha256")?),
                "--protocol" => {
                    protocol = match value("--protocol")?.as_str() {
                        "stdio" => Protocol::Stdio,
                        "file" => Protocol::File,
                        other => return Err(format!("unknown protocol {other:?}")),
                    }
                }
                "--" => {
                    module = it.next().cloned();
                    if it.next().is_some() {
                        return Err("one module only".into());
                    }
                    break;
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let num = |s: Option<String>, name: &str| -> Result<u64, String> {
            let s = s.ok_or_else(|| format!("{name} is required"))?;
            s.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: not a number: {s:?}"))
        };
        let warm = match (warm, output) {
            (true, output) => Some(WarmArgs {
                output_bytes: num(output, "--output-bytes")?,
                sha256,
            }),
            (false, None) if sha256.is_none() => None,
            (false, _) => return Err("--output-bytes and --sha256 go with --warm".into()),
        };
        Ok(RunnerArgs {
            warm,
            fuel: num(fuel, "--fuel")?,
            memory_bytes: num(memory, "--memory-bytes")?,
            protocol,
            module: PathBuf::from(module.ok_or(
                "usage: paddock-wasm --fuel N --memory-bytes N [--protocol stdio|file] [--warm --output-bytes N [--sha256 HEX]] -- MODULE",
            )?),
        })
    }
}

/// The runner binary on the host: `$PADDOCK_WASM_RUNNER`, else
/// `paddock-wasm` next to the current executable, else
/// [`RUNNER_INSTALLED`]; canonicalized (the sandbox binds a real file).
pub fn find_runner() -> Result<PathBuf, Vec<PathBuf>> {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os(RUNNER_ENV) {
        // An explicit choice: no fallback past it.
        candidates.push(PathBuf::from(p));
    } else {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            candidates.push(dir.join("paddock-wasm"));
        }
        candidates.push(PathBuf::from(RUNNER_INSTALLED));
    }
    for c in candidates {
        match std::fs::canonicalize(&c) {
            Ok(p) if p.is_file() => return Ok(p),
            _ => tried.push(c),
        }
    }
    Err(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_args_round_trip() {
        let a = RunnerArgs {
            fuel: 5,
            memory_bytes: 1 << 20,
            protocol: Protocol::File,
            module: "/fn/m.wasm".into(),
            warm: None,
        };
        let argv = a.to_argv("x");
        assert_eq!(RunnerArgs::parse(&argv[1..]).unwrap(), a);
        assert!(RunnerArgs::parse(&["--fuel".into()]).is_err());
        let w = RunnerArgs {
            protocol: Protocol::Stdio,
            warm: Some(WarmArgs {
                output_bytes: 9,
                sha256: Some("ab".into()),
            }),
            ..a.clone()
        };
        let argv = w.to_argv("x");
        assert_eq!(RunnerArgs::parse(&argv[1..]).unwrap(), w);
        let file_warm = RunnerArgs {
            protocol: Protocol::File,
            ..w
        };
        assert_eq!(
            RunnerArgs::parse(&file_warm.to_argv("x")[1..]).unwrap(),
            file_warm
        );
    }

    #[test]
    fn report_line_is_taken_from_the_end_of_stderr() {
        let e = WasmError::new(ErrorKind::Trap, "bad \"thing\"\nhappened");
        let mut stderr = b"module said\n".to_vec();
        stderr.extend_from_slice(e.line().as_bytes());
        assert_eq!(take_report(&mut stderr), e);
        assert_eq!(stderr, b"module said\n");
    }

    #[test]
    fn report_line_missing_is_unreported_and_keeps_stderr() {
        let mut stderr = b"paddock-wasm: {\"kind\":\"tr".to_vec();
        assert_eq!(take_report(&mut stderr).kind, "unreported");
        assert_eq!(stderr.len(), 25);
    }

    #[test]
    fn memory_cap_leaves_room_under_the_cgroup() {
        assert_eq!(memory_cap(64 << 20), 48 << 20);
        assert_eq!(memory_cap(16 << 20), 4 << 20);
        assert_eq!(memory_cap(1 << 20), 0);
    }
}
