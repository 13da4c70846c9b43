//! Protocol version 1: newline-delimited JSON over a Unix stream socket.
//!
//! Every request is one JSON object on one line with an `id` (an integer or a
//! string, echoed in the response) and an `op`. Requests on one connection
//! may be pipelined; responses carry the id and may arrive out of order (an
//! `invoke` answers when its run ends, everything else at once). A response
//! is `{"id":..,"ok":true,"result":{..}}` or
//! `{"id":..,"ok":false,"error":{"code":"..","message":".."}}` with a stable
//! code. A bad request never harms the connection's other requests, nor the
//! daemon; a line over the size cap gets `too_large` and the connection closes.
//! docs/protocol.md is the reference, with one replayed example per op.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

/// The protocol version this daemon speaks.
pub const VERSION: u32 = 1;

/// Every op, in the order `hello` lists them.
pub const OPS: [&str; 9] = [
    "hello", "invoke", "cancel", "list", "describe", "deploy", "remove", "reload", "stats",
];

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    UnknownOp,
    UnknownFunction,
    Forbidden,
    TooLarge,
    Busy,
    InvalidPolicy,
    ShuttingDown,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::UnknownOp => "unknown_op",
            Code::UnknownFunction => "unknown_function",
            Code::Forbidden => "forbidden",
            Code::TooLarge => "too_large",
            Code::Busy => "busy",
            Code::InvalidPolicy => "invalid_policy",
            Code::ShuttingDown => "shutting_down",
            Code::Internal => "internal",
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorReply {
    pub code: Code,
    pub message: String,
    /// Extra fields (e.g. `retry_after_ms` for busy).
    pub extra: serde_json::Map<String, Value>,
}

impl ErrorReply {
    pub fn new(code: Code, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            code,
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }

    pub fn with(mut self, key: &str, v: Value) -> ErrorReply {
        self.extra.insert(key.into(), v);
        self
    }
}

/// `invoke`: run a function.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeReq {
    pub function: String,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub input_base64: Option<String>,
    /// May only lower the policy's timeout.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Only keys the policy's `env_passthrough` names.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `cancel`: stop an `invoke` of this connection by its request id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelReq {
    pub request: Value,
}

/// `describe` and `remove`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionReq {
    pub function: String,
}

/// `deploy`: a policy (TOML text) and the function's files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployReq {
    pub function: String,
    pub policy: String,
    /// File name → base64 contents, written into the function's directory.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Names among `files` to mark executable.
    #[serde(default)]
    pub executable: Vec<String>,
}

/// Ops without arguments.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Hello,
    Invoke(InvokeReq),
    Cancel(CancelReq),
    List,
    Describe(FunctionReq),
    Deploy(DeployReq),
    Remove(FunctionReq),
    Reload,
    Stats,
}

impl Request {
    /// Whether the op changes the registry (admin access needed).
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Request::Deploy(_) | Request::Remove(_) | Request::Reload
        )
    }
}

/// Parse one line. Returns the id to echo (null if it could not be found)
/// and the request or the error to answer with.
pub fn parse(line: &[u8]) -> (Value, Result<Request, ErrorReply>) {
    let v: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return (
                Value::Null,
                Err(ErrorReply::new(
                    Code::BadRequest,
                    format!("not valid JSON: {e}"),
                )),
            )
        }
    };
    let Value::Object(mut obj) = v else {
        return (
            Value::Null,
            Err(ErrorReply::new(
                Code::BadRequest,
                "a request is a JSON object",
            )),
        );
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let id_ok = match &id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if !id_ok {
        return (
            Value::Null,
            Err(ErrorReply::new(
                Code::BadRequest,
                "`id` is required: an integer or a string",
            )),
        );
    }
    let op = match obj.remove("op") {
        Some(Value::String(s)) => s,
        _ => {
            return (
                id,
                Err(ErrorReply::new(
                    Code::BadRequest,
                    "`op` is required: a string",
                )),
            )
        }
    };
    let rest = Value::Object(obj);
    fn args<T: for<'de> Deserialize<'de>>(op: &str, v: Value) -> Result<T, ErrorReply> {
        serde_json::from_value(v)
            .map_err(|e| ErrorReply::new(Code::BadRequest, format!("{op}: {e}")))
    }
    let req = match op.as_str() {
        "hello" => args::<Empty>(&op, rest).map(|_| Request::Hello),
        "invoke" => args(&op, rest).map(Request::Invoke),
        "cancel" => args(&op, rest).map(Request::Cancel),
        "list" => args::<Empty>(&op, rest).map(|_| Request::List),
        "describe" => args(&op, rest).map(Request::Describe),
        "deploy" => args(&op, rest).map(Request::Deploy),
        "remove" => args(&op, rest).map(Request::Remove),
        "reload" => args::<Empty>(&op, rest).map(|_| Request::Reload),
        "stats" => args::<Empty>(&op, rest).map(|_| Request::Stats),
        _ => Err(ErrorReply::new(
            Code::UnknownOp,
            format!("unknown op {op:?}; ops are {}", OPS.join(", ")),
        )),
    };
    (id, req)
}

/// A success line (with the trailing newline). The buffer is sized for
/// the result's strings up front: a 16 MiB output is written once, not
/// regrown (and copied) a dozen times on the event loop.
pub fn ok_line(id: &Value, result: Value) -> Vec<u8> {
    let mut s = Vec::with_capacity(strings_len(&result) + 1024);
    serde_json::to_writer(&mut s, &json!({ "id": id, "ok": true, "result": result }))
        .expect("serialising a Value cannot fail");
    s.push(b'\n');
    s
}

/// The bytes of the strings in `v` (an estimate of its JSON size: escapes
/// can only make it longer).
fn strings_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(strings_len).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + strings_len(v)).sum(),
        _ => 0,
    }
}

/// An error line (with the trailing newline).
pub fn err_line(id: &Value, e: &ErrorReply) -> Vec<u8> {
    let mut err = serde_json::Map::new();
    err.insert("code".into(), json!(e.code.as_str()));
    err.insert("message".into(), json!(e.message));
    for (k, v) in &e.extra {
        err.insert(k.clone(), v.clone());
    }
    let mut s = serde_json::to_vec(&json!({ "id": id, "ok": false, "error": err }))
        .expect("serialising a Value cannot fail");
    s.push(b'\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> (Value, Option<Code>) {
        let (id, r) = parse(line.as_bytes());
        (id, r.err().map(|e| e.code))
    }

    #[test]
    fn protocol_every_op_parses() {
        for (line, want) in [
            (r#"{"id":1,"op":"hello"}"#, Request::Hello),
            (r#"{"id":2,"op":"list"}"#, Request::List),
            (r#"{"id":3,"op":"reload"}"#, Request::Reload),
            (r#"{"id":4,"op":"stats"}"#, Request::Stats),
        ] {
            assert_eq!(parse(line.as_bytes()).1.unwrap(), want);
        }
        let (id, r) =
            parse(br#"{"id":"a","op":"invoke","function":"f","input":"x","timeout_ms":5}"#);
        assert_eq!(id, json!("a"));
        assert!(matches!(
            r.unwrap(),
            Request::Invoke(InvokeReq {
                timeout_ms: Some(5),
                ..
            })
        ));
        assert!(matches!(
            parse(br#"{"id":5,"op":"cancel","request":"a"}"#).1.unwrap(),
            Request::Cancel(_)
        ));
        assert!(matches!(
            parse(br#"{"id":6,"op":"deploy","function":"f","policy":"x","files":{"a":"AA=="}}"#)
                .1
                .unwrap(),
            Request::Deploy(_)
        ));
    }

    #[test]
    fn protocol_bad_requests_get_stable_codes_and_keep_the_id() {
        assert_eq!(
            code(r#"{"id":7,"op":"frobnicate"}"#),
            (json!(7), Some(Code::UnknownOp))
        );
        assert_eq!(
            code(r#"{"id":7,"op":"hello","x":1}"#),
            (json!(7), Some(Code::BadRequest))
        );
        assert_eq!(code(r#"{"id":7}"#), (json!(7), Some(Code::BadRequest)));
        assert_eq!(code(r#"{"op":"hello"}"#).1, Some(Code::BadRequest));
        assert_eq!(code(r#"{"id":1.5,"op":"hello"}"#).1, Some(Code::BadRequest));
        assert_eq!(code(r#"[1,2]"#).1, Some(Code::BadRequest));
        assert_eq!(code("not json").1, Some(Code::BadRequest));
    }

    #[test]
    fn protocol_hostile_json_is_a_typed_error_not_a_panic() {
        // DP1: deep nesting, huge and negative numbers, NaN, raw bytes, lone surrogates.
        let deep = "[".repeat(100_000);
        assert_eq!(code(&deep).1, Some(Code::BadRequest));
        for bad in [
            r#"{"id":1,"op":"invoke","function":"f","timeout_ms":1e309}"#,
            r#"{"id":1,"op":"invoke","function":"f","timeout_ms":18446744073709551616}"#,
            r#"{"id":1,"op":"invoke","function":"f","timeout_ms":-1}"#,
            r#"{"id":1,"op":"invoke","function":"f","timeout_ms":NaN}"#,
            r#"{"id":1,"op":"invoke","function":"\ud800"}"#,
        ] {
            assert_eq!(code(bad).1, Some(Code::BadRequest), "{bad}");
        }
        assert_eq!(
            parse(b"{\"id\":1,\"op\":\"\xff\"}").1.unwrap_err().code,
            Code::BadRequest
        );
    }

    #[test]
    fn protocol_lines_are_single_json_lines() {
        let l = ok_line(&json!(1), json!({"stdout": "a\nb\"}"}));
        assert_eq!(l.iter().filter(|b| **b == b'\n').count(), 1);
        let e = err_line(
            &json!("x"),
            &ErrorReply::new(Code::Busy, "full").with("retry_after_ms", json!(50)),
        );
        let v: Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["error"]["code"], "busy");
        assert_eq!(v["error"]["retry_after_ms"], 50);
        assert_eq!(v["ok"], false);
    }
}
