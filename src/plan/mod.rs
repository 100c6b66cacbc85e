//! Recovery plans: the file format, loading with positions, and validation.
//!
//! A plan is the contract between the people who wrote it in calm times and the
//! on-call engineer who runs it during an outage, so loading is strict: unknown
//! keys, dangling references, missing regions, cycles, bad durations and bad
//! cron expressions are all errors, each reported with file, line, column and
//! a hint, and all of them in one run. Loading never panics on any input.
//!
//! The format is documented in `docs/plans.md`. Layout:
//! * [`spec`]: the file's types ([`PlanSpec`]); [`kinds`]: the resource
//!   kinds, each declared once, and the roles they play;
//! * [`load`] here; [`source`]: positions in TOML and YAML files and
//!   compiler-style diagnostics; [`yaml`]: YAML read through serde;
//!   [`limits`]: bounds on hostile or broken input;
//! * [`validate`]: the checks serde cannot make (each kind's own through
//!   its [`kinds::Resource::check`]);
//! * [`tiers`], [`rpo`]: RTO/RPO targets and policy, and the one rule the
//!   RPO gate, `status` and `watch` judge a lag by;
//! * [`sites`]: a plan's regions and the GCP region paired with each;
//! * [`notify`], [`watch`]: the `[[notify]]` sinks and the `[watch]`
//!   section; [`cron`], [`duration`]: how plans write schedules and times.

pub mod cron;
pub mod duration;
pub mod kinds;
pub mod limits;
pub mod notify;
pub mod rpo;
pub mod sites;
pub mod source;
pub mod spec;
pub mod tiers;
pub mod validate;
pub mod watch;
pub mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::ErrorKind;
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
    /// How `drctl watch` treats the plan: its `[watch]` section, with the
    /// tier's default mode and the built-in defaults.
    pub fn watch_rules(&self) -> watch::WatchRules {
        self.spec
            .watch
            .clone()
            .unwrap_or_default()
            .rules(self.tier.watch)
    }

    /// The S3 Object Lock retention of this plan's evidence objects: the
    /// plan's `[evidence] retention`, else its tier's.
    pub fn evidence_retention(&self) -> Option<spec::RetentionSpec> {
        self.spec
            .evidence
            .as_ref()
            .and_then(|e| e.retention)
            .or(self.tier.evidence_retention)
    }

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

    /// The plan's sites (its regions, each with its GCP region).
    pub fn sites(&self) -> sites::Sites {
        self.spec.sites()
    }

    /// The plan's region that `region` names: one of its regions, or the
    /// GCP region of one of its sites (`--to us-east4` for a site named
    /// us-east-1 paired with us-east4). `None`: neither.
    pub fn site(&self, region: &str) -> Option<&str> {
        let sites = self.sites();
        let site = sites.site_of(region);
        self.regions()
            .iter()
            .find(|r| r.as_str() == site)
            .map(String::as_str)
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
    /// The plan name each plan file declares, valid or not, when the file
    /// could be read that far.
    pub names: BTreeMap<PathBuf, String>,
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

    /// Whether the plans named in `only` may be used although the load has
    /// errors, because every error is in *another* plan's file: each named
    /// plan loaded, no file with an error declares one of their names (a
    /// duplicate, or the plan's own broken copy), and no tiers file has an
    /// error (a tier's typo may change any plan's policy). Returns the first
    /// error of each invalid file, for a warning that names them; `None`
    /// when the named plans cannot be used (or `only` is empty: a command
    /// on every plan needs every plan valid). An error-free load gives
    /// `Some` of nothing.
    pub fn others_invalid(&self, only: &[String]) -> Option<Vec<&Diagnostic>> {
        let mut first: BTreeMap<&Path, &Diagnostic> = BTreeMap::new();
        for d in &self.diagnostics {
            if d.severity == Severity::Error {
                first.entry(d.file.as_path()).or_insert(d);
            }
        }
        if first.is_empty() {
            return Some(Vec::new());
        }
        let named = |f: &Path| {
            self.names
                .get(f)
                .is_some_and(|n| only.iter().any(|o| o == n))
        };
        let usable = !only.is_empty()
            && only.iter().all(|n| self.plan(n).is_some())
            && first.keys().all(|f| !is_tiers_file(f) && !named(f));
        usable.then(|| first.into_values().collect())
    }
}

fn is_tiers_file(path: &Path) -> bool {
    path.file_stem().and_then(|s| s.to_str()) == Some("tiers") && Format::from_path(path).is_some()
}

/// Whether `s` is a valid plan name (lowercase letters, digits and
/// hyphens, at most 63): what every plan declares, and so the only names
/// a lock, a journal path or an object key may be made from.
pub fn is_plan_name(s: &str) -> bool {
    validate::name_ok(s)
}

/// Loads plans from files and directories (a directory contributes its
/// `*.toml`, `*.yaml` and `*.yml` files; `tiers.*` in the directory of any
/// plan is read as the tiers file).
pub fn load(paths: &[PathBuf]) -> Loaded {
    load_with(paths, &notify::SinkRules::default())
}

/// [`load`] under the operators' rules for plans' own `[[notify]]` sinks
/// (what they may read and where they may send; the operators' sinks they
/// may name).
pub fn load_with(paths: &[PathBuf], sink_rules: &notify::SinkRules) -> Loaded {
    let mut out = Loaded {
        tiers: tiers::builtin(),
        ..Loaded::default()
    };
    let inputs = find_inputs(paths, &mut out.diagnostics);
    let broken_tiers = load_tiers(&inputs.tiers, &mut out);
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in &inputs.plans {
        load_plan(f, (&broken_tiers, sink_rules), &mut names, &mut out);
    }
    out.plans
        .sort_by(|a, b| (a.tier.rank, a.name()).cmp(&(b.tier.rank, b.name())));
    out
}

/// The files one load reads.
#[derive(Debug, Default)]
struct Inputs {
    /// Plan files, in the order given (a directory's sorted).
    plans: Vec<PathBuf>,
    /// Tiers files, sorted, each once.
    tiers: Vec<PathBuf>,
}

/// Sorts the given paths into plan and tiers files: a directory gives its
/// files, a single plan file brings the tiers files beside it.
fn find_inputs(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Inputs {
    let mut inputs = Inputs::default();
    for p in paths {
        if p.is_dir() {
            scan_dir(p, &mut inputs, diags);
        } else if let Err(e) = std::fs::metadata(p) {
            diags.push(if is_symlink(p) {
                broken_link(p, &e)
            } else {
                not_found(p, &e)
            });
        } else if is_tiers_file(p) {
            inputs.tiers.push(p.clone());
        } else {
            if let Some(dir) = p.parent() {
                for ext in ["toml", "yaml", "yml"] {
                    let t = dir.join(format!("tiers.{ext}"));
                    if t.is_file() {
                        inputs.tiers.push(t);
                    }
                }
            }
            inputs.plans.push(p.clone());
        }
    }
    inputs.tiers.sort();
    inputs.tiers.dedup();
    inputs
}

/// The plan and tiers files of one directory (not its subdirectories). A
/// symbolic link that cannot be followed (a loop, or a plan's name pointing
/// at nothing) is an error naming it: skipping it would drop a plan unseen.
fn scan_dir(dir: &Path, inputs: &mut Inputs, diags: &mut Vec<Diagnostic>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            diags.push(
                Diagnostic::file_error(dir, format!("cannot read directory: {e}"))
                    .hint("check the path and its permissions"),
            );
            Vec::new()
        }
    };
    entries.sort();
    let mut found = false;
    for f in entries {
        let plan_like = Format::from_path(&f).is_some();
        match std::fs::metadata(&f) {
            Ok(m) if m.is_file() && plan_like => {
                if is_tiers_file(&f) {
                    inputs.tiers.push(f);
                } else {
                    found = true;
                    inputs.plans.push(f);
                }
            }
            Ok(_) => {}
            // A loop is never meant; a link to nothing only matters with a
            // plan's name.
            Err(e) if is_symlink(&f) && (plan_like || e.kind() != ErrorKind::NotFound) => {
                found |= plan_like && !is_tiers_file(&f);
                diags.push(broken_link(&f, &e));
            }
            Err(_) => {}
        }
    }
    if !found {
        diags.push(
            Diagnostic::file_error(
                dir,
                "no plan files (*.toml, *.yaml, *.yml) in this directory",
            )
            .hint("point --plans (or DRCTL_PLANS) at the directory that holds the plans"),
        );
    }
}

/// A path given to load that is not there (or cannot be looked at): named
/// as such, not as a file of an unknown type.
fn not_found(path: &Path, e: &std::io::Error) -> Diagnostic {
    let message = if e.kind() == ErrorKind::NotFound {
        format!("{} does not exist", path.display())
    } else {
        format!("cannot read {}: {e}", path.display())
    };
    Diagnostic::file_error(path, message).hint(
        "give the plan files or their directory; commands read the plans directory of --plans, `plans` in drctl.toml or DRCTL_PLANS (default: ./plans)",
    )
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// A symbolic link of the plans folder that cannot be followed, named with
/// where it points.
fn broken_link(path: &Path, e: &std::io::Error) -> Diagnostic {
    let target = std::fs::read_link(path)
        .map(|t| format!(" -> {}", t.display()))
        .unwrap_or_default();
    Diagnostic::file_error(
        path,
        format!(
            "symbolic link {}{target} cannot be followed: {e}",
            path.display()
        ),
    )
    .hint("it points at itself, into a loop of links, or at nothing: fix or remove the link")
}

/// Reads the tiers files into `out.tiers`. Returns the tiers whose
/// definition has errors, and where: a plan naming one is told so, rather
/// than that the tier does not exist.
fn load_tiers(files: &[PathBuf], out: &mut Loaded) -> BTreeMap<String, PathBuf> {
    let mut broken_tiers: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        out.files.push(f.clone());
        let Some(file) = read_source(f, &mut out.diagnostics) else {
            continue;
        };
        // Tiers of a file with unknown keys are still checked and defined, so
        // that plans naming them are not told the tier does not exist; the
        // unknown keys alone make the load invalid.
        let Some((spec, _clean)) = deserialize::<tiers::TiersFile>(&file, &mut out.diagnostics)
        else {
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
            } else {
                broken_tiers.insert(name.clone(), f.clone());
            }
        }
        out.diagnostics.extend(checker.finish());
    }
    broken_tiers
}

/// Reads and checks one plan file; a valid plan joins `out.plans`. `names`
/// holds the plan names seen so far, and the file of each.
fn load_plan(
    f: &Path,
    (broken_tiers, sink_rules): (&BTreeMap<String, PathBuf>, &notify::SinkRules),
    names: &mut BTreeMap<String, PathBuf>,
    out: &mut Loaded,
) {
    out.files.push(f.to_path_buf());
    let stem = || f.file_stem().and_then(|s| s.to_str()).map(str::to_string);
    let Some(file) = read_source(f, &mut out.diagnostics) else {
        // Unreadable: the plan its file name says is taken as broken.
        if let Some(name) = stem() {
            out.names.insert(f.to_path_buf(), name);
        }
        return;
    };
    let mut checker = validate::Checker::new(&file);
    let Some((spec, clean)) = deserialize::<PlanSpec>(&file, &mut checker.diagnostics) else {
        out.diagnostics.extend(checker.finish());
        // A file too broken to say its name is taken to be the plan its
        // file name says (`payments.toml`): a stale valid copy of that plan
        // elsewhere must not be run in its place.
        let name = declared_name(&file).or_else(stem);
        if let Some(name) = name {
            out.names.insert(f.to_path_buf(), name);
        }
        return;
    };
    out.names.insert(f.to_path_buf(), spec.plan.name.clone());
    let tier = validate::check_plan_with(&mut checker, &spec, &out.tiers, sink_rules);
    if let Some(tf) = broken_tiers.get(&spec.plan.tier) {
        blame_broken_tier(&mut checker.diagnostics, &spec.plan.tier, tf);
    }
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
        names.insert(spec.plan.name.clone(), f.to_path_buf());
    }
    // In file order, as `Loaded::diagnostics` promises.
    let found = checker.finish();
    let ok = clean && found.iter().all(|d| d.severity != Severity::Error);
    out.diagnostics.extend(found);
    if let (true, Some(tier)) = (ok, tier) {
        let mut spec = spec;
        attach_sites(&mut spec);
        out.plans.push(Plan {
            digest: hex::encode(Sha256::digest(file.text.as_bytes())),
            spec,
            tier,
            path: f.to_path_buf(),
        });
    }
}

/// Hands the plan's sites to each of its resources, once, as the plan is
/// loaded (a GCP kind keeps them: `plan::sites`).
fn attach_sites(spec: &mut PlanSpec) {
    let sites = spec.sites();
    for r in kinds::each_mut(spec) {
        r.attach_sites(&sites);
    }
}

/// The `[plan] name` of a file that did not read as a plan (a type error
/// elsewhere in it), when it can be read alone: a broken file that declares
/// the name of a plan a command works on must stop that command
/// ([`Loaded::others_invalid`]), however it is broken. Never tried on a
/// file too deep to parse safely.
fn declared_name(file: &SourceFile) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct NameOnly {
        plan: Header,
    }
    if !file.structural_errors().is_empty() {
        return None;
    }
    let named: NameOnly = match file.format {
        Format::Toml => toml::from_str(&file.text).ok()?,
        Format::Yaml => yaml::from_str(&file.text).ok()?,
    };
    Some(named.plan.name)
}

/// A plan naming a tier whose definition has errors is told so (and where),
/// rather than that the tier does not exist.
fn blame_broken_tier(diags: &mut [Diagnostic], tier: &str, tiers_file: &Path) {
    let unknown = format!("unknown tier `{tier}`");
    for d in diags.iter_mut().filter(|d| d.message == unknown) {
        d.message = format!("tier `{tier}` cannot be used: its definition has errors");
        d.hint = Some(format!(
            "fix the errors reported in {}",
            tiers_file.display()
        ));
    }
}

fn read_source(path: &Path, diags: &mut Vec<Diagnostic>) -> Option<SourceFile> {
    let Some(format) = Format::from_path(path) else {
        diags.push(
            Diagnostic::file_error(path, "unknown file type")
                .hint("plans are .toml, .yaml or .yml files"),
        );
        return None;
    };
    match read_limited(path) {
        Ok(None) => {
            diags.push(
                Diagnostic::file_error(
                    path,
                    format!(
                        "file is larger than {} MiB",
                        limits::MAX_FILE_BYTES / (1024 * 1024)
                    ),
                )
                .hint("a plan of 5,000 resources is about 800 KiB: is this the right file? split a bigger plan into several"),
            );
            None
        }
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(text) => Some(SourceFile::new(path.to_path_buf(), text, format)),
            Err(e) => {
                diags.push(not_utf8(path, e.as_bytes(), e.utf8_error().valid_up_to()));
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

/// A file that is not UTF-8, placed at its first bad byte (`valid` bytes
/// before it are sound), with its line shown (the bad bytes as `�`).
fn not_utf8(path: &Path, bytes: &[u8], valid: usize) -> Diagnostic {
    let before = String::from_utf8_lossy(&bytes[..valid]);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    let line_end = bytes[valid..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |i| valid + i);
    let shown = String::from_utf8_lossy(&bytes[line_start..line_end]);
    let byte = bytes.get(valid).copied().unwrap_or_default();
    let mut d = Diagnostic::file_error(
        path,
        format!("file is not UTF-8: byte 0x{byte:02X} at line {line}, column {column} is not valid UTF-8"),
    )
    .hint("save the file as UTF-8");
    d.line = line;
    d.column = column;
    d.len = 1;
    d.with_source(shown.trim_end_matches('\r'))
}

/// Reads a file of at most [`limits::MAX_FILE_BYTES`]; `None` if it is
/// bigger. Reads one byte more than the limit at most (the size in the
/// metadata can be wrong: pipes, files that grow, `/proc`).
fn read_limited(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() > limits::MAX_FILE_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(limits::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limits::MAX_FILE_BYTES).then_some(bytes))
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
///
/// Unknown keys do not stop the file from being read: the value comes back
/// with `clean == false`, so that the semantic checks still run and one
/// `plan validate` reports a misspelt key *and* an unknown region together.
fn deserialize<T: DeserializeOwned>(
    file: &SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<(T, bool)> {
    // Nested too deeply or with duplicate keys: serde must not read it (it
    // would overflow, take minutes, or keep one of the duplicates silently).
    let structural = file.structural_errors();
    if !structural.is_empty() {
        diags.extend(structural);
        return None;
    }
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
            yaml::with_deserializer(&file.text, |de| serde_ignored::deserialize(de, record))
                .map_err(|e| yaml_err(&e))
        }
    };
    let mut placed: Vec<(source::Pos, &Vec<Seg>)> =
        unknown.iter().map(|p| (file.locate_key(p), p)).collect();
    placed.sort_by_key(|(pos, _)| (pos.line, pos.col));
    // At most a file's cap of them is made into a diagnostic (each shows
    // its line); the rest are counted in one more.
    let most = limits::MAX_ERRORS_PER_FILE;
    if placed.len() > most {
        let more = placed.len() - most;
        placed.truncate(most);
        diags.push(
            Diagnostic::file_error(
                &file.path,
                format!("and {more} more unknown key(s) in this file, not shown"),
            )
            .hint("the first ones are shown; fix them and validate again"),
        );
    }
    for (pos, path) in placed {
        let key = match path.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => String::new(),
        };
        let hint = match validate::did_you_mean(&key, known_keys(path).iter().copied()) {
            Some(s) => format!("did you mean `{s}`? docs/plans.md lists the keys each table takes"),
            None => "remove it or fix its spelling; docs/plans.md lists the keys each table takes"
                .to_string(),
        };
        diags.push(
            Diagnostic::error(
                file,
                pos,
                format!("unknown key `{key}` {}", parent_name(path)),
            )
            .hint(hint),
        );
    }
    match result {
        Ok(v) => Some((v, unknown.is_empty())),
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
        "at the top level".into()
    } else {
        format!("in `{}`", source::path_to_string(parent))
    }
}

/// The keys the table holding the last segment of `path` takes (plan and
/// tiers files), for "did you mean" hints on unknown keys.
/// A plan file's top-level keys: its own tables around the resource
/// kinds' (`kinds::TABLES`), in the order of a file.
static TOP_LEVEL: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut keys = vec!["plan", "evidence", "drill"];
    keys.extend(kinds::TABLES);
    keys.extend(["notify", "watch"]);
    keys
});

fn known_keys(path: &[Seg]) -> &'static [&'static str] {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    if let Some(k) = kinds::keys(&keys) {
        return k;
    }
    match keys.as_slice() {
        [_] => &TOP_LEVEL,
        ["watch", _] => &[
            "mode",
            "interval",
            "failures",
            "quorum",
            "veto_window",
            "freshness",
            "accept_data_loss",
            "alarms",
        ],
        ["notify", _] => &[
            "name",
            "kind",
            "sink",
            "url_env",
            "url_file",
            "secret_env",
            "secret_file",
            "topic_arn",
            "bus",
            "region",
            "events",
            "min_severity",
            "retry",
            "timeout",
        ],
        ["plan", _] => &[
            "name",
            "description",
            "owner",
            "tier",
            "regions",
            "gcp_regions",
            "allowed_regions",
        ],
        ["evidence", _] => &["destinations", "retention"],
        ["evidence", "retention", _] => &["mode", "days"],
        ["drill", _] => &["schedule", "max_duration", "blackout"],
        ["tiers", _, _] => &[
            "rto",
            "rpo",
            "approval",
            "drill_interval",
            "evidence_retention",
            "watch",
        ],
        ["tiers", _, "evidence_retention", _] => &["mode", "days"],
        _ => &[],
    }
}

/// The reference plans of `plans/`, loaded without a diagnostic (the
/// fixture many unit tests share).
#[cfg(test)]
pub(crate) fn reference() -> Vec<Plan> {
    let loaded = load(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans")]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.plans
}

/// The reference plans and the plans on GCP (`plans/gcp`: orders-gcp on
/// GCP alone, storefront on both clouds), loaded without a diagnostic.
#[cfg(test)]
pub(crate) fn reference_with_gcp() -> Vec<Plan> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let gcp = load(&[root.join("plans/gcp"), root.join("plans/tiers.toml")]);
    assert!(!gcp.has_errors(), "{:?}", gcp.diagnostics);
    reference().into_iter().chain(gcp.plans).collect()
}

/// `orders-gcp` (`plans/gcp/orders-gcp.toml`) with its Cloud DNS record
/// in health-check mode: an A record whose targets are serving addresses
/// (us-central1 10.0.1.1, us-east4 10.0.2.2), each region's control in
/// Cloud Storage (`gs://orders-controls/usc1`, `…/use4`).
#[cfg(test)]
pub(crate) fn orders_gcp_health_checked() -> Plan {
    let mut plan = (reference_with_gcp().into_iter())
        .find(|p| p.name() == "orders-gcp")
        .expect("orders-gcp");
    let d = &mut plan.spec.cloud_dns[0];
    d.switch = kinds::CloudSwitch::HealthCheck;
    d.rtype = "A".into();
    d.targets = [("us-central1", "10.0.1.1"), ("us-east4", "10.0.2.2")]
        .map(|(r, v)| (r.to_string(), v.to_string()))
        .into_iter()
        .collect();
    d.controls = [("us-central1", "usc1"), ("us-east4", "use4")]
        .map(|(r, k)| (r.to_string(), format!("gs://orders-controls/{k}")))
        .into_iter()
        .collect();
    d.health_check = Some("projects/drctl-emu/global/healthChecks/orders-api".into());
    plan
}

/// A YAML error as a place and a message (the message names the path of
/// the value, `dns[0].ttl: ...`).
fn yaml_err(e: &yaml::Error) -> (source::Pos, String) {
    let pos = e.pos().unwrap_or(source::Pos {
        line: 1,
        col: 1,
        len: 1,
    });
    (pos, e.to_string())
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
