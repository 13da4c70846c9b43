//! The warm runner's framing (`paddock-wasm --warm`): requests on its
//! stdin, responses on its stdout, strictly one response per request, in
//! order.
//!
//! ```text
//! frame   = len:u32le  header_len:u32le  header[header_len]  body[len - 4 - header_len]
//! request header  = {"fuel": u64, "env": [["KEY", "VALUE"], ...]}
//! request body    = the invocation's input (the module's stdin)
//! response header = {"exit_code": i32, "stdout": n, "stderr": m,
//!                    "stdout_truncated": bool, "stderr_truncated": bool,
//!                    "wasm_error": null | {"kind": "...", "message": "..."}}
//! response body   = n bytes of stdout, then m bytes of stderr
//! ```
//!
//! `len` counts everything after itself. The header is JSON (UTF-8); the
//! body is raw bytes. Exit codes and `wasm_error` follow the oneshot
//! convention (exit 125 with a `wasm_error` when the module could not run
//! to its end), so a warm result reads like a oneshot one. A reader refuses
//! a frame longer than its limit before buffering it: the daemon's limit for
//! responses is [`max_response`], a runner's for requests [`MAX_REQUEST`].

use serde_json::{json, Value};

use crate::wasm::WasmError;

/// The largest request a runner accepts.
pub const MAX_REQUEST: usize = 1 << 30;
/// Room for a response header (its JSON, message included).
pub const MAX_HEADER: usize = 64 << 10;

/// The largest response a runner may send for output capped at `cap` bytes
/// per stream: both streams full and a header.
pub fn max_response(cap: u64) -> usize {
    usize::try_from(cap.saturating_mul(2))
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_HEADER + 8)
}

/// One invocation, daemon to runner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub fuel: u64,
    /// The module's whole environment.
    pub env: Vec<(String, String)>,
    /// The module's stdin.
    pub input: Vec<u8>,
}

/// How the invocation ended, runner to daemon.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub wasm_error: Option<WasmError>,
}

/// A frame that breaks the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame: {0}")]
pub struct FrameError(pub String);

fn bad(msg: impl Into<String>) -> FrameError {
    FrameError(msg.into())
}

fn encode(header: &Value, body: &[&[u8]]) -> Vec<u8> {
    let h = serde_json::to_vec(header).expect("a JSON value serializes");
    let body_len: usize = body.iter().map(|b| b.len()).sum();
    let len = 4 + h.len() + body_len;
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    for b in body {
        out.extend_from_slice(b);
    }
    out
}

/// The length of the frame at the start of `buf` (prefix included), once
/// its prefix is there; an error if it is over `max`.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(p) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
    if len > max {
        return Err(bad(format!("frame of {len} bytes (limit {max})")));
    }
    if len < 4 {
        return Err(bad(format!("frame of {len} bytes has no header length")));
    }
    Ok(Some(4 + len))
}

/// Splits a whole frame (prefix included) into its header and body.
fn split(frame: &[u8]) -> Result<(Value, &[u8]), FrameError> {
    let rest = frame.get(4..).ok_or_else(|| bad("short frame"))?;
    let hl = rest.get(..4).ok_or_else(|| bad("short frame"))?;
    let hl = u32::from_le_bytes([hl[0], hl[1], hl[2], hl[3]]) as usize;
    let header = rest
        .get(4..4 + hl.min(rest.len()))
        .filter(|h| h.len() == hl)
        .ok_or_else(|| bad(format!("header of {hl} bytes past the frame's end")))?;
    let v: Value =
        serde_json::from_slice(header).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(bad("header is not an object"));
    }
    Ok((v, &rest[4 + hl..]))
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let env: Vec<[&str; 2]> = self.env.iter().map(|(k, v)| [&k[..], &v[..]]).collect();
        encode(&json!({"fuel": self.fuel, "env": env}), &[&self.input])
    }

    /// Parses a whole frame (prefix included).
    pub fn decode(frame: &[u8]) -> Result<Request, FrameError> {
        let (h, body) = split(frame)?;
        let fuel = h["fuel"].as_u64().ok_or_else(|| bad("fuel: not a u64"))?;
        let env = h["env"]
            .as_array()
            .ok_or_else(|| bad("env: not an array"))?
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => Ok((k.clone(), v.clone())),
                _ => Err(bad("env: not a [key, value] pair of strings")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Request {
            fuel,
            env,
            input: body.to_vec(),
        })
    }
}

impl Response {
    /// A response for an invocation that could not run (exit 125).
    pub fn error(e: WasmError) -> Response {
        Response {
            exit_code: crate::wasm::RESERVED_EXIT,
            wasm_error: Some(e),
            ..Response::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let err = self.wasm_error.as_ref().map_or(
            Value::Null,
            |e| json!({"kind": e.kind, "message": e.message}),
        );
        let h = json!({
            "exit_code": self.exit_code,
            "stdout": self.stdout.len(),
            "stderr": self.stderr.len(),
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "wasm_error": err,
        });
        encode(&h, &[&self.stdout, &self.stderr])
    }

    /// Parses a whole frame (prefix included). Every length is checked
    /// against the frame: a runner cannot make the daemon read past it.
    pub fn decode(frame: &[u8]) -> Result<Response, FrameError> {
        let (h, body) = split(frame)?;
        let exit_code = h["exit_code"]
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .ok_or_else(|| bad("exit_code: not an i32"))?;
        let n = |k: &str| {
            h[k].as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad(format!("{k}: not a length")))
        };
        let (out, err) = (n("stdout")?, n("stderr")?);
        if out.checked_add(err) != Some(body.len()) {
            return Err(bad(format!(
                "stdout {out} + stderr {err} bytes != body {} bytes",
                body.len()
            )));
        }
        let flag = |k: &str| {
            h[k].as_bool()
                .ok_or_else(|| bad(format!("{k}: not a bool")))
        };
        let wasm_error = match &h["wasm_error"] {
            Value::Null => None,
            v => Some(WasmError {
                kind: v["kind"]
                    .as_str()
                    .ok_or_else(|| bad("wasm_error.kind: not a string"))?
                    .to_owned(),
                message: v["message"]
                    .as_str()
                    .ok_or_else(|| bad("wasm_error.message: not a string"))?
                    .to_owned(),
            }),
        };
        Ok(Response {
            exit_code,
            stdout: body[..out].to_vec(),
            stderr: body[out..].to_vec(),
            stdout_truncated: flag("stdout_truncated")?,
            stderr_truncated: flag("stderr_truncated")?,
            wasm_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::ErrorKind;

    #[test]
    fn request_round_trips() {
        let r = Request {
            fuel: 7,
            env: vec![("A".into(), "b=c".into()), ("EMPTY".into(), String::new())],
            input: b"\0\xffbytes".to_vec(),
        };
        let f = r.encode();
        assert_eq!(frame_len(&f, MAX_REQUEST).unwrap(), Some(f.len()));
        assert_eq!(Request::decode(&f).unwrap(), r);
    }

    #[test]
    fn response_round_trips() {
        let mut r = Response::error(WasmError::new(ErrorKind::OutOfFuel, "no \"fuel\"\n"));
        r.stdout = b"out".to_vec();
        r.stderr = b"\xfferr".to_vec();
        r.stdout_truncated = true;
        let f = r.encode();
        assert_eq!(Response::decode(&f).unwrap(), r);
        let ok = Response::default();
        assert_eq!(Response::decode(&ok.encode()).unwrap(), ok);
    }

    #[test]
    fn frame_len_waits_for_the_prefix_and_enforces_the_limit() {
        assert_eq!(frame_len(&[1, 0], 100).unwrap(), None);
        assert!(frame_len(&[0xff, 0xff, 0xff, 0x7f], 100).is_err());
        assert!(frame_len(&[2, 0, 0, 0], 100).is_err());
        assert_eq!(frame_len(&[10, 0, 0, 0], 100).unwrap(), Some(14));
    }

    #[test]
    fn response_lengths_must_match_the_body() {
        let mut f = Response {
            stdout: b"abc".to_vec(),
            ..Response::default()
        }
        .encode();
        f.pop();
        let n = (f.len() - 4) as u32;
        f[..4].copy_from_slice(&n.to_le_bytes());
        assert!(Response::decode(&f).is_err());
        // A header length past the end.
        let mut g = Response::default().encode();
        g[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Response::decode(&g).is_err());
        // Not JSON.
        let h = [9, 0, 0, 0, 5, 0, 0, 0, b'{', b'x', b'y', b'z', b'}'];
        assert!(Response::decode(&h).is_err());
    }

    #[test]
    fn max_response_covers_both_streams() {
        let cap = 10;
        let r = Response {
            stdout: vec![1; 10],
            stderr: vec![2; 10],
            wasm_error: Some(WasmError::new(ErrorKind::Trap, "x".repeat(1000))),
            ..Response::default()
        };
        assert!(r.encode().len() <= max_response(cap));
    }
}
