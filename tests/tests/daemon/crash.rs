//! CR1/CR2: the daemon killed mid-run, and a damaged registry at start-up.

use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::{require_root, HostSnapshot};
use serde_json::json;

use crate::{sandbox_pids_under, still_sandboxed};

/// CR1 at the row's scale: 20 sandboxes running when the daemon is killed
/// (two functions, since a function's concurrency ceiling is 16).
#[test]
fn crash_kill9_kills_sandboxes_and_restart_recovers() {
    require_root();
    // Host-wide mounts and sandbox zombies are compared.
    let _x = integration_tests::exclusive();
    const RUNNING: usize = 20;
    let before = HostSnapshot::take();
    let mut d = TestDaemon::with(DaemonOpts::config("[limits]\nconcurrency = 24\n"));
    for name in ["sleepy", "sleepy2"] {
        d.deploy_ok(
            name,
            &crate::sleep_policy("30", "concurrency = 10\ntimeout_ms = 30000"),
            &[],
        );
    }
    d.deploy_sh("one", "echo one\n", "");
    d.deploy_sh("two", "echo two\n", "");
    let mut clients: Vec<Client> = (0..RUNNING).map(|_| d.client()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let f = if i % 2 == 0 { "sleepy" } else { "sleepy2" };
        c.send(&json!({"id": i, "op": "invoke", "function": f}));
    }
    let mut pids = Vec::new();
    let all = integration_tests::eventually(Duration::from_secs(20), || {
        pids = sandbox_pids_under(d.pid());
        d.stats()["in_flight"] == RUNNING && pids.len() >= RUNNING
    });
    assert!(
        all,
        "{RUNNING} sandboxes not running: {:?} {}",
        pids,
        d.stats()
    );
    let cgroups = d.run_cgroups();
    assert!(
        cgroups.len() >= RUNNING,
        "run cgroups not seen: {cgroups:?}"
    );
    d.kill9();
    let t = Instant::now();
    let gone =
        integration_tests::eventually(Duration::from_secs(1), || still_sandboxed(&pids).is_empty());
    let survivors = still_sandboxed(&pids);
    let after = t.elapsed();
    // Do not leave them to the other tests (they are ours: descendants of our daemon).
    for p in &survivors {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    for c in &mut clients {
        assert!(
            c.wait_eof(Duration::from_secs(2)),
            "client not disconnected"
        );
    }
    assert!(
        d.socket().exists(),
        "the stale socket should still be there before restart"
    );
    d.restart();
    let names: Vec<String> = d.client().call(&json!({"id": 1, "op": "list"}))["result"]
        ["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str().map(String::from))
        .collect();
    for n in ["sleepy", "sleepy2", "one", "two"] {
        assert!(names.contains(&n.to_string()), "{n} lost: {names:?}");
    }
    assert_eq!(d.invoke("one", "")["result"]["stdout"], "one\n");
    assert_eq!(d.invoke("two", "")["result"]["stdout"], "two\n");
    // A run is answered as soon as its init reports; the init's exit and
    // its cgroup's removal follow within moments.
    let cleared =
        integration_tests::eventually(Duration::from_secs(2), || d.run_cgroups().is_empty());
    assert!(cleared, "cgroups left: {:?}", d.run_cgroups());
    let v = d
        .client()
        .call(&json!({"id": 2, "op": "invoke", "function": "sleepy", "timeout_ms": 100}));
    assert_eq!(v["result"]["status"], "timeout", "{v}");
    // Orphaned by the kill, the dead sandboxes were reaped (no zombie with a
    // sandbox uid), and the host's mounts are as they were.
    let reaped = integration_tests::eventually(Duration::from_secs(3), || {
        integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS).is_empty()
            && d.zombie_descendants().is_empty()
    });
    assert!(
        reaped,
        "zombies: sandbox uids {:?}, under the daemon {:?}",
        integration_tests::sandbox_zombies(integration_tests::SANDBOX_UIDS),
        d.zombie_descendants()
    );
    assert!(d.stop().is_some_and(|s| s.success()), "{}", d.stderr());
    assert_eq!(HostSnapshot::take().mounts, before.mounts, "mounts changed");
    // Checked last so that the rest runs (and the restart reaps cgroups) either way.
    assert!(
        gone,
        "sandboxes {survivors:?} outlived the kill -9 of the daemon by {after:?}"
    );
}

#[test]
fn crash_corrupt_registry_entries_are_reported_and_good_ones_kept() {
    require_root();
    let mut d = TestDaemon::start();
    for n in ["good", "garbled", "truncated"] {
        d.deploy_sh(n, &format!("echo {n}\n"), "");
    }
    d.stop().expect("stopped");
    let fdir = d.state_dir().join("functions");
    std::fs::write(fdir.join("garbled/current"), b"\xff\x00garbage\n").expect("write");
    let pol = fdir.join("truncated/v1/truncated.toml");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&pol)
        .expect("truncate");
    d.restart();
    let err = d.stderr();
    assert!(err.contains("garbled"), "garbled not reported: {err}");
    assert!(err.contains("truncated"), "truncated not reported: {err}");
    assert_eq!(d.invoke("good", "")["result"]["stdout"], "good\n");
    for n in ["garbled", "truncated"] {
        let v = d.invoke(n, "");
        assert_eq!(code(&v), Some("unknown_function"), "{n}: {v}");
    }
    // Only the pointer is damaged: v1 itself is intact and must not be
    // deleted (an admin repairs `current`); versions are never reused.
    let kept = fdir.join("garbled/v1/garbled.toml").exists();
    let version = d.deploy_sh("garbled", "echo fixed\n", "");
    assert_eq!(d.invoke("garbled", "")["result"]["stdout"], "fixed\n");
    assert!(
        kept,
        "the daemon deleted garbled/v1 (intact; only its pointer was bad) at start-up"
    );
    assert!(
        version >= 2,
        "version {version} reused after the damaged v1"
    );
}

/// `strace -f -p PID` attached to the daemon, tracing fsync and fdatasync
/// (the registry's durability calls: File::sync_all is fsync), optionally
/// failing the `when`-th of them with EIO. Detached (SIGINT) on drop.
struct Strace {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Strace {
    fn attach(pid: i32, out: std::path::PathBuf, inject_at: Option<usize>) -> Strace {
        let mut c = std::process::Command::new("strace");
        c.args(["-f", "-qq", "-e", "trace=fsync,fdatasync"]);
        if let Some(n) = inject_at {
            c.arg("-e").arg(format!("inject=fsync:error=EIO:when={n}"));
        }
        c.arg("-o").arg(&out).arg("-p").arg(pid.to_string());
        let child = c
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("strace not found: run-all.sh installs it (apt-get install strace)");
        // Attached once the daemon is traced (its status names a tracer).
        let traced = integration_tests::eventually(Duration::from_secs(10), || {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("TracerPid:"))
                    .is_some_and(|t| t.trim() != "0")
            })
        });
        assert!(traced, "strace did not attach to the daemon (pid {pid})");
        Strace { child, out }
    }

    /// Detaches and returns the trace.
    fn finish(mut self) -> String {
        // SAFETY: kill has no memory-safety preconditions; strace is our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

/// CR2's `strace -e inject=fsync:error`: every fsync of a deploy is made to
/// fail with EIO in turn (strace attached to the daemon with -p, counting
/// from the attach: the daemon makes no other fsync, and the count per
/// deploy is taken from an untouched deploy first, so each injection lands
/// on a known call). Each deploy answers `internal`, the old version stays
/// live and runs exactly its script, the state directory holds only it (no
/// temp file, no new version), and after a kill -9 and restart it is still
/// the old version, whole; then a deploy goes through.
#[test]
fn crash_fsync_failing_at_each_step_of_a_deploy_leaves_the_old_version_whole() {
    require_root();
    let mut d = TestDaemon::start();
    let trace_file = d.root().join("strace.out");
    let policy = sh_policy("", "");
    // Count the fsyncs of one deploy.
    let st = Strace::attach(d.pid(), trace_file.clone(), None);
    assert_eq!(d.deploy_sh("dur", "echo old\n", ""), 1);
    let trace = st.finish();
    let calls = trace.lines().filter(|l| l.contains("fsync(")).count();
    assert!(
        calls >= 5,
        "a deploy made {calls} fsync calls (files, directories, pointer):\n{trace}"
    );
    eprintln!("a deploy makes {calls} fsync calls; each fails in turn");
    let fdir = d.state_dir().join("functions/dur");
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(&fdir)
            .expect("dur's directory")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let old_state = || {
        assert_eq!(listing(), ["current", "v1"], "dur's directory");
        assert_eq!(
            std::fs::read_to_string(fdir.join("current")).expect("current"),
            "v1\n"
        );
        assert_eq!(
            std::fs::read_to_string(fdir.join("v1/dur/h.sh")).expect("h.sh"),
            "echo old\n"
        );
    };
    for n in 1..=calls {
        let st = Strace::attach(d.pid(), trace_file.clone(), Some(n));
        let v = d.deploy(
            "dur",
            &policy,
            &[("h.sh", format!("echo new-{n}\n").as_bytes(), true)],
        );
        let trace = st.finish();
        assert!(
            trace.contains("EIO") && trace.contains("INJECTED"),
            "fsync {n} of {calls} was not failed:\n{trace}"
        );
        assert_eq!(
            code(&v),
            Some("internal"),
            "fsync {n} of {calls} failed: {v}"
        );
        let r = d.invoke("dur", "");
        assert_eq!(
            r["result"]["stdout"], "old\n",
            "after fsync {n} failed: {r}"
        );
        assert_eq!(r["result"]["version"], 1, "after fsync {n} failed: {r}");
        old_state();
    }
    d.kill9();
    d.restart();
    let r = d.invoke("dur", "");
    assert_eq!(r["result"]["stdout"], "old\n", "after the restart: {r}");
    assert_eq!(r["result"]["version"], 1, "{r}");
    old_state();
    let v = d.deploy_sh("dur", "echo new\n", "");
    assert!(v >= 2, "version {v}");
    assert_eq!(d.invoke("dur", "")["result"]["stdout"], "new\n");
}
