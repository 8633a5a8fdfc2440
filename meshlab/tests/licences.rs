//! Every crate we build into meshlab carries a permissive licence (MIT, Apache-2.0,
//! BSD, ISC, MPL-2.0 at most). `deny.toml` says the same for cargo-deny; this test
//! makes every `cargo test` run check it without installing anything.

use std::process::Command;

use serde_json::Value;

const ALLOWED: &[&str] = &[
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "MPL-2.0",
    "Unicode-3.0",
    "Zlib",
    "0BSD",
    "CDLA-Permissive-2.0",
];

/// Whether an SPDX expression of ORs, ANDs and parentheses is satisfied by
/// [`ALLOWED`] (the old `/` separator counts as OR).
fn allowed(expression: &str) -> bool {
    let expression = expression.trim();
    if let Some(inner) = expression
        .strip_prefix('(')
        .and_then(|e| e.strip_suffix(')'))
        && balanced(inner)
    {
        return allowed(inner);
    }
    if let Some(parts) = split_top(expression, " OR ").or_else(|| split_top(expression, "/")) {
        return parts.iter().any(|p| allowed(p));
    }
    if let Some(parts) = split_top(expression, " AND ") {
        return parts.iter().all(|p| allowed(p));
    }
    ALLOWED.contains(&expression)
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// `s` split on `sep` outside parentheses, if `sep` occurs there.
fn split_top<'a>(s: &'a str, sep: &str) -> Option<Vec<&'a str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut i) = (0, 0, 0);
    while i < s.len() {
        match s.as_bytes()[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if depth == 0 && s[i..].starts_with(sep) => {
                parts.push(&s[start..i]);
                i += sep.len();
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    (parts.len() > 1).then_some(parts)
}

#[test]
fn spdx_expressions_are_read_correctly() {
    assert!(allowed("MIT OR Apache-2.0"));
    assert!(allowed("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(allowed("Apache-2.0 AND ISC"));
    assert!(allowed("MIT/Apache-2.0"));
    assert!(!allowed("GPL-3.0-only"));
    assert!(!allowed("MIT AND GPL-2.0-or-later"));
    assert!(allowed("GPL-2.0-only OR MIT"));
}

#[test]
fn every_dependency_has_a_permissive_licence() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            "x86_64-unknown-linux-gnu",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let used: Vec<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut offending = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        if !used.contains(&package["id"].as_str().unwrap_or_default()) {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default();
        match package["license"].as_str() {
            Some(licence) if allowed(licence) => {}
            licence => offending.push(format!("{name}: {licence:?}")),
        }
    }
    assert!(
        offending.is_empty(),
        "crates without a permissive licence: {offending:#?}"
    );
}
