//! JSON and framing: hostile values (DP1), a very long line (DP2), pipelining,
//! 1-byte writes, CRLF and trailing junk (DP3).

use std::time::Duration;

use integration_tests::daemon::*;
use integration_tests::require_root;
use serde_json::json;

#[test]
fn framing_hostile_json_gets_typed_errors_and_the_connection_survives() {
    require_root();
    let d = TestDaemon::start();
    let mut c = d.client();
    let deep = "[".repeat(100_000);
    let deep_obj = format!(
        "{{\"id\":1,\"op\":\"hello\",\"x\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        deep_obj.into_bytes(),
        br#"{"id":1,"op":"invoke","function":"hello-python","timeout_ms":1e309}"#.to_vec(),
        br#"{"id":1,"op":"invoke","function":"hello-python","timeout_ms":18446744073709551616}"#
            .to_vec(),
        br#"{"id":1,"op":"invoke","function":"hello-python","timeout_ms":-1}"#.to_vec(),
        br#"{"id":1,"op":"invoke","function":"hello-python","timeout_ms":NaN}"#.to_vec(),
        br#"{"id":1,"op":"invoke","function":"hello-python","timeout_ms":1.5}"#.to_vec(),
        br#"{"id":18446744073709551616,"op":"hello"}"#.to_vec(),
        br#"{"id":-1e400,"op":"hello"}"#.to_vec(),
        b"{\"id\":1,\"op\":\"\xff\"}".to_vec(),
        b"{\"id\":1,\"op\":\"invoke\",\"function\":\"hello-\xffpython\"}".to_vec(),
        br#"{"id":1,"op":"invoke","function":"\ud800"}"#.to_vec(),
        br#"{"id":1,"op":"invoke","function":"hello-python\u0000x"}"#.to_vec(),
        br#"{"id":{"a":1},"op":"hello"}"#.to_vec(),
        br#""just a string""#.to_vec(),
        b"\x00\x00\x00".to_vec(),
    ];
    for case in cases {
        let mut line = case.clone();
        line.push(b'\n');
        c.write_bytes(&line).expect("write");
        let v = c.recv_within(Duration::from_secs(5));
        let shown = String::from_utf8_lossy(&case[..case.len().min(80)]).into_owned();
        let code = code(&v).unwrap_or_else(|| panic!("{shown}: accepted: {v}"));
        assert!(
            ["bad_request", "unknown_op", "unknown_function"].contains(&code),
            "{shown}: {v}"
        );
    }
    // A NUL inside a name is rejected, never truncated to "hello-python".
    let v =
        c.call(&json!({"id": 9, "op": "invoke", "function": "hello-python\u{0}", "input": "{}"}));
    assert_ne!(v["ok"], true, "{v}");
    let v = c.call(&json!({"id": 10, "op": "hello"}));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["id"], 10);
}

#[test]
fn framing_20_mib_line_is_too_large_and_rss_stays_bounded() {
    require_root();
    let d = TestDaemon::start();
    let base = d.rss_kib();
    let mut c = d.client();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..20 {
        if c.write_bytes(&chunk).is_err() {
            break; // closed after the cap: fine
        }
    }
    let v = c.recv_within(Duration::from_secs(5));
    assert_eq!(code(&v), Some("too_large"), "{v}");
    assert!(c.wait_eof(Duration::from_secs(5)), "no EOF after too_large");
    let rss = d.rss_kib();
    assert!(
        rss < base + 64 * 1024,
        "daemon RSS grew from {base} to {rss} KiB"
    );
    let v = d.client().call(&json!({"id": 1, "op": "hello"}));
    assert_eq!(v["ok"], true);
}

#[test]
fn framing_pipelined_crlf_one_byte_writes_and_trailing_junk() {
    require_root();
    let d = TestDaemon::start();
    let mut c = d.client();
    // Two requests in one write, the second CRLF-terminated, with blank lines around.
    c.write_bytes(b"\n{\"id\":1,\"op\":\"hello\"}\n{\"id\":2,\"op\":\"list\"}\r\n\r\n")
        .expect("write");
    assert_eq!(c.recv()["id"], 1);
    let v = c.recv();
    assert_eq!(v["id"], 2, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    // One byte at a time.
    for b in b"{\"id\":3,\"op\":\"stats\"}\n" {
        c.write_bytes(&[*b]).expect("write");
        std::thread::sleep(Duration::from_millis(2));
    }
    let v = c.recv();
    assert_eq!(v["id"], 3, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    // Trailing junk after a valid object spoils only that line.
    c.write_bytes(b"{\"id\":4,\"op\":\"hello\"} junk\n{\"id\":5,\"op\":\"hello\"}{\"id\":6,\"op\":\"hello\"}\n{\"id\":7,\"op\":\"hello\"}\n")
        .expect("write");
    for _ in 0..2 {
        let v = c.recv();
        assert_eq!(code(&v), Some("bad_request"), "{v}");
    }
    let v = c.recv();
    assert_eq!(v["id"], 7, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    // A request split across writes, with an invoke in it.
    c.write_bytes(b"{\"id\":8,\"op\":\"invoke\",\"funct")
        .expect("write");
    std::thread::sleep(Duration::from_millis(50));
    c.write_bytes(b"ion\":\"hello-python\",\"input\":\"{\\\"name\\\":\\\"Bo\\\"}\"}\r\n")
        .expect("write");
    let v = c.recv();
    assert_eq!(v["id"], 8, "{v}");
    assert_eq!(
        v["result"]["stdout"], "{\"greeting\": \"Hello, Bo!\"}\n",
        "{v}"
    );
}
