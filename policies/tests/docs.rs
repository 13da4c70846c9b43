//! docs/policy.md and the fixtures must agree: every ```toml block in the
//! doc is preceded by `<!-- fixture: PATH -->` and equals that file byte for
//! byte; valid fixtures load; invalid ones fail with the error the doc shows
//! on the line after the block (``Error: `` ... `` ``); every fixture file is
//! shown in the doc.

#![cfg(test)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use paddock_policies::{load_policy, DaemonConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

struct Block {
    fixture: String,
    text: String,
    error: Option<String>,
}

fn blocks(doc: &str) -> Vec<Block> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("```toml") {
            panic!(
                "docs/policy.md line {}: toml block without a fixture marker",
                i + 1
            );
        }
        let Some(rest) = line.strip_prefix("<!-- fixture: ") else {
            i += 1;
            continue;
        };
        let fixture = rest
            .strip_suffix("-->")
            .expect("marker ends with -->")
            .trim()
            .to_owned();
        assert_eq!(
            lines.get(i + 1).map(|l| l.trim()),
            Some("```toml"),
            "line {}: marker not followed by ```toml",
            i + 1
        );
        let mut text = String::new();
        let mut j = i + 2;
        while lines[j].trim_end() != "```" {
            text.push_str(lines[j]);
            text.push('\n');
            j += 1;
        }
        let error = lines
            .get(j + 1)
            .and_then(|l| l.trim().strip_prefix("Error: ``"))
            .map(|l| {
                l.strip_suffix("``")
                    .expect("error line ends with ``")
                    .trim()
                    .to_owned()
            });
        out.push(Block {
            fixture,
            text,
            error,
        });
        i = j + 1;
    }
    out
}

#[test]
fn docs_examples_equal_fixtures_and_behave_as_documented() {
    let root = root();
    let doc = fs::read_to_string(root.join("docs/policy.md")).unwrap();
    let config = DaemonConfig::embedded_default();
    let blocks = blocks(&doc);
    assert!(blocks.len() >= 5, "too few examples found");
    let mut shown = BTreeSet::new();
    for b in &blocks {
        let path = root.join(&b.fixture);
        let file = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", b.fixture));
        assert_eq!(
            b.text, file,
            "docs/policy.md block differs from {}",
            b.fixture
        );
        shown.insert(path.clone());
        if b.fixture.ends_with("paddockd.toml") {
            DaemonConfig::parse(&file, &path).unwrap_or_else(|e| panic!("{e}"));
        } else if b.fixture.contains("/valid/") {
            assert!(
                b.error.is_none(),
                "{}: valid fixture with an error line",
                b.fixture
            );
            load_policy(&path, &config).unwrap_or_else(|e| panic!("{e}"));
        } else {
            let want = b
                .error
                .as_deref()
                .unwrap_or_else(|| panic!("{}: no Error: line after the block", b.fixture));
            let got = load_policy(&path, &config)
                .expect_err(&b.fixture)
                .to_string();
            assert!(
                got.contains(want),
                "{}: documented {want:?}, got {got:?}",
                b.fixture
            );
        }
    }
    for dir in ["valid", "invalid"] {
        for e in fs::read_dir(root.join("tests/fixtures/policies").join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                assert!(
                    shown.contains(&p),
                    "{} is not shown in docs/policy.md",
                    p.display()
                );
            }
        }
    }
}
