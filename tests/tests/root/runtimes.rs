//! Real interpreters as functions: python3, node and /bin/sh, over STDIO.

use integration_tests::*;

#[test]
fn runtimes_python_script_runs() {
    require_root();
    let d = FnDir::new();
    d.add_file(
        "handler.py",
        b"import sys, json\ndata = sys.stdin.read()\nprint(json.dumps({\"py\": data.upper()}))\n",
        0o644,
    );
    let p = d
        .policy()
        .name("py")
        .command(&["/usr/bin/python3", "/fn/handler.py"])
        .read_only("/etc/alternatives")
        .limit("memory", "\"128MiB\"")
        .write();
    let r = run(&p, &[], Some(b"hello"));
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.stdout(), "{\"py\": \"HELLO\"}\n", "{r}");
}

#[test]
fn runtimes_node_script_runs() {
    require_root();
    let d = FnDir::new();
    d.add_file(
        "handler.js",
        b"let d = '';\nprocess.stdin.on('data', c => d += c);\n\
          process.stdin.on('end', () => console.log(JSON.stringify({node: d.toUpperCase()})));\n",
        0o644,
    );
    let p = d
        .policy()
        .name("js")
        .command(&["/usr/bin/node", "/fn/handler.js"])
        .read_only("/etc/alternatives")
        .limit("memory", "\"256MiB\"")
        .write();
    let r = run(&p, &[], Some(b"hello"));
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(0), "{r}");
    assert_eq!(r.stdout(), "{\"node\":\"HELLO\"}\n", "{r}");
}

#[test]
fn runtimes_shell_script_runs() {
    require_root();
    let d = FnDir::new();
    d.add_file(
        "run.sh",
        b"read x\necho \"sh:$x\"\necho oops >&2\nexit 3\n",
        0o755,
    );
    let p = d
        .policy()
        .name("sh")
        .command(&["/bin/sh", "/fn/run.sh"])
        .write();
    let r = run(&p, &[], Some(b"hello\n"));
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.exit_code(), Some(3), "{r}");
    assert_eq!(r.stdout(), "sh:hello\n", "{r}");
    assert_eq!(r.stderr(), "oops\n", "{r}");
}

#[test]
fn runtimes_policy_command_is_used() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().command(&["/fn/probe", "hostname"]).write();
    let r = run(&p, &[], None);
    assert_eq!(r.probe_exited()["hostname"], "paddock", "{r}");
    assert_eq!(r.json["landlock"], "fully_enforced", "{r}");
}

#[test]
fn runtimes_missing_command_is_failed_to_start() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/no-such-file"], None);
    assert_eq!(r.status(), "failed_to_start", "{r}");
    assert_eq!(r.json["error"]["errno"], 2, "{r}");
}

#[test]
fn runtimes_launch_trace_lists_every_setup_step_in_order() {
    require_root();
    let (_d, p) = setup();
    let out = std::process::Command::new(bin_path("paddockd"))
        .args(["run", "--policy"])
        .arg(&p)
        .args(["--", "/fn/probe", "hostname"])
        .env("PADDOCK_TRACE", "1")
        .output()
        .expect("paddockd run");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let steps: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("trace "))
        .filter_map(|l| l.split("us  ").last())
        .collect();
    let want = [
        "parent: plan",
        "parent: clone3",
        "parent: cgroup attach",
        "child: wait_parent",
        "child: build_root",
        "child: pivot_root",
        "child: caps",
        "child: landlock",
        "parent: ready received",
        "parent: command ended",
    ];
    let mut at = 0;
    for w in want {
        let found = steps[at..].iter().position(|s| s.trim() == w);
        assert!(found.is_some(), "{w} missing or out of order in {steps:?}");
        at += found.unwrap() + 1;
    }
    // Without the variable, nothing is traced.
    let quiet = std::process::Command::new(bin_path("paddockd"))
        .args(["run", "--policy"])
        .arg(&p)
        .args(["--", "/fn/probe", "hostname"])
        .output()
        .expect("paddockd run");
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("trace "));
}
