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
fn run_with_config(config: &std::path::Path, policy: &std::path::Path, cmd: &[&str]) -> RunResult {
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
    RunResult {
        json: serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}")),
        daemon_stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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
    assert_ok(&r.probe_exited());
    assert_eq!(r.json["landlock"], "fully_enforced", "{r}");
    let host_uid = r.int("host_uid") as u32;
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
    let st = run_with_config(&config, &policy, &["/fn/probe", "statfs", rw_s]).probe_exited();
    assert_eq!(
        (&st["rdonly"], &st["nosuid"], &st["nodev"]),
        (&false.into(), &true.into(), &true.into()),
        "{st}"
    );
    // The read-only path next to it: EROFS although the host dir is 0777.
    let ro_target = format!("{ro_s}/from-sandbox");
    let w =
        run_with_config(&config, &policy, &["/fn/probe", "write", &ro_target, "x"]).probe_exited();
    assert_errno(&w, "EROFS");
    assert!(!ro.join("from-sandbox").exists());
    // Read-only binds beneath the writable one: readable, EROFS on write.
    let rd = run_with_config(&config, &policy, &["/fn/probe", "read", owned_s]).probe_exited();
    assert_eq!(rd["content"], "owned", "{rd}");
    let w = run_with_config(
        &config,
        &policy,
        &["/fn/probe", "write_existing", pinned_s, "x"],
    )
    .probe_exited();
    assert_errno(&w, "EROFS");
    assert_eq!(std::fs::read_to_string(&pinned).unwrap(), "pinned");

    // The same policy under the embedded default config (no writable ceiling).
    let err = run_rejected(&policy, &[]);
    assert!(
        err.contains("filesystem.writable") && err.contains("writable paths are not allowed"),
        "{err}"
    );
}

// ---------------------------------------------------------------- the command line

/// The repository's root (the tests crate's parent).
fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `paddockd ARGS...` with stdin closed: (exit code, stdout, stderr).
fn paddockd_cli(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(bin_path("paddockd"))
        .args(args)
        .current_dir(repo_root())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn paddockd");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

// Bad usage of `paddockd run` / `paddockd check` is one line on stderr naming
// the problem and pointing at --help, exit status 2, nothing on stdout (not
// clap's multi-line usage block).
#[test]
fn cli_bad_usage_is_one_line_and_exit_2() {
    let cases: [(&[&str], &str); 6] = [
        (&["run"], "--policy"),
        (&["run", "--policy"], "--policy"),
        (&["run", "--bogus", "--policy", "x.toml"], "--bogus"),
        (&["run", "--policy", "x.toml", "extra"], "extra"),
        (&["check", "--bogus"], "--bogus"),
        (&["check", "--config"], "--config"),
    ];
    for (args, names) in cases {
        let argv = os(args);
        let refs: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
        let (code, stdout, stderr) = paddockd_cli(&refs);
        let sub = args[0];
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line expected: {stderr:?}"
        );
        assert!(
            stderr.starts_with(&format!("paddockd {sub}: "))
                && stderr.contains(names)
                && stderr
                    .trim_end()
                    .ends_with(&format!("(try 'paddockd {sub} --help')")),
            "{args:?}: {stderr:?}"
        );
    }
    // --help itself still prints the whole help, on stdout, with status 0.
    let (code, stdout, _) = paddockd_cli(&[std::ffi::OsStr::new("run"), "--help".as_ref()]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("--policy") && stdout.lines().count() > 3,
        "{stdout}"
    );
}

// An invalid policy given to `paddockd run` is refused before any sandbox:
// one line on stderr, exit status 2, empty stdout (no JSON result).
#[test]
fn cli_run_invalid_policy_is_one_line_exit_2_empty_stdout() {
    let dir = repo_root().join("tests/fixtures/policies/invalid");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("fixtures") {
        let path = e.expect("entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        seen += 1;
        let (code, stdout, stderr) = paddockd_cli(&[
            "run".as_ref(),
            "--policy".as_ref(),
            path.as_os_str(),
            "--".as_ref(),
            "/bin/true".as_ref(),
        ]);
        assert_eq!(code, Some(2), "{}: {stderr}", path.display());
        assert_eq!(stdout, "", "{}", path.display());
        assert_eq!(stderr.lines().count(), 1, "{}: {stderr:?}", path.display());
        assert!(
            stderr.starts_with(&format!("paddockd run: {}:", path.display())),
            "{stderr:?}"
        );
    }
    assert!(
        seen >= 10,
        "only {seen} invalid fixtures found in {}",
        dir.display()
    );
}

// `paddockd check` on the invalid fixtures: exit 1, every finding one line
// `file:line: key: message` (or `file:line: key = value ...` for ceilings),
// every fixture reported; on the examples: exit 0 and no finding.
#[test]
fn cli_check_reports_file_line_key_and_exit_status() {
    let dir = "tests/fixtures/policies/invalid";
    let (code, stdout, stderr) = paddockd_cli(&["check".as_ref(), dir.as_ref()]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let mut files = std::collections::BTreeSet::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ':');
        let (file, lineno, rest) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        assert!(file.starts_with(dir) && file.ends_with(".toml"), "{line}");
        assert!(
            lineno.parse::<u32>().is_ok_and(|n| n >= 1),
            "no line number: {line}"
        );
        let rest = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{line}"));
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(0);
        assert!(
            key_len > 0
                && (rest[key_len..].starts_with(": ") || rest[key_len..].starts_with(" = ")),
            "no key: {line}"
        );
        files.insert(file.to_owned());
    }
    let fixtures = std::fs::read_dir(repo_root().join(dir))
        .expect("fixtures")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml"))
        })
        .count();
    assert_eq!(
        files.len(),
        fixtures,
        "not every fixture reported: {stdout}"
    );
    assert!(stderr.contains("error(s)"), "{stderr}");

    let mut args: Vec<std::ffi::OsString> = vec!["check".into()];
    for e in std::fs::read_dir(repo_root().join("policies/examples")).expect("examples") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "toml") {
            args.push(p.into_os_string());
        }
    }
    assert!(args.len() >= 5, "examples: {args:?}");
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (code, stdout, stderr) = paddockd_cli(&refs);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "", "{stderr}");
}

// ---------------------------------------------------------------- landlock

/// The kernel's Landlock ABI version (0 when Landlock is unavailable).
fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the call only
    // returns a number; no memory is read or written.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

// `landlock.mode = "best_effort"` runs and the result says what was enforced:
// everything Paddock asks for (ABI 6: filesystem, TCP, scoping) on a kernel
// that has it, less on an older one, nothing without Landlock; and the
// sandbox is in fact restricted (TCP bind is refused, see below).
#[test]
fn landlock_best_effort_runs_and_reports_what_was_enforced() {
    require_root();
    let d = FnDir::new();
    let p = d
        .policy()
        .name("besteffort")
        .to_toml()
        .replace("mode = \"required\"", "mode = \"best_effort\"");
    assert!(p.contains("mode = \"best_effort\""), "{p}");
    let policy = d.root().join("besteffort.toml");
    std::fs::write(&policy, p).expect("write policy");
    let r = run(&policy, &["/fn/probe", "bind_inet", "8080"], None);
    let abi = landlock_abi();
    let want = match abi {
        0 => "not_enforced",
        1..=5 => "partially_enforced",
        _ => "fully_enforced",
    };
    assert_eq!(r.json["landlock"], want, "kernel Landlock ABI {abi}: {r}");
    let line = r.probe_exited();
    if abi >= 4 {
        assert_errno(&line, "EACCES");
    }
}

// Landlock itself denies what every other layer allows: the network
// namespace and the seccomp profile let the payload bind a UDP socket to
// 0.0.0.0:8080, and would let it bind a TCP one the same way, but Landlock
// handles TCP bind (ABI 4+) with no rule allowing it: EACCES.
#[test]
fn landlock_denies_tcp_bind_that_namespace_and_seccomp_allow() {
    require_root();
    assert!(
        landlock_abi() >= 4,
        "this kernel's Landlock (ABI {}) cannot mediate TCP",
        landlock_abi()
    );
    let (_d, p) = setup();
    assert_ok(&probe(&p, &["bind_inet", "8080", "udp"]));
    let tcp = probe(&p, &["bind_inet", "8080"]);
    assert_errno(&tcp, "EACCES");
    assert_eq!(tcp["step"], "bind", "the socket itself was allowed: {tcp}");
}
