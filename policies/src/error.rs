//! Errors and problems. A [`Problem`] is one finding about one file
//! (`file:line: key: message`); errors that can carry several findings hold a
//! list of them so that `paddock check` can print them all.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::name::NameError;
use crate::paths::PathError;

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is rejected.
    Error,
    /// The file is accepted, but something was changed (a limit clamped to
    /// its ceiling) or is suspicious.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the finding is about.
    pub file: PathBuf,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// Dotted key (`limits.memory`), where known.
    pub key: Option<String>,
    /// What is wrong, lowercase, without the file name.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Problem {
    pub(crate) fn error(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: file.into(),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line: key: message`. The line is left out when unknown, the key
/// when unknown or when the message already starts with it
/// (`limits.memory = 100GiB exceeds ...`). Warnings say `warning:` first.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(key) = &self.key {
            if !self.message.starts_with(key.as_str()) {
                write!(f, "{key}: ")?;
            }
        }
        f.write_str(&self.message)
    }
}

fn join(problems: &[Problem]) -> String {
    let mut s = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        s.push_str(&p.to_string());
    }
    s
}

/// A policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{}: cannot read policy file", file.display())]
    Read {
        /// The policy file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`crate::load::MAX_POLICY_BYTES`].
    #[error("{}: policy file is larger than {max} bytes", file.display())]
    TooLarge {
        /// The policy file.
        file: PathBuf,
        /// The limit.
        max: u64,
    },
    /// Not TOML, or not our schema: syntax errors, unknown keys, wrong types,
    /// bad units. The problem has the line.
    #[error("{problem}")]
    Syntax {
        /// What and where.
        problem: Problem,
    },
    /// The function name (the file stem) is not valid.
    #[error("{}: invalid function name {name:?}", file.display())]
    Name {
        /// The policy file.
        file: PathBuf,
        /// The name as given.
        name: String,
        /// Why.
        #[source]
        source: NameError,
    },
    /// The file parsed but breaks a rule or a ceiling.
    #[error("{}", join(problems))]
    Invalid {
        /// Every error found (warnings are not included).
        problems: Vec<Problem>,
    },
    /// A host path was rejected by [`crate::resolve_checked`].
    #[error("{}: {kind}", path.display())]
    Path {
        /// The path as given.
        path: PathBuf,
        /// Why.
        kind: PathError,
    },
}

impl PolicyError {
    /// The error as problems, one per finding, for `paddock check`.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            PolicyError::Read { file, source } => {
                vec![Problem::error(
                    file,
                    None,
                    None,
                    format!("cannot read policy file: {source}"),
                )]
            }
            PolicyError::TooLarge { file, max } => {
                vec![Problem::error(
                    file,
                    None,
                    None,
                    format!("policy file is larger than {max} bytes"),
                )]
            }
            PolicyError::Syntax { problem } => vec![problem.clone()],
            PolicyError::Name { file, name, source } => vec![Problem::error(
                file,
                None,
                None,
                format!("invalid function name {name:?} (from the file name): {source}"),
            )],
            PolicyError::Invalid { problems } => problems.clone(),
            PolicyError::Path { path, kind } => {
                vec![Problem::error(path, None, None, kind.to_string())]
            }
        }
    }
}

/// The daemon config could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read daemon config", file.display())]
    Read {
        /// The config file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Not TOML, or not our schema.
    #[error("{problem}")]
    Syntax {
        /// What and where.
        problem: Problem,
    },
    /// The file parsed but breaks a rule.
    #[error("{}", join(problems))]
    Invalid {
        /// Every error found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The error as problems, one per finding.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            ConfigError::Read { file, source } => {
                vec![Problem::error(
                    file,
                    None,
                    None,
                    format!("cannot read daemon config: {source}"),
                )]
            }
            ConfigError::Syntax { problem } => vec![problem.clone()],
            ConfigError::Invalid { problems } => problems.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_has_file_line_key_message() {
        let p = Problem::error(
            "/x/f.toml",
            Some(7),
            Some("limits.pids"),
            "must be at least 1",
        );
        assert_eq!(
            p.to_string(),
            "/x/f.toml:7: limits.pids: must be at least 1"
        );
    }

    #[test]
    fn problem_display_skips_key_already_in_message() {
        let p = Problem::error(
            "f.toml",
            None,
            Some("limits.memory"),
            "limits.memory = 2GiB exceeds the ceiling 1GiB",
        );
        assert_eq!(
            p.to_string(),
            "f.toml: limits.memory = 2GiB exceeds the ceiling 1GiB"
        );
    }

    #[test]
    fn problem_display_marks_warnings() {
        let mut p = Problem::error("f.toml", Some(2), Some("limits.pids"), "clamped");
        p.severity = Severity::Warning;
        assert_eq!(p.to_string(), "f.toml:2: warning: limits.pids: clamped");
    }
}
