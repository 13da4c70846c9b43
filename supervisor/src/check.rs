//! `paddockd check [FILE...]`: validate policies like `nginx -t`. One line per
//! problem (`file:line: key: message`), exit 1 on any error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use paddock_policies::{check_paths, DaemonConfig};

use crate::run::DEFAULT_CONFIG;

/// Run the check and print its findings.
pub fn main(config: Option<PathBuf>, files: Vec<PathBuf>) -> ExitCode {
    let cfg = match &config {
        Some(p) => DaemonConfig::load(p),
        None => DaemonConfig::load_or_default(Path::new(DEFAULT_CONFIG)),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paddockd check: {e}");
            return ExitCode::from(1);
        }
    };
    let files = if files.is_empty() {
        vec![cfg.functions_dir.clone()]
    } else {
        files
    };
    let problems = check_paths(&files, &cfg);
    let mut errors = 0;
    for p in &problems {
        println!("{p}");
        if p.is_error() {
            errors += 1;
        }
    }
    if errors > 0 {
        eprintln!("paddockd check: {errors} error(s)");
        ExitCode::from(1)
    } else {
        eprintln!("paddockd check: ok");
        ExitCode::SUCCESS
    }
}
