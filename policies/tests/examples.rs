//! The shipped examples load with the embedded default config, and
//! `check_paths` reports file:line problems.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

use paddock_policies::{check_paths, load_policy, DaemonConfig, Runtime, Severity};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

#[test]
fn examples_all_load_with_the_embedded_config() {
    let config = DaemonConfig::embedded_default();
    let mut n = 0;
    for e in fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let policy = load_policy(&p, &config).unwrap_or_else(|e| panic!("{e}"));
            let dir = policy.directory.as_ref().expect("example has a directory");
            assert_eq!(dir, &examples().join(policy.name.as_str()));
            n += 1;
        }
    }
    assert_eq!(n, 6);
}

#[test]
fn examples_echo_wat_needs_no_built_module() {
    // The runner loads WAT text: the module is the committed source.
    let p = load_policy(
        &examples().join("echo-wat.toml"),
        &DaemonConfig::embedded_default(),
    )
    .unwrap();
    assert_eq!(
        p.runtime,
        Runtime::Wasm {
            module: "echo.wat".into()
        }
    );
    assert!(examples().join("echo-wat/echo.wat").is_file());
}

#[test]
fn check_examples_directory_is_clean() {
    let problems = check_paths(&[examples()], &DaemonConfig::embedded_default());
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn check_syntax_error_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.toml");
    fs::write(&f, "runtime = \"native\"\ncommand = [\"/bin/cat\"\n").unwrap();
    let problems = check_paths(std::slice::from_ref(&f), &DaemonConfig::embedded_default());
    assert_eq!(problems.len(), 1);
    let p = &problems[0];
    assert_eq!(p.file, f);
    assert!(p.line.is_some_and(|l| l >= 2), "{p}");
    assert!(
        p.to_string().starts_with(&format!("{}:", f.display())),
        "{p}"
    );
}

#[test]
fn check_unknown_key_reports_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a.toml"),
        "runtime = \"native\"\ncommand = [\"/bin/cat\"]\n\n[limits]\nmemroy = \"1MiB\"\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("b.toml"),
        "runtime = \"native\"\ncommand = [\"/bin/cat\"]\n",
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
    let problems = check_paths(&[dir.path().to_owned()], &DaemonConfig::embedded_default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(p.line, Some(5));
    assert_eq!(p.key.as_deref(), Some("limits.memroy"));
    let want = format!(
        "{}:5: limits.memroy: unknown field `memroy`",
        dir.path().join("a.toml").display()
    );
    assert!(p.to_string().starts_with(&want), "{p}");
}

#[test]
fn check_clamped_limit_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("c.toml"),
        "runtime = \"native\"\ncommand = [\"/bin/cat\"]\n[limits]\npids = 1000\n",
    )
    .unwrap();
    let config =
        DaemonConfig::parse("[ceilings]\nclamp = true\n", Path::new("paddockd.toml")).unwrap();
    let problems = check_paths(&[dir.path().to_owned()], &config);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert_eq!(problems[0].line, Some(4));
}

#[test]
fn check_bad_file_name_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Bad Name.toml"),
        "runtime = \"native\"\ncommand = [\"/bin/cat\"]\n",
    )
    .unwrap();
    let problems = check_paths(&[dir.path().to_owned()], &DaemonConfig::embedded_default());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains("invalid function name"),
        "{}",
        problems[0]
    );
}

#[test]
fn check_missing_file_is_reported() {
    let problems = check_paths(
        &[PathBuf::from("/nonexistent/x.toml")],
        &DaemonConfig::embedded_default(),
    );
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].message.contains("cannot read"),
        "{}",
        problems[0]
    );
}
