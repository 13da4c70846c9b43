//! Host path rules for `filesystem.read_only`, `filesystem.writable` and the
//! function `directory` (attacks RG2 and FS5).
//!
//! A path is checked three ways: its spelling ([`check_spelling`]: absolute,
//! no `.`/`..`/`//`/trailing `/`/NUL), the never-allowed list
//! ([`check_never_allowed`]: neither the path nor anything it would expose
//! may be off limits, whatever the daemon config says) and, on the host,
//! [`resolve_checked`] (no symlinked intermediate component; a final symlink
//! only when its target passes the same checks).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::PolicyError;

/// Paths no policy may mount, nor any directory containing them. `/` is
/// implied: it contains all of them.
pub const NEVER_ALLOWED_PATHS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/run",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/root",
    "/boot",
];

/// Any path containing this is refused: mounting the Docker socket is root
/// on the host.
pub const NEVER_ALLOWED_SUBSTRING: &str = "docker.sock";

/// Where the sandbox mounts its own filesystems: a host path bound at or
/// beneath one of these would hide it (or be hidden), so no policy may list one.
pub const SANDBOX_MOUNTS: &[&str] = &["/fn", "/tmp", "/work"];

const MAX_SYMLINK_DEPTH: u32 = 8;

/// Why a host path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// An empty string.
    #[error("path is empty")]
    Empty,
    /// A NUL byte.
    #[error("path contains a NUL byte")]
    Nul,
    /// Does not start with `/`.
    #[error("path is not absolute")]
    NotAbsolute,
    /// Absolute where a path relative to the function directory is needed.
    #[error("path must be relative to the function directory")]
    NotRelative,
    /// A `..` component.
    #[error("path contains a '..' component")]
    DotDot,
    /// A `.` component.
    #[error("path contains a '.' component")]
    Dot,
    /// `//` inside.
    #[error("path contains '//'")]
    DoubleSlash,
    /// Ends with `/`.
    #[error("path ends with '/'")]
    TrailingSlash,
    /// Equal to, or beneath, a never-allowed path.
    #[error("{rule} is never allowed")]
    NeverAllowed {
        /// The rule that matched.
        rule: &'static str,
    },
    /// Contains a never-allowed path (mounting `/` or `/etc` would expose
    /// `/etc/shadow`).
    #[error("it would expose {rule}, which is never allowed")]
    ExposesNeverAllowed {
        /// The never-allowed path beneath it.
        rule: &'static str,
    },
    /// Not equal to or beneath any allowed root.
    #[error("path is not within the allowed paths ({allowed})")]
    NotWithin {
        /// The allowed roots, comma-separated.
        allowed: String,
    },
    /// Not on the host.
    #[error("path does not exist")]
    DoesNotExist,
    /// A component before the last is a symlink.
    #[error("component {} is a symlink; name the real path instead", component.display())]
    IntermediateSymlink {
        /// The symlink.
        component: PathBuf,
    },
    /// The final component is a symlink whose target is not acceptable.
    #[error("path is a symlink to {}, and the target is rejected: {reason}", target.display())]
    SymlinkTarget {
        /// The resolved target.
        target: PathBuf,
        /// Why the target was rejected.
        reason: Box<PathError>,
    },
    /// At or beneath one of the sandbox's own mounts ([`SANDBOX_MOUNTS`]).
    #[error("{mount} is the sandbox's own mount; a host path there is not allowed")]
    SandboxMount {
        /// The sandbox mount it would collide with.
        mount: &'static str,
    },
    /// A symlink where none is allowed (the function directory).
    #[error("path is a symlink")]
    IsSymlink,
    /// Not a directory where one is needed.
    #[error("path is not a directory")]
    NotADirectory,
    /// Symlinks nest too deep.
    #[error("too many levels of symlinks")]
    TooManyLinks,
    /// lstat or readlink failed for another reason.
    #[error("cannot inspect the path: {message}")]
    Io {
        /// The I/O error as text.
        message: String,
    },
}

/// Checks how an absolute host path is written and returns it. `/` passes
/// here (the never-allowed check rejects it).
pub fn check_spelling(s: &str) -> Result<PathBuf, PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if s.contains('\0') {
        return Err(PathError::Nul);
    }
    if !s.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if s == "/" {
        return Ok(PathBuf::from(s));
    }
    if s.contains("//") {
        return Err(PathError::DoubleSlash);
    }
    if s.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    for c in s.split('/').skip(1) {
        match c {
            ".." => return Err(PathError::DotDot),
            "." => return Err(PathError::Dot),
            _ => {}
        }
    }
    Ok(PathBuf::from(s))
}

/// Rejects never-allowed paths, paths beneath them, and paths above them.
pub fn check_never_allowed(p: &Path) -> Result<(), PathError> {
    if p.to_string_lossy().contains(NEVER_ALLOWED_SUBSTRING) {
        return Err(PathError::NeverAllowed {
            rule: NEVER_ALLOWED_SUBSTRING,
        });
    }
    if p == Path::new("/") {
        return Err(PathError::NeverAllowed { rule: "/" });
    }
    for rule in NEVER_ALLOWED_PATHS {
        if p.starts_with(rule) {
            return Err(PathError::NeverAllowed { rule });
        }
        if Path::new(rule).starts_with(p) {
            return Err(PathError::ExposesNeverAllowed { rule });
        }
    }
    Ok(())
}

/// True if `p` equals or lies beneath one of `allowed` (component-wise:
/// `/usrx` is not beneath `/usr`).
pub fn is_within(p: &Path, allowed: &[PathBuf]) -> bool {
    allowed.iter().any(|a| p.starts_with(a))
}

fn check_within(p: &Path, allowed: &[PathBuf]) -> Result<(), PathError> {
    if is_within(p, allowed) {
        Ok(())
    } else {
        Err(PathError::NotWithin {
            allowed: allowed
                .iter()
                .map(|a| a.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Lexical normalisation: drops `.`, applies `..`, collapses `//`. Only
/// sound where no component is a symlink.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => {}
        }
    }
    out
}

fn io_error(e: &io::Error) -> PathError {
    if e.kind() == io::ErrorKind::NotFound {
        PathError::DoesNotExist
    } else {
        PathError::Io {
            message: e.to_string(),
        }
    }
}

/// Checks `path` (spelling, never-allowed, within `allowed`) and then walks
/// it on the host component by component with lstat. A symlinked component
/// before the last is an error (`/lib/x86_64-linux-gnu` when `/lib` links to
/// `usr/lib`). A final symlink is followed (relative targets from its parent)
/// and the target must pass every check itself (`/lib` → `/usr/lib` is fine
/// when `/usr` is allowed). Returns the host path that a bind mount of
/// `path` would show: `path` itself, or the resolved target.
pub fn resolve_checked(path: &Path, allowed: &[PathBuf]) -> Result<PathBuf, PolicyError> {
    let fail = |kind| PolicyError::Path {
        path: path.to_owned(),
        kind,
    };
    let s = path.to_str().ok_or_else(|| {
        fail(PathError::Io {
            message: "path is not UTF-8".into(),
        })
    })?;
    let p = check_spelling(s).map_err(fail)?;
    resolve(&p, allowed, 0).map_err(fail)
}

/// Refuses a path (as seen in the sandbox) at or beneath [`SANDBOX_MOUNTS`].
pub fn check_not_sandbox_mount(p: &Path) -> Result<(), PathError> {
    match SANDBOX_MOUNTS.iter().find(|m| p.starts_with(m)) {
        Some(mount) => Err(PathError::SandboxMount { mount }),
        None => Ok(()),
    }
}

pub(crate) fn resolve(p: &Path, allowed: &[PathBuf], depth: u32) -> Result<PathBuf, PathError> {
    check_never_allowed(p)?;
    check_within(p, allowed)?;
    let parts: Vec<_> = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let mut cur = PathBuf::from("/");
    for (i, c) in parts.iter().enumerate() {
        cur.push(c);
        let md = fs::symlink_metadata(&cur).map_err(|e| io_error(&e))?;
        let last = i + 1 == parts.len();
        if md.file_type().is_symlink() {
            if !last {
                return Err(PathError::IntermediateSymlink { component: cur });
            }
            if depth >= MAX_SYMLINK_DEPTH {
                return Err(PathError::TooManyLinks);
            }
            let link = fs::read_link(&cur).map_err(|e| io_error(&e))?;
            let parent = cur.parent().unwrap_or(Path::new("/"));
            // The parent has no symlinks (checked above), so `..` in the
            // target can be applied lexically.
            let target = normalize(&parent.join(link));
            return resolve(&target, allowed, depth + 1).map_err(|reason| {
                PathError::SymlinkTarget {
                    target,
                    reason: Box::new(reason),
                }
            });
        }
        if !last && !md.is_dir() {
            return Err(PathError::DoesNotExist);
        }
    }
    Ok(cur)
}

/// Checks a function directory on the host: exists, is a directory, is not
/// a symlink, and exposes nothing never-allowed.
pub fn check_function_dir(p: &Path) -> Result<(), PathError> {
    check_never_allowed(p)?;
    let md = fs::symlink_metadata(p).map_err(|e| io_error(&e))?;
    if md.file_type().is_symlink() {
        return Err(PathError::IsSymlink);
    }
    if !md.is_dir() {
        return Err(PathError::NotADirectory);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn path_spelling_rules_are_enforced() {
        assert_eq!(check_spelling("/usr"), Ok(PathBuf::from("/usr")));
        assert_eq!(check_spelling("usr"), Err(PathError::NotAbsolute));
        assert_eq!(check_spelling("../x"), Err(PathError::NotAbsolute));
        assert_eq!(check_spelling("/usr/../etc"), Err(PathError::DotDot));
        assert_eq!(check_spelling("/usr/./lib"), Err(PathError::Dot));
        assert_eq!(check_spelling("/usr//lib"), Err(PathError::DoubleSlash));
        assert_eq!(check_spelling("/usr/"), Err(PathError::TrailingSlash));
        assert_eq!(check_spelling("/us\0r"), Err(PathError::Nul));
        assert_eq!(check_spelling(""), Err(PathError::Empty));
    }

    #[test]
    fn path_never_allowed_rules_match_beneath_and_above() {
        let na = |s: &str| check_never_allowed(Path::new(s));
        assert!(matches!(
            na("/"),
            Err(PathError::NeverAllowed { rule: "/" })
        ));
        assert!(matches!(
            na("/proc/sys"),
            Err(PathError::NeverAllowed { rule: "/proc" })
        ));
        assert!(matches!(
            na("/var/run/docker.sock"),
            Err(PathError::NeverAllowed { .. })
        ));
        assert!(matches!(
            na("/srv/docker.sock"),
            Err(PathError::NeverAllowed { .. })
        ));
        assert!(matches!(
            na("/etc"),
            Err(PathError::ExposesNeverAllowed { .. })
        ));
        assert!(matches!(
            na("/var"),
            Err(PathError::ExposesNeverAllowed { .. })
        ));
        assert!(matches!(
            na("/etc/shadow"),
            Err(PathError::NeverAllowed { .. })
        ));
        assert!(na("/usr").is_ok());
        assert!(na("/etc/ssl/certs").is_ok());
        assert!(na("/procfs").is_ok());
    }

    #[test]
    fn path_within_is_component_wise() {
        let allowed = [PathBuf::from("/usr")];
        assert!(is_within(Path::new("/usr/lib"), &allowed));
        assert!(is_within(Path::new("/usr"), &allowed));
        assert!(!is_within(Path::new("/usrx"), &allowed));
    }

    #[test]
    fn resolve_intermediate_symlink_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir(root.join("real")).unwrap();
        fs::create_dir(root.join("real/sub")).unwrap();
        symlink("real", root.join("link")).unwrap();
        let allowed = [root.clone()];
        let err = resolve_checked(&root.join("link/sub"), &allowed).unwrap_err();
        assert!(
            matches!(
                &err,
                PolicyError::Path {
                    kind: PathError::IntermediateSymlink { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn resolve_final_symlink_within_allowed_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir(root.join("real")).unwrap();
        symlink("real", root.join("link")).unwrap();
        let got = resolve_checked(&root.join("link"), std::slice::from_ref(&root)).unwrap();
        assert_eq!(got, root.join("real"));
    }

    #[test]
    fn resolve_final_symlink_outside_allowed_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("allowed");
        fs::create_dir(&root).unwrap();
        fs::create_dir(dir.path().join("secret")).unwrap();
        symlink("../secret", root.join("link")).unwrap();
        let err = resolve_checked(&root.join("link"), std::slice::from_ref(&root)).unwrap_err();
        assert!(
            matches!(
                &err,
                PolicyError::Path {
                    kind: PathError::SymlinkTarget { .. },
                    ..
                }
            ),
            "{err}"
        );
        symlink("/etc/shadow", root.join("shadow")).unwrap();
        let err = resolve_checked(&root.join("shadow"), std::slice::from_ref(&root)).unwrap_err();
        assert!(err.to_string().contains("/etc/shadow"), "{err}");
    }

    #[test]
    fn resolve_missing_path_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let err = resolve_checked(&root.join("nope"), std::slice::from_ref(&root)).unwrap_err();
        assert!(matches!(
            &err,
            PolicyError::Path {
                kind: PathError::DoesNotExist,
                ..
            }
        ));
    }

    #[test]
    fn resolve_symlink_loop_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        assert!(resolve_checked(&root.join("a"), std::slice::from_ref(&root)).is_err());
    }

    #[test]
    fn function_dir_symlink_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir(root.join("real")).unwrap();
        symlink("real", root.join("link")).unwrap();
        fs::write(root.join("file"), "").unwrap();
        assert_eq!(check_function_dir(&root.join("real")), Ok(()));
        assert_eq!(
            check_function_dir(&root.join("link")),
            Err(PathError::IsSymlink)
        );
        assert_eq!(
            check_function_dir(&root.join("file")),
            Err(PathError::NotADirectory)
        );
        assert_eq!(
            check_function_dir(&root.join("none")),
            Err(PathError::DoesNotExist)
        );
    }
}
