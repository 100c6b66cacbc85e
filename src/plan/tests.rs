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
    assert_eq!(
        names,
        [
            "payments", "catalog", "checkout", "ledger", "orders", "archive"
        ],
        "sorted by tier, then name"
    );
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
    assert!(loaded.diagnostics[0].message.contains("does not exist"));
    std::fs::write(dir.path().join("plan.json"), "{}").expect("write");
    let loaded = load(&[dir.path().join("plan.json")]);
    assert!(loaded.diagnostics[0].message.contains("unknown file type"));
}

/// Outside a directory with `plans/`, every command said `unknown file
/// type --> plans:1:1`: a path that is not there is named as missing.
#[test]
fn regression_a_missing_plans_directory_was_an_unknown_file_type() {
    let dir = write_dir(&[]);
    let loaded = load(&[dir.path().join("plans")]);
    assert_eq!(loaded.diagnostics.len(), 1, "{}", render(&loaded));
    let d = &loaded.diagnostics[0];
    assert!(d.message.ends_with("plans does not exist"), "{}", d.message);
    assert!(!d.message.contains("unknown file type"));
    let hint = d.hint.as_deref().unwrap_or_default();
    for way in ["--plans", "drctl.toml", "DRCTL_PLANS"] {
        assert!(hint.contains(way), "{hint}");
    }
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
            Just("[watch]\n".to_string()),
            Just("interval = \"50000000000000d\"\n".to_string()),
            Just("failures = 4294967295\n".to_string()),
            Just("max_duration = \"18446744073709551615s\"\n".to_string()),
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

// ---- Hostile input: never a crash, a hang or a silent duplicate ---------
//
// Each test runs on the default test thread (2 MiB of stack): the limits must
// hold there, not only on a big main thread.

/// Loads `text` as `name` and returns the errors, asserting there is one.
fn errors_of(name: &str, text: &str) -> Vec<super::source::Diagnostic> {
    let (loaded, _) = load_text(name, text.as_bytes());
    assert!(
        loaded.has_errors(),
        "{name}: no error:\n{}",
        render(&loaded)
    );
    assert!(loaded.plans.is_empty());
    loaded
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

/// Asserts the only error is the nesting limit, at `line:col`.
fn assert_too_deep(name: &str, text: &str, line: usize, col: usize) {
    let errors = errors_of(name, text);
    let rendered: String = errors.iter().map(|d| d.render(false)).collect();
    assert_eq!(errors.len(), 1, "{rendered}");
    let d = &errors[0];
    assert_eq!(
        d.message,
        format!("nested more than {} levels deep", super::limits::MAX_DEPTH),
        "{rendered}"
    );
    assert_eq!(
        (d.line, d.column),
        (line, col),
        "{}",
        rendered.chars().take(500).collect::<String>()
    );
    assert!(d.hint.as_deref().is_some_and(|h| h.contains("64 levels")));
}

const DEPTHS: [usize; 2] = [10_000, 100_000];

#[test]
fn deeply_nested_yaml_block_sequences_are_an_error_not_a_stack_overflow() {
    for n in DEPTHS {
        // `- - - 1`: each `- ` opens a sequence; the 65th starts at column 129.
        assert_too_deep("x.yaml", &format!("{}1\n", "- ".repeat(n)), 1, 129);
        // Inside the plan, after a valid header.
        let text = format!("plan:\n  regions:\n    {}1\n", "- ".repeat(n));
        assert_too_deep("x.yaml", &text, 3, 5 + 2 * 62);
    }
}

#[test]
fn deeply_nested_yaml_block_mappings_are_an_error_not_a_stack_overflow() {
    // One space of indentation per level: 1,400 levels is about 985 KB,
    // the most that fits under the size limit.
    let mut text = String::new();
    for i in 0..1_400 {
        text.push_str(&" ".repeat(i));
        text.push_str("a:\n");
    }
    assert!(text.len() < 1024 * 1024);
    text.push_str(&" ".repeat(1_400));
    text.push_str("1\n");
    // The 65th mapping starts at the key of line 65.
    assert_too_deep("x.yaml", &text, 65, 65);
}

#[test]
fn deeply_nested_yaml_flow_collections_are_an_error_not_a_hang() {
    for n in DEPTHS {
        // saphyr gives up on `[[[[` itself (its scanner looks ahead for a
        // key), so the lexical scan reports it: flow levels only, the 65th `[`.
        let seq = format!("plan: {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert_too_deep("x.yaml", &seq, 1, 7 + 64);
        // Counted on saphyr's events: the top-level mapping is level 1, the
        // 64th `{` is level 65.
        let map = format!("plan: {}1{}\n", "{a: ".repeat(n), "}".repeat(n));
        assert_too_deep("x.yaml", &map, 1, 7 + 4 * 63);
        // Never closed, and over several lines.
        let open = format!("plan: {}\n", "[\n".repeat(n));
        assert_too_deep("x.yaml", &open, 65, 1);
        // Block and flow mixed.
        let mixed = format!("{}{}1\n", "- ".repeat(40), "[".repeat(n));
        // saphyr gives up again: flow levels only.
        assert_too_deep("x.yaml", &mixed, 1, 81 + 64);
        let mixed = format!("{}{}1\n", "- ".repeat(40), "[".repeat(30));
        assert_too_deep("x.yaml", &mixed, 1, 81 + 24);
    }
}

#[test]
fn deeply_nested_toml_is_an_error_not_a_stack_overflow() {
    for n in DEPTHS {
        let arrays = format!("a = {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert_too_deep("x.toml", &arrays, 1, 5 + 64);
        let tables = format!("a = {}1{}\n", "{a = ".repeat(n), "}".repeat(n));
        assert_too_deep("x.toml", &tables, 1, 5 + 5 * 64);
        let open = format!("[plan]\nregions = {}\n", "[\n".repeat(n));
        assert_too_deep("x.toml", &open, 2 + 64, 1);
        // Dotted keys nest tables too; `toml` stops those itself (at 80).
        for text in [
            format!("{} = 1\n", vec!["a"; n].join(".")),
            format!("[{}]\n", vec!["a"; n].join(".")),
        ] {
            let errors = errors_of("x.toml", &text);
            assert_eq!(errors.len(), 1);
            assert_eq!((errors[0].line, errors[0].column), (1, 1));
        }
    }
}

#[test]
fn nesting_up_to_the_limit_is_read_normally() {
    let depth = super::limits::MAX_DEPTH;
    // An unknown key holding 63 more levels (64 with the top level).
    let yaml = format!("x: {}1{}\n", "[".repeat(depth - 1), "]".repeat(depth - 1));
    let errors = errors_of("x.yaml", &yaml);
    assert!(
        errors[0].message.starts_with("unknown key `x`"),
        "{}",
        errors[0].render(false)
    );
    let toml = format!("x = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
    let errors = errors_of("x.toml", &toml);
    assert!(
        errors[0].message.starts_with("unknown key `x`"),
        "{}",
        errors[0].render(false)
    );
}

#[test]
fn brackets_in_strings_and_comments_are_not_nesting() {
    let many = "[{".repeat(100);
    let toml = payments().replace(
        "[plan]",
        &format!("# {many}\n[plan]\ndescription = \"{many}\""),
    );
    let toml = toml.replacen("description = \"", "# description = \"", 1);
    let (loaded, _) = load_text("payments.toml", toml.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let yaml = doc_block("yaml").replace(
        "  description: Orders API and its database",
        &format!("  description: '{many}' # {many}"),
    );
    let (loaded, _) = load_text("orders.yaml", yaml.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
}

/// Regression (issue 39): an alias used as a mapping key bypassed the
/// duplicate-key check, so `*k: evil` silently replaced a region's value.
/// It is an error at the alias, with a hint.
#[test]
fn regression_a_yaml_alias_as_a_mapping_key_silently_replaced_a_value() {
    let yaml = doc_block("yaml").replace(
        "      us-east-1: orders-db-replica-use1\n",
        "      us-east-1: &k orders-db-replica-use1\n      *k : attacker-db\n",
    );
    let errors = errors_of("orders.yaml", &yaml);
    assert!(
        errors
            .iter()
            .any(|d| d.message == "an alias used as a mapping key"
                && d.hint
                    .as_deref()
                    .is_some_and(|h| h.contains("silently replace"))),
        "{}",
        errors
            .iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let at = errors
        .iter()
        .find(|d| d.message == "an alias used as a mapping key")
        .unwrap();
    let line = yaml.lines().position(|l| l.contains("*k :")).unwrap() + 1;
    assert_eq!(at.line, line);
    // An alias as a value stays what it was.
    let ok = "a: &x 1\nb: *x\n";
    assert!(
        !errors_of("x.yaml", ok)
            .iter()
            .any(|d| d.message.contains("alias used as a mapping key"))
    );
}

#[test]
fn duplicate_yaml_keys_are_errors_not_silently_dropped() {
    let text = "plan:\n  name: a\n  tier: critical\n  name: b\n  regions: [x-1, y-1]\n";
    let errors = errors_of("x.yaml", text);
    assert_eq!(errors.len(), 1, "{}", errors[0].render(false));
    let d = &errors[0];
    assert_eq!(d.message, "duplicate key `name` in `plan`");
    assert_eq!((d.line, d.column), (4, 3), "the second one");
    assert!(
        d.hint.as_deref().unwrap().contains("line 2, column 3"),
        "the first one: {}",
        d.render(false)
    );

    // Top level, and every duplicate is reported.
    let text = "plan: {name: a, tier: critical, regions: [x-1, y-1]}\ndns: []\ndns: []\nplan: {}\n";
    let errors = errors_of("x.yaml", text);
    let got: Vec<(String, usize, usize)> = errors
        .iter()
        .map(|d| (d.message.clone(), d.line, d.column))
        .collect();
    assert_eq!(
        got,
        [
            ("duplicate key `dns` at the top level".to_string(), 3, 1),
            ("duplicate key `plan` at the top level".to_string(), 4, 1),
        ]
    );

    // Nested in a per-region map, where serde would keep the last one.
    let yaml = doc_block("yaml").replace(
        "      us-east-1: orders-db-replica-use1\n",
        "      us-east-1: orders-db-replica-use1\n      us-west-2: other-db\n",
    );
    let errors = errors_of("orders.yaml", &yaml);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].message,
        "duplicate key `us-west-2` in `database[0].regions`"
    );
    // A third copy is reported against the first.
    let text = "x: {a: 1, a: 2, a: 3}\n";
    let errors = errors_of("x.yaml", text);
    assert_eq!(errors.len(), 2);
    for d in &errors {
        assert!(d.hint.as_deref().unwrap().contains("line 1, column 5"));
    }
}

#[test]
fn duplicate_toml_keys_are_errors() {
    let text = payments().replacen("[plan]\n", "[plan]\ntier = \"standard\"\n", 1);
    let errors = errors_of("payments.toml", &text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("duplicate key"),
        "{}",
        errors[0].render(false)
    );
    let second = text
        .lines()
        .position(|l| l.starts_with("tier =") && l.contains("critical"));
    assert_eq!(Some(errors[0].line), second.map(|i| i + 1));
    // A table defined twice.
    let text = format!("{}\n[plan]\nname = \"x\"\n", payments());
    assert!(!errors_of("payments.toml", &text).is_empty());
}

#[test]
fn yaml_alias_bomb_neither_hangs_nor_eats_memory() {
    // "Billion laughs": 9^9 (387 million) scalars if expanded.
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let header = "plan:\n  name: p\n  tier: critical\n";
    for text in [
        // Under unknown keys only.
        bomb.clone(),
        // Expanded where the plan takes a list of strings, and a string.
        format!("{bomb}{header}  regions: *a9\n"),
        format!("{bomb}{header}  regions: [a-1, b-1]\n  description: *a9\n"),
        format!("{bomb}{header}  regions: [a-1, b-1]\nevidence:\n  destinations: *a9\n"),
    ] {
        let errors = errors_of("x.yaml", &text);
        assert!(errors.iter().all(|d| d.line >= 1 && d.column >= 1));
    }
}

/// Hostile YAML is one clear error at its place, at once. A "billion
/// laughs" read where the plan takes strings stops at its first element (a
/// list is not a string), named by its path; under keys nobody reads it is
/// skipped, never expanded; nesting past the limit is named where it
/// crosses it. (The deserializer's budget for values that do take nested
/// lists, and aliases inside their own node: `plan::yaml`'s tests.)
#[test]
fn hostile_yaml_is_a_clear_error_at_its_place() {
    let t0 = std::time::Instant::now();
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let header = "plan:\n  name: p\n  tier: critical\n";
    let errors = errors_of("x.yaml", &format!("{bomb}{header}  regions: *a9\n"));
    let d = errors
        .iter()
        .find(|d| d.message.starts_with("plan.regions"))
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert_eq!(
        d.message,
        "plan.regions[0]: invalid type: sequence, expected a string"
    );
    // At the first alias of a9's list, where the list that is no string is.
    assert_eq!((d.line, d.column), (10, 10), "{}", d.render(false));
    // Under unknown keys: each is named, and nothing is expanded.
    let errors = errors_of("x.yaml", &format!("{header}  regions: [a-1, b-1]\n{bomb}"));
    assert_eq!(errors.len(), 10, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|d| d.message.starts_with("unknown key `a"))
    );
    // Deep nesting: named at the level over the limit.
    assert_too_deep("x.yaml", &format!("{}1\n", "- ".repeat(1_000)), 1, 129);
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

/// Issue 74, attack 13 (found by fuzzing): a 280 KB plan of 10,000 bad
/// evidence destinations on one line kept `plan validate` busy for
/// minutes and gigabytes, each error printing the whole line. A list a
/// plan has no use for thousands of is refused as one error; the errors
/// of one file stop at 50 and say how many more; and a snippet shows the
/// part of its line around the mistake.
#[test]
fn regression_a_280_kb_line_of_bad_entries_kept_plan_validate_busy() {
    let plan = payments();
    let listed =
        "destinations = [\"s3://drctl-evidence-use1/payments\", \"gs://drctl-evidence/payments\"]";
    assert!(plan.contains(listed));
    let bad = |n: usize, width: usize| -> String {
        let entries: Vec<String> = (0..n).map(|i| format!("\"ftp://{i:0width$}\"")).collect();
        plan.replace(listed, &format!("destinations = [{}]", entries.join(", ")))
    };
    let started = std::time::Instant::now();
    let many = bad(10_000, 20);
    assert!(many.len() > 280_000, "{}", many.len());
    let errors = errors_of("payments.toml", &many);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("at most 16"),
        "{}",
        errors[0].message
    );
    // 16 bad entries, each 17 KB wide on the same 280 KB line: 16 errors,
    // each shown by the part of the line that holds it.
    let wide = bad(16, 17_000);
    let errors = errors_of("payments.toml", &wide);
    assert_eq!(errors.len(), 16, "{errors:?}");
    let shown: usize = errors.iter().map(|d| d.render(false).len()).sum();
    assert!(shown < 16 * 1_500, "{shown} bytes shown");
    let last = errors.last().unwrap().render(false);
    assert!(
        last.contains("| …") && last.contains("\"ftp://") && last.contains('^'),
        "{last}"
    );
    // Thousands of errors of another shape (one duplicate id, 3,000
    // times): the first 50, and how many more.
    let dup = "\n[[compute]]\nid = \"payments-api\"\nactive = { min = 1, desired = 1, max = 1 }\nstandby = { min = 0, desired = 0, max = 1 }\nregions = { us-west-2 = \"a\", us-east-1 = \"b\" }\n";
    let dups = format!("{plan}{}", dup.repeat(3_000));
    let errors = errors_of("payments.toml", &dups);
    assert_eq!(errors.len(), 51, "{}", errors.len());
    assert!(
        (errors.last().unwrap().message).contains("more error(s) in this file"),
        "{:?}",
        errors.last()
    );
    // Thousands of duplicate keys on one long YAML line (review): the
    // file's structure errors stop at the cap too, each shown by its part
    // of the line.
    let dup_keys = format!(
        "plan:\n  name: p\nzz: {{{}}}\n",
        vec!["a: 1"; 20_000].join(", ")
    );
    let errors = errors_of("p.yaml", &dup_keys);
    assert_eq!(errors.len(), 51, "{}", errors.len());
    assert!(
        (errors.iter()).any(|e| e
            .message
            .contains("19949 more error(s) of the file's structure")),
        "{:?}",
        errors.first()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn oversize_file_is_refused_before_reading() {
    let limit = usize::try_from(super::limits::MAX_FILE_BYTES).unwrap();
    // A valid plan padded with comments to one byte over the limit.
    let mut text = payments();
    let pad = limit + 1 - text.len();
    text.push_str(&format!("#{}", " ".repeat(pad - 1)));
    assert_eq!(text.len(), limit + 1);
    let errors = errors_of("payments.toml", &text);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "file is larger than 1 MiB");
    assert_eq!((errors[0].line, errors[0].column), (1, 1));
    // At the limit, it is read.
    text.pop();
    let (loaded, _) = load_text("payments.toml", text.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
}

/// The cycle search of `validate::find_cycle` before it stopped building the
/// implicit edges: a depth-first search over `validate::edges`.
fn find_cycle_reference(spec: &super::PlanSpec) -> Option<Vec<(String, &'static str)>> {
    use std::collections::{BTreeMap, HashMap};
    let edges = super::validate::edges(spec);
    let mut adj: BTreeMap<&str, Vec<(&str, &'static str)>> = BTreeMap::new();
    for (a, b, why) in edges.iter().filter(|(a, b, _)| a != b) {
        adj.entry(a.as_str()).or_default().push((b.as_str(), why));
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let ids: Vec<&str> = spec.resources().iter().map(|r| r.id).collect();
    let mut mark: HashMap<&str, Mark> = ids.iter().map(|i| (*i, Mark::New)).collect();
    for start in &ids {
        if mark[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(&str, usize, &'static str)> = vec![(start, 0, "")];
        mark.insert(start, Mark::Active);
        while let Some(&mut (node, ref mut next, _)) = stack.last_mut() {
            let succ = adj.get(node).map(Vec::as_slice).unwrap_or(&[]);
            if *next < succ.len() {
                let (to, why) = succ[*next];
                *next += 1;
                match mark.get(to).copied() {
                    Some(Mark::New) => {
                        if let Some(top) = stack.last_mut() {
                            top.2 = why;
                        }
                        mark.insert(to, Mark::Active);
                        stack.push((to, 0, ""));
                    }
                    Some(Mark::Active) => {
                        if let Some(top) = stack.last_mut() {
                            top.2 = why;
                        }
                        let at = stack.iter().position(|(n, _, _)| *n == to)?;
                        return Some(
                            stack[at..]
                                .iter()
                                .map(|(n, _, w)| (n.to_string(), *w))
                                .collect(),
                        );
                    }
                    _ => {}
                }
            } else {
                mark.insert(node, Mark::Done);
                stack.pop();
            }
        }
    }
    None
}

/// A plan of `n` resources of every kind with random ids (from a small set,
/// so that duplicates happen), `after` lists and `follows`.
fn random_plan() -> impl Strategy<Value = super::PlanSpec> {
    let id = || "[a-f]{1}";
    let resource = (
        0..5u8,
        id(),
        proptest::collection::vec(id(), 0..3),
        proptest::option::of(id()),
    );
    proptest::collection::vec(resource, 0..12).prop_map(|rs| {
        let mut text = String::from("[plan]\nname = \"p\"\ntier = \"critical\"\nregions = [\"a-1\", \"b-1\"]\n");
        for (kind, id, after, follows) in rs {
            let after = after
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let regions = "{ a-1 = \"x\", b-1 = \"y\" }";
            let body = match kind {
                0 => format!("[[database]]\nstrategy = \"promote-replica\"\nregions = {regions}\n"),
                1 => format!("[[compute]]\nactive = {{ min = 1, desired = 1, max = 1 }}\nstandby = {{ min = 0, desired = 0, max = 1 }}\nregions = {regions}\n"),
                2 => {
                    let f = follows.map(|f| format!("follows = \"{f}\"\n")).unwrap_or_default();
                    format!("[[dns]]\nzone = \"e.com.\"\nname = \"a.e.com.\"\ntype = \"CNAME\"\n{f}")
                }
                3 => format!("[[check]]\nregions = {regions}\n"),
                _ => format!("[[bucket]]\nregions = {regions}\n"),
            };
            text.push_str(&format!("{body}id = \"{id}\"\nafter = [{after}]\n"));
        }
        toml::from_str(&text).expect("generated plan parses")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn find_cycle_matches_the_search_over_all_edges(spec in random_plan()) {
        prop_assert_eq!(super::validate::find_cycle(&spec), find_cycle_reference(&spec));
    }

    #[test]
    fn positions_match_a_scan_from_the_start(text in "(\\PC|\n|\r){0,300}", at in any::<prop::sample::Index>()) {
        let f = super::source::SourceFile::new("x.toml".into(), text.clone(), Format::Toml);
        for (i, line) in text.lines().enumerate() {
            prop_assert_eq!(f.line_text(i + 1), Some(line));
        }
        prop_assert_eq!(f.line_text(text.lines().count() + 1), None);
        let offset = at.index(text.len() + 1);
        let offset = (0..=offset).rev().find(|o| text.is_char_boundary(*o)).unwrap_or(0);
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
        let p = f.pos_of_offset(offset, 1);
        prop_assert_eq!((p.line, p.col), (line, col));
    }
}

// ---- Regressions found by tests that are not ours ------------------------

/// A plan file with a byte that is not UTF-8 was reported at line 1, column
/// 1 with a byte index; it is placed at the bad byte, with its line shown.
#[test]
fn regression_invalid_utf8_is_placed_at_its_first_bad_byte() {
    // `é` (two bytes) counts as one column; 0xE9 alone (Latin-1 `é`) is bad.
    let text = b"[plan]\nname = \"\xC3\xA9t\xE9\"\nregions = []\n";
    for name in ["x.toml", "x.yaml"] {
        let (loaded, _) = load_text(name, text);
        assert_eq!(loaded.diagnostics.len(), 1, "{}", render(&loaded));
        let d = &loaded.diagnostics[0];
        assert_eq!((d.line, d.column, d.len), (2, 11, 1), "{}", d.render(false));
        assert!(
            d.message.contains("byte 0xE9 at line 2, column 11"),
            "{}",
            d.message
        );
        assert_eq!(d.source_line.as_deref(), Some("name = \"ét\u{FFFD}\""));
        let shown = d.render(false);
        assert!(shown.contains(":2:11"), "{shown}");
        assert!(shown.contains("          ^"), "{shown}");
    }
    // The first bad byte of a file without a newline before it, and a
    // sequence cut short at the end of the file.
    let (loaded, _) = load_text("x.toml", b"\xFF");
    assert_eq!(
        (loaded.diagnostics[0].line, loaded.diagnostics[0].column),
        (1, 1)
    );
    let (loaded, _) = load_text("x.toml", b"a = 1\r\nb = \"\xC3");
    let d = &loaded.diagnostics[0];
    assert_eq!((d.line, d.column), (2, 6), "{}", d.render(false));
}

/// `" 5m "` was accepted by some readers of durations and said to be an
/// error by `docs/plans.md`: spaces around a duration are ignored, alike in
/// plan files, tiers files, settings and flags (one parser for all).
#[test]
fn regression_spaces_around_a_duration_are_accepted_everywhere() {
    use std::time::Duration;
    let plan = payments()
        .replace(
            "schedule = \"0 3 * * MON\"",
            "schedule = \"0 3 * * MON\"\nmax_duration = \" 30m \"\nblackout = [{ start = \"0 0 28 * *\", for = \"\\t4d \" }]",
        )
        + "\n[[check]]\nid = \"api-health\"\nregions = { us-west-2 = \"https://a.example.com/\", us-east-1 = \"https://b.example.com/\", eu-west-1 = \"https://c.example.com/\" }\ntimeout = \" 5s \"\n";
    let tiers = "[tiers.critical]\nrto = \" 10m \"\nrpo = \"2m \"\ndrill_interval = \" 7d\"\n";
    let dir = write_dir(&[("payments.toml", &plan), ("tiers.toml", tiers)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let p = loaded.plan("payments").expect("loaded");
    let drill = p.spec.drill.as_ref().expect("drill");
    assert_eq!(drill.max_duration(), Some(Duration::from_secs(30 * 60)));
    let in_window = chrono::DateTime::parse_from_rfc3339("2026-01-30T12:00:00Z")
        .expect("time")
        .to_utc();
    assert!(drill.blackout_at(in_window).is_some());
    assert_eq!(
        (p.tier.rto, p.tier.rpo, p.tier.drill_interval),
        (
            Duration::from_secs(600),
            Duration::from_secs(120),
            Duration::from_secs(7 * 86_400)
        )
    );
    // The same in YAML, where an unquoted value loses its spaces anyway.
    let yaml = "tiers:\n  critical:\n    rto: \" 10m \"\n    rpo: \"\\t2m\"\n";
    let dir = write_dir(&[("payments.toml", &payments()), ("tiers.yaml", yaml)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    assert_eq!(loaded.plans[0].tier.rpo, Duration::from_secs(120));

    // Settings: drctl.toml and DRCTL_* (the environment beats the file).
    let cfg = dir.path().join("drctl.toml");
    std::fs::write(&cfg, "lease = \" 2m \"\nlease_skew = \" 5s\"\n").expect("write");
    let flags = crate::config::FlagSettings {
        config: Some(cfg),
        ..Default::default()
    };
    let s = crate::config::Settings::resolve_with(&flags, &Default::default()).expect("file");
    assert_eq!(
        (s.lease.length, s.lease.skew),
        (Duration::from_secs(120), Duration::from_secs(5))
    );
    let env = std::collections::BTreeMap::from([("DRCTL_LEASE".to_string(), " 90s ".to_string())]);
    let s = crate::config::Settings::resolve_with(&flags, &env).expect("env");
    assert_eq!(s.lease.length, Duration::from_secs(90));

    // Flags: every duration flag's `value_parser` is this function.
    assert_eq!(
        super::duration::parse_duration(" 5m "),
        Ok(Duration::from_secs(300))
    );
    // Spaces inside are an error, placed at the value.
    let plan = payments().replace(
        "schedule = \"0 3 * * MON\"",
        "schedule = \"0 3 * * MON\"\nmax_duration = \"2h 30m\"",
    );
    let dir = write_dir(&[("payments.toml", &plan)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert_eq!(loaded.diagnostics.len(), 1, "{}", render(&loaded));
    let d = &loaded.diagnostics[0];
    assert!(d.message.contains("unexpected ` `"), "{}", d.message);
    assert_eq!(
        d.source_line.as_deref(),
        Some("max_duration = \"2h 30m\""),
        "{}",
        d.render(false)
    );
    assert_eq!(d.column, 16);
}

/// A symbolic link in the plans folder that loops was skipped without a
/// word (and a plan with it); it is an error that names it.
#[cfg(unix)]
#[test]
fn regression_a_symlink_loop_in_the_plans_folder_is_an_error_naming_it() {
    use std::os::unix::fs::symlink;
    let dir = write_dir(&[("payments.toml", &payments())]);
    let d = dir.path();
    symlink("self.toml", d.join("self.toml")).expect("symlink");
    symlink("b.yaml", d.join("a.yaml")).expect("symlink");
    symlink("a.yaml", d.join("b.yaml")).expect("symlink");
    // A loop without a plan's name is an error too; a link to a file that
    // is not a plan is not.
    symlink("round", d.join("round")).expect("symlink");
    std::fs::write(d.join("notes.txt"), "x").expect("write");
    symlink("notes.txt", d.join("notes-link")).expect("symlink");
    let loaded = load(&[d.to_path_buf()]);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .collect();
    let named: Vec<&Path> = errors.iter().map(|x| x.file.as_path()).collect();
    assert_eq!(
        named,
        [
            d.join("a.yaml"),
            d.join("b.yaml"),
            d.join("round"),
            d.join("self.toml")
        ]
        .iter()
        .map(PathBuf::as_path)
        .collect::<Vec<_>>(),
        "{}",
        render(&loaded)
    );
    for e in &errors {
        let shown = e.render(false);
        assert!(shown.contains(&e.file.display().to_string()), "{shown}");
        assert!(e.message.contains("symbolic link"), "{shown}");
    }
    assert!(
        errors[3].message.contains("-> self.toml"),
        "{}",
        errors[3].message
    );
    // The good plan still loads (the load as a whole is invalid).
    assert_eq!(loaded.plans.len(), 1);
    // Only loops: no "no plan files" on top of the named links.
    let only = write_dir(&[]);
    symlink("self.toml", only.path().join("self.toml")).expect("symlink");
    let loaded = load(&[only.path().to_path_buf()]);
    assert_eq!(loaded.diagnostics.len(), 1, "{}", render(&loaded));
    // A dangling link with a plan's name is a plan that cannot be read.
    let dangling = write_dir(&[("payments.toml", &payments())]);
    symlink("gone.toml", dangling.path().join("ledger.toml")).expect("symlink");
    let loaded = load(&[dangling.path().to_path_buf()]);
    assert_eq!(loaded.diagnostics.len(), 1, "{}", render(&loaded));
    assert_eq!(
        loaded.diagnostics[0].file,
        dangling.path().join("ledger.toml")
    );
    // The plans folder given is itself a loop.
    let given = only.path().join("plans");
    symlink("plans", &given).expect("symlink");
    let loaded = load(std::slice::from_ref(&given));
    assert_eq!(loaded.diagnostics.len(), 1, "{}", render(&loaded));
    assert_eq!(loaded.diagnostics[0].file, given);
    assert!(
        loaded.diagnostics[0].message.contains("symbolic link"),
        "{}",
        render(&loaded)
    );
}

#[test]
fn a_plan_may_name_its_own_sinks_but_never_hold_a_url() {
    let ok = format!(
        "{}\n[[notify]]\nname = \"owner\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_PAYMENTS__HOOK\"\nevents = [\"dev.drctl.run.*\"]\n",
        payments()
    );
    let (loaded, _) = load_text("payments.toml", ok.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    assert_eq!(loaded.plans[0].spec.notify[0].name, "owner");

    let secret = format!(
        "{}\n[[notify]]\nname = \"owner\"\nkind = \"webhook\"\nurl = \"https://hooks.example/T0KEN\"\n",
        payments()
    );
    let (loaded, _) = load_text("payments.toml", secret.as_bytes());
    let shown = render(&loaded);
    assert!(shown.contains("URL is a secret"), "{shown}");
    let d = &loaded.diagnostics[0];
    assert!(d.line > payments().lines().count(), "at the sink: {shown}");
    assert!(
        d.hint.as_deref().unwrap_or_default().contains("url_env"),
        "{shown}"
    );
}

/// The line (1-based) of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("in the text")
        + 1
}

/// Regression: a plan's sink could read any variable or file of the host
/// (`secret_env = "AWS_SECRET_ACCESS_KEY"`, a file beside the plan) and
/// send it to a URL of its choosing. Each is now an error at its line.
#[test]
fn regression_a_plans_sink_cannot_reach_host_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(
        secrets.join("plain-hook"),
        "http://hooks.example.com/T0KEN\n",
    )
    .unwrap();
    std::fs::write(
        secrets.join("good-hook"),
        "https://hooks.example.com/T0KEN\n",
    )
    .unwrap();
    std::fs::write(
        secrets.join("other-hook"),
        "https://evil.example.net/T0KEN\n",
    )
    .unwrap();
    let rules = super::notify::SinkRules {
        secrets_dir: Some(secrets.clone()),
        allowed_hosts: vec!["hooks.example.com".into()],
        operators: vec![("team-slack".into(), super::notify::Scope::Named)],
    };
    let sink = |body: &str| format!("{}\n[[notify]]\nname = \"owner\"\n{body}\n", payments());
    let outside = dir.path().join("aws-credentials");
    std::fs::write(&outside, "[default]\n").unwrap();
    let cases = [
        (
            "kind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_PAYMENTS__HOOK\"\nsecret_env = \"AWS_SECRET_ACCESS_KEY\"",
            "secret_env",
            "DRCTL_NOTIFY_PAYMENTS__*",
        ),
        (
            "kind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_PAYMENTS__HOOK\"\nsecret_env = \"DRCTL_NOTIFY_LEDGER__SECRET\"",
            "secret_env",
            "another plan's its secrets",
        ),
        (
            &format!(
                "kind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_PAYMENTS__HOOK\"\nsecret_file = \"{}\"",
                outside.display()
            ),
            "secret_file",
            "secrets directory",
        ),
        (
            "kind = \"webhook\"\nurl_file = \"../aws-credentials\"",
            "url_file",
            "secrets directory",
        ),
        (
            "kind = \"slack\"\nurl_file = \"plain-hook\"",
            "url_file",
            "https",
        ),
        (
            "kind = \"slack\"\nurl_file = \"other-hook\"",
            "url_file",
            "not among the hosts",
        ),
        ("sink = \"nobody\"", "sink", "no operators' sink"),
    ];
    for (body, key, says) in cases {
        let text = sink(body);
        let path = dir.path().join("payments.toml");
        std::fs::write(&path, &text).unwrap();
        let loaded = super::load_with(std::slice::from_ref(&path), &rules);
        let shown = render(&loaded);
        assert_eq!(loaded.diagnostics.len(), 1, "{body}: {shown}");
        let d = &loaded.diagnostics[0];
        let at =
            text.lines().count() - text.lines().rev().position(|l| l.starts_with(key)).unwrap();
        assert_eq!(d.line, at, "{body}: at its line: {shown}");
        assert!(d.message.contains(says), "{body}: {shown}");
        assert!(d.hint.is_some(), "{shown}");
        assert!(
            !shown.contains("T0KEN"),
            "a URL's path is a secret: {shown}"
        );
        assert!(loaded.plans.is_empty());
    }
    for body in [
        "kind = \"slack\"\nurl_file = \"good-hook\"",
        "kind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_PAYMENTS__HOOK\"\nsecret_file = \"whsec\"",
        "sink = \"team-slack\"\nevents = [\"dev.drctl.run.*\"]",
    ] {
        let text = sink(body);
        let path = dir.path().join("payments.toml");
        std::fs::write(&path, &text).unwrap();
        let loaded = super::load_with(std::slice::from_ref(&path), &rules);
        assert!(loaded.diagnostics.is_empty(), "{body}: {}", render(&loaded));
    }
    // No secrets directory: no file at all.
    let text = sink("kind = \"slack\"\nurl_file = \"good-hook\"");
    let (loaded, _) = load_text("payments.toml", text.as_bytes());
    assert_eq!(loaded.diagnostics[0].line, line_of(&text, "url_file ="));
    assert!(
        render(&loaded).contains("names none"),
        "{}",
        render(&loaded)
    );
}

// ---- Hostile durations and counts: an error at the value, never a panic --
//
// `[watch] interval = "50000000000000d"` panicked `plan validate` (a
// duration multiplied past its end), `failures = 4294967295` with an add
// overflow, and a huge `veto_window`, `max_duration`, tier `rto` or
// blackout `for` passed validation and overflowed later, in `Instant` or
// `DateTime` arithmetic, in every observer that loads the plans.

/// `payments` with `value` (TOML, quoted for a duration) written at `key`:
/// a `[watch]` key, `max_duration`, a blackout's `for`, a check's
/// `timeout` or a sink's `retry`.
fn with_value(key: &str, value: &str) -> String {
    let drill = |extra: &str| {
        payments().replace(
            "schedule = \"0 3 * * MON\"",
            &format!("schedule = \"0 3 * * MON\"\n{extra}"),
        )
    };
    match key {
        "max_duration" => drill(&format!("max_duration = {value}")),
        "for" => drill(&format!(
            "blackout = [\n  {{ start = \"0 0 28 * *\", for = {value} }},\n]"
        )),
        "timeout" => {
            payments()
                + &format!(
                    "\n[[check]]\nid = \"api-health\"\nregions = {{ us-west-2 = \"https://a.example.com/\", us-east-1 = \"https://b.example.com/\", eu-west-1 = \"https://c.example.com/\" }}\ntimeout = {value}\n"
                )
        }
        "retry" => {
            payments()
                + &format!(
                    "\n[[notify]]\nname = \"owner\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_PAYMENTS__HOOK\"\nretry = [\"1s\", {value}]\n"
                )
        }
        watch => payments() + &format!("\n[watch]\n{watch} = {value}\n"),
    }
}

/// Every key of a plan that takes a duration.
const DURATION_KEYS: [&str; 8] = [
    "interval",
    "veto_window",
    "freshness",
    "accept_data_loss",
    "max_duration",
    "for",
    "timeout",
    "retry",
];

/// Every key of a plan that takes a count, and its bound.
const COUNT_KEYS: [(&str, u64); 2] = [("failures", 1000), ("quorum", 100)];

/// The line and column an error about `key` = `value` is placed at: the
/// value (a sink's retry list as a whole).
fn value_place(text: &str, key: &str, value: &str) -> (usize, Option<usize>) {
    let (needle, at_value) = if key == "retry" {
        ("retry = [".to_string(), true)
    } else {
        (format!("{key} = {value}"), true)
    };
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(&needle))
        .expect("the value is in the text");
    let col = line.find(&needle).map(|c| c + key.len() + 4);
    (i + 1, col.filter(|_| at_value))
}

/// Asserts that loading `text` fails with an error placed at `key`'s
/// value, with a hint, and returns it rendered.
fn assert_refused_at(text: &str, key: &str, value: &str) -> String {
    let (loaded, _) = load_text("payments.toml", text.as_bytes());
    let shown = render(&loaded);
    assert!(loaded.has_errors(), "{key} = {value}: accepted\n{shown}");
    assert!(loaded.plans.is_empty(), "{key} = {value}: {shown}");
    let (line, col) = value_place(text, key, value);
    let here = loaded
        .diagnostics
        .iter()
        .find(|d| d.line == line && col.is_none_or(|c| d.column == c));
    let Some(d) = here else {
        panic!("{key} = {value}: no error at {line}:{col:?}\n{shown}");
    };
    assert!(d.hint.as_deref().is_some_and(|h| !h.is_empty()), "{shown}");
    d.render(false)
}

#[test]
fn regression_watch_interval_overflow_panicked() {
    let shown = assert_refused_at(
        &with_value("interval", "\"50000000000000d\""),
        "interval",
        "\"50000000000000d\"",
    );
    assert!(
        shown.contains("`50000000000000d` is longer than 3650d (ten years)"),
        "{shown}"
    );
    assert!(shown.contains("payments.toml:"), "{shown}");
}

#[test]
fn regression_huge_durations_are_refused_at_their_value() {
    for key in DURATION_KEYS {
        for value in [
            "\"50000000000000d\"",
            "\"3651d\"",
            "\"3650d1s\"",
            "\"87601h\"",
            "\"18446744073709551615s\"",
            "\"99999999999999999999999h\"",
        ] {
            let shown = assert_refused_at(&with_value(key, value), key, value);
            assert!(shown.contains("3650d"), "{key} = {value}: {shown}");
        }
        // The cap itself is accepted.
        let (loaded, _) = load_text("payments.toml", with_value(key, "\"3650d\"").as_bytes());
        assert!(
            !render(&loaded).contains("longer than"),
            "{key}: {}",
            render(&loaded)
        );
    }
}

#[test]
fn regression_watch_failures_overflow_panicked() {
    for (key, bound) in COUNT_KEYS {
        for value in [
            "4294967295".to_string(),
            "4294967296".to_string(),
            "9223372036854775807".to_string(),
            "-1".to_string(),
            (bound + 1).to_string(),
            "0".to_string(),
        ] {
            assert_refused_at(&with_value(key, &value), key, &value);
        }
        let (loaded, _) = load_text(
            "payments.toml",
            with_value(key, &bound.to_string()).as_bytes(),
        );
        assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    }
    // Above i64: the TOML reader's own error, at the value.
    let text = with_value("failures", "99999999999999999999");
    let (loaded, _) = load_text("payments.toml", text.as_bytes());
    let line = text.lines().count();
    assert!(
        loaded.diagnostics.iter().any(|d| d.line == line),
        "{}",
        render(&loaded)
    );
}

/// A tier's `rto`, `rpo` or `drill_interval` beyond the cap: an error in
/// the tiers file at the value, and the plans on the tier told so.
#[test]
fn regression_huge_tier_durations_are_refused_at_their_value() {
    for key in ["rto", "rpo", "drill_interval"] {
        let mut tier = vec![
            ("rto", "\"30m\""),
            ("rpo", "\"5m\""),
            ("drill_interval", "\"30d\""),
        ];
        for (k, v) in &mut tier {
            if *k == key {
                *v = "\"50000000000000d\"";
            }
        }
        let body: String = tier.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        let tiers = format!("[tiers.slow]\n{body}");
        let plan = payments().replace("tier = \"critical\"", "tier = \"slow\"");
        let dir = write_dir(&[("payments.toml", &plan), ("tiers.toml", &tiers)]);
        let loaded = load(&[dir.path().to_path_buf()]);
        let shown = render(&loaded);
        let line = tiers.lines().position(|l| l.starts_with(key)).expect("key") + 1;
        assert!(
            loaded
                .diagnostics
                .iter()
                .any(|d| d.file.ends_with("tiers.toml")
                    && d.line == line
                    && d.column == key.len() + 4
                    && d.message.contains("3650d")),
            "{key}: {shown}"
        );
        assert!(shown.contains("tier `slow` cannot be used"), "{shown}");
        assert!(loaded.plans.is_empty());
    }
}

/// Numbers of every size, with every unit, at every duration key; numbers
/// of every size at every count key.
fn hostile_value() -> impl Strategy<Value = (String, String, bool)> {
    let number = prop_oneof![
        any::<u64>(),
        u64::MAX - 1_000..=u64::MAX,
        0u64..1_000,
        315_000_000u64..316_000_000,
        3_640u64..3_660,
    ];
    let duration = (
        prop::sample::select(DURATION_KEYS.to_vec()),
        number.clone(),
        prop::sample::select(vec![("d", 86_400u128), ("h", 3_600), ("m", 60), ("s", 1)]),
        proptest::option::of("[0-9]{1,25}"),
    )
        .prop_map(|(key, n, (unit, size), more)| {
            let digits = format!("{n}{}", more.unwrap_or_default());
            let secs = digits
                .parse::<u128>()
                .ok()
                .and_then(|n| n.checked_mul(size));
            let over = secs.is_none_or(|s| s > u128::from(super::duration::MAX_DURATION.as_secs()));
            (key.to_string(), format!("\"{digits}{unit}\""), over)
        });
    let count = (prop::sample::select(COUNT_KEYS.to_vec()), number)
        .prop_map(|((key, bound), n)| (key.to_string(), n.to_string(), n == 0 || n > bound));
    prop_oneof![duration, count]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The fuzz target of hostile durations and counts: never a panic;
    /// every error placed in the file; a value beyond its bound refused
    /// at the value.
    #[test]
    fn hostile_durations_and_counts_never_panic((key, value, over) in hostile_value()) {
        let text = with_value(&key, &value);
        let (loaded, lines) = load_text("payments.toml", text.as_bytes());
        assert_places(&loaded, lines)?;
        if over {
            let (line, col) = value_place(&text, &key, &value);
            prop_assert!(
                loaded.diagnostics.iter().any(|d| d.line == line && col.is_none_or(|c| d.column == c)),
                "{key} = {value}: no error at {line}:{col:?}\n{}", render(&loaded)
            );
        }
        for p in &loaded.plans {
            let r = p.watch_rules();
            prop_assert!(r.interval <= super::duration::MAX_DURATION);
            prop_assert!(r.freshness <= super::duration::MAX_DURATION);
            prop_assert!(r.failures <= super::watch::MAX_FAILURES);
        }
    }
}

/// A command on one plan goes on when only other plan files are invalid;
/// not when the plan itself, a file declaring its name, or a tiers file is.
#[test]
fn other_invalid_plans_leave_a_named_plan_usable() {
    let ledger = std::fs::read_to_string(root().join("plans/ledger.toml")).expect("ledger");
    let broken_ledger = format!("{ledger}\n[watch]\ninterval = \"50000000000000d\"\n");
    let dir = write_dir(&[
        ("payments.toml", &payments()),
        ("ledger.toml", &broken_ledger),
        ("typo.toml", "[plan\nname = "),
    ]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.has_errors());
    let only = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let others = loaded
        .others_invalid(&only(&["payments"]))
        .expect("payments is usable");
    let files: Vec<&Path> = others.iter().map(|d| d.file.as_path()).collect();
    assert_eq!(
        files,
        [dir.path().join("ledger.toml"), dir.path().join("typo.toml")]
    );
    assert!(
        others[0].message.contains("50000000000000d"),
        "{}",
        others[0].message
    );
    assert!(others[0].line > 1);
    // The plan itself, or every plan: not usable.
    assert!(loaded.others_invalid(&only(&["ledger"])).is_none());
    assert!(
        loaded
            .others_invalid(&only(&["payments", "ledger"]))
            .is_none()
    );
    assert!(loaded.others_invalid(&[]).is_none());
    assert!(loaded.others_invalid(&only(&["nope"])).is_none());

    // A broken file that declares the plan's name: a duplicate, or its
    // own broken copy. Not usable.
    let copy = payments().replace("schedule = \"0 3 * * MON\"", "schedule = \"soon\"");
    let dir = write_dir(&[("payments.toml", &payments()), ("payments-v2.toml", &copy)]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.has_errors());
    assert!(loaded.others_invalid(&only(&["payments"])).is_none());

    // Its broken copy with a type error (so that it does not read as a
    // plan at all) still declares the name: not usable.
    let typed = payments().replace("max = 8", "max = -8");
    let dir = write_dir(&[
        ("payments.toml", &typed),
        ("payments-old.toml", &payments()),
    ]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.plan("payments").is_some());
    assert_eq!(
        loaded
            .names
            .get(&dir.path().join("payments.toml"))
            .map(String::as_str),
        Some("payments")
    );
    assert!(loaded.others_invalid(&only(&["payments"])).is_none());

    // Its own file broken beyond reading its name (a syntax error), with a
    // valid stale copy elsewhere: the file name stands for the name, and
    // the stale copy is not run in its place.
    let dir = write_dir(&[
        ("payments.toml", "[plan\nname = \"payments\""),
        ("payments-old.toml", &payments()),
    ]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.plan("payments").is_some());
    assert!(loaded.others_invalid(&only(&["payments"])).is_none());

    // A tiers file with an error changes policy for every plan: not usable.
    let dir = write_dir(&[
        ("payments.toml", &payments()),
        (
            "tiers.toml",
            "[tiers.batch]\nrto = \"1h\"\nrpo = \"soon\"\n",
        ),
    ]);
    let loaded = load(&[dir.path().to_path_buf()]);
    assert!(loaded.plan("payments").is_some());
    assert!(loaded.others_invalid(&only(&["payments"])).is_none());

    // No error: usable, nothing to warn of.
    let loaded = load(&[root().join("plans")]);
    assert_eq!(loaded.others_invalid(&[]).map(|o| o.len()), Some(0));
}

/// The reference `orders` plan's text: its node group, beside an Aurora
/// global database and a record.
fn orders() -> String {
    std::fs::read_to_string(root().join("plans/orders.toml")).expect("orders.toml")
}

/// A node group names its EKS cluster and managed node group per region
/// (`cluster/nodegroup`); anything else is an error at that region's value,
/// with a hint, as is an active size of 0 or a size out of order.
#[test]
fn a_node_group_names_its_cluster_and_sizes_in_order() {
    let text = orders().replace(
        "us-east-1 = \"orders-eks-use1/orders-nodes-use1\"",
        "us-east-1 = \"orders-nodes-use1\"",
    );
    let errors = errors_of("orders.toml", &text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(
        e.message.contains("not `cluster/nodegroup`"),
        "{}",
        e.render(false)
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("regions = {") && l.contains("orders-eks-usw2/"))
        .map(|i| i + 1);
    assert_eq!(Some(e.line), line);
    assert!(
        e.hint
            .as_deref()
            .is_some_and(|h| h.contains("orders-eks/orders-nodes"))
    );

    let text = orders().replace(
        "active = { min = 2, desired = 3, max = 6 }",
        "active = { min = 0, desired = 0, max = 6 }",
    );
    let errors = errors_of("orders.toml", &text);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("active desired size of 0")),
        "{errors:?}"
    );
    let text = orders().replace(
        "standby = { min = 0, desired = 0, max = 6 }",
        "standby = { min = 3, desired = 1, max = 6 }",
    );
    let errors = errors_of("orders.toml", &text);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("standby size 3/1/6")),
        "{errors:?}"
    );
    // Keys are checked as for every kind.
    let text = orders().replace("standby = {", "standy = {");
    let errors = errors_of("orders.toml", &text);
    assert!(
        errors.iter().any(|e| e.message.contains("standy")),
        "{errors:?}"
    );
}

/// `[[cloud_sql]]` on GCP regions: a valid table loads; a bad project, a
/// bad instance name and `dr_replica` with a restore are each named at
/// their place in the file.
#[test]
fn cloud_sql_takes_gcp_regions_and_names_its_errors_where_they_are() {
    let head =
        "[plan]\nname = \"g\"\ntier = \"important\"\nregions = [\"us-central1\", \"us-east4\"]\n\n";
    let good = format!(
        "{head}[[cloud_sql]]\nid = \"db\"\nproject = \"acme-orders\"\nstrategy = \"promote-replica\"\ndr_replica = true\nregions = {{ us-central1 = \"orders-sql\", us-east4 = \"orders-sql-use4\" }}\n"
    );
    let (loaded, _) = load_text("g.toml", good.as_bytes());
    assert!(!loaded.has_errors(), "{}", render(&loaded));
    assert_eq!(loaded.plans[0].spec.cloud_sql[0].project, "acme-orders");
    let bad = format!(
        "{head}[[cloud_sql]]\nid = \"db\"\nproject = \"Acme\"\nstrategy = \"point-in-time-restore\"\ndr_replica = true\nregions = {{ us-central1 = \"Orders_SQL\", us-east4 = \"orders-sql-use4\" }}\n"
    );
    let errors = errors_of("g.toml", &bad);
    let at = |what: &str| {
        errors
            .iter()
            .find(|d| d.message.contains(what))
            .map(|d| (d.line, d.column))
            .unwrap_or_else(|| panic!("no error about {what}: {errors:#?}"))
    };
    assert_eq!(at("is not a GCP project id"), (8, 11));
    assert_eq!(at("not a Cloud SQL instance name").0, 11);
    assert_eq!(at("`dr_replica` needs").0, 10);
}

/// `[[cloud_run]]` on GCP regions: a valid table loads; an AWS region, a
/// bad service name, an active floor of 0 and an unknown size key are each
/// named at their place in the file.
#[test]
fn cloud_run_takes_gcp_regions_and_names_its_errors_where_they_are() {
    let head =
        "[plan]\nname = \"g\"\ntier = \"important\"\nregions = [\"us-central1\", \"us-east4\"]\n\n";
    let good = format!(
        "{head}[[cloud_run]]\nid = \"api\"\nproject = \"acme-orders\"\nregions = {{ us-central1 = \"orders-api\", us-east4 = \"orders-api\" }}\nactive = {{ min_instances = 3 }}\nstandby = {{ min_instances = 0 }}\n"
    );
    let (loaded, _) = load_text("g.toml", good.as_bytes());
    assert!(!loaded.has_errors(), "{}", render(&loaded));
    assert_eq!(loaded.plans[0].spec.cloud_run[0].active.min_instances, 3);
    let bad = format!(
        "{head}[[cloud_run]]\nid = \"api\"\nproject = \"acme-orders\"\nregions = {{ us-central1 = \"Orders_API\", us-east4 = \"orders-api\" }}\nactive = {{ min_instances = 0 }}\nstandby = {{ min_instances = 0 }}\n"
    );
    let errors = errors_of("g.toml", &bad);
    let at = |what: &str| {
        errors
            .iter()
            .find(|d| d.message.contains(what))
            .map(|d| d.line)
            .unwrap_or_else(|| panic!("no error about {what}: {errors:#?}"))
    };
    assert_eq!(at("not a Cloud Run service name"), 9);
    assert_eq!(at("active min_instances of 0"), 10);
    let typo = good.replace("standby = { min_instances", "standby = { min_instance");
    let errors = errors_of("g.toml", &typo);
    assert!(
        errors.iter().any(|e| e.message.contains("min_instance")),
        "{errors:?}"
    );
    let aws = good.replace("us-central1", "us-west-2");
    let errors = errors_of("g.toml", &aws);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("not a GCP region")),
        "{errors:?}"
    );
}

fn storefront() -> String {
    std::fs::read_to_string(root().join("plans/gcp/storefront.toml")).expect("storefront.toml")
}

/// The plan on both clouds: a site is an AWS region and its GCP region;
/// `--to` may name either; a GCP resource's copy in a site is the one in
/// the site's GCP region, and its steps act there.
#[test]
fn a_plan_on_both_clouds_pairs_each_region_with_a_gcp_region() {
    let (loaded, _) = load_text("storefront.toml", storefront().as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded));
    let p = &loaded.plans[0];
    assert_eq!(p.site("us-east4"), Some("us-east-1"));
    assert_eq!(p.site("us-east-1"), Some("us-east-1"));
    assert_eq!(p.site("eu-west-1"), None);
    let sql = &p.spec.cloud_sql[0];
    use super::kinds::Copies;
    assert_eq!(sql.copy("us-east-1"), Some("catalogue-sql-use4"));
    assert_eq!(sql.copy("us-west-2"), Some("catalogue-sql"));
    let g = crate::steps::graph::compile(p, "us-east-1").expect("compiles");
    let regions: Vec<(String, String)> = (g.steps.iter())
        .map(|s| {
            (
                s.id.to_string(),
                serde_json::to_value(&s.kind).unwrap()["region"].to_string(),
            )
        })
        .collect();
    let of = |id: &str| {
        regions
            .iter()
            .find(|(s, _)| s.contains(id))
            .map(|(_, r)| r.clone())
    };
    assert_eq!(
        of("promote:catalogue-sql").as_deref(),
        Some("\"us-east4\""),
        "{regions:?}"
    );
    assert_eq!(
        of("raise:storefront-api").as_deref(),
        Some("\"us-east4\""),
        "{regions:?}"
    );
    assert_eq!(
        of("raise:storefront-web").as_deref(),
        Some("\"us-east-1\""),
        "{regions:?}"
    );
    assert_eq!(
        of("promote:").as_deref(),
        Some("\"us-east-1\""),
        "{regions:?}"
    );
}

/// What a plan on both clouds gets wrong about its sites, each where it
/// is written: a GCP region list of another length, an AWS name in it,
/// a GCP resource named by an AWS region.
#[test]
fn a_plan_on_both_clouds_says_where_its_sites_are_wrong() {
    let t = storefront().replace(
        "gcp_regions = [\"us-central1\", \"us-east4\"]",
        "gcp_regions = [\"us-central1\"]",
    );
    let e = errors_of("storefront.toml", &t);
    assert!(
        e.iter()
            .any(|d| d.message.contains("2 region(s) and 1 GCP region(s)")),
        "{e:?}"
    );
    let t = storefront().replace("\"us-east4\"]", "\"us-east-2\"]");
    let e = errors_of("storefront.toml", &t);
    assert!(
        e.iter()
            .any(|d| d.message.contains("`us-east-2` is not a GCP region name") && d.line == 23),
        "{e:?}"
    );
    let t = storefront().replace(
        "regions = { us-central1 = \"catalogue-sql\"",
        "regions = { us-west-2 = \"catalogue-sql\"",
    );
    let e = errors_of("storefront.toml", &t);
    let d = (e.iter())
        .find(|d| d.message.contains("names region `us-west-2`"))
        .unwrap_or_else(|| panic!("{e:?}"));
    assert!(
        d.hint.as_deref().is_some_and(|h| h.contains("gcp_regions")),
        "{:?}",
        d.hint
    );
    assert!(
        e.iter()
            .any(|d| d.message.contains("has no id for region `us-central1`")),
        "{e:?}"
    );
}

/// `[plan] allowed_regions` (data residency): a plan whose sites are all
/// allowed loads; one that places a site outside (an AWS region, a GCP
/// region) is refused where that site is written, naming the region and
/// the allowed ones; an allowed entry that is no region name is refused
/// where it is written.
#[test]
fn a_plan_placing_a_site_outside_its_allowed_regions_is_refused_where_it_is_written() {
    let header = "gcp_regions = [\"us-central1\", \"us-east4\"]";
    let allowed =
        |list: &str| storefront().replace(header, &format!("{header}\nallowed_regions = [{list}]"));
    let all = allowed("\"us-west-2\", \"us-east-1\", \"us-central1\", \"us-east4\"");
    let (loaded, _) = load_text("storefront.toml", all.as_bytes());
    assert!(!loaded.has_errors(), "{}", render(&loaded));
    assert_eq!(loaded.plans[0].spec.plan.allowed_regions.len(), 4);

    let e = errors_of(
        "storefront.toml",
        &allowed("\"us-west-2\", \"us-central1\", \"us-east4\""),
    );
    let d = (e.iter())
        .find(|d| {
            d.message
                .contains("site in us-east-1, outside its allowed_regions")
        })
        .unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!((d.line, d.column), (22, 25), "{d:?}");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.contains("never fails over")),
        "{d:?}"
    );
    assert_eq!(e.len(), 1, "{e:?}");

    let e = errors_of(
        "storefront.toml",
        &allowed("\"us-west-2\", \"us-east-1\", \"us-central1\""),
    );
    assert!(
        e.iter()
            .any(|d| d.message.contains("site in us-east4") && d.line == 23),
        "{e:?}"
    );
    let e = errors_of("storefront.toml", &allowed("\"US East\""));
    assert!(
        e.iter()
            .any(|d| d.message.contains("`US East` is not a region name") && d.line == 24),
        "{e:?}"
    );
}

/// `[[cloud_dns]]`: a valid table loads; a managed zone given as a DNS
/// name, a record name without its trailing dot, a CNAME value that is not
/// a host name and targets keyed by a region not in the plan are each named
/// at their place in the file (line and column), with a hint.
#[test]
fn cloud_dns_names_its_errors_where_they_are_with_hints() {
    let head =
        "[plan]\nname = \"g\"\ntier = \"important\"\nregions = [\"us-central1\", \"us-east4\"]\n\n";
    let good = format!(
        "{head}[[cloud_dns]]\nid = \"api-dns\"\nproject = \"acme-orders\"\nzone = \"orders-zone\"\nname = \"api.gcp.example.com.\"\ntype = \"CNAME\"\ntargets = {{ us-central1 = \"api-usc1.example.com.\", us-east4 = \"api-use4.example.com.\" }}\n"
    );
    let (loaded, _) = load_text("g.toml", good.as_bytes());
    assert!(!loaded.has_errors(), "{}", render(&loaded));
    let spec = &loaded.plans[0].spec.cloud_dns[0];
    assert_eq!((spec.zone.as_str(), spec.ttl), ("orders-zone", 60));
    let bad = good
        .replace("zone = \"orders-zone\"", "zone = \"gcp.example.com.\"")
        .replace(
            "name = \"api.gcp.example.com.\"",
            "name = \"api.gcp.example.com\"",
        )
        .replace(
            "us-east4 = \"api-use4.example.com.\"",
            "us-east4 = \"api use4\"",
        );
    let errors = errors_of("g.toml", &bad);
    let at = |what: &str| {
        errors
            .iter()
            .find(|d| d.message.contains(what))
            .unwrap_or_else(|| panic!("no error about {what}: {errors:#?}"))
    };
    let zone = at("not a Cloud DNS managed zone name");
    assert_eq!((zone.line, zone.column), (9, 8), "{zone:?}");
    assert!(
        zone.hint
            .as_deref()
            .is_some_and(|h| h.contains("not its DNS name")),
        "{zone:?}"
    );
    let name = at("not a fully qualified record name");
    assert_eq!(name.line, 10);
    assert!(
        name.hint
            .as_deref()
            .is_some_and(|h| h.contains("api.gcp.example.com.")),
        "{name:?}"
    );
    assert_eq!(at("is not a value of a CNAME record").line, 12);
    let elsewhere = good.replace("us-east4 = \"api-use4", "europe-west4 = \"api-euw4");
    let errors = errors_of("g.toml", &elsewhere);
    let e = (errors.iter())
        .find(|d| {
            d.message
                .contains("`europe-west4`, which is not one of the plan's GCP regions")
        })
        .unwrap_or_else(|| panic!("{errors:#?}"));
    assert_eq!(e.line, 12, "{e:?}");
    assert!(
        errors
            .iter()
            .any(|d| d.message.contains("no target for region `us-east4`")),
        "{errors:#?}"
    );
}

/// `[[cloud_dns]]` with `switch = "health-check"`: a valid table loads; a
/// missing region's control, a control that is not a `gs://` object, a
/// CNAME (a health-checked target is an address) and a malformed health
/// check are each named at their place with a hint; controls on a
/// records-mode record are refused.
#[test]
fn a_health_check_cloud_dns_names_its_errors_where_they_are_with_hints() {
    let head =
        "[plan]\nname = \"g\"\ntier = \"important\"\nregions = [\"us-central1\", \"us-east4\"]\n\n";
    let good = format!(
        "{head}[[cloud_dns]]\nid = \"api-dns\"\nproject = \"acme-orders\"\nzone = \"orders-zone\"\nname = \"api.gcp.example.com.\"\ntype = \"A\"\ntargets = {{ us-central1 = \"10.0.1.1\", us-east4 = \"10.0.2.2\" }}\nswitch = \"health-check\"\ncontrols = {{ us-central1 = \"gs://ctl/api/usc1\", us-east4 = \"gs://ctl/api/use4\" }}\nhealth_check = \"projects/acme-orders/global/healthChecks/api\"\n"
    );
    let (loaded, _) = load_text("g.toml", good.as_bytes());
    assert!(!loaded.has_errors(), "{}", render(&loaded));
    let spec = &loaded.plans[0].spec.cloud_dns[0];
    assert_eq!(spec.switch, crate::plan::kinds::CloudSwitch::HealthCheck);
    let bad = good
        .replace(", us-east4 = \"gs://ctl/api/use4\"", "")
        .replace("gs://ctl/api/usc1", "s3://ctl/api/usc1")
        .replace("type = \"A\"", "type = \"CNAME\"")
        .replace("10.0.1.1", "a.example.com.")
        .replace("10.0.2.2", "b.example.com.")
        .replace("healthChecks/api", "checks/api");
    let errors = errors_of("g.toml", &bad);
    let at = |what: &str| {
        errors
            .iter()
            .find(|d| d.message.contains(what))
            .unwrap_or_else(|| panic!("no error about {what}: {errors:#?}"))
    };
    let missing = at("has no control for region `us-east4`");
    assert!(
        missing.hint.as_deref().is_some_and(|h| h.contains("gs://")),
        "{missing:?}"
    );
    assert_eq!(at("is not a GCS object URL").line, 14);
    assert_eq!(at("a health-check switch routes a CNAME record").line, 11);
    assert_eq!(at("is not a Compute health check").line, 15);
    let records = good.replace("switch = \"health-check\"\n", "");
    let errors = errors_of("g.toml", &records);
    assert!(
        errors
            .iter()
            .any(|d| d.message.contains("has `controls` but switches by records")),
        "{errors:#?}"
    );
}
