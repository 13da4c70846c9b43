//! `paddock-wasm`: the WASM runner the sandbox execs for `runtime = "wasm"`.
//!
//! ```text
//! paddock-wasm --fuel N --memory-bytes N [--protocol stdio|file] -- MODULE
//! paddock-wasm --fuel N --memory-bytes N --warm --output-bytes N [--sha256 HEX] -- MODULE
//! ```
//!
//! Runs MODULE's `_start` under WASI preview1 (our own host, see
//! `paddock_runtimes::wasm`). The module's environment is the runner's; its
//! argv is `[MODULE]`. With `--protocol file`, `/work` is preopened (fd 3).
//!
//! Exit status: the module's `proc_exit` code, 0 when `_start` returns, or
//! 125 after one last stderr line `paddock-wasm: {"kind":…,"message":…}`
//! when the module could not run to its end.
//!
//! With `--warm` the runner compiles MODULE once and then serves invocations
//! from stdin until EOF, one response frame per request frame
//! (`paddock_runtimes::wasm::frame`); every invocation gets a fresh store,
//! WASI context and instance, with its stdio in memory (and, with
//! `--protocol file`, `/work` preopened: the daemon writes the input there
//! before each request, reads the output after the response and empties
//! the directory between invocations). `--fuel` is then
//! unused (each request carries its fuel). A module that does not compile,
//! or does not match `--sha256`, is answered with its error for every
//! request. The runner exits 0 at EOF, or 125 with a report line when the
//! framing breaks.

use std::ffi::OsString;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use paddock_policies::Protocol;
use paddock_runtimes::wasm::engine::{self, Limits, Outcome, MAX_MODULE_BYTES};
use paddock_runtimes::wasm::frame::{self, Request, Response};
use paddock_runtimes::wasm::host::{Host, MemStdio};
use paddock_runtimes::wasm::{ErrorKind, RunnerArgs, WarmArgs, WasmError, RESERVED_EXIT};
use sha2::{Digest, Sha256};

/// Where the FILE protocol's directory is, and the name the module sees.
const WORK: &str = "/work";

fn report(e: &WasmError, at_line_start: bool) -> ExitCode {
    let mut line = String::new();
    if !at_line_start {
        line.push('\n');
    }
    line.push_str(&e.line());
    let _ = std::io::stderr().write_all(line.as_bytes());
    ExitCode::from(RESERVED_EXIT as u8)
}

fn fail(kind: ErrorKind, message: String) -> ExitCode {
    report(&WasmError::new(kind, message), true)
}

fn main() -> ExitCode {
    // A bug in the runner is still one report line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let e = WasmError::new(ErrorKind::Runner, format!("internal error: {info}"));
        let _ = std::io::stderr().write_all(format!("\n{}", e.line()).as_bytes());
        std::process::exit(RESERVED_EXIT);
    }));
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match RunnerArgs::parse(&argv) {
        Ok(a) => a,
        Err(e) => return fail(ErrorKind::Runner, e),
    };
    let bytes = match read_module(&args) {
        Ok(b) => b,
        Err(e) => match &args.warm {
            Some(w) => return serve_warm(&args, w, Err(e)),
            None => return report(&e, true),
        },
    };
    if let Some(w) = &args.warm {
        return serve_warm(&args, w, Ok(bytes));
    }
    let engine = engine::engine();
    let module = match engine::compile(&engine, &bytes) {
        Ok(m) => m,
        Err(e) => return report(&e, true),
    };
    drop(bytes);
    let preopen = match args.protocol {
        Protocol::Stdio => None,
        Protocol::File => match open_work() {
            Ok(fd) => Some((fd, WORK.to_owned())),
            Err(e) => return fail(ErrorKind::Runner, e),
        },
    };
    let host = match Host::new(
        vec![args.module.clone().into_os_string()],
        std::env::vars_os().collect(),
        preopen,
    ) {
        Ok(h) => h,
        Err(e) => return fail(ErrorKind::Runner, format!("stdio: {e}")),
    };
    let limits = Limits {
        fuel: args.fuel,
        memory_bytes: args.memory_bytes,
    };
    match engine::run(&engine, &module, host, limits) {
        (Outcome::Exit(code), _) if (0..=255).contains(&code) && code != RESERVED_EXIT => {
            ExitCode::from(code as u8)
        }
        (Outcome::Exit(code), at) => report(
            &WasmError::new(
                ErrorKind::ExitCode,
                format!("the module exited with {code}; paddock-wasm reserves {RESERVED_EXIT} and codes outside 0..=255"),
            ),
            at,
        ),
        (Outcome::Failed(e), at) => report(&e, at),
    }
}

/// The FILE protocol's directory, the module's preopen.
fn open_work() -> Result<std::os::fd::OwnedFd, String> {
    nix::fcntl::open(
        WORK,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {WORK}: {e}"))
}

fn read_module(args: &RunnerArgs) -> Result<Vec<u8>, WasmError> {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(&args.module)
        .and_then(|f| f.take(MAX_MODULE_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return Err(WasmError::new(
            ErrorKind::Runner,
            format!("cannot read the module {}: {e}", args.module.display()),
        ));
    }
    if bytes.len() as u64 > MAX_MODULE_BYTES {
        return Err(WasmError::new(
            ErrorKind::InvalidModule,
            format!("the module is larger than {MAX_MODULE_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// At most this much of a wasm_error message goes into a response.
const MAX_MESSAGE: usize = 4096;

fn clip(mut e: WasmError) -> WasmError {
    if e.message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !e.message.is_char_boundary(end) {
            end -= 1;
        }
        e.message.truncate(end);
    }
    e
}

/// `--warm`: compile once, then one fresh store and instance per request.
fn serve_warm(args: &RunnerArgs, warm: &WarmArgs, bytes: Result<Vec<u8>, WasmError>) -> ExitCode {
    let engine = engine::engine();
    let compiled = bytes.and_then(|b| {
        if let Some(want) = &warm.sha256 {
            let got = hex(&Sha256::digest(&b));
            if !got.eq_ignore_ascii_case(want) {
                return Err(WasmError::new(
                    ErrorKind::Runner,
                    format!(
                        "the module changed after it was hashed (sha256 {got}, expected {want})"
                    ),
                ));
            }
        }
        let module = engine::compile(&engine, &b)?;
        let linker = engine::linker(&engine, &module)?;
        Ok((module, linker))
    });
    let clone = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(std::fs::File::from);
    let (input, mut output) = match (
        clone(std::io::stdin().as_fd()),
        clone(std::io::stdout().as_fd()),
    ) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(e), _) | (_, Err(e)) => return fail(ErrorKind::Runner, format!("stdio: {e}")),
    };
    let mut input = BufReader::with_capacity(64 << 10, input);
    let argv0: OsString = args.module.clone().into_os_string();
    // FILE protocol: /work, opened once; each invocation's preopen is a
    // duplicate of it (the daemon empties the directory between calls).
    let work = match args.protocol {
        Protocol::Stdio => None,
        Protocol::File => match open_work() {
            Ok(fd) => Some(fd),
            Err(e) => return fail(ErrorKind::Runner, e),
        },
    };
    loop {
        let req = match read_request(&mut input) {
            Ok(Some(r)) => r,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => return fail(ErrorKind::Runner, e),
        };
        let resp = match &compiled {
            Err(e) => Response::error(clip(e.clone())),
            Ok((module, linker)) => {
                let env = req
                    .env
                    .into_iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                    .collect();
                let stdio = MemStdio::new(req.input, warm.output_bytes);
                let preopen = match work.as_ref().map(|w| w.try_clone()) {
                    None => None,
                    Some(Ok(fd)) => Some((fd, WORK.to_owned())),
                    Some(Err(e)) => {
                        return fail(ErrorKind::Runner, format!("cannot duplicate {WORK}: {e}"))
                    }
                };
                let host = Host::in_memory(vec![argv0.clone()], env, stdio, preopen);
                let limits = Limits {
                    fuel: req.fuel,
                    memory_bytes: args.memory_bytes,
                };
                let (outcome, mut host) = engine::run_linked(&engine, linker, module, host, limits);
                let mem = host.take_mem().unwrap_or_default();
                let (exit_code, wasm_error) = match outcome {
                    Outcome::Exit(c) if (0..=255).contains(&c) && c != RESERVED_EXIT => (c, None),
                    Outcome::Exit(code) => (
                        RESERVED_EXIT,
                        Some(WasmError::new(
                            ErrorKind::ExitCode,
                            format!("the module exited with {code}; paddock-wasm reserves {RESERVED_EXIT} and codes outside 0..=255"),
                        )),
                    ),
                    Outcome::Failed(e) => (RESERVED_EXIT, Some(clip(e))),
                };
                Response {
                    exit_code,
                    stdout_truncated: mem.stdout_truncated,
                    stderr_truncated: mem.stderr_truncated,
                    stdout: mem.stdout,
                    stderr: mem.stderr,
                    wasm_error,
                }
            }
        };
        if let Err(e) = output.write_all(&resp.encode()) {
            // The daemon is gone or stopped reading: nothing to answer.
            return fail(ErrorKind::Runner, format!("writing a response: {e}"));
        }
    }
}

/// The next request, or None at EOF between frames.
fn read_request(input: &mut impl Read) -> Result<Option<Request>, String> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err("EOF inside a frame's length".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading a request: {e}")),
        }
    }
    let total = frame::frame_len(&prefix, frame::MAX_REQUEST)
        .map_err(|e| e.to_string())?
        .expect("the prefix is there");
    let mut frame = vec![0u8; total];
    frame[..4].copy_from_slice(&prefix);
    input
        .read_exact(&mut frame[4..])
        .map_err(|e| format!("reading a request: {e}"))?;
    Request::decode(&frame).map(Some).map_err(|e| e.to_string())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
