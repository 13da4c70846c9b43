//! Any bytes as one request line: parsing never panics, always yields a
//! request or a typed error, and every answer is one valid JSON line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paddock_supervisor::protocol;

fuzz_target!(|data: &[u8]| {
    let (id, req) = protocol::parse(data);
    let line = match req {
        Ok(_) => protocol::ok_line(&id, serde_json::json!({})),
        Err(e) => protocol::err_line(&id, &e),
    };
    assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    let v: serde_json::Value = serde_json::from_slice(&line).expect("answer is JSON");
    assert!(v.get("ok").is_some());
});
