//! Recovery plans: the file format, loading with positions, and validation.
//!
//! A plan is the contract between the people who wrote it in calm times and the
//! on-call engineer who runs it during an outage, so loading is strict: unknown
//! keys, dangling references, missing regions, cycles, bad durations and bad
//! cron expressions are all errors, each reported with file, line, column and
//! a hint, and all of them in one run. Loading never panics on any input.
//!
//! The format is documented in `docs/plans.md`; [`spec`] holds its types.

pub mod duration;
pub mod source;
pub mod spec;
pub mod tiers;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use source::{Diagnostic, Format, Seg, Severity, SourceFile};
pub use spec::PlanSpec;
pub use tiers::{Approval, Tier};

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What the file says.
    pub spec: PlanSpec,
    /// The resolved tier.
    pub tier: Tier,
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex (recorded in journals).
    pub digest: String,
}

impl Plan {
    /// Plan name.
    pub fn name(&self) -> &str {
        &self.spec.plan.name
    }

    /// Regions, home first.
    pub fn regions(&self) -> &[String] {
        &self.spec.plan.regions
    }

    /// Home region.
    pub fn home(&self) -> &str {
        self.spec.home()
    }
}

/// The result of loading: every valid plan, the tiers, and all diagnostics.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Valid plans, sorted by tier rank then name.
    pub plans: Vec<Plan>,
    /// Tiers in force (built-ins overlaid with tiers files).
    pub tiers: BTreeMap<String, Tier>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Files that were read.
    pub files: Vec<PathBuf>,
}

impl Loaded {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Finds a plan by name.
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name() == name)
    }
}

fn is_tiers_file(path: &Path) -> bool {
    path.file_stem().and_then(|s| s.to_str()) == Some("tiers") && Format::from_path(path).is_some()
}

/// Loads plans from files and directories (a directory contributes its
/// `*.toml`, `*.yaml` and `*.yml` files; `tiers.*` in the directory of any
/// plan is read as the tiers file).
pub fn load(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded {
        tiers: tiers::builtin(),
        ..Loaded::default()
    };
    let mut plan_files = Vec::new();
    let mut tier_files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = false;
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| f.is_file() && Format::from_path(f).is_some())
                        .collect();
                    files.sort();
                    for f in files {
                        if is_tiers_file(&f) {
                            tier_files.push(f);
                        } else {
                            found = true;
                            plan_files.push(f);
                        }
                    }
                }
                Err(e) => out.diagnostics.push(
                    Diagnostic::file_error(p, format!("cannot read directory: {e}"))
                        .hint("check the path and its permissions"),
                ),
            }
            if !found {
                out.diagnostics.push(
                    Diagnostic::file_error(
                        p,
                        "no plan files (*.toml, *.yaml, *.yml) in this directory",
                    )
                    .hint("point --plans (or DRCTL_PLANS) at the directory that holds the plans"),
                );
            }
        } else if is_tiers_file(p) {
            tier_files.push(p.clone());
        } else {
            if let Some(dir) = p.parent() {
                for ext in ["toml", "yaml", "yml"] {
                    let t = dir.join(format!("tiers.{ext}"));
                    if t.is_file() {
                        tier_files.push(t);
                    }
                }
            }
            plan_files.push(p.clone());
        }
    }
    tier_files.sort();
    tier_files.dedup();

    for f in &tier_files {
        out.files.push(f.clone());
        let Some(file) = read_source(f, &mut out.diagnostics) else {
            continue;
        };
        let Some(spec) = deserialize::<tiers::TiersFile>(&file, &mut out.diagnostics) else {
            continue;
        };
        let mut checker = validate::Checker::new(&file);
        for (name, t) in &spec.tiers {
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                || name.is_empty()
            {
                checker.key_error(
                    crate::path!["tiers", name.as_str()],
                    format!("tier name `{name}` is not valid"),
                    "use lowercase letters, digits and '-'",
                );
                continue;
            }
            if let Some(tier) =
                validate::check_tier(&mut checker, crate::path!["tiers", name.as_str()], name, t)
            {
                out.tiers.insert(name.clone(), tier);
            }
        }
        out.diagnostics.extend(checker.diagnostics);
    }

    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in &plan_files {
        out.files.push(f.clone());
        let Some(file) = read_source(f, &mut out.diagnostics) else {
            continue;
        };
        let Some(spec) = deserialize::<PlanSpec>(&file, &mut out.diagnostics) else {
            continue;
        };
        let mut checker = validate::Checker::new(&file);
        let tier = validate::check_plan(&mut checker, &spec, &out.tiers);
        if let Some(first) = names.get(&spec.plan.name) {
            checker.error(
                crate::path!["plan", "name"],
                format!("duplicate plan name `{}`", spec.plan.name),
                format!(
                    "{} already defines a plan of that name; plan names are unique",
                    first.display()
                ),
            );
        } else {
            names.insert(spec.plan.name.clone(), f.clone());
        }
        let ok = checker
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error);
        out.diagnostics.extend(checker.diagnostics);
        if let (true, Some(tier)) = (ok, tier) {
            out.plans.push(Plan {
                digest: hex::encode(Sha256::digest(file.text.as_bytes())),
                spec,
                tier,
                path: f.clone(),
            });
        }
    }
    out.plans
        .sort_by(|a, b| (a.tier.rank, a.name()).cmp(&(b.tier.rank, b.name())));
    out
}

fn read_source(path: &Path, diags: &mut Vec<Diagnostic>) -> Option<SourceFile> {
    let Some(format) = Format::from_path(path) else {
        diags.push(
            Diagnostic::file_error(path, "unknown file type")
                .hint("plans are .toml, .yaml or .yml files"),
        );
        return None;
    };
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(SourceFile::new(path.to_path_buf(), text, format)),
            Err(e) => {
                diags.push(
                    Diagnostic::file_error(path, format!("file is not UTF-8 ({e})"))
                        .hint("save the file as UTF-8"),
                );
                None
            }
        },
        Err(e) => {
            diags.push(
                Diagnostic::file_error(path, format!("cannot read file: {e}"))
                    .hint("check the path and its permissions"),
            );
            None
        }
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
    use serde_ignored::Path as P;
    match p {
        P::Root => {}
        P::Seq { parent, index } => {
            ignored_path(parent, out);
            out.push(Seg::Index(*index));
        }
        P::Map { parent, key } => {
            ignored_path(parent, out);
            out.push(Seg::Key(key.clone()));
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent, out)
        }
    }
}

/// Deserializes a file, reporting unknown keys (all of them) and the first
/// syntax or type error with their positions.
fn deserialize<T: DeserializeOwned>(file: &SourceFile, diags: &mut Vec<Diagnostic>) -> Option<T> {
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let record = |p: serde_ignored::Path<'_>| {
        let mut segs = Vec::new();
        ignored_path(&p, &mut segs);
        unknown.push(segs);
    };
    let result: Result<T, (source::Pos, String)> = match file.format {
        Format::Toml => match toml::Deserializer::parse(&file.text) {
            Ok(de) => serde_ignored::deserialize(de, record).map_err(|e| toml_err(file, &e)),
            Err(e) => Err(toml_err(file, &e)),
        },
        Format::Yaml => {
            let de = serde_yaml_ng::Deserializer::from_str(&file.text);
            serde_ignored::deserialize(de, record).map_err(|e| {
                let pos = e
                    .location()
                    .map(|l| source::Pos {
                        line: l.line(),
                        col: l.column(),
                        len: 1,
                    })
                    .unwrap_or(source::Pos {
                        line: 1,
                        col: 1,
                        len: 1,
                    });
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                (pos, msg)
            })
        }
    };
    for path in &unknown {
        let key = match path.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => String::new(),
        };
        let pos = file.locate_key(path);
        diags.push(
            Diagnostic::error(
                file,
                pos,
                format!("unknown key `{key}` in `{}`", parent_name(path)),
            )
            .hint("remove it or fix its spelling; docs/plans.md lists the keys each table takes"),
        );
    }
    match result {
        Ok(v) if unknown.is_empty() => Some(v),
        Ok(_) => None,
        Err((pos, msg)) => {
            diags.push(Diagnostic::error(file, pos, msg).hint(
                "see docs/plans.md for the format; plans/payments.toml is a complete example",
            ));
            None
        }
    }
}

fn parent_name(path: &[Seg]) -> String {
    let parent = &path[..path.len().saturating_sub(1)];
    if parent.is_empty() {
        "the top level".into()
    } else {
        source::path_to_string(parent)
    }
}

fn toml_err(file: &SourceFile, e: &toml::de::Error) -> (source::Pos, String) {
    let pos = e
        .span()
        .map(|s| file.pos_of_offset(s.start, s.end - s.start))
        .unwrap_or(source::Pos {
            line: 1,
            col: 1,
            len: 1,
        });
    (pos, e.message().trim().to_string())
}
