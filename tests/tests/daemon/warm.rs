//! `mode = "warm"` wasm functions through the daemon: a fresh instance per
//! call on a long-lived runner, failures that cost only the call in flight,
//! pools keyed by module content, and nothing left after the daemon.

use std::path::Path;
use std::time::Duration;

use integration_tests::daemon::*;
use integration_tests::{eventually, require_root};
use serde_json::{json, Value};

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wasm")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn warm_policy(limits: &str) -> String {
    format!("runtime = \"wasm\"\nmode = \"warm\"\nmodule = \"m.wat\"\n\n[limits]\n{limits}\n")
}

/// Deploys `fixture` as the warm function `name`; returns its version.
fn deploy_warm(d: &TestDaemon, name: &str, fixture_name: &str, limits: &str) -> u64 {
    let m = fixture(fixture_name);
    d.deploy_ok(name, &warm_policy(limits), &[("m.wat", &m, false)])
}

fn invoke(c: &mut Client, function: &str, input: &str) -> Value {
    let v = c.call(&json!({"id": 1, "op": "invoke", "function": function, "input": input}));
    assert_eq!(v["ok"], true, "{v}");
    v["result"].clone()
}

/// The daemon's sandbox processes (warm runners: init and paddock-wasm).
fn runner_pids(d: &TestDaemon) -> Vec<u32> {
    let mut p = crate::sandbox_pids_under(d.pid());
    p.sort();
    p
}

#[test]
fn warm_hello_over_stdio() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(&d, "wh", "hello.wat", "");
    let mut c = d.client();
    for _ in 0..3 {
        let r = invoke(&mut c, "wh", "");
        assert_eq!(r["status"], "exited", "{r}");
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["stdout"], "hello from wasm\n", "{r}");
        assert_eq!(r["warm"], true, "{r}");
        assert!(r["wasm_error"].is_null(), "{r}");
        assert!(r["memory_peak_bytes"].as_u64().unwrap_or(0) > 0, "{r}");
    }
    let v = d
        .client()
        .call(&json!({"id": 2, "op": "describe", "function": "wh"}));
    let h = v["result"]["module_sha256"].as_str().unwrap_or("");
    assert_eq!(h.len(), 64, "{v}");
    assert_eq!(v["result"]["mode"], "warm", "{v}");
    assert_eq!(d.stats()["warm_runners"], 1);
}

#[test]
fn warm_each_call_gets_a_fresh_instance() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(&d, "counter", "warm.wat", "");
    let mut c = d.client();
    let first = invoke(&mut c, "counter", "");
    let pids = runner_pids(&d);
    assert!(!pids.is_empty());
    for _ in 0..3 {
        let r = invoke(&mut c, "counter", "");
        // The global starts at its initial value in every call.
        assert_eq!(r["stdout"], "count=1\n", "{r}");
        assert_eq!(r["host_uid"], first["host_uid"], "same runner: {r}");
    }
    assert_eq!(runner_pids(&d), pids, "the same runner served every call");
}

#[test]
fn warm_out_of_fuel_does_not_break_the_next_call() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(&d, "fuel", "warm.wat", "wasm_fuel = 10_000_000");
    let mut c = d.client();
    invoke(&mut c, "fuel", "");
    let pids = runner_pids(&d);
    let r = invoke(&mut c, "fuel", "loop");
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["exit_code"], 125, "{r}");
    assert_eq!(r["wasm_error"]["kind"], "out_of_fuel", "{r}");
    let r = invoke(&mut c, "fuel", "");
    assert_eq!(r["stdout"], "count=1\n", "{r}");
    assert_eq!(runner_pids(&d), pids, "fuel exhaustion keeps the runner");
}

#[test]
fn warm_timeout_kills_the_runner_and_the_next_call_gets_a_new_one() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(
        &d,
        "slow",
        "warm.wat",
        "wasm_fuel = 100_000_000_000\ntimeout_ms = 300",
    );
    let mut c = d.client();
    invoke(&mut c, "slow", "");
    let before = runner_pids(&d);
    let r = invoke(&mut c, "slow", "loop");
    assert_eq!(r["status"], "timeout", "{r}");
    assert_eq!(r["limit"], "timeout", "{r}");
    assert!(r["wall_ms"].as_u64().unwrap_or(0) >= 300, "{r}");
    let gone = eventually(Duration::from_secs(3), || {
        let now = runner_pids(&d);
        before.iter().all(|p| !now.contains(p))
    });
    assert!(gone, "the timed-out runner is gone");
    let r = invoke(&mut c, "slow", "");
    assert_eq!(r["stdout"], "count=1\n", "{r}");
    let after = runner_pids(&d);
    assert!(before.iter().all(|p| !after.contains(p)), "a new runner");
}

#[test]
fn warm_runner_killed_mid_call_fails_only_that_call() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(
        &d,
        "victim",
        "warm.wat",
        "wasm_fuel = 100_000_000_000\ntimeout_ms = 20000",
    );
    let mut c = d.client();
    invoke(&mut c, "victim", "");
    c.send(&json!({"id": "x", "op": "invoke", "function": "victim", "input": "loop"}));
    std::thread::sleep(Duration::from_millis(300));
    let pids = runner_pids(&d);
    assert!(!pids.is_empty());
    for p in &pids {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    let v = c.recv_within(Duration::from_secs(10));
    assert_eq!(v["id"], "x");
    let r = &v["result"];
    assert_eq!(r["status"], "signaled", "{v}");
    assert_eq!(r["signal"], 9, "{v}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("warm runner"),
        "{v}"
    );
    let r = invoke(&mut c, "victim", "");
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["stdout"], "count=1\n", "{r}");
}

#[test]
fn warm_redeploy_same_bytes_keeps_the_runner_new_bytes_replace_it() {
    require_root();
    let d = TestDaemon::start();
    let v1 = deploy_warm(&d, "rd", "warm.wat", "");
    let mut c = d.client();
    let r = invoke(&mut c, "rd", "");
    assert_eq!(r["version"], v1);
    let pids = runner_pids(&d);
    let sha1 = d
        .client()
        .call(&json!({"id": 1, "op": "describe", "function": "rd"}))["result"]["module_sha256"]
        .clone();
    // Same bytes, same policy: the same runner, no restart.
    let v2 = deploy_warm(&d, "rd", "warm.wat", "");
    assert!(v2 > v1);
    let r = invoke(&mut c, "rd", "");
    assert_eq!(r["version"], v2, "{r}");
    assert_eq!(r["stdout"], "count=1\n", "{r}");
    assert_eq!(runner_pids(&d), pids, "same bytes keep the runner");
    // Other bytes: a new runner; the old one is stopped.
    let v3 = deploy_warm(&d, "rd", "hello.wat", "");
    let r = invoke(&mut c, "rd", "");
    assert_eq!(r["version"], v3, "{r}");
    assert_eq!(r["stdout"], "hello from wasm\n", "{r}");
    let replaced = eventually(Duration::from_secs(3), || {
        let now = runner_pids(&d);
        !now.is_empty() && pids.iter().all(|p| !now.contains(p))
    });
    assert!(replaced, "old {pids:?} now {:?}", runner_pids(&d));
    let sha3 = d
        .client()
        .call(&json!({"id": 1, "op": "describe", "function": "rd"}))["result"]["module_sha256"]
        .clone();
    assert_ne!(sha1, sha3);
}

#[test]
fn warm_redeploy_during_a_call_finishes_it_on_the_old_runner() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(
        &d,
        "rc",
        "warm.wat",
        "wasm_fuel = 1_000_000_000\ntimeout_ms = 20000",
    );
    let mut c = d.client();
    // A call that runs out of its fuel after a while, on the old module.
    c.send(&json!({"id": "old", "op": "invoke", "function": "rc", "input": "loop"}));
    std::thread::sleep(Duration::from_millis(100));
    let v = deploy_warm(&d, "rc", "hello.wat", "");
    let r = d.invoke("rc", "");
    assert_eq!(r["result"]["stdout"], "hello from wasm\n", "{r}");
    assert_eq!(r["result"]["version"], v, "{r}");
    let old = c.recv();
    assert_eq!(old["id"], "old");
    assert_eq!(old["result"]["wasm_error"]["kind"], "out_of_fuel", "{old}");
    assert_eq!(old["result"]["version"], v - 1, "{old}");
    // The old pool drains: one runner left.
    let one = eventually(Duration::from_secs(3), || d.stats()["warm_runners"] == 1);
    assert!(one, "{}", d.stats());
}

#[test]
fn warm_calls_beyond_the_pool_wait_and_all_complete() {
    require_root();
    let d = TestDaemon::start();
    deploy_warm(&d, "pool", "warm.wat", "concurrency = 2");
    let mut c = d.client();
    for i in 0..20 {
        c.send(&json!({"id": i, "op": "invoke", "function": "pool", "input": ""}));
    }
    for _ in 0..20 {
        let v = c.recv();
        assert_eq!(v["result"]["stdout"], "count=1\n", "{v}");
    }
    let n = d.stats()["warm_runners"].as_u64().unwrap_or(99);
    assert!((1..=2).contains(&n), "{n} runners for concurrency 2");
}

#[test]
fn warm_policy_rules_are_enforced_at_deploy() {
    require_root();
    let d = TestDaemon::start();
    let v = d.deploy(
        "wn",
        "runtime = \"native\"\nmode = \"warm\"\ncommand = [\"/bin/true\"]\n",
        &[],
    );
    assert_eq!(code(&v), Some("invalid_policy"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("is for wasm functions"),
        "{v}"
    );
}

/// A daemon serving `fixture` as the warm FILE function `name`, and a
/// client of it.
fn warm_file_daemon(name: &str, fixture_name: &str, limits: &str) -> (TestDaemon, Client) {
    let d = TestDaemon::start();
    let policy = format!("runtime = \"wasm\"\nmode = \"warm\"\nprotocol = \"file\"\nmodule = \"m.wat\"\n\n[limits]\n{limits}\n");
    d.deploy_ok(name, &policy, &[("m.wat", &fixture(fixture_name), false)]);
    let c = d.client();
    (d, c)
}

/// The pid of the daemon's (one) paddock-wasm runner.
fn warm_runner_pid(d: &TestDaemon) -> u32 {
    runner_pids(d)
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("--warm"))
        })
        .expect("a warm runner")
}

/// The entries of a warm runner's /work, seen from the host through the
/// runner's root (the test's view; the daemon never goes by path).
fn work_entries(d: &TestDaemon) -> Vec<String> {
    let runner = warm_runner_pid(d);
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{runner}/root/work"))
        .expect("the runner's /work")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The runner's /work is emptied (the daemon does it right after
/// answering, so the answer can arrive a moment before).
fn assert_work_emptied(d: &TestDaemon) {
    let empty = eventually(Duration::from_secs(2), || work_entries(d).is_empty());
    assert!(empty, "left in /work: {:?}", work_entries(d));
}

#[test]
fn warm_hello_over_file() {
    require_root();
    let (d, mut c) = warm_file_daemon("wfh", "file_hello.wat", "");
    let mut pids = None;
    for who in ["paddock", "again", "x"] {
        let r = invoke(&mut c, "wfh", who);
        assert_eq!(r["status"], "exited", "{r}");
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["warm"], true, "{r}");
        assert_eq!(r["output"], format!("hello, {who}"), "{r}");
        assert!(r["output_error"].is_null(), "{r}");
        assert!(r["wasm_error"].is_null(), "{r}");
        let now = runner_pids(&d);
        assert_eq!(
            *pids.get_or_insert(now.clone()),
            now,
            "one runner serves every call"
        );
    }
    // Between calls, nothing of them stays in /work.
    assert_work_emptied(&d);
}

/// No file crosses from one call to the next: file_state fails if its
/// output or its directory already exists, and leaves a tree with
/// symlinks (to /etc, and to its input) behind every call; the daemon
/// empties /work without following them.
#[test]
fn warm_file_work_dir_is_empty_in_every_call() {
    require_root();
    let (d, mut c) = warm_file_daemon("wfs", "file_state.wat", "");
    let first = invoke(&mut c, "wfs", "one");
    assert_eq!(first["exit_code"], 0, "{first}");
    assert_eq!(first["output"], "fresh: one", "{first}");
    assert_work_emptied(&d);
    let pids = runner_pids(&d);
    for i in 0..5 {
        let input = format!("call {i}");
        let r = invoke(&mut c, "wfs", &input);
        assert_eq!(
            r["exit_code"], 0,
            "a file of an earlier call was there: {r}"
        );
        assert_eq!(r["output"], format!("fresh: {input}"), "{r}");
        assert_eq!(r["host_uid"], first["host_uid"], "{r}");
    }
    assert_eq!(runner_pids(&d), pids, "the same runner served every call");
    assert!(std::path::Path::new("/etc/passwd").is_file());
    assert_work_emptied(&d);
}

/// WA5 in warm mode: the escapes fail as in a oneshot run, and the symlink
/// a call plants is gone for the next one (which can plant it again).
#[test]
fn warm_file_path_escapes_fail_in_every_call() {
    require_root();
    let (_d, mut c) = warm_file_daemon("wfe", "escape.wat", "");
    let first = invoke(&mut c, "wfe", "x");
    assert_eq!(first["exit_code"], 0, "{first}");
    let codes: Vec<&str> = first["stdout"].as_str().unwrap_or("").lines().collect();
    assert_eq!(codes.len(), 6, "{first}");
    for i in [0, 1, 3, 4] {
        assert!(
            ["76", "63", "44"].contains(&codes[i]),
            "escape {i} got {}: {first}",
            codes[i]
        );
    }
    assert_eq!(codes[2], "00", "the symlink is planted: {first}");
    assert_eq!(codes[5], "00", "the control opens: {first}");
    for _ in 0..2 {
        let r = invoke(&mut c, "wfe", "x");
        assert_eq!(r["stdout"], first["stdout"], "{r}");
    }
}

/// `chattr` on a path (as root: CAP_LINUX_IMMUTABLE; tmpfs has the flag).
fn chattr(flag: &str, path: &str) {
    let st = std::process::Command::new("chattr")
        .args([flag, path])
        .status()
        .expect("chattr (e2fsprogs)");
    assert!(st.success(), "chattr {flag} {path}: {st}");
}

/// Create an empty file in a runner's /work as the sandbox's own ids (the
/// tmpfs belongs to the sandbox's user namespace and refuses inodes of ids
/// it does not map, such as the host's root).
fn create_in_work(runner: u32, name: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let work = format!("/proc/{runner}/root/work");
    let m = std::fs::metadata(&work).expect("the runner's /work");
    let gid = nix::unistd::setfsgid(m.gid().into());
    let uid = nix::unistd::setfsuid(m.uid().into());
    let made = std::fs::write(format!("{work}/{name}"), b"");
    nix::unistd::setfsuid(uid);
    nix::unistd::setfsgid(gid);
    made.unwrap_or_else(|e| panic!("create {work}/{name}: {e}"));
    format!("{work}/{name}")
}

/// When /work cannot be emptied after a call, the runner is stopped rather
/// than reused: here an immutable file in it (put there by the test, from
/// the host) cannot be removed. The call itself was answered; the next one
/// gets a new runner and an empty /work.
#[test]
fn warm_file_runner_whose_work_cannot_be_emptied_is_replaced() {
    require_root();
    let (d, mut c) = warm_file_daemon("wfm", "file_state.wat", "");
    assert_eq!(invoke(&mut c, "wfm", "a")["output"], "fresh: a");
    assert_work_emptied(&d);
    let runner = warm_runner_pid(&d);
    let pinned = create_in_work(runner, "pinned");
    chattr("+i", &pinned);
    // /work was emptied after the last call: this one runs and is answered.
    let r = invoke(&mut c, "wfm", "b");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output"], "fresh: b", "{r}");
    let gone = eventually(Duration::from_secs(3), || {
        !runner_pids(&d).contains(&runner)
    });
    assert!(
        gone,
        "the runner whose /work could not be emptied still runs"
    );
    let r = invoke(&mut c, "wfm", "c");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output"], "fresh: c", "{r}");
    assert_ne!(warm_runner_pid(&d), runner, "a new runner");
    assert_work_emptied(&d);
}

/// When the input cannot be put in /work, the call fails as a launch would
/// (failed_to_start, step work_dir) and its runner is replaced: here the
/// test made /work itself immutable between calls.
#[test]
fn warm_file_input_that_cannot_be_written_fails_the_call_and_replaces_the_runner() {
    require_root();
    let (d, mut c) = warm_file_daemon("wfi", "file_hello.wat", "");
    assert_eq!(invoke(&mut c, "wfi", "a")["output"], "hello, a");
    assert_work_emptied(&d);
    let runner = warm_runner_pid(&d);
    chattr("+i", &format!("/proc/{runner}/root/work"));
    let r = invoke(&mut c, "wfi", "b");
    assert_eq!(r["status"], "failed_to_start", "{r}");
    assert_eq!(r["error"]["step"], "work_dir", "{r}");
    let gone = eventually(Duration::from_secs(3), || {
        !runner_pids(&d).contains(&runner)
    });
    assert!(gone, "the runner whose /work refused the input still runs");
    let r = invoke(&mut c, "wfi", "c");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output"], "hello, c", "{r}");
}

/// A warm FILE call's output file past the cap is truncated and reported
/// as the output limit, and the runner serves the next call.
#[test]
fn warm_file_output_over_the_cap_is_truncated() {
    require_root();
    let (_d, mut c) = warm_file_daemon("wfc", "file_hello.wat", "output = \"8B\"");
    let r = invoke(&mut c, "wfc", "a long input");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output"], "hello, a", "{r}");
    assert_eq!(r["output_truncated"], true, "{r}");
    assert_eq!(r["limit"], "output", "{r}");
    let r = invoke(&mut c, "wfc", "b");
    assert_eq!(r["output"], "hello, b", "{r}");
    assert_eq!(r["output_truncated"], false, "{r}");
}

#[test]
fn warm_runners_are_gone_after_the_daemon_stops() {
    require_root();
    let mut d = TestDaemon::start();
    deploy_warm(&d, "a", "warm.wat", "");
    deploy_warm(&d, "b", "hello.wat", "concurrency = 2");
    let mut c = d.client();
    invoke(&mut c, "a", "");
    c.send(&json!({"id": 1, "op": "invoke", "function": "b"}));
    c.send(&json!({"id": 2, "op": "invoke", "function": "b"}));
    c.recv();
    c.recv();
    let pids = runner_pids(&d);
    assert!(!pids.is_empty());
    assert!(!d.run_cgroups().is_empty());
    assert!(d.stop().is_some_and(|s| s.success()), "{}", d.stderr());
    let gone = eventually(Duration::from_secs(3), || {
        crate::still_sandboxed(&pids).is_empty()
    });
    assert!(gone, "runners left: {:?}", crate::still_sandboxed(&pids));
    assert!(d.run_cgroups().is_empty(), "{:?}", d.run_cgroups());
}

/// Issue 5's idle timeout (`[limits] warm_idle_ms`): a runner is kept
/// between calls, stopped once it has been idle that long (its processes
/// and its run cgroup gone, `stats.warm_runners` back to 0), never earlier,
/// and the next call starts a new runner that answers as the first did.
#[test]
fn warm_idle_runner_is_stopped_and_the_next_call_starts_a_new_one() {
    require_root();
    let idle = Duration::from_millis(1500);
    let d = TestDaemon::with(DaemonOpts::config(&format!(
        "[limits]\nwarm_idle_ms = {}\n",
        idle.as_millis()
    )));
    deploy_warm(&d, "napper", "warm.wat", "");
    let mut c = d.client();
    assert_eq!(invoke(&mut c, "napper", "")["stdout"], "count=1\n");
    let pids = runner_pids(&d);
    let cgroups = d.run_cgroups();
    assert!(!pids.is_empty(), "no runner process");
    assert!(!cgroups.is_empty(), "no runner cgroup");
    // A call soon after the first reuses the runner.
    assert_eq!(invoke(&mut c, "napper", "")["stdout"], "count=1\n");
    let last_call = std::time::Instant::now();
    assert_eq!(
        runner_pids(&d),
        pids,
        "the runner was not kept between calls"
    );
    assert_eq!(d.stats()["warm_runners"], 1);
    let mut stopped_after = None;
    let gone = eventually(idle + Duration::from_secs(5), || {
        let s = d.stats();
        let done = s["warm_runners"] == 0
            && crate::still_sandboxed(&pids).is_empty()
            && cgroups.iter().all(|g| !Path::new(g).exists());
        if done && stopped_after.is_none() {
            stopped_after = Some(last_call.elapsed());
        }
        done
    });
    assert!(
        gone,
        "idle runner not stopped: stats {}, pids {:?}, cgroups {:?}",
        d.stats(),
        crate::still_sandboxed(&pids),
        cgroups
            .iter()
            .filter(|g| Path::new(g).exists())
            .collect::<Vec<_>>()
    );
    let after = stopped_after.expect("set when gone");
    // The answer left the daemon a moment after the runner went idle.
    assert!(
        after + Duration::from_millis(100) >= idle,
        "stopped after {after:?}, before the idle timeout {idle:?}"
    );
    let r = invoke(&mut c, "napper", "");
    assert_eq!(r["stdout"], "count=1\n", "{r}");
    assert_eq!(r["warm"], true, "{r}");
    let fresh = runner_pids(&d);
    assert!(
        !fresh.is_empty() && fresh.iter().all(|p| !pids.contains(p)),
        "no new runner: {fresh:?} (old {pids:?})"
    );
    assert_eq!(d.stats()["warm_runners"], 1);
    assert!(
        d.run_cgroups().iter().all(|g| !cgroups.contains(g)),
        "the new runner reuses an old cgroup"
    );
}
