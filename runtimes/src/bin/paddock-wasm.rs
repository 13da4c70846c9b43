//! `paddock-wasm`: the WASM runner the sandbox execs for `runtime = "wasm"`.
//!
//! ```text
//! paddock-wasm --fuel N --memory-bytes N [--protocol stdio|file] -- MODULE
//! ```
//!
//! Runs MODULE's `_start` under WASI preview1 (our own host, see
//! `paddock_runtimes::wasm`). The module's environment is the runner's; its
//! argv is `[MODULE]`. With `--protocol file`, `/work` is preopened (fd 3).
//!
//! Exit status: the module's `proc_exit` code, 0 when `_start` returns, or
//! 125 after one last stderr line `paddock-wasm: {"kind":…,"message":…}`
//! when the module could not run to its end.

use std::io::{Read, Write};
use std::process::ExitCode;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use paddock_policies::Protocol;
use paddock_runtimes::wasm::engine::{self, Limits, Outcome, MAX_MODULE_BYTES};
use paddock_runtimes::wasm::host::Host;
use paddock_runtimes::wasm::{ErrorKind, RunnerArgs, WasmError, RESERVED_EXIT};

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
    let mut bytes = Vec::new();
    let read = std::fs::File::open(&args.module)
        .and_then(|f| f.take(MAX_MODULE_BYTES + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return fail(
            ErrorKind::Runner,
            format!("cannot read the module {}: {e}", args.module.display()),
        );
    }
    if bytes.len() as u64 > MAX_MODULE_BYTES {
        return fail(
            ErrorKind::InvalidModule,
            format!("the module is larger than {MAX_MODULE_BYTES} bytes"),
        );
    }
    let engine = engine::engine();
    let module = match engine::compile(&engine, &bytes) {
        Ok(m) => m,
        Err(e) => return report(&e, true),
    };
    drop(bytes);
    let preopen = match args.protocol {
        Protocol::Stdio => None,
        Protocol::File => match nix::fcntl::open(
            WORK,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Some((fd, WORK.to_owned())),
            Err(e) => return fail(ErrorKind::Runner, format!("cannot open {WORK}: {e}")),
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
