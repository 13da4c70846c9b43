//! RS1, RS2, RS4, RS7: pids, memory, disk, rlimits and CPU.

use integration_tests::*;

// RS1: fork and thread bombs stop at pids.max with EAGAIN.
#[test]
fn resources_fork_bomb_hits_eagain() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["fork_bomb", "2"]);
    assert_errno(&r, "EAGAIN");
    assert!(r["count"].as_u64().unwrap_or(99) < 32, "{r}");
}

#[test]
fn resources_fork_bomb_reports_pids_limit() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "fork_bomb", "1"], None);
    assert_errno(&r.probe_exited(), "EAGAIN");
    assert_eq!(r.limit(), Some("pids"), "{r}");
}

#[test]
fn resources_thread_bomb_hits_eagain() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["thread_bomb"]);
    assert_errno(&r, "EAGAIN");
    assert!(r["count"].as_u64().unwrap_or(99) < 32, "{r}");
}

#[test]
fn resources_fork_bomb_leaves_neighbour_unaffected() {
    require_root();
    let d = FnDir::new();
    let bomb = d.policy().name("bomb").write();
    let calm = d.policy().name("calm").write();
    let b = spawn(&bomb, &["/fn/probe", "fork_bomb", "2"], None);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let n = run(&calm, &["/fn/probe", "fork_bomb", "0", "10"], None);
    assert_ok(&n.probe_exited());
    assert_eq!(n.probe()["count"], 10, "{n}");
    assert_errno(&b.wait().probe_exited(), "EAGAIN");
}

// RS2: memory. The row's "exit 137" is the shell's way of saying SIGKILL: the
// result reports status `oom` (from memory.events' oom_kill), limit `memory`,
// and, as for any run, how the command itself ended (README: `exit_code`,
// `signal`, null when not applicable). The OOM killer's signal is SIGKILL: when
// the command is the one it killed, `signal` is 9 and `exit_code` null.
#[test]
fn resources_memory_bomb_is_oom_killed_by_sigkill() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "alloc", "96MiB"], None);
    assert_eq!(r.status(), "oom", "{r}");
    assert_eq!(r.limit(), Some("memory"), "{r}");
    assert_eq!(r.signal(), Some(9), "the OOM killer's SIGKILL: {r}");
    assert_eq!(r.exit_code(), None, "{r}");
}

#[test]
fn resources_memory_bomb_leaves_neighbour_unaffected() {
    require_root();
    let d = FnDir::new();
    let hog = d.policy().name("hog").write();
    let calm = d.policy().name("calm").write();
    let h = spawn(&hog, &["/fn/probe", "alloc_children", "2", "40MiB"], None);
    let n = run(&calm, &["/fn/probe", "alloc", "16MiB"], None);
    assert_ok(&n.probe_exited());
    assert_eq!(h.wait().status(), "oom");
}

// Two children of 40 MB under 64 MiB: the OOM killer picks a child (SIGKILL,
// seen by the probe's waitpid), the other finishes, and the command itself
// survives to print: status `oom` for the run, with the command's own ending
// (exit 0, no signal) as the schema reports it for any run.
#[test]
fn resources_two_processes_memory_is_oom_with_a_child_sigkilled() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "alloc_children", "2", "40MiB"], None);
    assert_eq!(r.status(), "oom", "{r}");
    assert_eq!(r.limit(), Some("memory"), "{r}");
    assert_eq!(r.exit_code(), Some(0), "the command itself survived: {r}");
    assert_eq!(r.signal(), None, "{r}");
    let children = r.probe()["children"].as_array().cloned().expect("children");
    assert_eq!(children.len(), 2, "{r}");
    assert!(
        children.iter().any(|c| c["signal"] == 9),
        "no child was SIGKILLed by the OOM killer: {r}"
    );
    assert!(
        children
            .iter()
            .all(|c| c["signal"] == 9 || c["exit_code"] == 0),
        "a child ended some other way: {r}"
    );
}

#[test]
fn resources_memory_peak_is_reported() {
    require_root();
    let (_d, p) = setup();
    let r = run(&p, &["/fn/probe", "alloc", "24MiB"], None);
    assert_ok(&r.probe_exited());
    let peak = r.int("memory_peak_bytes");
    assert!((24 << 20..=64 << 20).contains(&peak), "{r}");
}

// RS4: disk and rlimits.
#[test]
fn resources_tmp_fill_is_enospc() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().limit("fsize", "\"64MiB\"").write();
    let r = probe(&p, &["fill_tmp", "/tmp/big"]);
    assert_errno(&r, "ENOSPC");
    assert!(r["bytes"].as_u64().unwrap_or(u64::MAX) <= 16 << 20, "{r}");
}

#[test]
fn resources_tmp_inodes_is_enospc() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["many_files", "/tmp", "1000000"]);
    assert_errno(&r, "ENOSPC");
    assert!(r["count"].as_u64().unwrap_or(u64::MAX) <= 4096, "{r}");
}

#[test]
fn resources_write_past_fsize_is_sigxfsz() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().limit("fsize", "\"1MiB\"").write();
    let r = run(
        &p,
        &["/fn/probe", "write_past_fsize", "/tmp/f", "2MiB"],
        None,
    );
    assert_eq!(r.status(), "signaled", "{r}");
    assert_eq!(r.signal(), Some(25), "{r}");
    assert_eq!(r.limit(), Some("fsize"), "{r}");
}

#[test]
fn resources_write_past_fsize_ignored_is_efbig() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().limit("fsize", "\"1MiB\"").write();
    let r = probe(&p, &["write_past_fsize", "/tmp/f", "2MiB", "ignore"]);
    assert_errno(&r, "EFBIG");
    assert_eq!(r["bytes"], 1 << 20, "{r}");
}

#[test]
fn resources_many_fds_is_emfile() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["many_fds", "100000"]);
    assert_errno(&r, "EMFILE");
    assert_eq!(r["count"], 256 - 3, "{r}");
}

#[test]
fn resources_rlimits_are_set() {
    require_root();
    let (_d, p) = setup();
    let r = probe(&p, &["rlimits"]);
    assert_eq!(r["core"], serde_json::json!([0, 0]), "{r}");
    assert_eq!(r["nofile"][0], 256, "{r}");
    assert_eq!(r["fsize"][0], 16u64 << 20, "{r}");
}

// RS7: CPU.
errno_test!(resources_nice_negative_is_eperm, ["nice", "-20"], "EPERM");
errno_test!(resources_sched_fifo_is_eperm, ["sched_fifo"], "EPERM");

// 64 threads of `while(1)` (the row's count; pids raised to fit them) under
// a 0.5-core quota.
#[test]
fn resources_cpu_hog_of_64_threads_is_capped() {
    require_root();
    let d = FnDir::new();
    let p = d.policy().limit("cpu", "0.5").limit("pids", "128").write();
    let r = run(&p, &["/fn/probe", "cpu_hog", "64", "1.5"], None);
    let h = r.probe_exited();
    assert_eq!(h["threads"], 64, "{r}");
    let (cpu, wall) = (
        h["cpu_ms"].as_u64().unwrap_or(0),
        h["wall_ms"].as_u64().unwrap_or(1),
    );
    // 0.5 core over `wall`, plus one CFS period of slack.
    assert!(
        cpu <= wall * 6 / 10 + 100,
        "cpu {cpu} ms over {wall} ms: {r}"
    );
    assert!(cpu >= wall / 4, "the hog did run: {r}");
    let reported = r.int("cpu_user_ms") + r.int("cpu_system_ms");
    assert!(reported as u64 >= cpu * 9 / 10, "{r}");
}

// Neighbour latency: while a 64-thread hog under its 1-core quota runs (this
// host has 2 cores), short runs of a neighbour still finish quickly. The bound
// is generous (2 s, for runs that take well under 100 ms on an idle host): it
// catches a starved neighbour, not a slow one.
#[test]
fn resources_cpu_hog_leaves_neighbour_latency_bounded() {
    require_root();
    let d = FnDir::new();
    let hog = d
        .policy()
        .name("hog")
        .limit("cpu", "1.0")
        .limit("pids", "128")
        .write();
    let calm = d.policy().name("calm").write();
    let hog_secs = 3.0;
    let start = std::time::Instant::now();
    let h = spawn(&hog, &["/fn/probe", "cpu_hog", "64", "3"], None);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut walls = Vec::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let n = run(&calm, &["/fn/probe", "status"], None);
        let took = t.elapsed();
        n.probe_exited();
        walls.push((took.as_millis(), n.int("wall_ms")));
        assert!(
            took < std::time::Duration::from_secs(2),
            "neighbour took {took:?} beside the hog: {n}"
        );
    }
    assert!(
        start.elapsed().as_secs_f64() < hog_secs,
        "the neighbour runs outlasted the hog, so they were not measured beside it: {walls:?}"
    );
    let hr = h.wait();
    assert_eq!(hr.probe_exited()["threads"], 64, "{hr}");
}

// RS2, swap 0: while a run is alive, its cgroup (read from the host side)
// caps memory+swap at the memory limit on v1 (memory.memsw.limit_in_bytes)
// or allows no swap at all on v2 (memory.swap.max = 0), so the memory limit
// cannot be stretched by swapping out.
#[test]
fn resources_run_cgroup_allows_no_swap() {
    require_root();
    let _x = exclusive();
    let d = FnDir::new();
    let p = d.policy().limit("memory", "\"48MiB\"").write();
    let before = paddock_cgroups();
    let running = spawn(&p, &["/fn/probe", "sleep", "3"], None);
    let mut new: Vec<std::path::PathBuf> = Vec::new();
    let seen = eventually(std::time::Duration::from_secs(2), || {
        new = paddock_cgroups()
            .into_iter()
            .filter(|c| !before.contains(c))
            .map(std::path::PathBuf::from)
            .collect();
        // The limits are written before the sandbox's first process is
        // cloned, so once one runs they are final.
        !new.is_empty() && !sandbox_processes(SANDBOX_UIDS).is_empty()
    });
    let mut checked = Vec::new();
    for c in &new {
        let read = |f: &str| std::fs::read_to_string(c.join(f)).map(|s| s.trim().to_owned());
        if let Ok(memsw) = read("memory.memsw.limit_in_bytes") {
            assert_eq!(
                read("memory.limit_in_bytes").ok().as_deref(),
                Some("50331648"),
                "{c:?}"
            );
            assert_eq!(
                memsw, "50331648",
                "{c:?}: memory+swap above the memory limit"
            );
            checked.push(c.join("memory.memsw.limit_in_bytes"));
        }
        if let Ok(swap) = read("memory.swap.max") {
            assert_eq!(swap, "0", "{c:?}");
            checked.push(c.join("memory.swap.max"));
        }
    }
    let r = running.wait();
    assert_eq!(r.status(), "exited", "{r}");
    assert!(
        seen,
        "the run's memory cgroup was never seen; new cgroups: {new:?}"
    );
    assert!(
        !checked.is_empty(),
        "no swap control file in the run's cgroups {new:?}: neither \
         memory.memsw.limit_in_bytes (cgroup v1: this kernel does not account swap; \
         boot with swapaccount=1) nor memory.swap.max (cgroup v2) exists on this host, \
         so swap 0 cannot be checked here"
    );
}
