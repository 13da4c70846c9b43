//! `paddock check`: load policy files and report every problem as
//! `file:line: key: message`.

use std::path::{Path, PathBuf};

use crate::config::DaemonConfig;
use crate::error::Problem;
use crate::load::load_policy_with_warnings;

/// Checks policy files. A directory stands for the `*.toml` files directly
/// in it (sorted). Returns errors and warnings; an empty list means every
/// file loads cleanly.
pub fn check_paths(paths: &[PathBuf], config: &DaemonConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    for path in paths {
        if path.is_dir() {
            match toml_files(path) {
                Ok(files) => {
                    for f in files {
                        check_file(&f, config, &mut problems);
                    }
                }
                Err(e) => problems.push(Problem::error(
                    path,
                    None,
                    None,
                    format!("cannot list directory: {e}"),
                )),
            }
        } else {
            check_file(path, config, &mut problems);
        }
    }
    problems
}

fn check_file(path: &Path, config: &DaemonConfig, out: &mut Vec<Problem>) {
    match load_policy_with_warnings(path, config) {
        Ok((_, warnings)) => out.extend(warnings),
        Err(e) => out.extend(e.problems()),
    }
}

fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "toml") && !p.is_dir() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}
