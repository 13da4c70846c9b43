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

// ---------------------------------------------------------------- filesystem.writable

/// `paddockd run --config CONFIG --policy POLICY -- CMD...`, holding the shared
/// run lock; returns the parsed result (asserting paddockd exited 0).
fn run_with_config(
    config: &std::path::Path,
    policy: &std::path::Path,
    cmd: &[&str],
) -> serde_json::Value {
    let _shared = run_guard();
    let out = std::process::Command::new(bin_path("paddockd"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--policy")
        .arg(policy)
        .arg("--")
        .args(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("paddockd run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "paddockd run {cmd:?} failed: {out:?}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

/// The probe's JSON line in a result's stdout (asserting exit 0).
fn probe_line(r: &serde_json::Value) -> serde_json::Value {
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");
    let out = r["stdout"].as_str().unwrap_or("");
    serde_json::from_str(out.lines().next().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {r}"))
}

// A writable path is the host's own directory, bound read-write: what the
// function writes there the host sees, owned by the run's unprivileged host
// uid; a read-only path beside it stays read-only; landlock (required) lets
// the write through. Without the admin's ceilings.writable_paths the same
// policy is refused before anything runs.
#[test]
fn writable_path_is_shared_with_the_host_and_owned_by_the_sandbox_uid() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    require_root();
    let d = FnDir::new();
    // Not under /tmp: the sandbox mounts its own /tmp there.
    let base = tempfile::Builder::new()
        .prefix("paddock-writable-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    // The sandbox's host uid opens the binds' sources itself: it must be able
    // to reach them, and to write in the writable one.
    chmod(base.path(), 0o755);
    let rw = base.path().join("rw");
    let ro = base.path().join("ro");
    std::fs::create_dir(&rw).expect("mkdir rw");
    std::fs::create_dir(&ro).expect("mkdir ro");
    chmod(&rw, 0o777);
    chmod(&ro, 0o777);
    // A read-only file inside the writable dir (mode 0666: only the mount
    // stops a write, not the permission bits).
    let pinned = rw.join("pinned.txt");
    std::fs::write(&pinned, "pinned").expect("write pinned");
    chmod(&pinned, 0o666);
    // And a root-owned 0644 one: making its mount point must not open it
    // for writing (the sandbox uid may not, so the launch would fail).
    let owned = rw.join("owned.txt");
    std::fs::write(&owned, "owned").expect("write owned");
    chmod(&owned, 0o644);
    let (rw_s, ro_s) = (rw.to_str().unwrap(), ro.to_str().unwrap());
    let (pinned_s, owned_s) = (pinned.to_str().unwrap(), owned.to_str().unwrap());
    let config = base.path().join("paddockd.toml");
    std::fs::write(
        &config,
        format!(
            "[ceilings]\nread_only_paths = [\"/usr\", \"/lib\", \"/lib64\", \"/bin\", {ro_s:?}, {pinned_s:?}, {owned_s:?}]\n\
             writable_paths = [{rw_s:?}]\n"
        ),
    )
    .expect("write config");
    let toml = d
        .policy()
        .name("writer")
        .read_only(ro_s)
        .read_only(pinned_s)
        .read_only(owned_s)
        .to_toml()
        .replace(
            "[filesystem]\n",
            &format!("[filesystem]\nwritable = [{rw_s:?}]\n"),
        );
    assert!(toml.contains("writable = "), "{toml}");
    let policy = d.root().join("writer.toml");
    std::fs::write(&policy, &toml).expect("write policy");

    let target = format!("{rw_s}/from-sandbox");
    let r = run_with_config(&config, &policy, &["/fn/probe", "write", &target, "hello"]);
    assert_ok(&probe_line(&r));
    assert_eq!(r["landlock"], "fully_enforced", "{r}");
    let host_uid = r["host_uid"].as_u64().expect("host_uid") as u32;
    assert!(SANDBOX_UIDS.contains(&host_uid), "{r}");
    let host_file = rw.join("from-sandbox");
    assert_eq!(
        std::fs::read_to_string(&host_file).expect("the host sees the file"),
        "hello"
    );
    let meta = std::fs::metadata(&host_file).expect("stat");
    assert_eq!(meta.uid(), host_uid, "owner of {}", host_file.display());
    assert_eq!(meta.gid(), host_uid, "group of {}", host_file.display());

    // The bind is read-write but nosuid and nodev.
    let st = probe_line(&run_with_config(
        &config,
        &policy,
        &["/fn/probe", "statfs", rw_s],
    ));
    assert_eq!(
        (&st["rdonly"], &st["nosuid"], &st["nodev"]),
        (&false.into(), &true.into(), &true.into()),
        "{st}"
    );
    // The read-only path next to it: EROFS although the host dir is 0777.
    let ro_target = format!("{ro_s}/from-sandbox");
    let w = probe_line(&run_with_config(
        &config,
        &policy,
        &["/fn/probe", "write", &ro_target, "x"],
    ));
    assert_errno(&w, "EROFS");
    assert!(!ro.join("from-sandbox").exists());
    // Read-only binds beneath the writable one: readable, EROFS on write.
    let rd = probe_line(&run_with_config(
        &config,
        &policy,
        &["/fn/probe", "read", owned_s],
    ));
    assert_eq!(rd["content"], "owned", "{rd}");
    let w = probe_line(&run_with_config(
        &config,
        &policy,
        &["/fn/probe", "write_existing", pinned_s, "x"],
    ));
    assert_errno(&w, "EROFS");
    assert_eq!(std::fs::read_to_string(&pinned).unwrap(), "pinned");

    // The same policy under the embedded default config (no writable ceiling).
    let err = run_rejected(&policy, &[]);
    assert!(
        err.contains("filesystem.writable") && err.contains("writable paths are not allowed"),
        "{err}"
    );
}
