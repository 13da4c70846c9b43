//! Reading policy files: errors name the file and, where possible, the line.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::config::DaemonConfig;
use crate::error::{PolicyError, Problem};
use crate::name::validate_function_name;
use crate::policy::Policy;
use crate::schema::PolicyFile;
use crate::validate::validate;

/// Policy and config files larger than this are refused unread.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Reads a policy file, parses it and validates it against `config`'s
/// ceilings. The function name is the file stem (`hello.toml` → `hello`).
pub fn load_policy(path: &Path, config: &DaemonConfig) -> Result<Policy, PolicyError> {
    load_policy_with_warnings(path, config).map(|(p, _)| p)
}

/// [`load_policy`], also returning warnings (limits clamped to ceilings).
pub fn load_policy_with_warnings(
    path: &Path,
    config: &DaemonConfig,
) -> Result<(Policy, Vec<Problem>), PolicyError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    // The name is checked before the file is opened: it comes from a path.
    validate_function_name(stem).map_err(|source| PolicyError::Name {
        file: path.to_owned(),
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source,
    })?;
    let text = read_capped(path).map_err(|source| {
        if source.kind() == io::ErrorKind::FileTooLarge {
            PolicyError::TooLarge {
                file: path.to_owned(),
                max: MAX_POLICY_BYTES,
            }
        } else {
            PolicyError::Read {
                file: path.to_owned(),
                source,
            }
        }
    })?;
    parse_policy_with_warnings(stem, &text, path, config)
}

/// Parses and validates policy text for function `name`. `source` names the
/// file in messages, and its directory anchors a relative `directory` and
/// the default function directory `<dir of source>/<name>/`.
pub fn parse_policy(
    name: &str,
    text: &str,
    source: &Path,
    config: &DaemonConfig,
) -> Result<Policy, PolicyError> {
    parse_policy_with_warnings(name, text, source, config).map(|(p, _)| p)
}

/// [`parse_policy`], also returning warnings.
pub fn parse_policy_with_warnings(
    name: &str,
    text: &str,
    source: &Path,
    config: &DaemonConfig,
) -> Result<(Policy, Vec<Problem>), PolicyError> {
    let fname = validate_function_name(name).map_err(|e| PolicyError::Name {
        file: source.to_owned(),
        name: name.to_owned(),
        source: e,
    })?;
    let raw: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Syntax {
        problem: syntax_problem(source, text, &e),
    })?;
    validate(fname, raw, text, source, config).map_err(|problems| PolicyError::Invalid { problems })
}

/// Reads at most [`MAX_POLICY_BYTES`]; a longer file is
/// `io::ErrorKind::FileTooLarge`.
pub(crate) fn read_capped(path: &Path) -> io::Result<String> {
    let f = File::open(path)?;
    let mut buf = String::new();
    f.take(MAX_POLICY_BYTES + 1).read_to_string(&mut buf)?;
    if buf.len() as u64 > MAX_POLICY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "file too large",
        ));
    }
    Ok(buf)
}

/// 1-based line of a byte offset.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn header(trimmed: &str) -> Option<&str> {
    let inner = trimmed.strip_prefix('[')?;
    let end = inner.find(']')?;
    Some(inner[..end].trim_matches(|c| c == '[' || c == ' '))
}

/// The table (`limits`) in effect at a 1-based line, `""` at top level.
fn table_at_line(text: &str, line: usize) -> String {
    let mut table = String::new();
    for l in text.lines().take(line) {
        if let Some(h) = header(l.trim_start()) {
            table = h.to_owned();
        }
    }
    table
}

fn starts_with_key(line: &str, key: &str) -> bool {
    let Some(rest) = line.strip_prefix(key) else {
        return false;
    };
    rest.trim_start().starts_with('=')
}

/// Best-effort 1-based line of a dotted key (`limits.memory`): a line
/// `memory = ...` under `[limits]`, or `limits.memory = ...` at top level.
/// Falls back to shorter prefixes (`env.FOO` → the `env` line).
pub(crate) fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let mut key = dotted;
    loop {
        let (table, last) = key.rsplit_once('.').unwrap_or(("", key));
        let mut current = "";
        for (i, l) in text.lines().enumerate() {
            let t = l.trim_start();
            if let Some(h) = header(t) {
                current = h;
                if h == key {
                    return Some(i + 1);
                }
                continue;
            }
            if (current == table && starts_with_key(t, last))
                || (current.is_empty() && starts_with_key(t, key))
            {
                return Some(i + 1);
            }
        }
        key = key.rsplit_once('.')?.0;
    }
}

/// Turns a toml/serde error into a problem with the line and, for unknown
/// keys, the dotted key.
pub(crate) fn syntax_problem(file: &Path, text: &str, e: &toml::de::Error) -> Problem {
    let line = e.span().map(|s| line_at(text, s.start));
    let message = readable(e.message().trim());
    // The key is named in "unknown field" messages; otherwise the span
    // points at a value, and the key is the one assigned on that line.
    let field = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .map(|(field, _)| field.to_owned())
        .or_else(|| line.and_then(|l| key_on_line(text, l)));
    let key = field.map(|field| {
        let table = line.map(|l| table_at_line(text, l)).unwrap_or_default();
        if table.is_empty() || field.contains('.') {
            field
        } else {
            format!("{table}.{field}")
        }
    });
    Problem::error(file, line, key.as_deref(), message)
}

/// The bare or dotted key assigned on a line (`memory = ...` → `memory`).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim_start();
    let (key, _) = l.split_once('=')?;
    let key = key.trim();
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    ok.then(|| key.to_owned())
}

/// One line, and no internal type names: serde says "expected struct
/// NetworkFile" where the reader needs "expected a table".
fn readable(message: &str) -> String {
    let mut m = message.replace('\n', " ");
    if let Some(i) = m.find("expected struct ") {
        let rest = &m[i + "expected struct ".len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        m = format!("{}expected a table{}", &m[..i], &rest[end..]);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "runtime = \"native\"\n\n[limits]\nmemory = \"1GiB\"\n pids=3\n[filesystem]\nread_only = [\n \"/usr\",\n]\n";

    #[test]
    fn line_of_key_finds_keys_in_tables() {
        assert_eq!(line_of_key(TEXT, "runtime"), Some(1));
        assert_eq!(line_of_key(TEXT, "limits.memory"), Some(4));
        assert_eq!(line_of_key(TEXT, "limits.pids"), Some(5));
        assert_eq!(line_of_key(TEXT, "filesystem.read_only"), Some(7));
        assert_eq!(line_of_key(TEXT, "limits.tmp"), Some(3));
        assert_eq!(line_of_key(TEXT, "nothing"), None);
    }

    #[test]
    fn line_of_key_finds_dotted_top_level_keys() {
        assert_eq!(
            line_of_key("a = 1\nlimits.pids = 2\n", "limits.pids"),
            Some(2)
        );
    }

    #[test]
    fn line_at_counts_newlines() {
        assert_eq!(line_at("a\nb\nc", 0), 1);
        assert_eq!(line_at("a\nb\nc", 2), 2);
        assert_eq!(line_at("a\nb\nc", 99), 3);
    }
}
