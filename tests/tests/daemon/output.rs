//! Output: floods (OT1), hostile bytes (OT3), FILE protocol output that is a
//! symlink, huge, a directory or a maze (OT4, OT6).

use std::time::{Duration, Instant};

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

#[test]
fn output_flood_is_cut_at_the_cap_on_time_with_rss_bounded() {
    require_root();
    let d = TestDaemon::start();
    d.deploy_ok(
        "flood",
        "runtime = \"native\"\ncommand = [\"/usr/bin/yes\"]\n\n[limits]\noutput = \"64KiB\"\ntimeout_ms = 3000\n",
        &[],
    );
    let t = Instant::now();
    let v = d.invoke("flood", "");
    let took = t.elapsed();
    let r = &v["result"];
    let out = bytes_field(r, "stdout").expect("stdout");
    assert_eq!(out.len(), 65536, "{}", r["status"]);
    assert!(out.starts_with(b"y\ny\n"));
    assert_eq!(r["stdout_truncated"], true, "{}", r["status"]);
    let rss = d.rss_kib();
    assert!(rss > 0 && rss < 200 * 1024, "daemon RSS {rss} KiB");
    // The cap is a limit like the others: the run stops there, before its timeout.
    assert_eq!(
        r["limit"], "output",
        "status {} limit {} after {took:?}",
        r["status"], r["limit"]
    );
    assert!(
        took < Duration::from_millis(3000),
        "answered after {took:?}"
    );
}

#[test]
fn output_hostile_bytes_stay_one_json_line() {
    require_root();
    let d = TestDaemon::start();
    // printf in dash understands octal escapes.
    d.deploy_sh(
        "binary",
        "printf '\\377\\000\"}\\n{\"ok\":true}\\033[31m'\n",
        "",
    );
    d.deploy_sh(
        "text",
        "printf 'a\\000b\"}\\n{\"ok\":true}\\033[31m\\r'\n",
        "",
    );
    let mut c = d.client();
    c.send(&json!({"id": 1, "op": "invoke", "function": "binary"}));
    let line = match c.recv_line(RECV_TIMEOUT) {
        Recv::Line(l) => l,
        other => panic!("{other:?}"),
    };
    let v: serde_json::Value = serde_json::from_slice(&line).expect("one JSON line");
    let r = &v["result"];
    assert!(
        r.get("stdout").is_none(),
        "non-UTF-8 must not travel as stdout: {v}"
    );
    assert_eq!(
        bytes_field(r, "stdout").expect("stdout_base64"),
        b"\xff\x00\"}\n{\"ok\":true}\x1b[31m"
    );
    // Nothing else arrived: the output did not forge a second answer.
    assert_eq!(c.recv_line(Duration::from_millis(200)), Recv::Timeout);

    let v = c.call(&json!({"id": 2, "op": "invoke", "function": "text"}));
    assert_eq!(
        v["result"]["stdout"], "a\u{0}b\"}\n{\"ok\":true}\u{1b}[31m\r",
        "{v}"
    );
    assert_eq!(c.recv_line(Duration::from_millis(200)), Recv::Timeout);
}

fn file_policy(limits: &str) -> String {
    format!("runtime = \"native\"\nprotocol = \"file\"\ncommand = [\"/bin/sh\", \"/fn/h.sh\"]\n\n[limits]\n{limits}\n")
}

fn deploy_file(d: &TestDaemon, name: &str, script: &str, limits: &str) {
    d.deploy_ok(
        name,
        &file_policy(limits),
        &[("h.sh", script.as_bytes(), true)],
    );
}

#[test]
fn output_file_symlinks_are_refused() {
    require_root();
    let d = TestDaemon::start();
    deploy_file(
        &d,
        "abs",
        "rm -f \"$OUTPUT_FILE\"; ln -s /etc/shadow \"$OUTPUT_FILE\"\n",
        "",
    );
    deploy_file(
        &d,
        "rel",
        "rm -f \"$OUTPUT_FILE\"; ln -s ../../../../etc/passwd \"$OUTPUT_FILE\"\n",
        "",
    );
    deploy_file(
        &d,
        "proc",
        "rm -f \"$OUTPUT_FILE\"; ln -s /proc/self/root/etc/passwd \"$OUTPUT_FILE\"\n",
        "",
    );
    for f in ["abs", "rel", "proc"] {
        let v = d.invoke(f, "x");
        let r = &v["result"];
        assert_eq!(r["status"], "exited", "{f}: {v}");
        assert!(
            r.get("output").is_none() && r.get("output_base64").is_none(),
            "{f}: {v}"
        );
        let e = r["output_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{f}: no output_error: {v}"));
        assert!(
            e.to_lowercase().contains("symlink") || e.contains("ELOOP") || e.contains("link"),
            "{f}: {e}"
        );
        let line = v.to_string();
        assert!(!line.contains("root:"), "{f}: host file leaked: {line}");
    }
}

// OT6, "truncate -s 1T": not reachable. The output file is written under
// the sandbox's RLIMIT_FSIZE, which is the policy's `limits.fsize`, and the
// daemon's ceiling for that is 256 MiB (policies/src/config.rs; a policy
// asking for more is refused). An ftruncate past RLIMIT_FSIZE is refused by
// the kernel with SIGXFSZ (EFBIG when ignored), so `truncate -s 1T` dies of
// SIGXFSZ (status 153) and the script's `||` falls back to the largest sparse
// file the ceiling allows, 250 MiB: ls -l on stderr shows which one it made.
// Asserted instead: the file is 250 MiB as reported, the output is cut at the
// 1 MiB `limits.output` (the size is checked with fstat before any read, then
// at most the cap is read), on time, with the daemon's RSS bounded.
#[test]
fn output_file_huge_sparse_is_truncated_fast() {
    require_root();
    let d = TestDaemon::start();
    deploy_file(
        &d,
        "sparse",
        "truncate -s 1T \"$OUTPUT_FILE\" 2>/dev/null || truncate -s 250M \"$OUTPUT_FILE\"\nls -l \"$OUTPUT_FILE\" >&2\n",
        "fsize = \"256MiB\"\noutput = \"1MiB\"",
    );
    let t = Instant::now();
    let v = d.invoke("sparse", "");
    let took = t.elapsed();
    let r = &v["result"];
    assert!(
        r["stderr"]
            .as_str()
            .is_some_and(|e| e.contains(&(250u64 << 20).to_string())),
        "the 1T truncate was refused and 250 MiB made instead: {v}"
    );
    assert_eq!(r["output_truncated"], true, "{v}");
    let out = bytes_field(r, "output").expect("output");
    assert_eq!(out.len(), 1 << 20, "output length");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let rss = d.rss_kib();
    assert!(rss < 200 * 1024, "daemon RSS {rss} KiB");
}

#[test]
fn output_file_that_is_a_directory_is_an_error() {
    require_root();
    let d = TestDaemon::start();
    deploy_file(
        &d,
        "dir",
        "rm -f \"$OUTPUT_FILE\"; mkdir \"$OUTPUT_FILE\"\n",
        "",
    );
    let v = d.invoke("dir", "");
    let r = &v["result"];
    assert!(r.get("output").is_none(), "{v}");
    assert!(
        r["output_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{v}"
    );
}

// OT6, "100 symlinks; directories 1000 deep". The FILE protocol's output is
// one name, $OUTPUT_FILE (/work/output), which the daemon opens by that name
// beneath the /work directory fd (openat2 RESOLVE_BENEATH|NO_SYMLINKS,
// O_NOFOLLOW|O_NONBLOCK) and never walks any tree: what sits beside it is a
// distraction, and its depth costs the reader nothing. So the maze is: a
// chain of 100 symlinks, a directory tree 1000 deep, and the file that
// becomes the output created at the bottom of that tree, then hard-linked as
// $OUTPUT_FILE (a hard link is the same regular file, so it is read; a
// symlink would be refused, see above). Asserted: the tree really is 1000
// deep (the script says so), the output is the bottom file's content, and
// the daemon's own share of the invocation (its answer time minus the run's
// wall time: the read and the clean-up of the tree) stays under 1 s. Beside
// it, an output that is a symlink loop and one that is a FIFO (which a
// blocking open would wait on forever) are errors, answered quickly.
#[test]
fn output_file_at_the_bottom_of_a_1000_deep_tree_among_100_symlinks_is_read_by_name_fast() {
    require_root();
    let d = TestDaemon::start();
    let script = r#"
cd "$(dirname "$OUTPUT_FILE")"
i=0; while [ $i -lt 100 ]; do ln -s "l$((i+1))" "l$i"; i=$((i+1)); done
p=deep; i=0; while [ $i -lt 1000 ]; do p="$p/d"; i=$((i+1)); done
mkdir -p "$p" && cd "$p" && echo "from the bottom" > out && ln out "$OUTPUT_FILE" || exit 3
n=0; while [ "$PWD" != "$(dirname "$OUTPUT_FILE")/deep" ]; do cd ..; n=$((n+1)); done
echo "depth $n" >&2
"#;
    deploy_file(&d, "maze", script, "timeout_ms = 10000");
    deploy_file(&d, "loop", "rm -f \"$OUTPUT_FILE\"; ln -s l0 \"$OUTPUT_FILE\"\ncd \"$(dirname \"$OUTPUT_FILE\")\"; ln -s output l0\n", "");
    deploy_file(
        &d,
        "fifo",
        "rm -f \"$OUTPUT_FILE\"; mkfifo \"$OUTPUT_FILE\"\n",
        "",
    );
    let t = Instant::now();
    let v = d.invoke("maze", "");
    let took = t.elapsed();
    let r = &v["result"];
    assert_eq!(r["exit_code"], 0, "{v}");
    assert_eq!(r["stderr"], "depth 1000\n", "{v}");
    assert_eq!(r["output"], "from the bottom\n", "{v}");
    let wall = Duration::from_millis(r["wall_ms"].as_u64().expect("wall_ms"));
    assert!(
        took.saturating_sub(wall) < Duration::from_secs(1),
        "the daemon took {took:?} for a run of {wall:?}"
    );
    for f in ["loop", "fifo"] {
        let t = Instant::now();
        let v = d.invoke(f, "");
        assert!(v["result"]["output_error"].is_string(), "{f}: {v}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{f}: took {:?}",
            t.elapsed()
        );
    }
}
