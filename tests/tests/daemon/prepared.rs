//! Sandboxes made ahead of their invocations (`[sandbox] prepared`,
//! supervisor/src/prepared.rs): an invocation takes one that is set up and
//! waiting, so it must behave exactly as a cold one — fresh, isolated, its
//! own environment and input, its timeout counted from its own start — and
//! the pool must follow redeploys and leave nothing behind.

use std::time::{Duration, Instant};

use integration_tests::daemon::{sh_policy, DaemonOpts, TestDaemon};
use integration_tests::{eventually, exclusive, require_root, HostSnapshot};
use serde_json::{json, Value};

fn pooled() -> TestDaemon {
    TestDaemon::with(DaemonOpts {
        prepared: 4,
        ..Default::default()
    })
}

/// Waits until `n` sandboxes are ready in the pool.
fn wait_ready(d: &TestDaemon, n: u64) -> Value {
    let ok = eventually(Duration::from_secs(10), || {
        d.stats()["prepared"]["ready"].as_u64() >= Some(n)
    });
    let s = d.stats();
    assert!(ok, "no prepared sandbox: {s}\n{}", d.stderr());
    s
}

/// Prints what a second run could see of a first: its /tmp, its processes,
/// and its own identity.
const SNOOP: &str = r#"ls -A /tmp | tr '\n' ' '; echo "|"
ls /proc | grep -c '^[0-9]'
echo "id=$EXECUTION_ID trace=$TRACE_ID timeout=$TIMEOUT_MS fn=$FUNCTION_NAME"
touch /tmp/left-by-$EXECUTION_ID
"#;

#[test]
fn prepared_invocation_runs_in_a_sandbox_made_ahead_with_nothing_of_the_last_run() {
    require_root();
    let d = pooled();
    d.deploy_sh("snoop", SNOOP, "timeout_ms = 3000");
    let first = d.invoke("snoop", "");
    assert_eq!(first["result"]["status"], "exited", "{first}");
    let before = wait_ready(&d, 1);
    let v = d.client().call(&json!({
        "id": 2, "op": "invoke", "function": "snoop", "trace_id": "t-42", "timeout_ms": 2500
    }));
    let r = &v["result"];
    assert_eq!(r["status"], "exited", "{v}");
    let after = d.stats();
    assert_eq!(
        after["prepared"]["used"].as_u64(),
        before["prepared"]["used"].as_u64().map(|u| u + 1),
        "the second run did not take the prepared sandbox: {after}"
    );
    let out = r["stdout"].as_str().expect("stdout");
    let mut lines = out.lines();
    // /tmp is empty: nothing of the first run (or of the preparation).
    assert_eq!(lines.next(), Some("|"), "{out}");
    // Its own pid namespace: the init and the shell's processes only.
    let pids: usize = lines.next().expect("pid count").trim().parse().expect("n");
    assert!(pids <= 4, "{pids} processes visible: {out}");
    let id = r["execution_id"].as_str().expect("execution_id");
    assert_eq!(
        lines.next(),
        Some(format!("id={id} trace=t-42 timeout=2500 fn=snoop").as_str()),
        "the run's own environment, sent with its go: {out}"
    );
    assert_ne!(first["result"]["execution_id"], r["execution_id"]);
}

#[test]
fn prepared_file_function_gets_its_input_written_before_its_go() {
    require_root();
    let d = pooled();
    let policy = sh_policy("", "protocol = \"file\"");
    d.deploy_ok(
        "rev",
        &policy,
        &[("h.sh", b"rev < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\n", true)],
    );
    assert_eq!(d.invoke("rev", "abc")["result"]["output"], "cba");
    wait_ready(&d, 1);
    let v = d.invoke("rev", "hello, pool");
    assert_eq!(v["result"]["status"], "exited", "{v}");
    assert_eq!(v["result"]["output"], "loop ,olleh", "{v}");
    assert_eq!(d.stats()["prepared"]["used"], 1);
}

#[test]
fn prepared_sandbox_timeout_counts_from_its_invocation_not_its_making() {
    require_root();
    let d = pooled();
    d.deploy_sh("nap", "sleep 0.6; echo woke\n", "timeout_ms = 1000");
    assert_eq!(d.invoke("nap", "")["result"]["status"], "exited");
    wait_ready(&d, 1);
    // The prepared sandbox now waits longer than the function's timeout.
    std::thread::sleep(Duration::from_millis(1500));
    let v = d.invoke("nap", "");
    assert_eq!(v["result"]["status"], "exited", "{v}");
    assert_eq!(v["result"]["stdout"], "woke\n");
    let wall = v["result"]["wall_ms"].as_u64().expect("wall_ms");
    assert!((600..1000).contains(&wall), "wall {wall} ms: {v}");
    assert_eq!(d.stats()["prepared"]["used"], 1);
}

#[test]
fn prepared_sandboxes_follow_a_redeploy_and_never_run_the_old_version() {
    require_root();
    let d = pooled();
    d.deploy_sh("ver", "echo one\n", "");
    assert_eq!(d.invoke("ver", "")["result"]["stdout"], "one\n");
    wait_ready(&d, 1);
    d.deploy_sh("ver", "echo two\n", "");
    // Straight after the redeploy: never a sandbox made for version 1.
    let v = d.invoke("ver", "");
    assert_eq!(v["result"]["stdout"], "two\n", "{v}");
    assert_eq!(v["result"]["version"], 2);
    // The old version's sandbox is dropped (at the next housekeeping
    // tick), and the new version's is made.
    let one = eventually(Duration::from_secs(3), || {
        let p = &d.stats()["prepared"];
        p["ready"] == 1 && p["making"] == 0
    });
    assert!(one, "{}", d.stats());
    assert_eq!(d.invoke("ver", "")["result"]["stdout"], "two\n");
    d.client()
        .call(&json!({"id": 1, "op": "remove", "function": "ver"}));
    assert!(
        eventually(Duration::from_secs(3), || d.stats()["prepared"]["ready"]
            == 0),
        "a removed function's sandboxes stay: {}",
        d.stats()
    );
}

#[test]
fn prepared_concurrent_invocations_each_get_their_own_sandbox() {
    require_root();
    let d = pooled();
    d.deploy_sh("par", SNOOP, "concurrency = 4");
    // Four at once: the pool learns to keep up to four.
    let run_four = || {
        let mut clients: Vec<_> = (0..4)
            .map(|i| {
                let mut c = d.client();
                c.send(&json!({"id": i, "op": "invoke", "function": "par"}));
                c
            })
            .collect();
        clients
            .iter_mut()
            .map(|c| c.recv()["result"].clone())
            .collect::<Vec<Value>>()
    };
    run_four();
    wait_ready(&d, 2);
    let results = run_four();
    let mut uids: Vec<u64> = results
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "exited", "{r}");
            assert!(r["stdout"].as_str().unwrap().starts_with('|'), "{r}");
            r["host_uid"].as_u64().expect("host_uid")
        })
        .collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(
        uids.len(),
        4,
        "concurrent runs shared a host uid: {results:?}"
    );
    assert!(d.stats()["prepared"]["used"].as_u64() >= Some(2));
}

#[test]
fn prepared_sandboxes_leave_nothing_after_shutdown_or_kill_and_restart() {
    require_root();
    let _x = exclusive();
    let before = HostSnapshot::take();
    let mut d = pooled();
    d.deploy_sh("a", "echo a\n", "");
    d.deploy_sh("b", "echo b\n", "");
    d.invoke("a", "");
    d.invoke("b", "");
    wait_ready(&d, 2);
    assert!(!d.run_cgroups().is_empty());
    // SIGKILL: the prepared inits die with the daemon (their parent).
    d.kill9();
    let gone = eventually(Duration::from_secs(2), || {
        HostSnapshot::take().sandbox_pids.is_empty()
    });
    assert!(
        gone,
        "prepared sandboxes outlived the daemon: {:?}",
        HostSnapshot::take()
    );
    // The restarted daemon reaps their cgroups, then makes new ones.
    d.restart();
    assert_eq!(d.invoke("a", "")["result"]["stdout"], "a\n");
    wait_ready(&d, 1);
    // SIGTERM: a clean stop kills and reaps them and removes every cgroup.
    let t = Instant::now();
    d.stop();
    assert!(t.elapsed() < Duration::from_secs(5));
    let settled = eventually(Duration::from_secs(5), || {
        let now = HostSnapshot::take();
        now.sandbox_pids.is_empty() && now.cgroups == before.cgroups
    });
    let after = HostSnapshot::take();
    assert!(settled, "left behind: {after:?} (before: {before:?})");
    assert_eq!(after.mounts, before.mounts, "mounts leaked");
}
