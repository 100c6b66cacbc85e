//! The library's layering, checked: no module imports one above it.
//!
//! `docs/architecture.md` draws the house as floors, from the cloud adapters
//! at the bottom to the commands at the top. This test reads every library
//! source file (production code only: comments, `#[cfg(test)]` items
//! wherever they stand, and test files are left out) and fails on any `crate::X` path whose module
//! `X` stands on a floor above (or beside) the file's own, so the drawing is
//! a checked claim rather than a hope. It needs no emulator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The floors, from the ground up. A module may use modules on lower floors
/// only (and itself). A new top-level module must be given a floor here.
const FLOORS: &[&[&str]] = &[
    &["sign", "escape"],
    &["cloud"],
    &["plan"],
    &["journal"],
    &["state"],
    &["evidence"],
    &["steps"],
    &["runs", "forecast"],
    &["report", "cleanup", "notify"],
    &["engine"],
    &["status", "config", "watch", "sim"],
];

/// Floors inside a folder, from the ground up, where the folder has a
/// layering of its own worth keeping (file stems; `mod` is the folder's
/// `mod.rs`). Files not listed are not checked inside the folder.
const INNER: &[(&str, &[&[&str]])] = &[
    (
        "runs",
        &[
            &["replay", "deliveries"],
            &["measure"],
            &["drill"],
            &["run_report", "schedule"],
            &["mod"],
        ],
    ),
    (
        "journal",
        &[
            &["error", "payload", "notice"],
            &["event", "keys"],
            &["chain", "store"],
            &["trust"],
            &["mod"],
        ],
    ),
];

fn floor_of(floors: &[&[&str]], name: &str) -> Option<usize> {
    floors.iter().position(|f| f.contains(&name))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The production part of a source file: every `#[cfg(test)]` item cut
/// out wherever it stands (a test module at the end, a test helper between
/// two functions), and line comments removed. Production code after a test
/// item is read too: stopping at the first one left whole files' ends
/// unchecked.
fn production(text: &str) -> String {
    let mut out = String::new();
    let mut skip: Option<Skip> = None;
    for line in text.lines() {
        let code = strip_comment(line);
        if let Some(s) = &mut skip {
            if s.ended(code) {
                skip = None;
            }
            continue;
        }
        if line.trim() == "#[cfg(test)]" {
            skip = Some(Skip::default());
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// A `#[cfg(test)]` item being skipped: it ends at the `;` of an item
/// without a body (`mod tests;`, a `use`) or where its braces close.
#[derive(Default)]
struct Skip {
    depth: usize,
    opened: bool,
}

impl Skip {
    /// Takes the next line of the item; whether the item ends on it.
    fn ended(&mut self, code: &str) -> bool {
        let mut chars = code.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => skip_string(&mut chars),
                '\'' => skip_char(&mut chars),
                '{' => {
                    self.depth += 1;
                    self.opened = true;
                }
                '}' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.opened && self.depth == 0 {
                        return true;
                    }
                }
                ';' if !self.opened && self.depth == 0 => return true,
                _ => {}
            }
        }
        false
    }
}

/// Past the rest of a string literal whose opening quote was just read.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return,
            _ => {}
        }
    }
}

/// Past a char literal (`'{'`, `'\''`) whose quote was just read; a
/// lifetime (`'a`) is left as it is.
fn skip_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    let mut ahead = chars.clone();
    match (ahead.next(), ahead.next()) {
        (Some('\\'), _) => {
            chars.next();
            chars.next();
            for c in chars.by_ref() {
                if c == '\'' {
                    return;
                }
            }
        }
        (Some(_), Some('\'')) => {
            chars.next();
            chars.next();
        }
        _ => {}
    }
}

/// `line` without its line comment (a `//` outside a string).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            return &line[..i];
        }
    }
    line
}

#[test]
fn test_items_are_cut_wherever_they_stand() {
    let text = "use crate::cloud::X;\n#[cfg(test)]\nuse crate::engine::Y;\nfn a() {}\n#[cfg(test)]\nfn helper() {\n    let s = \"}\";\n    let c = '{';\n    crate::engine::z();\n}\nfn b() { crate::plan::w(); } // crate::engine::v\n#[cfg(test)]\nmod tests {\n    fn t() { crate::engine::q(); }\n}\nfn c() { crate::journal::u(); }\n";
    let kept = production(text);
    assert!(!kept.contains("engine"), "{kept}");
    for must in [
        "crate::cloud::X",
        "crate::plan::w",
        "crate::journal::u",
        "fn a()",
    ] {
        assert!(kept.contains(must), "{must}: {kept}");
    }
}

/// Every `crate::a::b` path in `code`, as its segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(
            path.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    out
}

/// (module, file stem) of a library file: `src/steps/graph.rs` is
/// (`steps`, `graph`), `src/steps/mod.rs` is (`steps`, `mod`), `src/plan.rs`
/// would be (`plan`, `mod`).
fn place(src: &Path, file: &Path) -> Option<(String, String)> {
    let rel = file.strip_prefix(src).ok()?;
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [one] => Some((one.clone(), "mod".into())),
        [module, .., stem] => Some((module.clone(), stem.clone())),
        [] => None,
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let Some((module, stem)) = place(&src, file) else {
            continue;
        };
        // The binary (main.rs, cli/) sits on top of everything; test
        // files are not the house.
        if ["main", "cli", "lib"].contains(&module.as_str())
            || ["tests", "fault_loop"].contains(&stem.as_str())
        {
            continue;
        }
        let own = floor_of(FLOORS, &module)
            .unwrap_or_else(|| panic!("module `{module}` has no floor in tests/it/layers.rs"));
        let text = std::fs::read_to_string(file).expect("read");
        for path in crate_paths(&production(&text)) {
            let Some(target) = path.first() else { continue };
            let name = file
                .strip_prefix(&src)
                .unwrap_or(file)
                .display()
                .to_string();
            if *target == module {
                // Inside a folder with floors of its own.
                let inner = INNER.iter().find(|(m, _)| *m == module);
                if let (Some((_, floors)), Some(sub)) = (inner, path.get(1))
                    && let (Some(mine), Some(theirs)) =
                        (floor_of(floors, &stem), floor_of(floors, sub))
                    && theirs > mine
                {
                    wrong
                        .entry(name)
                        .or_default()
                        .push(format!("crate::{}", path.join("::")));
                }
                continue;
            }
            match floor_of(FLOORS, target) {
                Some(theirs) if theirs < own => {}
                Some(_) => wrong
                    .entry(name)
                    .or_default()
                    .push(format!("crate::{}", path.join("::"))),
                None => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run back up (see the floors in tests/it/layers.rs and docs/architecture.md):\n{wrong:#?}"
    );
}

#[test]
fn every_library_module_has_a_floor() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    for line in lib.lines() {
        if let Some(name) = line.trim().strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(
                floor_of(FLOORS, name).is_some(),
                "`{name}` is in lib.rs but has no floor in tests/it/layers.rs"
            );
        }
    }
}

#[test]
fn the_checker_sees_an_upward_import() {
    let code = production(
        "use crate::engine::Engine;\n// crate::report in a comment\n#[cfg(test)]\nmod tests { use crate::cli; }\n",
    );
    assert_eq!(
        crate_paths(&code),
        vec![vec!["engine".to_string(), "Engine".to_string()]]
    );
}

/// Step kinds that still take something from another step kind: none
/// now, and it stays so. What two kinds share goes to a module of `steps/`
/// that is no step kind (`records`, `controls`, `resolution`,
/// `sql_moves`, `copies`, `leftovers`, `capacity`, ...), a step's output
/// another step reads among them.
const STEP_KIND_IMPORTS: &[(&str, &str)] = &[];

/// The step kinds: the modules `StepKind`'s variants are made of
/// (`SwitchDns(switch_dns::SwitchDns) = "switch-dns"`).
fn step_kinds(steps_mod: &str) -> Vec<String> {
    let mut out: Vec<String> = (steps_mod.lines())
        .filter(|l| l.contains(") = \"") && !l.contains('$'))
        .filter_map(|l| {
            let inner = l.split_once('(')?.1;
            let (module, _) = inner.split_once("::")?;
            Some(module.trim().to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `code` names module `m` of `steps/`: a path through it
/// (`super::m::`, `crate::steps::m::`, or `m::` where a grouped import
/// brought it in, never another module's `crate::x::m::`), or the module
/// itself in an import (`use super::m;`, `use super::{m, ..}`,
/// `use super::m as n;`).
fn names_module(code: &str, m: &str) -> bool {
    code.match_indices(m).any(|(i, _)| {
        let (before, after) = (&code[..i], &code[i + m.len()..]);
        let starts = (before.chars().last()).is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let through = !before.ends_with("::")
            || before.ends_with("super::")
            || before.ends_with("crate::steps::");
        let in_use = before
            .rfind("use ")
            .is_some_and(|u| !before[u..].contains(';'));
        let ends = after.starts_with("::")
            || (in_use && [" as ", ";", ",", "}"].iter().any(|e| after.starts_with(e)));
        starts && through && ends
    })
}

/// No step kind imports another beyond [`STEP_KIND_IMPORTS`], and each
/// listed pair still exists (the list shrinks as they go).
#[test]
fn no_step_kind_imports_another_beyond_the_listed_ones() {
    let steps = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/steps");
    let kinds = step_kinds(&std::fs::read_to_string(steps.join("mod.rs")).expect("mod.rs"));
    assert!(kinds.len() > 17, "the step kinds as read: {kinds:?}");
    let mut files = Vec::new();
    rust_files(&steps, &mut files);
    let mut found = std::collections::BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&steps).expect("under steps");
        let Some(me) = rel.iter().next().and_then(|c| c.to_str()) else {
            continue;
        };
        let me = me.trim_end_matches(".rs");
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !kinds.iter().any(|k| k == me) || stem == "tests" {
            continue;
        }
        let code = production(&std::fs::read_to_string(file).expect("read"));
        for other in kinds.iter().filter(|k| k.as_str() != me) {
            if names_module(&code, other) {
                found.insert((me.to_string(), other.clone()));
            }
        }
    }
    let listed: std::collections::BTreeSet<(String, String)> = (STEP_KIND_IMPORTS.iter())
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&listed).collect();
    assert!(
        new.is_empty(),
        "step kinds importing another (move what they share to a module of steps/ that is no step kind): {new:?}"
    );
    let gone: Vec<_> = listed.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "imports listed in STEP_KIND_IMPORTS that are gone: take them off the list: {gone:?}"
    );
}

/// The checker finds an import between two step kinds.
#[test]
fn the_step_kind_checker_sees_an_import() {
    let kinds = step_kinds(
        "    SwitchDns(switch_dns::SwitchDns) = \"switch-dns\",\n    VerifyDns(verify_dns::VerifyDns) = \"verify-dns\",\n",
    );
    assert_eq!(kinds, ["switch_dns", "verify_dns"]);
    let code =
        production("use super::switch_dns::zone;\n#[cfg(test)]\nuse super::verify_dns::x;\n");
    assert!(code.contains("super::switch_dns::") && !code.contains("verify_dns"));
    for imports in [
        "use super::switch_dns::zone;",
        "use super::{Cx, switch_dns::zone};",
        "use super::{Cx, switch_dns};",
        "use super::switch_dns as d;",
        "let z = crate::steps::switch_dns::zone(cx);",
    ] {
        assert!(names_module(imports, "switch_dns"), "{imports}");
    }
    for not in [
        "use crate::evidence::Pack;",
        "use super::drill_switch_dns::zone;",
        "let switch_dns = 1; f(switch_dns);",
    ] {
        assert!(
            !names_module(not, "switch_dns") && !names_module(not, "evidence"),
            "{not}"
        );
    }
}
