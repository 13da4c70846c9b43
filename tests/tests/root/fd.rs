//! FD1, FD3: inherited descriptors and the working directory.

use integration_tests::*;

#[test]
fn fd_only_stdio_is_open() {
    require_root();
    let (_d, p) = setup();
    let f = probe(&p, &["fds"]);
    assert_eq!(f["fds"], serde_json::json!([0, 1, 2]), "{f}");
}

#[test]
fn fd_stdio_are_pipes_or_dev_null() {
    require_root();
    let (_d, p) = setup();
    let f = probe(&p, &["fds"]);
    for t in f["targets"].as_array().expect("targets") {
        let target = t["target"].as_str().unwrap_or("");
        assert!(target.starts_with("pipe:") || target == "/dev/null", "{f}");
    }
}

#[test]
fn fd_cwd_escape_stays_in_root() {
    require_root();
    let (_d, p) = setup();
    let c = probe(&p, &["cwd_escape"]);
    assert_eq!(c["cwd"], "/", "{c}");
    assert_eq!(c["names"], probe(&p, &["ls", "/"])["names"], "{c}");
}

#[test]
fn fd_getcwd_is_reachable() {
    require_root();
    let (_d, p) = setup();
    let c = probe(&p, &["getcwd"]);
    assert_ok(&c);
    let cwd = c["cwd"].as_str().unwrap_or("");
    assert!(cwd.starts_with('/') && !cwd.contains("unreachable"), "{c}");
}

#[test]
fn fd_stdin_is_empty_without_input() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["echo_stdin"]);
    assert_eq!(r["len"], 0, "{r}");
}

#[test]
fn fd_stdin_carries_the_input() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "echo_stdin"], Some(b"payload \xce\xbb")).probe_exited();
    assert_eq!(r["content"], "payload λ", "{r}");
}

// FD3, "deploy workdir /proc/self/fd/7 ... the workdir is rejected": a policy
// cannot choose its working directory at all. `workdir` is not a policy key
// (the strict schema refuses it by name), and the cwd is fixed by Paddock:
// /fn when the function has a directory, / otherwise (both inside the new
// root, set after pivot_root). So no path, /proc/self/fd/N included, can
// make the command start outside the sandbox's root.
#[test]
fn fd_workdir_proc_self_fd_is_rejected() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().top("workdir = \"/proc/self/fd/7\"").write();
    let err = run_rejected(&p, &[]);
    assert!(
        err.contains("workdir: unknown field `workdir`"),
        "refused for another reason than the unknown key: {err}"
    );
    // The cwd Paddock chooses instead: /fn with a function directory...
    let (_d, p) = setup();
    let c = probe(&p, &["getcwd"]);
    assert_ok(&c);
    assert_eq!(c["cwd"], "/fn", "{c}");
    // ... and / without one (no `directory`, none next to the policy).
    let tmp = tempfile::Builder::new()
        .prefix("paddock-test-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let nodir = tmp.path().join("nodir.toml");
    std::fs::write(
        &nodir,
        "runtime = \"native\"\ncommand = [\"/bin/sh\", \"-c\", \"pwd\"]\n",
    )
    .expect("write policy");
    let r = run(&nodir, &[], None);
    assert_eq!(r.status(), "exited", "{r}");
    assert_eq!(r.stdout(), "/\n", "{r}");
}
