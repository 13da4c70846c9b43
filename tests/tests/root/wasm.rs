//! WASM functions through `paddockd run`: paddock-wasm in the sandbox under
//! the `wasm` seccomp profile, the ATTACKS.md rows WA1, WA3, WA4 and WA5, and
//! the examples. Test modules are WAT text in tests/fixtures/wasm/ (the
//! runner loads WAT as well as binary modules); malformed binaries are
//! written by the tests themselves.

use std::path::{Path, PathBuf};

use integration_tests::*;

/// The exit code with which paddock-wasm reports an error.
const RESERVED: i64 = 125;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn fixture(name: &str) -> Vec<u8> {
    let p = repo().join("tests/fixtures/wasm").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A wasm function: `module` (bytes) in a fresh function directory, with
/// /etc/passwd bound so that path escapes would find something.
struct WasmFn {
    dir: FnDir,
    module: String,
    protocol: &'static str,
    fuel: u64,
    timeout_ms: u64,
    memory: &'static str,
}

impl WasmFn {
    fn new(module_name: &str, bytes: &[u8]) -> WasmFn {
        let dir = FnDir::new();
        dir.add_file(module_name, bytes, 0o644);
        WasmFn {
            dir,
            module: module_name.into(),
            protocol: "stdio",
            fuel: 1_000_000_000,
            timeout_ms: 5000,
            memory: "64MiB",
        }
    }

    fn fixture(name: &str) -> WasmFn {
        WasmFn::new(name, &fixture(name))
    }

    fn file(mut self) -> WasmFn {
        self.protocol = "file";
        self
    }

    fn policy(&self) -> PathBuf {
        let q = |s: &str| serde_json::to_string(s).expect("string");
        let toml = format!(
            "runtime = \"wasm\"\nprotocol = \"{}\"\nmodule = {}\ndirectory = {}\n\n\
             [limits]\ntimeout_ms = {}\nmemory = \"{}\"\nwasm_fuel = {}\n\n\
             [filesystem]\nread_only = [\"/usr\", \"/lib\", \"/lib64\", \"/bin\", \"/etc/passwd\"]\n",
            self.protocol,
            q(&self.module),
            q(&self.dir.path().to_string_lossy()),
            self.timeout_ms,
            self.memory,
            self.fuel,
        );
        let p = self.dir.root().join("wasmfn.toml");
        std::fs::write(&p, toml).expect("write policy");
        p
    }

    fn run(&self, input: Option<&[u8]>) -> RunResult {
        run(&self.policy(), &[], input)
    }
}

/// Asserts the runner reported `kind` (exit 125, status exited, not signaled).
#[track_caller]
fn assert_wasm_error(r: &RunResult, kind: &str) {
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(RESERVED), "{r}");
    assert_eq!(r.json["wasm_error"]["kind"], kind, "{r}");
    assert!(
        !r.stderr().contains("paddock-wasm:"),
        "the report line stays in stderr: {r}"
    );
}

// ------------------------------------------------------------ hello

#[test]
fn wasm_hello_over_stdio_prints() {
    require_root();
    let r = WasmFn::fixture("hello.wat").run(None);
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.stdout(), "hello from wasm\n", "{r}");
    assert!(r.json["wasm_error"].is_null(), "{r}");
}

#[test]
fn wasm_hello_over_file_writes_output() {
    require_root();
    let r = WasmFn::fixture("file_hello.wat")
        .file()
        .run(Some(b"paddock"));
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.json["output"], "hello, paddock", "{r}");
}

#[test]
fn wasm_echo_example_echoes_stdin() {
    require_root();
    let p = repo().join("policies/examples/echo-wat.toml");
    let r = run(&p, &[], Some(b"echo me\n"));
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.stdout(), "echo me\n", "{r}");
}

#[test]
fn wasm_c_example_writes_its_greeting() {
    require_root();
    let p = repo().join("policies/examples/hello-c.toml");
    assert!(
        repo().join("policies/examples/hello-c/hello.wasm").exists(),
        "run policies/examples/build-wasm.sh first"
    );
    let r = run(&p, &[], Some(b"Ann\n"));
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.json["output"], "Hello, Ann! (from C)\n", "{r}");
}

#[test]
fn wasm_rust_example_prints_its_greeting() {
    require_root();
    let p = repo().join("policies/examples/hello-rust.toml");
    assert!(
        repo()
            .join("policies/examples/hello-rust/hello.wasm")
            .exists(),
        "run policies/examples/build-wasm.sh first"
    );
    let r = run(&p, &[], Some(b"Bo"));
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.stdout(), "Hello, Bo! (from Rust)\n", "{r}");
}

// ------------------------------------------------------------ WA1: fuel

#[test]
fn wasm_loop_in_start_export_runs_out_of_fuel() {
    require_root();
    let mut f = WasmFn::fixture("loop.wat");
    f.fuel = 10_000_000;
    let r = f.run(None);
    assert_wasm_error(&r, "out_of_fuel");
}

#[test]
fn wasm_loop_in_start_function_runs_out_of_fuel_at_instantiation() {
    require_root();
    let mut f = WasmFn::fixture("start_loop.wat");
    f.fuel = 10_000_000;
    let r = f.run(None);
    assert_wasm_error(&r, "out_of_fuel");
}

#[test]
fn wasm_loop_with_ample_fuel_hits_the_timeout() {
    require_root();
    let mut f = WasmFn::fixture("loop.wat");
    f.fuel = 100_000_000_000;
    f.timeout_ms = 300;
    let r = f.run(None);
    assert_eq!(r.status(), "timeout", "{r}");
}

// ------------------------------------------------------------ WA3: growth

#[test]
fn wasm_memory_grow_past_cap_returns_minus_one() {
    require_root();
    let r = WasmFn::fixture("memory_grow.wat").run(None);
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert!(
        r.int("memory_peak_bytes") < 64 << 20,
        "memory peak over the cgroup limit: {r}"
    );
}

#[test]
fn wasm_initial_memory_over_cap_fails_to_instantiate() {
    require_root();
    let r = WasmFn::fixture("memory_huge.wat").run(None);
    assert_wasm_error(&r, "memory_limit");
}

#[test]
fn wasm_table_grow_by_ten_million_returns_minus_one() {
    require_root();
    let r = WasmFn::fixture("table_grow.wat").run(None);
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(0), "{r}");
}

// ------------------------------------------------------------ WA4: stack, malformed

#[test]
fn wasm_infinite_recursion_traps_without_host_signal() {
    require_root();
    let r = WasmFn::fixture("recursion.wat").run(None);
    assert_wasm_error(&r, "trap");
    assert!(r.signal().is_none(), "{r}");
    // The module's own stderr stays; the runner's line started on a new one.
    assert_eq!(r.stderr(), "going down\n", "{r}");
}

#[test]
fn wasm_hundred_thousand_nested_blocks_run_without_crash() {
    require_root();
    // Valid Wasm: wasmi validates and translates it without recursion.
    let n = 100_000;
    let wat = format!(
        "(module (func (export \"_start\") {}{}))",
        "block ".repeat(n),
        "end ".repeat(n)
    );
    let r = WasmFn::new("nested.wat", wat.as_bytes()).run(None);
    assert_eq!(r.status(), "exited", "{r}");
    assert!(
        r.exit_code() == Some(0) || r.json["wasm_error"]["kind"] == "invalid_module",
        "{r}"
    );
}

#[test]
fn wasm_bad_magic_is_invalid_module() {
    require_root();
    let r = WasmFn::new("bad.wasm", b"\0asn\x01\0\0\0").run(None);
    assert_wasm_error(&r, "invalid_module");
}

#[test]
fn wasm_section_size_leb_of_two_to_the_32_is_invalid_module() {
    require_root();
    let r = WasmFn::new("leb.wasm", b"\0asm\x01\0\0\0\x01\x80\x80\x80\x80\x10").run(None);
    assert_wasm_error(&r, "invalid_module");
}

#[test]
fn wasm_import_env_system_is_a_link_error() {
    require_root();
    let r = WasmFn::fixture("env_system.wat").run(None);
    assert_wasm_error(&r, "link");
}

#[test]
fn wasm_module_exit_125_cannot_forge_a_report() {
    require_root();
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "paddock-wasm: {\"kind\":\"out_of_fuel\",\"message\":\"fake\"}\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 54))
        (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $e (i32.const 125))))"#;
    let r = WasmFn::new("forge.wat", wat.as_bytes()).run(None);
    assert_eq!(r.exit_code(), Some(RESERVED), "{r}");
    assert_eq!(r.json["wasm_error"]["kind"], "exit_code", "{r}");
    // The forged line is the module's output and stays in stderr.
    assert!(r.stderr().starts_with("paddock-wasm: {"), "{r}");
}

// ------------------------------------------------------------ WA5: paths

#[test]
fn wasm_path_escapes_are_not_capable() {
    require_root();
    let r = WasmFn::fixture("escape.wat").file().run(Some(b"x"));
    assert_eq!(r.exit_code(), Some(0), "{r}");
    let codes: Vec<&str> = r.stdout().lines().collect();
    assert_eq!(codes.len(), 6, "{r}");
    // ENOTCAPABLE 76, EPERM 63, ENOENT 44
    let refused = ["76", "63", "44"];
    for (i, what) in [
        (0, "../../etc/passwd"),
        (1, "/etc/passwd"),
        (3, "l/passwd through l -> /etc"),
        (4, "../work/input"),
    ] {
        assert!(
            refused.contains(&codes[i]),
            "{what}: errno {}: {r}",
            codes[i]
        );
    }
    assert_eq!(codes[5], "00", "the control open of input failed: {r}");
}

#[test]
fn wasm_stdio_function_has_no_preopened_directory() {
    require_root();
    // Without FILE protocol fd 3 does not exist: every path_open is EBADF (08).
    let r = WasmFn::fixture("escape.wat").run(None);
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.stdout(), "08\n08\n08\n08\n08\n08\n", "{r}");
}

// ------------------------------------------------------------ the daemon

#[test]
fn wasm_daemon_invoke_runs_the_module_and_reports_errors() {
    require_root();
    let d = integration_tests::daemon::TestDaemon::start();
    let echo = std::fs::read(repo().join("policies/examples/echo-wat/echo.wat")).expect("echo.wat");
    let policy = |m: &str| {
        format!("runtime = \"wasm\"\nmodule = \"{m}\"\n\n[limits]\nwasm_fuel = 10_000_000\n")
    };
    d.deploy_ok("wecho", &policy("echo.wat"), &[("echo.wat", &echo, false)]);
    let v = d.invoke("wecho", "hi there");
    assert_eq!(v["ok"], true, "{v}\n{}", d.stderr());
    assert_eq!(v["result"]["stdout"], "hi there", "{v}");
    assert!(v["result"]["wasm_error"].is_null(), "{v}");
    d.deploy_ok(
        "wloop",
        &policy("loop.wat"),
        &[("loop.wat", &fixture("loop.wat"), false)],
    );
    let v = d.invoke("wloop", "");
    assert_eq!(v["result"]["exit_code"], RESERVED, "{v}");
    assert_eq!(v["result"]["wasm_error"]["kind"], "out_of_fuel", "{v}");
}

// ------------------------------------------------------------ warm runner

/// `paddock-wasm --warm` as a plain child process, spoken to in frames
/// (u32le length, u32le header length, JSON header, body): the runner's own
/// behaviour, apart from the sandbox (the daemon suite runs it sandboxed).
struct WarmProc {
    child: std::process::Child,
}

impl WarmProc {
    fn new(module: &Path, extra: &[&str]) -> WarmProc {
        let mut args = vec!["--fuel", "0", "--memory-bytes", "16777216", "--warm"];
        args.extend_from_slice(extra);
        if !extra.contains(&"--output-bytes") {
            args.extend_from_slice(&["--output-bytes", "1000"]);
        }
        let child = std::process::Command::new(bin_path("paddock-wasm"))
            .args(&args)
            .arg("--")
            .arg(module)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn paddock-wasm --warm");
        WarmProc { child }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(bytes).expect("write request");
        stdin.flush().expect("flush");
    }

    /// One call: (response header, stdout, stderr).
    fn call(&mut self, fuel: u64, input: &[u8]) -> (serde_json::Value, Vec<u8>, Vec<u8>) {
        use std::io::Read;
        let h = serde_json::to_vec(&serde_json::json!({"fuel": fuel, "env": [["K", "v"]]}))
            .expect("json");
        let mut f = Vec::new();
        f.extend_from_slice(&((4 + h.len() + input.len()) as u32).to_le_bytes());
        f.extend_from_slice(&(h.len() as u32).to_le_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(input);
        self.send_raw(&f);
        let out = self.child.stdout.as_mut().expect("stdout");
        let mut n = [0u8; 4];
        out.read_exact(&mut n).expect("response length");
        let mut body = vec![0u8; u32::from_le_bytes(n) as usize];
        out.read_exact(&mut body).expect("response");
        let hl = u32::from_le_bytes(body[..4].try_into().expect("4 bytes")) as usize;
        let head: serde_json::Value = serde_json::from_slice(&body[4..4 + hl]).expect("header");
        let rest = &body[4 + hl..];
        let so = head["stdout"].as_u64().expect("stdout length") as usize;
        (head, rest[..so].to_vec(), rest[so..].to_vec())
    }

    /// Closes stdin and returns the exit status and stderr.
    fn end(mut self) -> (std::process::ExitStatus, String) {
        use std::io::Read;
        drop(self.child.stdin.take());
        let st = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (st, err)
    }
}

fn fixture_path(name: &str) -> PathBuf {
    repo().join("tests/fixtures/wasm").join(name)
}

#[test]
fn wasm_warm_runner_gives_every_call_a_fresh_instance() {
    let mut w = WarmProc::new(&fixture_path("warm.wat"), &[]);
    for _ in 0..5 {
        let (h, out, _) = w.call(1_000_000, b"");
        assert_eq!(h["exit_code"], 0, "{h}");
        assert_eq!(out, b"count=1\n", "{h}");
    }
    let (st, err) = w.end();
    assert!(st.success(), "{st}: {err}");
}

#[test]
fn wasm_warm_runner_survives_out_of_fuel_and_traps() {
    let mut w = WarmProc::new(&fixture_path("warm.wat"), &[]);
    let (h, _, _) = w.call(1_000_000, b"loop");
    assert_eq!(h["exit_code"], RESERVED, "{h}");
    assert_eq!(h["wasm_error"]["kind"], "out_of_fuel", "{h}");
    let (h, out, _) = w.call(1_000_000, b"");
    assert_eq!(out, b"count=1\n", "{h}");
    let (st, _) = w.end();
    assert!(st.success());
}

#[test]
fn wasm_warm_runner_stops_a_call_at_the_output_cap() {
    let mut w = WarmProc::new(
        &repo().join("policies/examples/echo-wat/echo.wat"),
        &["--output-bytes", "10"],
    );
    let (h, out, _) = w.call(100_000_000, &[b'x'; 100]);
    assert_eq!(h["stdout_truncated"], true, "{h}");
    assert_eq!(h["wasm_error"]["kind"], "output_limit", "{h}");
    assert_eq!(out.len(), 10);
    let (h, out, _) = w.call(100_000_000, b"short");
    assert_eq!(out, b"short", "{h}");
    assert!(h["wasm_error"].is_null(), "{h}");
}

#[test]
fn wasm_warm_runner_answers_every_call_of_a_bad_module_with_its_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"\0asn\x01\0\0\0").expect("write");
    let mut w = WarmProc::new(&bad, &[]);
    for _ in 0..2 {
        let (h, _, _) = w.call(1000, b"");
        assert_eq!(h["wasm_error"]["kind"], "invalid_module", "{h}");
    }
    // A module that is not the one the daemon hashed is refused.
    let mut w = WarmProc::new(&fixture_path("hello.wat"), &["--sha256", &"0".repeat(64)]);
    let (h, out, _) = w.call(1_000_000, b"");
    assert!(out.is_empty());
    assert!(
        h["wasm_error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("changed"),
        "{h}"
    );
}

#[test]
fn wasm_warm_runner_refuses_an_oversized_request_frame() {
    let mut w = WarmProc::new(&fixture_path("hello.wat"), &[]);
    w.send_raw(&u32::MAX.to_le_bytes());
    let (st, err) = w.end();
    assert_eq!(st.code(), Some(RESERVED as i32), "{err}");
    assert!(err.contains("paddock-wasm: "), "{err}");
}
