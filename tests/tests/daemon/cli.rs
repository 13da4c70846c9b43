//! The `paddock` client binary against a real daemon: payload sources,
//! exit codes, `--json`, and every management command.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::daemon::*;
use integration_tests::{bin_path, require_root};

/// What one `paddock` run printed and how it exited.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `paddock --socket <daemon> ARGS`, with `stdin` piped in (or an empty
/// pipe when None), and waits at most 30 s.
fn paddock(d: &TestDaemon, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut child = Command::new(bin_path("paddock"))
        .arg("--socket")
        .arg(d.socket())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn paddock");
    {
        let mut si = child.stdin.take().expect("stdin");
        if let Some(b) = stdin {
            si.write_all(b).expect("write stdin");
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("paddock {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().expect("output");
    Out {
        code: o.status.code().expect("exited, not signaled"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

const ADA: &str = "{\"greeting\": \"Hello, Ada!\"}\n";

#[test]
fn cli_invoke_payload_from_input_input_file_and_stdin() {
    require_root();
    let d = TestDaemon::start();
    let file = d.root().join("payload.json");
    std::fs::write(&file, r#"{"name":"Ada"}"#).expect("write");
    let file = file.to_string_lossy().into_owned();
    for (args, stdin) in [
        (
            vec!["invoke", "hello-python", "--input", r#"{"name":"Ada"}"#],
            None,
        ),
        (vec!["invoke", "hello-python", "--input-file", &file], None),
        (
            vec!["invoke", "hello-python"],
            Some(&br#"{"name":"Ada"}"#[..]),
        ),
        (
            vec!["invoke", "hello-python", "--input-file", "-"],
            Some(&br#"{"name":"Ada"}"#[..]),
        ),
    ] {
        let o = paddock(&d, &args, stdin);
        assert_eq!(o.code, 0, "{args:?}: {o:?}");
        assert_eq!(o.stdout, ADA, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains("paddock: hello-python exited 0"),
            "{args:?}: no status line: {o:?}"
        );
    }
    // FILE protocol: the output file is the response on stdout.
    let o = paddock(&d, &["invoke", "wordcount-sh"], Some(b"one two\nthree\n"));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout, "{\"lines\": 2, \"words\": 3, \"bytes\": 14}\n",
        "{o:?}"
    );
}

#[test]
fn cli_exit_code_mirrors_the_function_timeout_and_daemon_errors() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_sh("seven", "echo out\necho err >&2\nexit 7\n", "");
    d.deploy_sh("usr1", "kill -USR1 $$\n", "");
    d.deploy_ok("sleepy", crate::SLEEPY, &[]);
    let o = paddock(&d, &["invoke", "seven"], None);
    assert_eq!(o.code, 7, "{o:?}");
    assert_eq!(o.stdout, "out\n", "{o:?}");
    assert!(o.stderr.starts_with("err\n"), "{o:?}");
    assert!(o.stderr.contains("seven exited 7"), "{o:?}");
    let o = paddock(&d, &["invoke", "usr1"], None);
    assert_eq!(o.code, 128 + libc::SIGUSR1, "{o:?}");
    let o = paddock(&d, &["invoke", "sleepy", "--timeout", "200"], None);
    assert_eq!(o.code, 124, "{o:?}");
    assert!(o.stderr.contains("sleepy timeout"), "{o:?}");
    let o = paddock(&d, &["invoke", "no-such-fn"], None);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("unknown_function"), "{o:?}");
    assert_eq!(o.stdout, "", "{o:?}");
    // A timeout above the policy's is the daemon's bad_request: 2 as well.
    let o = paddock(&d, &["invoke", "hello-python", "--timeout", "999999"], None);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("bad_request"), "{o:?}");
}

#[test]
fn cli_json_prints_the_raw_answer_line() {
    require_root();
    let d = TestDaemon::start();
    let o = paddock(
        &d,
        &[
            "--json",
            "invoke",
            "hello-python",
            "--input",
            r#"{"name":"Ada"}"#,
            "--trace-id",
            "t-1",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().count(), 1, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("one JSON line");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["id"].is_number() || v["id"].is_string(), "{v}");
    assert_eq!(v["result"]["stdout"], ADA, "{v}");
    assert_eq!(v["result"]["function"], "hello-python", "{v}");
    assert_eq!(o.stderr, "", "--json wrote to stderr: {o:?}");
    let o = paddock(&d, &["--json", "invoke", "nope"], None);
    assert_eq!(o.code, 2, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("one JSON line");
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
    let o = paddock(&d, &["--json", "list"], None);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("one JSON line");
    assert!(v["result"]["functions"].is_array(), "{v}");
}

#[test]
fn cli_list_describe_and_stats() {
    require_root();
    let d = TestDaemon::start();
    let o = paddock(&d, &["list"], None);
    assert_eq!(o.code, 0, "{o:?}");
    let mut lines = o.stdout.lines();
    let header = lines.next().expect("header");
    for col in ["NAME", "RUNTIME", "PROTOCOL", "MODE", "ORIGIN", "VERSION"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines
        .find(|l| l.starts_with("hello-python "))
        .unwrap_or_else(|| panic!("no hello-python row: {}", o.stdout));
    for cell in ["native", "stdio", "oneshot", "config"] {
        assert!(row.contains(cell), "{row}");
    }
    let o = paddock(&d, &["describe", "hello-python"], None);
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("describe prints JSON");
    assert_eq!(v["name"], "hello-python", "{v}");
    assert_eq!(v["limits"]["timeout_ms"], 5000, "{v}");
    let o = paddock(&d, &["describe", "nope"], None);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(paddock(&d, &["invoke", "hello-python"], None).code, 0);
    let o = paddock(&d, &["stats"], None);
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("stats prints JSON");
    assert_eq!(v["totals"]["hello-python"]["exited"], 1, "{v}");
    assert_eq!(v["in_flight"], 0, "{v}");
}

#[test]
fn cli_deploy_from_a_directory_then_invoke_then_remove() {
    require_root();
    let d = TestDaemon::start();
    let src = d.root().join("src");
    let files = src.join("files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let policy = src.join("shout.toml");
    std::fs::write(
        &policy,
        "runtime = \"native\"\ncommand = [\"/fn/shout.sh\"]\n",
    )
    .expect("write");
    let script = files.join("shout.sh");
    std::fs::write(&script, "#!/bin/sh\nexec tr a-z A-Z\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (p, f) = (path_str(&policy), path_str(&files));
    let o = paddock(&d, &["deploy", "shout", "--policy", &p, "--dir", &f], None);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "paddock: deployed shout version 1\n", "{o:?}");
    let o = paddock(&d, &["invoke", "shout", "--input", "hello\n"], None);
    assert_eq!((o.code, o.stdout.as_str()), (0, "HELLO\n"), "{o:?}");
    // Redeploy: a new version.
    std::fs::write(&script, "#!/bin/sh\necho v2\n").expect("write");
    let o = paddock(&d, &["deploy", "shout", "--policy", &p, "--dir", &f], None);
    assert_eq!(o.stdout, "paddock: deployed shout version 2\n", "{o:?}");
    let o = paddock(&d, &["invoke", "shout"], None);
    assert_eq!(o.stdout, "v2\n", "{o:?}");
    let o = paddock(&d, &["remove", "shout"], None);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "paddock: removed shout\n", "{o:?}");
    let o = paddock(&d, &["invoke", "shout"], None);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("unknown_function"), "{o:?}");
    // A policy the daemon rejects: 2, with the reason.
    std::fs::write(&policy, "runtime = \"cobol\"\n").expect("write");
    let o = paddock(&d, &["deploy", "shout", "--policy", &p], None);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("invalid_policy"), "{o:?}");
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

#[test]
fn cli_reload_reports_functions_and_problems() {
    require_root();
    let d = TestDaemon::start();
    let pol = "runtime = \"native\"\ncommand = [\"/bin/echo\", \"dropped\"]\n";
    std::fs::write(d.functions_dir().join("dropped.toml"), pol).expect("write");
    let before = paddock(&d, &["--json", "list"], None);
    let n: serde_json::Value = serde_json::from_str(&before.stdout).expect("json");
    let n = n["result"]["functions"]
        .as_array()
        .expect("functions")
        .len();
    let o = paddock(&d, &["reload"], None);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout,
        format!("paddock: reloaded, {} functions\n", n + 1),
        "{o:?}"
    );
    let o = paddock(&d, &["invoke", "dropped"], None);
    assert_eq!((o.code, o.stdout.as_str()), (0, "dropped\n"), "{o:?}");
    // A broken policy file: reported, left out, exit 1.
    std::fs::write(d.functions_dir().join("broken.toml"), "runtime = 3\n").expect("write");
    let o = paddock(&d, &["reload"], None);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("paddock: problem: ") && o.stderr.contains("broken"),
        "{o:?}"
    );
    assert_eq!(paddock(&d, &["invoke", "dropped"], None).code, 0);
}
