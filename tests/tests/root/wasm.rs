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

// ------------------------------------------------------------ the runner's syscalls

/// The names in the `wasm` seccomp profile, read from its one definition
/// (`const WASM` in policies/src/seccomp_profiles.rs): the tests crate does
/// not link the policies crate.
fn wasm_profile() -> std::collections::BTreeSet<String> {
    let p = repo().join("policies/src/seccomp_profiles.rs");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let start = text
        .find("const WASM: &[&str] = &[")
        .expect("const WASM in seccomp_profiles.rs");
    let body = &text[start..];
    let body = &body[..body.find("\n];").expect("end of WASM")];
    let names: std::collections::BTreeSet<String> = body
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .map(|l| l.trim_end_matches(',').trim_matches('"').to_string())
        .collect();
    assert!(names.contains("execve") && names.len() > 10, "{names:?}");
    names
}

/// The syscalls, by name and count, that the processes which exec'd the
/// runner (`/run/paddock/paddock-wasm`) made from that execve on, in an
/// `strace -f` log (one `PID name(...` line per call; resumptions, signals
/// and exits are not calls).
fn runner_calls(log: &str) -> (usize, std::collections::BTreeMap<String, usize>) {
    let mut runners = std::collections::BTreeSet::new();
    let mut calls = std::collections::BTreeMap::new();
    for line in log.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with("execve(\"/run/paddock/paddock-wasm\"") {
            runners.insert(pid.to_string());
        }
        if !runners.contains(pid) {
            continue;
        }
        let name = rest.split('(').next().unwrap_or("");
        if !name.is_empty()
            && rest.len() > name.len()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            *calls.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    (runners.len(), calls)
}

/// `pid` and every process beneath it (through /proc/PID/task/TID/children).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                all.extend(
                    kids.split_whitespace()
                        .filter_map(|k| k.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    all
}

/// `strace -f` of a whole `paddockd run` of `f`: its result and the log.
fn traced_run(f: &WasmFn, input: Option<&[u8]>) -> (serde_json::Value, String) {
    let _guard = run_guard();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("strace.log");
    let mut c = std::process::Command::new("strace");
    c.args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg(bin_path("paddockd"))
        .args(["run", "--policy"])
        .arg(f.policy());
    if let Some(data) = input {
        let p = dir.path().join("input");
        std::fs::write(&p, data).expect("input");
        c.arg("--input").arg(p);
    }
    let out = c
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run strace: install strace (tests/run-all.sh does)");
    assert!(
        out.status.success(),
        "strace paddockd run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from paddockd run ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (json, std::fs::read_to_string(&log).expect("strace log"))
}

/// Every syscall paddock-wasm makes, from the execve that starts it to its
/// exit, is in the `wasm` profile: the runner is traced with `strace -f` from
/// the host (ptrace from outside the sandbox; the sandbox's own processes
/// cannot trace), so a call the filter refuses still shows (strace sees the
/// syscall before seccomp answers it). Covered: oneshot STDIO for every
/// fixture and a malformed module (each run's outcome asserted, so each path
/// really ran: output, fuel, memory and table limits, trap, link and parse
/// errors), oneshot FILE (file_hello; escape: openat2, path_symlink;
/// wasi_calls: every other host call that reaches the kernel), and
/// warm mode through a daemon (start-up, several calls over STDIO and FILE,
/// an out-of-fuel call,
/// until the daemon stops, which ends warm runners: one that sees its request
/// pipe close first exits by itself, by the oneshot exit path covered above;
/// one the kill reaches first makes no exit call at all).
#[test]
fn wasm_runner_makes_only_syscalls_in_the_wasm_profile() {
    require_root();
    let profile = wasm_profile();
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    // `exits`: whether the runner must end by itself (oneshot: `Some(true)`),
    // or may either end by itself or be killed (`None`: warm runners when the
    // daemon stops; a runner that reads the end of its request pipe before the
    // kill lands exits on its own, one killed first never calls exit_group).
    let mut record = |what: &str, log: &str, want_runners: usize, exits: Option<bool>| {
        let (runners, calls) = runner_calls(log);
        assert_eq!(
            runners, want_runners,
            "{what}: runner execve not found in the trace"
        );
        assert!(calls.contains_key("execve"), "{what}: {calls:?}");
        if let Some(exits) = exits {
            assert_eq!(calls.contains_key("exit_group"), exits, "{what}: {calls:?}");
        }
        let outside: Vec<&String> = calls.keys().filter(|c| !profile.contains(*c)).collect();
        assert!(
            outside.is_empty(),
            "{what}: paddock-wasm made {outside:?}, which the wasm profile refuses; all calls: {calls:?}"
        );
        for (k, v) in calls {
            *seen.entry(k).or_insert(0) += v;
        }
    };

    // Oneshot STDIO: (fixture, fuel, expected exit code, expected wasm_error kind).
    let stdio: [(&str, u64, i64, Option<&str>); 11] = [
        ("hello.wat", 1_000_000, 0, None),
        ("warm.wat", 1_000_000, 0, None),
        ("fib.wat", 1_000_000_000, 40, None),
        ("loop.wat", 1_000_000, RESERVED, Some("out_of_fuel")),
        ("start_loop.wat", 1_000_000, RESERVED, Some("out_of_fuel")),
        ("memory_grow.wat", 1_000_000, 0, None),
        ("memory_huge.wat", 1_000_000, RESERVED, Some("memory_limit")),
        ("table_grow.wat", 1_000_000, 0, None),
        ("recursion.wat", 1_000_000_000, RESERVED, Some("trap")),
        ("env_system.wat", 1_000_000, RESERVED, Some("link")),
        ("escape.wat", 1_000_000, 0, None),
    ];
    for (name, fuel, code, kind) in stdio {
        let mut f = WasmFn::fixture(name);
        f.fuel = fuel;
        let (r, log) = traced_run(&f, None);
        assert_eq!(r["status"], "exited", "{name}: {r}");
        assert_eq!(r["exit_code"], code, "{name}: {r}");
        match kind {
            None => assert!(r["wasm_error"].is_null(), "{name}: {r}"),
            Some(k) => assert_eq!(r["wasm_error"]["kind"], k, "{name}: {r}"),
        }
        record(name, &log, 1, Some(true));
    }
    let (r, log) = traced_run(&WasmFn::new("bad.wasm", b"\0asm\x02\0\0\0"), None);
    assert_eq!(r["wasm_error"]["kind"], "invalid_module", "{r}");
    record("bad.wasm", &log, 1, Some(true));

    // Oneshot FILE.
    let (r, log) = traced_run(&WasmFn::fixture("file_hello.wat").file(), Some(b"paddock"));
    assert_eq!(r["output"], "hello, paddock", "{r}");
    record("file_hello.wat (file)", &log, 1, Some(true));
    let (r, log) = traced_run(&WasmFn::fixture("escape.wat").file(), Some(b"x"));
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(r["stdout"].as_str().unwrap_or("").ends_with("00\n"), "{r}");
    record("escape.wat (file)", &log, 1, Some(true));
    // Every host call that reaches the kernel, each one succeeding.
    let (r, log) = traced_run(&WasmFn::fixture("wasi_calls.wat").file(), Some(b"x"));
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["stdout"], "00\n".repeat(20), "{r}");
    record("wasi_calls.wat (file)", &log, 1, Some(true));

    // Warm, through a daemon traced from before the runners start until
    // they end: the daemon and every process beneath it (its launcher, which
    // clones the sandboxes), all threads; strace -f follows what they start.
    let mut d = integration_tests::daemon::TestDaemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("strace.log");
    let tree = process_tree(d.pid() as u32);
    let mut tracer = std::process::Command::new("strace");
    tracer.args(["-f", "-qq", "-o"]).arg(&log);
    for pid in &tree {
        tracer.arg("-p").arg(pid.to_string());
    }
    let mut tracer = tracer
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("strace -p the daemon");
    let attached = eventually(std::time::Duration::from_secs(5), || {
        tree.iter().all(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| {
                    tasks.flatten().all(|t| {
                        std::fs::read_to_string(t.path().join("status")).is_ok_and(|s| {
                            s.lines()
                                .find_map(|l| l.strip_prefix("TracerPid:"))
                                .is_some_and(|v| v.trim() != "0")
                        })
                    })
                })
                .unwrap_or(false)
        })
    });
    assert!(
        attached,
        "strace did not attach to every thread of {tree:?}"
    );
    let warm = |m: &str| {
        format!("runtime = \"wasm\"\nmode = \"warm\"\nmodule = \"{m}\"\n\n[limits]\nwasm_fuel = 1_000_000\n")
    };
    d.deploy_ok(
        "wcount",
        &warm("m.wat"),
        &[("m.wat", &fixture("warm.wat"), false)],
    );
    d.deploy_ok(
        "whello",
        &warm("m.wat"),
        &[("m.wat", &fixture("hello.wat"), false)],
    );
    d.deploy_ok(
        "wfile",
        &warm("m.wat").replace("mode = ", "protocol = \"file\"\nmode = "),
        &[("m.wat", &fixture("file_hello.wat"), false)],
    );
    for _ in 0..3 {
        let v = d.invoke("wfile", "paddock");
        assert_eq!(v["result"]["output"], "hello, paddock", "{v}");
        let v = d.invoke("wcount", "");
        assert_eq!(v["result"]["stdout"], "count=1\n", "{v}");
        assert_eq!(v["result"]["warm"], true, "{v}");
        let v = d.invoke("whello", "");
        assert_eq!(v["result"]["stdout"], "hello from wasm\n", "{v}");
    }
    let v = d.invoke("wcount", "loop");
    assert_eq!(v["result"]["wasm_error"]["kind"], "out_of_fuel", "{v}");
    d.stop();
    let ended = eventually(std::time::Duration::from_secs(10), || {
        tracer.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = tracer.kill();
    }
    let _ = tracer.wait();
    assert!(ended, "strace did not end with the daemon");
    let text = std::fs::read_to_string(&log).expect("strace log");
    record("warm (daemon)", &text, 3, None);

    if std::env::var_os("PADDOCK_PRINT_RUNNER_SYSCALLS").is_some() {
        eprintln!("paddock-wasm syscalls: {seen:?}");
        let unused: Vec<&String> = profile.iter().filter(|p| !seen.contains_key(*p)).collect();
        eprintln!("in the profile, not seen: {unused:?}");
    }
}
