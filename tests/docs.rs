//! The repository stands on its own: every `PROTOCOL.md §N.N` the code and the docs cite is a
//! section of the repository's copy `docs/PROTOCOL.md`, and no code or script reads the
//! `../shared` folder beside the project (`scripts/sync-shared.sh` copies from it, nothing else).

use regex::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The project's own files with one of `extensions`: not the build outputs, not git's, not the
/// copied corpus (upstream's text, kept verbatim).
fn project_files(extensions: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
        // The fuzz crate's build output and corpora too: generated, and large.
        let skip = [
            root().join("target"),
            root().join(".git"),
            root().join("tests/conformance"),
            root().join("fuzz/target"),
            root().join("fuzz/corpus"),
            root().join("fuzz/artifacts"),
        ];
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if !skip.contains(&path) && !path.ends_with("__pycache__") {
                    walk(&path, extensions, out);
                }
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root(), extensions, &mut out);
    out
}

/// The section numbers of `docs/PROTOCOL.md`: `N` for `## N. …`, `N.M` for `### N.M …`.
fn protocol_sections() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("docs/PROTOCOL.md")).expect("docs/PROTOCOL.md reads");
    let heading = Regex::new(r"^(?:## (\d+)\.|### (\d+\.\d+))(?:\s|$)").unwrap();
    text.lines()
        .filter_map(|line| heading.captures(line))
        .map(|c| c.get(1).or(c.get(2)).unwrap().as_str().to_owned())
        .collect()
}

/// The sections a citation names: `4.5`, a range `2.7–2.9` (each of 2.7, 2.8, 2.9), `4–5`.
fn cited(from: &str, to: Option<&str>) -> Vec<String> {
    let Some(to) = to else { return vec![from.to_owned()] };
    let split = |s: &str| -> (u32, Option<u32>) {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next())
    };
    match (split(from), split(to)) {
        ((a, None), (b, None)) if a <= b => (a..=b).map(|n| n.to_string()).collect(),
        ((a, Some(m)), (b, Some(n))) if a == b && m <= n => (m..=n).map(|k| format!("{a}.{k}")).collect(),
        _ => vec![from.to_owned(), to.to_owned()],
    }
}

#[test]
fn every_cited_protocol_section_is_a_heading_of_docs_protocol_md() {
    let sections = protocol_sections();
    assert!(sections.contains("2.0") && sections.contains("8"), "headings of docs/PROTOCOL.md: {sections:?}");
    // `§4.5`, `§ 4.5`, `§2.7–2.9`, `§4–5`. A `§` belongs to PROTOCOL.md unless the line names
    // another document before it (`HEAT-STANDALONE.md §5`): PROTOCOL.md is the only document the
    // project cites by section.
    let citation = Regex::new(r"§\s?(\d+(?:\.\d+)?)(?:\s?[–-]\s?(\d+(?:\.\d+)?))?").unwrap();
    let document = Regex::new(r"[A-Za-z0-9_-]+\.md\b").unwrap();
    let (mut checked, mut unresolved) = (0, Vec::new());
    for path in project_files(&["rs", "md", "py", "sh"]) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        for (number, line) in text.lines().enumerate() {
            for c in citation.captures_iter(line) {
                let at = c.get(0).unwrap().start();
                let named = document.find_iter(&line[..at]).last().map(|m| m.as_str());
                if named.is_some_and(|d| d != "PROTOCOL.md") {
                    continue;
                }
                for section in cited(&c[1], c.get(2).map(|m| m.as_str())) {
                    checked += 1;
                    if !sections.contains(&section) {
                        unresolved.push(format!("{name}:{}: §{section} ({})", number + 1, c[0].trim()));
                    }
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} citations found: is the scan looking at the sources?");
    assert!(unresolved.is_empty(), "citations with no heading in docs/PROTOCOL.md:\n{}", unresolved.join("\n"));
    println!("{checked} cited sections, all headings of docs/PROTOCOL.md");
}

#[test]
fn nothing_but_the_sync_script_reads_the_shared_folder() {
    let own = [root().join("tests/docs.rs"), root().join("scripts/sync-shared.sh")];
    // `../shared`, `shared/conformance`, Python's `join(…, 'shared', 'conformance')`; not a Heat
    // property called `shared`.
    let shared =
        Regex::new(r#"\.\./shared\b|\bshared/(conformance|docs)\b|['"]shared['"],\s*['"](conformance|docs)['"]"#)
            .unwrap();
    let mut readers = Vec::new();
    for path in project_files(&["rs", "sh", "py", "toml"]) {
        if own.contains(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            let comment = ["//", "#", "*"].iter().any(|c| code.starts_with(c));
            if !comment && shared.is_match(line) {
                readers.push(format!("{}:{}: {}", path.strip_prefix(root()).unwrap().display(), number + 1, code));
            }
        }
    }
    assert!(readers.is_empty(), "read ../shared (use tests/conformance, docs/PROTOCOL.md):\n{}", readers.join("\n"));
}
