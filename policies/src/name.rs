//! Function names: `^[a-z0-9][a-z0-9_-]{0,63}$`, ASCII only.
//!
//! A name becomes a file name (`NAME.toml`), a directory, a cgroup and a log
//! field, so anything that could traverse (`..`, `/`), look like an option
//! (`-rf`), hide (control characters, fullwidth letters) or grow without
//! bound is rejected here once.

use std::fmt;

/// The longest function name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A function name that passed [`validate_function_name`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionName(String);

impl FunctionName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the name and returns the string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FunctionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for FunctionName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        validate_function_name(s)
    }
}

/// Why a function name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("function name is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("function name is {len} bytes long; the maximum is 64")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// The first character is not `a-z` or `0-9`.
    #[error("function name must start with a-z or 0-9, not {found:?}")]
    BadStart {
        /// The offending character.
        found: char,
    },
    /// A later character is not `a-z`, `0-9`, `_` or `-`.
    #[error(
        "function name may only contain a-z, 0-9, '_' and '-'; found {found:?} at byte {index}"
    )]
    BadChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
}

/// Checks `s` against `^[a-z0-9][a-z0-9_-]{0,63}$`.
pub fn validate_function_name(s: &str) -> Result<FunctionName, NameError> {
    let Some(first) = s.chars().next() else {
        return Err(NameError::Empty);
    };
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: s.len() });
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(NameError::BadStart { found: first });
    }
    for (index, c) in s.char_indices().skip(1) {
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
            return Err(NameError::BadChar { found: c, index });
        }
    }
    Ok(FunctionName(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_plain_is_accepted() {
        for ok in ["a", "0", "hello-python", "a_b-c9", &"x".repeat(64)] {
            assert_eq!(validate_function_name(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn name_rg1_inputs_are_rejected() {
        let long = "a".repeat(300);
        let cases: &[&str] = &[
            "../../etc/passwd",
            "..",
            ".",
            "",
            "a/b",
            "-rf",
            &long,
            "ｆｏｏ",
            "x\n",
            "Foo",
            "a b",
            "a.toml",
            "_x",
            "x\0",
            &"x".repeat(65),
        ];
        for bad in cases {
            assert!(validate_function_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn name_errors_say_why() {
        assert!(matches!(validate_function_name(""), Err(NameError::Empty)));
        assert!(matches!(
            validate_function_name(&"a".repeat(300)),
            Err(NameError::TooLong { len: 300 })
        ));
        assert!(matches!(
            validate_function_name("-rf"),
            Err(NameError::BadStart { found: '-' })
        ));
        assert!(matches!(
            validate_function_name("x\n"),
            Err(NameError::BadChar {
                found: '\n',
                index: 1
            })
        ));
        assert!(matches!(
            validate_function_name("ｆｏｏ"),
            Err(NameError::BadStart { .. })
        ));
    }
}
