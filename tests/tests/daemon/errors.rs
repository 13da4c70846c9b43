//! Error codes: bad_request, unknown_op, unknown_function, forbidden,
//! too_large, busy, invalid_policy, shutting_down, internal.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

use crate::SLEEPY;

#[test]
fn errors_malformed_requests_get_bad_request_and_the_connection_survives() {
    require_root();
    let d = TestDaemon::start();
    let mut c = d.client();
    let lines: [(&str, serde_json::Value); 7] = [
        ("{not json", serde_json::Value::Null),
        (r#"{"op":"hello"}"#, serde_json::Value::Null),
        (r#"{"id":3,"op":"hello","extra":1}"#, json!(3)),
        (
            r#"{"id":4,"op":"invoke","function":"hello-python","input":"a","input_base64":"YQ=="}"#,
            json!(4),
        ),
        (
            r#"{"id":5,"op":"invoke","function":"hello-python","timeout_ms":6000}"#,
            json!(5),
        ),
        (
            r#"{"id":6,"op":"invoke","function":"hello-python","env":{"PATH":"/evil"}}"#,
            json!(6),
        ),
        (
            r#"{"id":7,"op":"invoke","function":"hello-python","input_base64":"***"}"#,
            json!(7),
        ),
    ];
    for (line, id) in lines {
        c.write_bytes(format!("{line}\n").as_bytes())
            .expect("write");
        let v = c.recv();
        assert_eq!(code(&v), Some("bad_request"), "{line}: {v}");
        assert_eq!(v["id"], id, "{line}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let v = c.call(&json!({"id": 8, "op": "hello"}));
    assert_eq!(v["ok"], true, "connection broken after bad requests: {v}");
}

#[test]
fn errors_unknown_op_and_unknown_function_are_typed() {
    require_root();
    let d = TestDaemon::start();
    let mut c = d.client();
    let v = c.call(&json!({"id": 1, "op": "frobnicate"}));
    assert_eq!(code(&v), Some("unknown_op"), "{v}");
    assert_eq!(v["id"], 1);
    let v = c.call(&json!({"id": 2, "op": "invoke", "function": "no-such-fn"}));
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
    assert_eq!(v["id"], 2);
}

#[test]
fn errors_uid_not_in_access_is_forbidden() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config(
        "[access]\ninvoke = { uids = [12345], groups = [] }\nadmin = { uids = [12345], groups = [] }\n",
    ));
    let mut c = d.client();
    for (i, req) in [
        json!({"op": "invoke", "function": "hello-python"}),
        json!({"op": "list"}),
        json!({"op": "stats"}),
        json!({"op": "reload"}),
        json!({"op": "deploy", "function": "x", "policy": SLEEPY}),
        json!({"op": "remove", "function": "x"}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut req = req;
        req["id"] = json!(i);
        let v = c.call(&req);
        assert_eq!(code(&v), Some("forbidden"), "{req}: {v}");
        assert_eq!(v["id"], i, "{v}");
    }
    assert!(!d.state_dir().join("functions/x").exists());
}

#[test]
fn errors_line_over_cap_is_too_large_then_eof_and_daemon_serves_on() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config("[limits]\nmax_line = \"64KiB\"\n"));
    let mut c = d.client();
    let big = vec![b'x'; 100 * 1024];
    let _ = c.write_bytes(&big); // the daemon may close before taking it all
    let v = c.recv_within(Duration::from_secs(5));
    assert_eq!(code(&v), Some("too_large"), "{v}");
    assert!(
        c.wait_eof(Duration::from_secs(5)),
        "connection not closed after too_large"
    );
    let v = d.client().call(&json!({"id": 1, "op": "hello"}));
    assert_eq!(v["ok"], true, "{v}");
    // Just under the cap is fine: a long but valid line.
    let mut c = d.client();
    let input = "y".repeat(60 * 1024);
    let v = c.call(&json!({"id": 2, "op": "invoke", "function": "wordcount-sh", "input": input}));
    assert_eq!(v["result"]["status"], "exited", "{v}");
}

#[test]
fn errors_full_queue_answers_busy_with_retry_after() {
    require_root();
    let d = TestDaemon::with(DaemonOpts::config("[limits]\nconcurrency = 1\nqueue = 1\n"));
    d.deploy_ok("sleepy", &crate::sleep_policy("30", "concurrency = 1"), &[]);
    let mut c = d.client();
    c.send(&json!({"id": 1, "op": "invoke", "function": "sleepy"}));
    c.send(&json!({"id": 2, "op": "invoke", "function": "sleepy"}));
    let t = Instant::now();
    let v = c.call(&json!({"id": 3, "op": "invoke", "function": "sleepy"}));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "busy took {:?}",
        t.elapsed()
    );
    assert_eq!(v["id"], 3, "{v}");
    assert_eq!(code(&v), Some("busy"), "{v}");
    assert!(
        v["error"]["retry_after_ms"].as_u64().is_some_and(|r| r > 0),
        "{v}"
    );
    let s = d.stats();
    assert_eq!(s["in_flight"], 1, "{s}");
    assert_eq!(s["queued"], 1, "{s}");
    assert_eq!(s["rejected_busy"], 1, "{s}");
    // Cancel the queued one first (so it does not start), then the running one.
    for id in [2, 1] {
        c.send(&json!({"id": format!("c{id}"), "op": "cancel", "request": id}));
    }
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(c.recv_within(Duration::from_secs(5)));
    }
    for id in [1, 2] {
        let a = got.iter().find(|v| v["id"] == id).expect("answer");
        assert_eq!(a["result"]["status"], "cancelled", "{a}");
    }
}

#[test]
fn errors_bad_deployed_policies_are_invalid_policy() {
    require_root();
    let d = TestDaemon::start();
    for (what, policy) in [
        ("network", format!("{SLEEPY}network = true\n")),
        ("unknown key", format!("{SLEEPY}frobnicate = 1\n")),
        ("directory", format!("{SLEEPY}directory = \"/etc\"\n")),
        ("not toml", "runtime = \n".to_string()),
        (
            "over ceiling",
            format!("{SLEEPY}[limits]\nmemory = \"64GiB\"\n"),
        ),
    ] {
        let v = d.deploy("bad", &policy, &[]);
        assert_eq!(code(&v), Some("invalid_policy"), "{what}: {v}");
    }
    // Nothing of the failed deploys stays behind.
    let v = d.invoke("bad", "");
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
    let left: Vec<_> = std::fs::read_dir(d.state_dir().join("functions"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the state dir: {left:?}");
    // Bad file names are bad requests.
    let v = d.deploy("bad", SLEEPY, &[("../x", b"x", false)]);
    assert_eq!(code(&v), Some("bad_request"), "{v}");
}

#[test]
fn errors_sigterm_drains_then_exits_and_removes_the_socket() {
    require_root();
    let mut d = TestDaemon::with(DaemonOpts {
        drain_timeout_ms: Some(1500),
        ..Default::default()
    });
    d.deploy_ok("sleepy", SLEEPY, &[]);
    let mut c = d.client();
    c.send(&json!({"id": "run", "op": "invoke", "function": "sleepy"}));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    d.signal(libc::SIGTERM);
    let gone = integration_tests::eventually(Duration::from_secs(1), || {
        std::os::unix::net::UnixStream::connect(d.socket()).is_err()
    });
    assert!(gone, "the listener still accepts after SIGTERM");
    let v = c.call(&json!({"id": "late", "op": "invoke", "function": "hello-python"}));
    assert_eq!(v["id"], "late", "{v}");
    assert_eq!(code(&v), Some("shutting_down"), "{v}");
    // Read-only ops are still answered while draining.
    let v = c.call(&json!({"id": "h", "op": "hello"}));
    assert_eq!(v["ok"], true, "{v}");
    let v = c.recv_within(Duration::from_secs(5));
    assert_eq!(v["id"], "run", "{v}");
    assert!(
        ["cancelled", "timeout", "signaled"]
            .contains(&v["result"]["status"].as_str().unwrap_or("")),
        "in-flight run after drain: {v}"
    );
    let st = d
        .wait_exit(Duration::from_secs(5))
        .expect("daemon did not exit after drain");
    assert!(st.success(), "exit {st}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drain took {:?}",
        t.elapsed()
    );
    assert!(!d.socket().exists(), "socket file left behind");
}

#[test]
fn errors_deploy_failing_on_the_daemons_side_is_internal_and_the_daemon_serves_on() {
    require_root();
    let d = TestDaemon::start();
    // A regular file where the deployed functions' directory must go.
    let fns = d.state_dir().join("functions");
    if fns.is_dir() {
        std::fs::remove_dir_all(&fns).expect("rmdir");
    }
    std::fs::write(&fns, b"in the way").expect("write");
    let v = d.deploy("greet", &sh_policy("", ""), &[("h.sh", b"echo hi\n", true)]);
    assert_eq!(code(&v), Some("internal"), "{v}");
    assert_eq!(v["id"], 0, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    // Nothing half-made is visible, and everything else still works.
    let v = d.invoke("greet", "");
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
    let v = d.invoke("hello-python", r#"{"name":"Ada"}"#);
    assert_eq!(v["result"]["status"], "exited", "{v}");
    assert_eq!(std::fs::read(&fns).expect("read"), b"in the way");
    // The request may be retried once the cause is gone.
    std::fs::remove_file(&fns).expect("rm");
    assert_eq!(d.deploy_sh("greet", "echo hi\n", ""), 1, "{}", d.stderr());
    assert_eq!(d.invoke("greet", "")["result"]["stdout"], "hi\n");
}

#[test]
fn errors_sigterm_answers_queued_invocations_shutting_down_and_a_short_run_finishes() {
    require_root();
    let mut d = TestDaemon::with(DaemonOpts {
        config: "[limits]\nconcurrency = 1\n".into(),
        drain_timeout_ms: Some(10_000),
        ..Default::default()
    });
    d.deploy_sh("short", "sleep 1\necho done\n", "");
    let mut c = d.client();
    c.send(&json!({"id": "run", "op": "invoke", "function": "short"}));
    let started =
        integration_tests::eventually(Duration::from_secs(5), || d.stats()["in_flight"] == 1);
    assert!(started, "the short run never started: {}", d.stderr());
    for id in ["q1", "q2"] {
        c.send(&json!({"id": id, "op": "invoke", "function": "hello-python"}));
    }
    let queued = integration_tests::eventually(Duration::from_secs(2), || d.stats()["queued"] == 2);
    assert!(queued, "the two invocations were not queued");
    d.signal(libc::SIGTERM);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(c.recv_within(Duration::from_secs(10)));
    }
    // The queued ones first, at once; the running one when it ends.
    for (i, id) in ["q1", "q2"].iter().enumerate() {
        let a = got.iter().position(|v| v["id"] == *id).expect("answered");
        assert_eq!(code(&got[a]), Some("shutting_down"), "{}", got[a]);
        assert!(a < 2, "{id} answered after the drained run: {got:?} ({i})");
    }
    let run = got.iter().find(|v| v["id"] == "run").expect("run answered");
    assert_eq!(run["result"]["status"], "exited", "{run}");
    assert_eq!(run["result"]["exit_code"], 0, "{run}");
    assert_eq!(run["result"]["stdout"], "done\n", "{run}");
    let st = d
        .wait_exit(Duration::from_secs(5))
        .expect("daemon did not exit after the drain");
    assert!(st.success(), "exit {st}");
}

/// FS6 over the socket. The row's "hostile archive" (node-tar's CVE) maps
/// onto `deploy` like this: a deploy is a flat JSON map of file name →
/// base64 bytes plus a list of names to mark executable. Nothing is
/// unpacked: there is no entry type, so a symlink (`a -> /etc`), a hardlink
/// to /etc/shadow or a device node cannot be expressed at all, and there is
/// no mode field, so 4755 cannot be asked for except as an unknown key. What
/// an attacker does control is the names (`../../etc/cron.d/x`, `/abs`,
/// `a/passwd` beside a file `a`) and whatever else the request carries:
/// each is bad_request, and nothing is created, in the state directory or
/// anywhere else.
#[test]
fn errors_hostile_deploy_file_names_are_bad_request_and_create_nothing() {
    require_root();
    let d = TestDaemon::start();
    let before = integration_tests::walk_tree(d.root());
    let long = "n".repeat(300);
    let policy = sh_policy("", "");
    for bad in [
        "/abs",
        "a/passwd",
        "../x",
        "../../etc/cron.d/x",
        "..",
        ".",
        "",
        "a\0b",
        long.as_str(),
    ] {
        let files: [(&str, &[u8], bool); 3] = [
            ("h.sh", b"echo hi\n", true),
            ("a", b"a file named a", false),
            (bad, b"planted", false),
        ];
        let v = d.deploy("fs6", &policy, &files);
        assert_eq!(code(&v), Some("bad_request"), "{bad:?}: {v}");
        // As executable too: the name is checked wherever it appears.
        let v = d.deploy(
            "fs6",
            &policy,
            &[("h.sh", b"echo hi\n", true), (bad, b"x", true)],
        );
        assert_eq!(code(&v), Some("bad_request"), "{bad:?} executable: {v}");
    }
    // Asking for a mode: the protocol has no such field.
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"echo hi\n");
    for extra in [
        json!({"modes": {"h.sh": 0o4755}}),
        json!({"mode": 0o4755}),
        json!({"setuid": ["h.sh"]}),
    ] {
        let mut req = json!({"id": 9, "op": "deploy", "function": "fs6", "policy": policy,
            "files": {"h.sh": b64}, "executable": ["h.sh"]});
        for (k, x) in extra.as_object().expect("object") {
            req[k] = x.clone();
        }
        let v = d.client().call(&req);
        assert_eq!(code(&v), Some("bad_request"), "{req}: {v}");
        assert_eq!(v["id"], 9, "{v}");
    }
    assert_eq!(
        integration_tests::walk_tree(d.root()),
        before,
        "a refused deploy changed the daemon's directories"
    );
    assert!(!Path::new("/abs").exists(), "/abs created on the host");
    let v = d.invoke("fs6", "");
    assert_eq!(code(&v), Some("unknown_function"), "{v}");
}

/// FS6: files are created exactly 0644, or 0755 when listed executable:
/// never set-id or sticky, and not narrowed or widened by the daemon's umask
/// (a restrictive 077 here, which would make them 0600/0700 and unreadable
/// to the sandbox's uid if the daemon relied on the creation mode). The
/// sandbox sees the same modes.
#[test]
fn errors_deployed_files_are_exactly_0644_or_0755_whatever_the_umask() {
    require_root();
    let d = TestDaemon::with(DaemonOpts {
        umask: Some(0o077),
        ..Default::default()
    });
    // The state directory itself is the admin's (/var/lib/paddock, 0755 from
    // the package); the daemon made this one at start-up, under its umask.
    std::fs::set_permissions(d.state_dir(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod state dir");
    let script = "stat -c '%n %a' /fn/h.sh /fn/data /fn/tool\n";
    let v = d.deploy_ok(
        "modes",
        &sh_policy("", ""),
        &[
            ("h.sh", script.as_bytes(), true),
            ("data", b"\x00\x01\x02", false),
            ("tool", b"#!/bin/sh\n", true),
        ],
    );
    let vdir = d.state_dir().join(format!("functions/modes/v{v}"));
    let mode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .mode()
            & 0o7777
    };
    for (p, want) in [
        (vdir.join("modes/h.sh"), 0o755),
        (vdir.join("modes/tool"), 0o755),
        (vdir.join("modes/data"), 0o644),
        (vdir.join("modes.toml"), 0o644),
        (vdir.join("modes"), 0o755),
        (vdir.clone(), 0o755),
        (d.state_dir().join("functions/modes"), 0o755),
        (d.state_dir().join("functions"), 0o755),
    ] {
        assert_eq!(mode(&p), want, "{} is {:o}", p.display(), mode(&p));
    }
    let owner = std::fs::metadata(vdir.join("modes/h.sh")).expect("stat");
    assert_eq!((owner.uid(), owner.gid()), (0, 0), "files not root's");
    let r = d.invoke("modes", "");
    assert_eq!(
        r["result"]["stdout"],
        "/fn/h.sh 755\n/fn/data 644\n/fn/tool 755\n",
        "{r}\n{}",
        d.stderr()
    );
}

/// RG1 over the socket: every name of the row is refused by deploy with
/// bad_request (the name becomes a directory, a file, a cgroup and a log
/// field), and nothing is created anywhere.
#[test]
fn errors_hostile_function_names_are_bad_request_and_create_nothing() {
    require_root();
    let d = TestDaemon::start();
    let before = integration_tests::walk_tree(d.root());
    let passwd = std::fs::read("/etc/passwd").expect("read /etc/passwd");
    let long = "a".repeat(300);
    for name in [
        "../../etc/passwd",
        "..",
        "",
        "a/b",
        "-rf",
        long.as_str(),
        "ｆｏｏ",
        "x\n",
    ] {
        let v = d.deploy(name, &sh_policy("", ""), &[("h.sh", b"echo hi\n", true)]);
        assert_eq!(code(&v), Some("bad_request"), "{name:?}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("function name")),
            "{name:?}: {v}"
        );
    }
    assert_eq!(
        integration_tests::walk_tree(d.root()),
        before,
        "a refused deploy changed the daemon's directories"
    );
    assert_eq!(std::fs::read("/etc/passwd").expect("read"), passwd);
    assert!(!Path::new("/etc/h.sh").exists());
    let names = d.client().call(&json!({"id": 1, "op": "list"}))["result"]["functions"]
        .as_array()
        .expect("functions")
        .len();
    let examples = std::fs::read_dir(d.functions_dir())
        .expect("functions dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(names, examples, "only the example functions are listed");
}
