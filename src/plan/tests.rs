//! Tests of plan loading as a whole: golden diagnostics for one broken plan per
//! kind of mistake (`testdata/`), the reference plans, tiers files, the
//! examples of `docs/plans.md`, and property tests that loading never panics.
//!
//! Golden files: each case `testdata/<case>` (a file, or a directory of plans)
//! has its expected output in `testdata/<case>.out`, the concatenation of
//! `Diagnostic::render(false)` for every diagnostic. After a deliberate change
//! of messages, re-bless with `DRCTL_BLESS=1 cargo test --lib plan` and read
//! the diff before committing it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::source::{Format, Severity};
use super::{Loaded, load};

/// Cases live here; the path is relative so that rendered paths are stable
/// (cargo runs unit tests from the package root).
const TESTDATA: &str = "src/plan/testdata";

/// The one case that must load cleanly.
const VALID_CASES: &[&str] = &["yaml_valid.yaml"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(loaded: &Loaded) -> String {
    loaded.diagnostics.iter().map(|d| d.render(false)).collect()
}

fn cases() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root().join(TESTDATA))
        .expect("testdata exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".out"))
        .collect();
    out.sort();
    out
}

/// A line diff (longest common subsequence), `-` expected, `+` actual.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

/// Every diagnostic has a 1-based place inside its file.
fn check_positions(case: &str, loaded: &Loaded, slack: usize) -> Result<(), String> {
    for d in &loaded.diagnostics {
        if d.line < 1 || d.column < 1 {
            return Err(format!(
                "{case}: diagnostic at {}:{} is not 1-based:\n{}",
                d.line,
                d.column,
                d.render(false)
            ));
        }
        if d.file.is_file() && Format::from_path(&d.file).is_some() {
            let text = std::fs::read(&d.file).unwrap_or_default();
            let lines = String::from_utf8_lossy(&text).lines().count().max(1);
            if d.line > lines + slack {
                return Err(format!(
                    "{case}: diagnostic at line {} but {} has {lines} lines:\n{}",
                    d.line,
                    d.file.display(),
                    d.render(false)
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn golden_diagnostics() {
    let bless = std::env::var_os("DRCTL_BLESS").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases found", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let path = Path::new(TESTDATA).join(case);
        let loaded = load(std::slice::from_ref(&path));
        let actual = render(&loaded);
        let out = root().join(TESTDATA).join(format!("{case}.out"));

        if VALID_CASES.contains(&case.as_str()) {
            if !loaded.diagnostics.is_empty() || loaded.plans.len() != 1 {
                failures.push(format!(
                    "{case}: expected one plan and no diagnostics, got {} plan(s):\n{actual}",
                    loaded.plans.len()
                ));
            }
        } else {
            if !loaded.has_errors() {
                failures.push(format!("{case}: expected at least one error, got none"));
            }
            if path.is_dir() {
                // A broken file's plan is never loaded.
                for d in loaded
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                {
                    if let Some(p) = loaded.plans.iter().find(|p| p.path == d.file) {
                        failures.push(format!(
                            "{case}: plan `{}` loaded from {} despite an error in it",
                            p.name(),
                            d.file.display()
                        ));
                    }
                }
            } else if !loaded.plans.is_empty() {
                failures.push(format!("{case}: a broken plan was loaded"));
            }
        }
        if let Err(e) = check_positions(case, &loaded, 0) {
            failures.push(e);
        }

        if bless {
            std::fs::write(&out, &actual).expect("write golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&out).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{case}: output differs from {case}.out (- expected, + actual):\n{}",
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) failed (re-bless with DRCTL_BLESS=1 if the change is intended):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn directory_cases_keep_the_good_plans() {
    let loaded = load(&[Path::new(TESTDATA).join("tiers_rpo_above_rto")]);
    let names: Vec<&str> = loaded.plans.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["payments"], "the plan on a built-in tier loads");
    assert!(!loaded.tiers.contains_key("batch"));
    assert!(!loaded.tiers.contains_key("reporting"));

    let loaded = load(&[Path::new(TESTDATA).join("duplicate_plan_name")]);
    assert_eq!(loaded.plans.len(), 1);
    assert!(loaded.plans[0].path.ends_with("a.toml"));
}

#[test]
fn reference_plans_load_cleanly() {
    let loaded = load(&[root().join("plans")]);
    let rendered = render(&loaded);
    assert!(loaded.diagnostics.is_empty(), "{rendered}");
    let names: Vec<&str> = loaded.plans.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["payments", "ledger"], "sorted by tier, then name");
    assert_eq!(loaded.plans[0].tier.rto.as_secs(), 15 * 60);
    assert_eq!(loaded.plans[0].tier.rpo.as_secs(), 5 * 60);
    assert_eq!(
        loaded.tiers,
        super::tiers::builtin(),
        "tiers.toml repeats the built-ins"
    );
    assert!(loaded.files.iter().any(|f| f.ends_with("tiers.toml")));
    for p in &loaded.plans {
        assert_eq!(p.digest.len(), 64);
    }
}

fn write_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn payments() -> String {
    std::fs::read_to_string(root().join("plans/payments.toml")).expect("payments.toml")
}

const CRITICAL_10M: &str = "[tiers.critical]\nrto = \"10m\"\nrpo = \"2m\"\n";

#[test]
fn tiers_file_overrides_a_builtin_tier() {
    let dir = write_dir(&[("payments.toml", &payments()), ("tiers.toml", CRITICAL_10M)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let tier = &loaded.plan("payments").expect("loaded").tier;
    assert_eq!(tier.rto.as_secs(), 600);
    assert_eq!(tier.rpo.as_secs(), 120);
    // Keys left out take the tiers-file defaults, not the built-in's.
    assert_eq!(tier.approval, super::Approval::None);
    assert_eq!(tier.drill_interval.as_secs(), 90 * 86_400);
    assert_eq!(tier.rank, 0);
    // The other built-ins are untouched.
    assert_eq!(loaded.tiers["important"].rto.as_secs(), 30 * 60);
}

#[test]
fn a_single_plan_file_picks_up_the_tiers_file_beside_it() {
    let dir = write_dir(&[("payments.toml", &payments()), ("tiers.toml", CRITICAL_10M)]);
    let loaded = load(&[dir.path().join("payments.toml")]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    assert_eq!(loaded.plans.len(), 1);
    assert_eq!(loaded.plans[0].tier.rto.as_secs(), 600);
    assert!(loaded.files.contains(&dir.path().join("tiers.toml")));
}

#[test]
fn a_custom_tier_from_tiers_yaml() {
    let plan = payments().replace("tier = \"critical\"", "tier = \"gold\"");
    let tiers = "tiers:\n  gold:\n    rto: 20m\n    rpo: 1m\n    approval: required\n    drill_interval: 14d\n";
    let dir = write_dir(&[("payments.toml", &plan), ("tiers.yaml", tiers)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let tier = &loaded.plans[0].tier;
    assert_eq!((tier.name.as_str(), tier.rank), ("gold", 3));
    assert_eq!(tier.approval, super::Approval::Required);
    assert_eq!(tier.drill_interval.as_secs(), 14 * 86_400);
}

#[test]
fn an_empty_directory_and_a_missing_file_are_errors() {
    let dir = write_dir(&[]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.has_errors());
    let loaded = load(&[dir.path().join("nope.toml")]);
    assert!(loaded.has_errors());
    assert!(loaded.diagnostics[0].message.contains("cannot read file"));
    let loaded = load(&[dir.path().join("plan.json")]);
    assert!(loaded.diagnostics[0].message.contains("unknown file type"));
}

/// The fenced blocks of `lang` in `docs/plans.md`, in order.
fn doc_blocks(lang: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/plans.md")).expect("docs/plans.md");
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find(&fence) {
        rest = &rest[start + fence.len()..];
        let len = rest.find("```").expect("a closing fence");
        out.push(rest[..len].to_string());
        rest = &rest[len + 3..];
    }
    out
}

fn doc_block(lang: &str) -> String {
    doc_blocks(lang).into_iter().next().expect("a fenced block")
}

#[test]
fn docs_toml_example_is_a_valid_plan_using_every_key() {
    let text = doc_block("toml");
    let dir = write_dir(&[("example.toml", &text)]);
    let loaded = load(&[dir.path().join("example.toml")]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let spec = &loaded.plans[0].spec;
    // Every section and both database strategies, both switch modes, follows.
    assert!(spec.evidence.is_some() && spec.drill.is_some());
    use super::spec::{DbStrategy, SwitchMode};
    assert!(
        spec.database
            .iter()
            .any(|d| d.strategy == DbStrategy::PromoteReplica)
    );
    assert!(
        spec.database
            .iter()
            .any(|d| d.strategy == DbStrategy::PointInTimeRestore)
    );
    assert!(spec.dns.iter().any(|d| d.switch == SwitchMode::Weighted));
    assert!(spec.dns.iter().any(|d| d.follows.is_some()));
    assert!(!spec.compute.is_empty() && !spec.check.is_empty() && !spec.bucket.is_empty());
    // Every key the format has appears in the example (serialization skips
    // only empty optional values, so compare the key sets).
    for key in [
        "name",
        "description",
        "tier",
        "regions",
        "destinations",
        "schedule",
        "id",
        "engine",
        "strategy",
        "after",
        "active",
        "standby",
        "zone",
        "type",
        "ttl",
        "switch",
        "targets",
        "follows",
        "expect_status",
        "timeout",
        "min",
        "desired",
        "max",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{key} ="))
                    || l.contains(&format!(" {key} ="))),
            "the docs example does not use `{key}`"
        );
    }
}

#[test]
fn docs_yaml_example_is_a_valid_plan() {
    let text = doc_block("yaml");
    let dir = write_dir(&[("example.yaml", &text)]);
    let loaded = load(&[dir.path().join("example.yaml")]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    assert_eq!(loaded.plans.len(), 1);
}

#[test]
fn docs_tiers_example_is_valid() {
    let blocks: Vec<String> = doc_blocks("toml")
        .into_iter()
        .filter(|b| b.contains("[tiers."))
        .collect();
    assert!(!blocks.is_empty(), "docs/plans.md shows a tiers.toml");
    for text in blocks {
        let dir = write_dir(&[("tiers.toml", &text), ("payments.toml", &payments())]);
        let loaded = load(&[dir.path().to_path_buf()]);
        assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    }
}

// ---- Loading never panics ------------------------------------------------

fn load_text(name: &str, bytes: &[u8]) -> (Loaded, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let loaded = load(std::slice::from_ref(&path));
    let lines = String::from_utf8_lossy(bytes).lines().count();
    (loaded, lines)
}

fn assert_places(loaded: &Loaded, lines: usize) -> Result<(), TestCaseError> {
    for d in &loaded.diagnostics {
        prop_assert!(d.line >= 1 && d.column >= 1, "{}", d.render(false));
        prop_assert!(
            d.line <= lines + 1,
            "line {} of {lines}: {}",
            d.line,
            d.render(false)
        );
    }
    Ok(())
}

/// Strings that look a little like TOML or YAML, so the parsers get deep.
fn plan_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("[plan]\n".to_string()),
            Just("[[dns]]\n".to_string()),
            Just("plan:\n".to_string()),
            Just("  - ".to_string()),
            Just("name = ".to_string()),
            Just("regions = [\"a\", \"b\"]\n".to_string()),
            Just("{ x = 1 }".to_string()),
            Just("\"".to_string()),
            Just("\n".to_string()),
            "[a-z=:{}\\[\\],\"'#\\- \n\t.0-9]{0,12}",
            "\\PC{0,4}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(
        s in prop_oneof![any::<String>(), "\\PC*", plan_like()],
    ) {
        for name in ["x.toml", "x.yaml"] {
            let (loaded, lines) = load_text(name, s.as_bytes());
            assert_places(&loaded, lines)?;
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for name in ["x.toml", "x.yaml"] {
            let (loaded, _) = load_text(name, &bytes);
            prop_assert!(loaded.diagnostics.iter().all(|d| d.line >= 1 && d.column >= 1));
        }
    }

    #[test]
    fn mutated_reference_plan_never_panics(
        op in 0..4u8,
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        insert in prop_oneof!["\\PC{1,8}", "[\\[\\]{}=\"\n#,.]{1,4}"],
    ) {
        let text = payments();
        let chars: Vec<char> = text.chars().collect();
        let lines: Vec<&str> = text.lines().collect();
        let mutated = match op {
            // Delete a char range.
            0 => {
                let (i, j) = (a.index(chars.len()), b.index(chars.len()));
                let (i, j) = (i.min(j), i.max(j).min(i.min(j) + 40));
                chars[..i].iter().chain(&chars[j..]).collect::<String>()
            }
            // Insert random chars.
            1 => {
                let i = a.index(chars.len() + 1);
                let mut s: String = chars[..i].iter().collect();
                s.push_str(&insert);
                s.extend(&chars[i..]);
                s
            }
            // Duplicate a line.
            2 => {
                let i = a.index(lines.len());
                let mut l = lines.clone();
                l.insert(i, lines[i]);
                l.join("\n")
            }
            // Swap two lines.
            _ => {
                let mut l = lines.clone();
                l.swap(a.index(lines.len()), b.index(lines.len()));
                l.join("\n")
            }
        };
        let (loaded, n) = load_text("payments.toml", mutated.as_bytes());
        assert_places(&loaded, n)?;
    }
}

/// Loads one file of `name` and `text` and returns its error diagnostics.
fn errors_of(name: &str, text: &str) -> Vec<super::source::Diagnostic> {
    let dir = write_dir(&[(name, text)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    loaded
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

/// Hostile nesting: every parser on the path recursed once per level, so
/// 100,000 levels overflowed the stack (YAML block sequences) or took
/// minutes (YAML flow). Each shape, at 10,000 and 100,000 levels, is one
/// positioned error, at once, on the test thread's small stack.
#[test]
fn deeply_nested_plans_are_an_error_not_a_stack_overflow_or_a_hang() {
    for n in [10_000, 100_000] {
        let shapes: Vec<(&str, String)> = vec![
            (
                "flow.yaml",
                format!("plan: {}{}\n", "[".repeat(n), "]".repeat(n)),
            ),
            (
                "maps.yaml",
                format!("plan: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
            ),
            ("block.yaml", format!("plan:\n{}x\n", "- ".repeat(n))),
            (
                "array.toml",
                format!("a = {}{}\n", "[".repeat(n), "]".repeat(n)),
            ),
            (
                "inline.toml",
                format!("a = {}1{}\n", "{b = ".repeat(n), "}".repeat(n)),
            ),
            ("dotted.toml", format!("{} = 1\n", vec!["a"; n].join("."))),
        ];
        for (name, text) in shapes {
            let t0 = std::time::Instant::now();
            let errs = errors_of(name, &text);
            assert!(!errs.is_empty(), "{name} at {n} levels: no error");
            assert!(
                errs.iter().all(|d| d.line >= 1 && d.column >= 1),
                "{name}: positioned"
            );
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(5),
                "{name} at {n} levels took {:?}",
                t0.elapsed()
            );
        }
    }
    // Indentation nesting deeper than the limit is named too.
    let text: String = std::iter::once("plan:\n".to_string())
        .chain((1..200).map(|i| format!("{}k{i}:\n", "  ".repeat(i))))
        .collect();
    let errs = errors_of("indent.yaml", &text);
    assert!(
        errs[0].message.contains("levels deep"),
        "{:?}",
        errs[0].message
    );
}

#[test]
fn duplicate_yaml_keys_are_an_error_at_the_second_one() {
    let text = "plan:\n  name: x\n  tier: critical\n  name: y\n  regions: [us-west-2, us-east-1]\ndatabase:\n  - id: db\n    engine: postgres\n    strategy: promote-replica\n    regions:\n      us-west-2: a\n      us-west-2: b\n      us-east-1: c\n";
    let errs = errors_of("dup.yaml", text);
    let dups: Vec<_> = errs
        .iter()
        .filter(|d| d.message.starts_with("duplicate key"))
        .collect();
    assert_eq!(dups.len(), 2, "{errs:?}");
    assert_eq!((dups[0].line, dups[0].column), (4, 3));
    assert!(
        dups[0]
            .hint
            .as_deref()
            .unwrap_or_default()
            .contains("line 2, column 3")
    );
    assert_eq!((dups[1].line, dups[1].column), (12, 7));
    // TOML refuses duplicates itself.
    let errs = errors_of("dup.toml", "[plan]\nname = \"x\"\nname = \"y\"\n");
    assert!(!errs.is_empty());
}

#[test]
fn yaml_alias_bombs_neither_hang_nor_explode() {
    let mut text = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    for i in 0..8u8 {
        let (p, c) = ((b'a' + i) as char, (b'b' + i) as char);
        text.push_str(&format!(
            "{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        ));
    }
    text.push_str("plan: *i\n");
    let t0 = std::time::Instant::now();
    assert!(!errors_of("bomb.yaml", &text).is_empty());
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn an_oversize_plan_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("big.toml")).unwrap();
    f.set_len(super::source::MAX_FILE_BYTES + 1).unwrap();
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.message.contains("more than a plan may be")),
        "{:?}",
        loaded.diagnostics
    );
}
