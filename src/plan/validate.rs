//! Semantic checks of a plan: everything serde cannot know.
//!
//! Each check reports *all* its findings with the path of the offending value,
//! so that one `drctl plan validate` run lists every mistake with file, line,
//! column and a hint, like a compiler.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::cron::parse_cron;
use super::duration::{format_duration, parse_duration};
use super::source::{Diagnostic, Seg, SourceFile};
use super::spec::{Cloud, PlanSpec, ResourceKind, ResourceRef, Stage};
use super::tiers::Tier;
use crate::cloud::ObjectUrl;
use crate::path;

/// Collects diagnostics for one file: at most
/// [`MAX_ERRORS_PER_FILE`](super::limits::MAX_ERRORS_PER_FILE) errors, then
/// a count of the rest ([`Checker::finish`]).
pub struct Checker<'a> {
    file: &'a SourceFile,
    /// Findings so far.
    pub diagnostics: Vec<Diagnostic>,
    /// Errors found past the cap: counted, not kept.
    more: usize,
}

impl<'a> Checker<'a> {
    /// A checker for `file`.
    pub fn new(file: &'a SourceFile) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
            more: 0,
        }
    }

    /// Whether the cap is reached: the error is counted instead.
    fn capped(&mut self) -> bool {
        let full = self.diagnostics.len() >= super::limits::MAX_ERRORS_PER_FILE;
        self.more += usize::from(full);
        full
    }

    /// Reports an error at the value `path`.
    pub fn error(&mut self, path: Vec<Seg>, message: impl Into<String>, hint: impl Into<String>) {
        if self.capped() {
            return;
        }
        let pos = self.file.locate(&path);
        self.diagnostics
            .push(Diagnostic::error(self.file, pos, message).hint(hint));
    }

    /// Reports an error at the key ending `path`.
    pub fn key_error(
        &mut self,
        path: Vec<Seg>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        if self.capped() {
            return;
        }
        let pos = self.file.locate_key(&path);
        self.diagnostics
            .push(Diagnostic::error(self.file, pos, message).hint(hint));
    }

    /// The findings in file order, and, past the cap, one error saying how
    /// many more there are.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        if self.more > 0 {
            let shown = self.diagnostics.len();
            self.diagnostics.push(
                Diagnostic::file_error(
                    &self.file.path,
                    format!("and {} more error(s) in this file, not shown", self.more),
                )
                .hint(format!(
                    "the first {shown} are shown above; fix them and validate again"
                )),
            );
        }
        self.diagnostics
    }
}

/// "did you mean `x`?" when one candidate is close enough.
///
/// Candidates whose length alone puts them too far are skipped without
/// computing the edit distance (which is at least the difference in length),
/// so a hint over thousands of resource ids stays cheap.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let len = word.chars().count();
    candidates
        .into_iter()
        .filter(|c| {
            let clen = c.chars().count();
            len.abs_diff(clen) <= 2.max(c.len() / 4)
        })
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Lists at most this many names in a hint; a plan of thousands of resources
/// would otherwise print all of them in every hint.
const LIST_MAX: usize = 20;

pub(crate) fn known_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "none are defined".into();
    }
    let shown = items
        .iter()
        .take(LIST_MAX)
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LIST_MAX {
        format!("{shown} and {} more", items.len() - LIST_MAX)
    } else {
        shown
    }
}

pub(crate) fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(crate) fn fqdn(s: &str) -> String {
    let s = s.to_ascii_lowercase();
    if s.ends_with('.') { s } else { format!("{s}.") }
}

/// Checks a tier's durations and their relation; returns the resolved tier.
pub fn check_tier(
    c: &mut Checker<'_>,
    base: Vec<Seg>,
    name: &str,
    spec: &super::tiers::TierSpec,
) -> Option<Tier> {
    let dur = |key: &str, text: &str, c: &mut Checker<'_>| {
        let mut p = base.clone();
        p.push(Seg::Key(key.into()));
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                c.error(p, e.to_string(), e.hint());
                None
            }
        }
    };
    let rto = dur("rto", &spec.rto, c);
    let rpo = dur("rpo", &spec.rpo, c);
    let interval = dur("drill_interval", &spec.drill_interval, c);
    let (rto, rpo, interval) = (rto?, rpo?, interval?);
    let mut ok = true;
    if rto.is_zero() {
        let mut p = base.clone();
        p.push("rto".into());
        c.error(
            p,
            format!("tier `{name}` has an RTO of zero"),
            "no failover completes instantly; give the time the business can be down, e.g. 15m",
        );
        ok = false;
    }
    if rpo > rto {
        let mut p = base.clone();
        p.push("rpo".into());
        c.error(
            p,
            format!(
                "tier `{name}` allows losing {} of data (RPO) but must recover within {} (RTO)",
                format_duration(rpo),
                format_duration(rto)
            ),
            "a tier that may lose more data than it may be down is almost always a typo (swapped values?); set rpo <= rto",
        );
        ok = false;
    }
    if let Some(r) = &spec.evidence_retention
        && !(1..=MAX_RETENTION_DAYS).contains(&r.days)
    {
        let mut p = base.clone();
        p.push("evidence_retention".into());
        p.push("days".into());
        c.error(p, retention_message(r.days), RETENTION_HINT);
        ok = false;
    }
    ok.then(|| Tier {
        name: name.to_string(),
        rto,
        rpo,
        approval: spec.approval,
        drill_interval: interval,
        rank: super::tiers::rank_of(name),
        evidence_retention: spec.evidence_retention,
        watch: spec.watch,
    })
}

/// What the checks of one plan share: the plan's regions and the index of
/// its resource ids (built once, so that every lookup is constant time and
/// validation stays linear in the size of the plan).
struct PlanIndex<'s> {
    /// The plan's regions, in order.
    regions: Vec<&'s str>,
    /// The GCP region of each, in order (the regions themselves in a plan
    /// without `gcp_regions`).
    gcp_regions: Vec<&'s str>,
    /// Every resource, in file order per kind.
    resources: Vec<ResourceRef<'s>>,
    /// Id → the first resource with that id.
    ids: HashMap<&'s str, (ResourceKind, usize)>,
    /// Every resource id, in the order of `resources`.
    all_ids: Vec<&'s str>,
    /// The ids a record may `follow` (resources with an endpoint), in
    /// file order.
    followable: Vec<&'s str>,
    /// The same, as a set.
    followable_set: HashSet<&'s str>,
}

/// What one resource's own checks see ([`super::kinds::Resource::check`]):
/// the checker, the resource's place in the file, and the plan around it.
pub struct Scope<'a, 'f, 's> {
    c: &'a mut Checker<'f>,
    ix: &'a PlanIndex<'s>,
    /// The resource's table and index in it.
    at: (&'static str, usize),
}

impl Scope<'_, '_, '_> {
    fn path(&self, rel: Vec<Seg>) -> Vec<Seg> {
        let mut p = path![self.at.0, self.at.1];
        p.extend(rel);
        p
    }

    /// Reports an error at the value `rel` (keys and indexes under the
    /// resource's table: `path!["active", "desired"]`).
    pub fn error(&mut self, rel: Vec<Seg>, message: impl Into<String>, hint: impl Into<String>) {
        let p = self.path(rel);
        self.c.error(p, message, hint);
    }

    /// Reports an error at the key ending `rel`.
    pub fn key_error(
        &mut self,
        rel: Vec<Seg>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let p = self.path(rel);
        self.c.key_error(p, message, hint);
    }

    /// The resource's table (`cloud_sql`), as messages name it.
    pub fn table(&self) -> &'static str {
        self.at.0
    }

    /// Reports each of the resource's `regions` that `valid` refuses, at it:
    /// "{table} `{id}` names `{value}` in {region}, not {what}", with `hint`.
    pub fn region_values(
        &mut self,
        (id, regions): (&str, &super::spec::PerRegion),
        valid: impl Fn(&str) -> bool,
        (what, hint): (&str, &str),
    ) {
        for (region, value) in regions {
            if !valid(value) {
                let table = self.at.0;
                let message = format!("{table} `{id}` names `{value}` in {region}, not {what}");
                self.error(path!["regions", region.as_str()], message, hint);
            }
        }
    }

    /// The plan's regions, in order.
    pub fn regions(&self) -> &[&str] {
        &self.ix.regions
    }

    /// The ids a record may `follow`, in file order.
    pub fn followable(&self) -> &[&str] {
        &self.ix.followable
    }

    /// Whether a record may `follow` resource `id`.
    pub fn can_follow(&self, id: &str) -> bool {
        self.ix.followable_set.contains(id)
    }
}

/// Checks one plan. Returns the resolved tier when the plan is valid.
///
/// One checker per part of the file (header, each resource kind, evidence,
/// drill), then the checks across resources (`after`, cycles). The order of
/// the calls is the order of the diagnostics before `load` sorts them by
/// place; two diagnostics at the same place keep this order.
pub fn check_plan(
    c: &mut Checker<'_>,
    spec: &PlanSpec,
    tiers: &BTreeMap<String, Tier>,
) -> Option<Tier> {
    check_plan_with(c, spec, tiers, &super::notify::SinkRules::default())
}

/// [`check_plan`] under the operators' rules for the plan's own sinks
/// (`[plan_notify]` in `drctl.toml`, and the sinks a plan may name).
pub fn check_plan_with(
    c: &mut Checker<'_>,
    spec: &PlanSpec,
    tiers: &BTreeMap<String, Tier>,
    sink_rules: &super::notify::SinkRules,
) -> Option<Tier> {
    let before = c.diagnostics.len();
    check_plan_name(c, spec);
    let tier = check_tier_name(c, spec, tiers);
    check_regions(c, spec);
    check_gcp_regions(c, spec);
    check_allowed_regions(c, spec);
    let resources = spec.resources();
    let ids = check_ids(c, &resources);
    let followable: Vec<&str> = (resources.iter())
        .filter(|r| r.resource.endpoint().is_some())
        .map(|r| r.id)
        .collect();
    let ix = PlanIndex {
        regions: spec.plan.regions.iter().map(String::as_str).collect(),
        gcp_regions: match spec.plan.gcp_regions.is_empty() {
            true => spec.plan.regions.iter().map(String::as_str).collect(),
            false => spec.plan.gcp_regions.iter().map(String::as_str).collect(),
        },
        all_ids: resources.iter().map(|r| r.id).collect(),
        followable: followable.clone(),
        followable_set: followable.into_iter().collect(),
        resources,
        ids,
    };
    check_resources(c, &ix);
    check_evidence(c, spec);
    check_drill(c, spec);
    check_notify(c, spec, sink_rules);
    check_watch(c, spec, tier.as_ref());
    check_after(c, &ix);
    check_cycle(c, spec, &ix);
    (c.diagnostics.len() == before).then_some(tier).flatten()
}

fn check_plan_name(c: &mut Checker<'_>, spec: &PlanSpec) {
    let header = &spec.plan;
    if !name_ok(&header.name) {
        c.error(
            path!["plan", "name"],
            format!("plan name `{}` is not valid", header.name),
            "use 1-63 lowercase letters, digits and '-' (it names journals and locks)",
        );
    }
}

fn check_tier_name(
    c: &mut Checker<'_>,
    spec: &PlanSpec,
    tiers: &BTreeMap<String, Tier>,
) -> Option<Tier> {
    let header = &spec.plan;
    let tier = tiers.get(&header.tier).cloned();
    if tier.is_none() {
        let names: Vec<&str> = tiers.keys().map(String::as_str).collect();
        let hint = match did_you_mean(&header.tier, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? known tiers: {}", known_list(&names)),
            None => format!(
                "known tiers: {}; define new ones in tiers.toml beside the plans",
                known_list(&names)
            ),
        };
        c.error(
            path!["plan", "tier"],
            format!("unknown tier `{}`", header.tier),
            hint,
        );
    }
    tier
}

/// `[plan] gcp_regions`: one GCP region per site, in the order of
/// `regions`, each a GCP region name, none twice, none a site's name.
fn check_gcp_regions(c: &mut Checker<'_>, spec: &PlanSpec) {
    let header = &spec.plan;
    let gcp = &header.gcp_regions;
    if gcp.is_empty() {
        return;
    }
    if gcp.len() != header.regions.len() {
        c.error(
            path!["plan", "gcp_regions"],
            format!(
                "plan `{}` has {} region(s) and {} GCP region(s)",
                header.name,
                header.regions.len(),
                gcp.len()
            ),
            "give each region of the plan the GCP region that fails with it, in the same order: gcp_regions = [\"us-central1\", \"us-east4\"]",
        );
    }
    let mut seen = HashSet::new();
    for (i, g) in gcp.iter().enumerate() {
        if !crate::plan::sites::gcp_region(g) {
            c.error(
                path!["plan", "gcp_regions", i],
                format!("`{g}` is not a GCP region name"),
                "GCP regions look like us-central1 or europe-west4 (AWS's like us-east-1 go in `regions`)",
            );
        } else if !seen.insert(g.as_str()) {
            c.error(
                path!["plan", "gcp_regions", i],
                format!("GCP region `{g}` is listed twice"),
                "each site of the plan has its own GCP region",
            );
        } else if header.regions.contains(g) {
            c.error(
                path!["plan", "gcp_regions", i],
                format!("`{g}` is both a region and a GCP region of the plan"),
                "list AWS regions in `regions` and the GCP region paired with each in `gcp_regions`; a plan on GCP alone lists its GCP regions in `regions` and has no `gcp_regions`",
            );
        }
    }
}

/// `[plan] allowed_regions` (data residency): each a region name, and
/// every site of the plan, AWS's (`regions`) and GCP's (`gcp_regions`),
/// among them, each one outside named where it is written. Resources
/// name only the plan's regions (`check_region_map`) and every run's
/// target is one of them (`steps::graph::compile_mode`), so no resource of
/// the plan is failed over, drilled, copied or restored outside. What the
/// operator names by address (evidence and control buckets, notification
/// topics, a kubeconfig context) carries no region in the plan and is not
/// checked.
fn check_allowed_regions(c: &mut Checker<'_>, spec: &PlanSpec) {
    let header = &spec.plan;
    let allowed = &header.allowed_regions;
    if allowed.is_empty() {
        return;
    }
    for (i, r) in allowed.iter().enumerate() {
        if !name_ok(r) {
            c.error(
                path!["plan", "allowed_regions", i],
                format!("`{r}` is not a region name"),
                "region names look like us-east-1 (AWS) or europe-west1 (GCP)",
            );
        }
    }
    for (key, regions) in [
        ("regions", &header.regions),
        ("gcp_regions", &header.gcp_regions),
    ] {
        for (i, r) in regions
            .iter()
            .enumerate()
            .filter(|(_, r)| !allowed.contains(r))
        {
            c.error(
                path!["plan", key, i],
                format!(
                    "plan `{}` places a site in {r}, outside its allowed_regions ({})",
                    header.name,
                    allowed.join(", ")
                ),
                format!(
                    "drctl never fails over, drills, copies or restores outside allowed_regions: remove {r} from `{key}`, or add it to `allowed_regions` if the plan's data may be there"
                ),
            );
        }
    }
}

fn check_regions(c: &mut Checker<'_>, spec: &PlanSpec) {
    let header = &spec.plan;
    let regions = &header.regions;
    if regions.len() < 2 {
        c.error(path!["plan", "regions"], format!("plan `{}` has {} region(s); a failover needs a home and at least one standby", header.name, regions.len()), "list the home region first, then the standbys: regions = [\"us-west-2\", \"us-east-1\"]");
    }
    let mut seen = HashSet::new();
    for (i, r) in regions.iter().enumerate() {
        if !name_ok(r) {
            c.error(
                path!["plan", "regions", i],
                format!("`{r}` is not a region name"),
                "region names look like us-east-1 (AWS) or europe-west1 (GCP)",
            );
        } else if !seen.insert(r.as_str()) {
            c.error(
                path!["plan", "regions", i],
                format!("region `{r}` is listed twice"),
                "each region appears once; order is home first, then standbys by preference",
            );
        }
    }
}

/// Resource ids: valid, and unique across all kinds. Returns the index of
/// ids (the first resource of each).
fn check_ids<'s>(
    c: &mut Checker<'_>,
    resources: &[ResourceRef<'s>],
) -> HashMap<&'s str, (ResourceKind, usize)> {
    let mut ids: HashMap<&str, (ResourceKind, usize)> = HashMap::new();
    for r in resources {
        let p = path![r.kind.table(), r.index, "id"];
        if !name_ok(r.id) {
            c.error(
                p.clone(),
                format!("resource id `{}` is not valid", r.id),
                "use lowercase letters, digits and '-'",
            );
        }
        if let Some((kind, idx)) = ids.get(r.id) {
            c.error(p, format!("duplicate resource id `{}`", r.id), format!("`{}` is already the id of {}[{}]; ids are unique across all resource kinds of a plan", r.id, kind.table(), idx));
        } else {
            ids.insert(r.id, (r.kind, r.index));
        }
    }
    ids
}

/// Each kind's resources in turn: their region maps (every plan region,
/// no other), then each resource's own checks ([`Scope`]).
fn check_resources(c: &mut Checker<'_>, ix: &PlanIndex<'_>) {
    for &kind in ResourceKind::ALL {
        let of_kind = || ix.resources.iter().filter(move |r| r.kind == kind);
        let regions = match kind.cloud() {
            Cloud::Aws => &ix.regions,
            Cloud::Gcp => &ix.gcp_regions,
        };
        for r in of_kind() {
            check_region_map(c, r, regions);
        }
        for r in of_kind() {
            let mut scope = Scope {
                c: &mut *c,
                ix,
                at: (kind.table(), r.index),
            };
            r.resource.check(&mut scope);
        }
    }
}

fn check_region_map(c: &mut Checker<'_>, r: &ResourceRef<'_>, region_set: &[&str]) {
    let Some(map) = r.regions else { return };
    let field = r.kind.regions_key();
    let whose = match r.kind.cloud() {
        Cloud::Gcp => "the plan's GCP regions",
        Cloud::Aws => "the plan's regions",
    };
    for (region, value) in map {
        if !region_set.contains(&region.as_str()) {
            let hint = match did_you_mean(region, region_set.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? {whose} are {}", known_list(region_set)),
                None if r.kind.cloud() == Cloud::Gcp => format!(
                    "a {} names its copies by GCP region; the plan's are {} (a plan that mixes clouds pairs a GCP region with each of its regions: [plan] gcp_regions)",
                    r.kind.table(),
                    known_list(region_set)
                ),
                None => format!(
                    "the plan's regions are {}; add it to [plan] regions or remove it here",
                    known_list(region_set)
                ),
            };
            c.key_error(
                path![r.kind.table(), r.index, field, region.as_str()],
                format!(
                    "{} `{}` names region `{region}`, which is not one of {whose}",
                    r.kind.table(),
                    r.id
                ),
                hint,
            );
        }
        if value.trim().is_empty() {
            c.error(
                path![r.kind.table(), r.index, field, region.as_str()],
                format!(
                    "{} `{}` has an empty id for region `{region}`",
                    r.kind.table(),
                    r.id
                ),
                "give the provider's id of the resource in that region",
            );
        }
    }
    for region in region_set {
        if !map.contains_key(*region) {
            c.error(path![r.kind.table(), r.index, field], format!("{} `{}` has no {} for region `{region}`", r.kind.table(), r.id, if field == "targets" { "target" } else { "id" }), format!("add `{region} = \"...\"` to its {field}: every resource needs a counterpart in every region of the plan"));
        }
    }
}

/// The longest evidence retention accepted: a hundred years (a typo such as
/// an extra digit in COMPLIANCE mode would lock objects for good).
const MAX_RETENTION_DAYS: u32 = 36_500;
const RETENTION_HINT: &str =
    "write the days evidence must be kept, e.g. { mode = \"governance\", days = 365 }";

fn retention_message(days: u32) -> String {
    format!("an evidence retention of {days} days (accepted: 1 to {MAX_RETENTION_DAYS})")
}

/// Reports a list of `n` entries at `path` longer than a plan has use for
/// (`most` of `what`) as one error, instead of one per entry: whether it
/// did (the entries are then not checked one by one).
fn too_many(
    c: &mut Checker<'_>,
    path: Vec<Seg>,
    n: usize,
    most: usize,
    what: &str,
    hint: &str,
) -> bool {
    if n > most {
        c.error(
            path,
            format!("{n} {what}; a plan may name at most {most}"),
            hint,
        );
    }
    n > most
}

fn check_evidence(c: &mut Checker<'_>, spec: &PlanSpec) {
    let Some(ev) = &spec.evidence else { return };
    if let Some(r) = &ev.retention
        && !(1..=MAX_RETENTION_DAYS).contains(&r.days)
    {
        c.error(
            path!["evidence", "retention", "days"],
            retention_message(r.days),
            RETENTION_HINT,
        );
    }
    if too_many(
        c,
        path!["evidence", "destinations"],
        ev.destinations.len(),
        super::limits::MAX_DESTINATIONS,
        "evidence destinations",
        "a run writes its pack to each: name one or two per cloud",
    ) {
        return;
    }
    if ev.destinations.is_empty() {
        c.error(
            path!["evidence", "destinations"],
            "no evidence destinations",
            "add at least one s3://bucket/prefix or gs://bucket/prefix, or remove [evidence]",
        );
    }
    for (i, dest) in ev.destinations.iter().enumerate() {
        if let Err(e) = ObjectUrl::parse(dest) {
            c.error(
                path!["evidence", "destinations", i],
                e.to_string(),
                "write s3://bucket/prefix or gs://bucket/prefix",
            );
        }
    }
}

fn check_drill(c: &mut Checker<'_>, spec: &PlanSpec) {
    let Some(drill) = &spec.drill else {
        return;
    };
    let cron_hint =
        "use 5 fields, minute hour day-of-month month day-of-week, in UTC: e.g. \"0 3 * * MON\"";
    if let Err(e) = parse_cron(&drill.schedule) {
        c.error(
            path!["drill", "schedule"],
            format!("cron expression `{}` does not parse: {e}", drill.schedule),
            cron_hint,
        );
    }
    if let Some(m) = &drill.max_duration {
        match parse_duration(m) {
            Err(e) => c.error(path!["drill", "max_duration"], e.to_string(), e.hint()),
            Ok(d) if d.is_zero() => c.error(
                path!["drill", "max_duration"],
                "a drill's maximum duration cannot be zero",
                "give the drill time to run, e.g. \"30m\"",
            ),
            Ok(_) => {}
        }
    }
    if too_many(
        c,
        path!["drill", "blackout"],
        drill.blackout.len(),
        super::limits::MAX_BLACKOUTS,
        "blackout windows",
        "merge windows that repeat on the same schedule",
    ) {
        return;
    }
    for (i, b) in drill.blackout.iter().enumerate() {
        if let Err(e) = parse_cron(&b.start) {
            c.error(
                path!["drill", "blackout", i, "start"],
                format!("cron expression `{}` does not parse: {e}", b.start),
                cron_hint,
            );
        }
        match parse_duration(&b.length) {
            Err(e) => c.error(
                path!["drill", "blackout", i, "for"],
                e.to_string(),
                e.hint(),
            ),
            Ok(d) if d.is_zero() => c.error(
                path!["drill", "blackout", i, "for"],
                "a blackout window cannot last zero",
                "e.g. for = \"4d\"",
            ),
            Ok(_) => {}
        }
    }
}

/// `[watch]`: its own problems (durations, an auto mode that one observer
/// could trigger, alarms in regions the plan does not have).
fn check_watch(c: &mut Checker<'_>, spec: &PlanSpec, tier: Option<&Tier>) {
    let Some(w) = &spec.watch else { return };
    for (key, message, hint) in w.problems(&spec.plan.regions, tier.and_then(|t| t.watch)) {
        c.error(path!["watch", key.as_str()], message, hint);
    }
}

/// `[[notify]]` entries: each sink's own problems (a URL written in the
/// plan among them), what the operators' rules refuse (a variable or a
/// file the plan may not read, a URL it may not send to, a sink it may not
/// name), each at its key; and names unique within the plan.
fn check_notify(c: &mut Checker<'_>, spec: &PlanSpec, rules: &super::notify::SinkRules) {
    let env = super::notify::process_env();
    for (i, n) in spec.notify.iter().enumerate() {
        for p in n
            .problems(true)
            .into_iter()
            .chain(n.rule_problems(&spec.plan.name, rules, &env))
        {
            c.error(path!["notify", i, p.key], p.message, p.hint);
        }
        if spec.notify[..i].iter().any(|o| o.name == n.name) {
            c.error(
                path!["notify", i, "name"],
                format!("duplicate notify sink `{}`", n.name),
                "sink names are unique within a plan",
            );
        }
    }
}

fn check_after(c: &mut Checker<'_>, ix: &PlanIndex<'_>) {
    for r in &ix.resources {
        for (j, dep) in r.after.iter().enumerate() {
            if dep == r.id {
                c.error(
                    path![r.kind.table(), r.index, "after", j],
                    format!("{} `{}` lists itself in `after`", r.kind.table(), r.id),
                    "remove it",
                );
            } else if !ix.ids.contains_key(dep.as_str()) {
                let all_ids = &ix.all_ids;
                let hint = match did_you_mean(dep, all_ids.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? resources: {}", known_list(all_ids)),
                    None => format!(
                        "`after` names resources of this plan: {}",
                        known_list(all_ids)
                    ),
                };
                c.error(
                    path![r.kind.table(), r.index, "after", j],
                    format!(
                        "{} `{}` comes after unknown resource `{dep}`",
                        r.kind.table(),
                        r.id
                    ),
                    hint,
                );
            }
        }
    }
}

/// Cycles are looked for whatever else is wrong: unknown references are
/// simply not edges, so a cycle among the known resources still shows.
fn check_cycle(c: &mut Checker<'_>, spec: &PlanSpec, ix: &PlanIndex<'_>) {
    let Some(cycle) = find_cycle(spec) else {
        return;
    };
    let first = ix
        .resources
        .iter()
        .find(|r| r.id == cycle[0].0)
        .expect("cycle nodes exist");
    let shown: Vec<String> = cycle
        .iter()
        .map(|(id, why)| format!("{id} ({why})"))
        .collect();
    c.error(
        path![first.kind.table(), first.index, "after"],
        format!("dependency cycle: {} → {}", shown.join(" → "), cycle[0].0),
        "each arrow reads \"must wait for\"; DNS waits for every database, compute group and check of its plan, and checks wait for databases and compute. Remove one `after` to break the cycle",
    );
}

/// The dependency edges of a plan's resources: explicit `after`, plus the
/// implicit order every failover follows (DNS after databases, compute and
/// checks; checks after databases and compute; a record after the database it
/// follows). Returns `(from, to, why)`: `from` waits for `to`.
pub fn edges(spec: &PlanSpec) -> Vec<(String, String, &'static str)> {
    let resources = spec.resources();
    let mut out = Vec::new();
    for r in &resources {
        for dep in r.after {
            out.push((r.id.to_string(), dep.clone(), "after"));
        }
        let waits_for = r.kind.waits_for();
        for other in resources.iter().filter(|o| waits_for.contains(&o.kind)) {
            out.push((r.id.to_string(), other.id.to_string(), "implicit"));
        }
    }
    for r in &resources {
        if let Some(f) = r.follows {
            out.push((r.id.to_string(), f.to_string(), "follows"));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

/// Finds a dependency cycle, as `(id, why it waits for the next)` pairs.
///
/// The result is that of a depth-first search over [`edges`] (resources in
/// file order, successors in id order, one edge per pair: `after` before
/// `follows` before `implicit`), but without building those edges: the
/// implicit ones number (records + checks) × (databases + compute), millions
/// for a plan of thousands of resources. Implicit successors are two shared
/// sorted lists (databases and compute; those and checks), and the search
/// skips their finished entries with a "next unfinished" union-find, so it is
/// linear in the number of resources and `after` entries.
pub fn find_cycle(spec: &PlanSpec) -> Option<Vec<(String, &'static str)>> {
    let resources = spec.resources();
    let graph = CycleGraph::new(&resources);
    let mut open = OpenLists::new(&graph);
    let mut mark = vec![Mark::New; graph.names.len()];
    for r in &resources {
        let start = graph.index[r.id];
        if mark[start] == Mark::New
            && let Some(cycle) = search_from(&graph, &mut open, &mut mark, start)
        {
            return Some(cycle);
        }
    }
    None
}

/// The graph [`find_cycle`] searches: one node per distinct id (duplicate ids
/// share a node, as in [`edges`]), its explicit successors, and its implicit
/// ones as a level into two shared sorted lists.
struct CycleGraph<'s> {
    /// Node → id.
    names: Vec<&'s str>,
    /// Id → node.
    index: HashMap<&'s str, usize>,
    /// Explicit successors of each node, sorted by id, `after` before `follows`.
    explicit: Vec<Vec<(&'s str, &'static str)>>,
    /// Implicit successors: 0 none, 1 `lists[0]`, 2 `lists[1]`.
    level: Vec<u8>,
    /// Databases and compute; those and checks: nodes sorted by id.
    lists: [Vec<usize>; 2],
}

impl<'s> CycleGraph<'s> {
    fn new(resources: &[ResourceRef<'s>]) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        for r in resources {
            index.entry(r.id).or_insert_with(|| {
                names.push(r.id);
                names.len() - 1
            });
        }
        let n = names.len();
        let mut explicit: Vec<Vec<(&str, &'static str)>> = vec![Vec::new(); n];
        let mut level = vec![0u8; n];
        for r in resources {
            let a = index[r.id];
            for dep in r.after {
                explicit[a].push((dep.as_str(), "after"));
            }
            level[a] = level[a].max(match r.kind.stage() {
                Some(Stage::Traffic) => 2,
                Some(Stage::Probe) => 1,
                _ => 0,
            });
        }
        for r in resources {
            if let Some(f) = r.follows {
                explicit[index[r.id]].push((f, "follows"));
            }
        }
        for e in &mut explicit {
            e.sort();
            e.dedup_by(|x, y| x.0 == y.0);
        }
        let sorted_ids = |kinds: &[ResourceKind]| -> Vec<usize> {
            let mut v: Vec<&str> = resources
                .iter()
                .filter(|r| kinds.contains(&r.kind))
                .map(|r| r.id)
                .collect();
            v.sort_unstable();
            v.dedup();
            v.into_iter().map(|id| index[id]).collect()
        };
        // What a probe waits for, and what traffic waits for.
        let lists = [
            sorted_ids(&ResourceKind::before(Stage::Probe)),
            sorted_ids(&ResourceKind::before(Stage::Traffic)),
        ];
        Self {
            names,
            index,
            explicit,
            level,
            lists,
        }
    }
}

/// The unfinished entries of the two implicit lists: the position of each
/// node in each list, and a "next unfinished position" union-find over them.
struct OpenLists {
    at: [Vec<Option<usize>>; 2],
    next: [Vec<usize>; 2],
}

impl OpenLists {
    fn new(graph: &CycleGraph<'_>) -> Self {
        let n = graph.names.len();
        let mut at: [Vec<Option<usize>>; 2] = [vec![None; n], vec![None; n]];
        for (l, list) in graph.lists.iter().enumerate() {
            for (p, node) in list.iter().enumerate() {
                at[l][*node] = Some(p);
            }
        }
        let next = [
            (0..=graph.lists[0].len()).collect(),
            (0..=graph.lists[1].len()).collect(),
        ];
        Self { at, next }
    }

    /// The first unfinished position of list `l` at or after `p`.
    fn first_open(&mut self, l: usize, p: usize) -> usize {
        let next = &mut self.next[l];
        let mut root = p;
        while next[root] != root {
            root = next[root];
        }
        let mut q = p;
        while next[q] != root {
            let up = next[q];
            next[q] = root;
            q = up;
        }
        root
    }

    /// `node` is finished: the lists skip it from now on.
    fn finish(&mut self, node: usize) {
        for l in 0..2 {
            if let Some(p) = self.at[l][node] {
                self.next[l][p] = p + 1;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

/// A node on the search path, and how far its successors have been read.
struct Frame {
    node: usize,
    /// Next explicit successor.
    exp: usize,
    /// Next position in the implicit list.
    imp: usize,
    /// Why this node waits for the next one on the path.
    why: &'static str,
}

impl Frame {
    fn new(node: usize) -> Self {
        Self {
            node,
            exp: 0,
            imp: 0,
            why: "",
        }
    }
}

/// The depth-first search from `start`: the cycle it runs into, if any.
fn search_from(
    graph: &CycleGraph<'_>,
    open: &mut OpenLists,
    mark: &mut [Mark],
    start: usize,
) -> Option<Vec<(String, &'static str)>> {
    let mut stack = vec![Frame::new(start)];
    mark[start] = Mark::Active;
    while let Some(top) = stack.last_mut() {
        let node = top.node;
        let Some((to, why)) = next_successor(graph, open, top) else {
            mark[node] = Mark::Done;
            open.finish(node);
            stack.pop();
            continue;
        };
        let Some(&to) = graph.index.get(to) else {
            continue;
        };
        match mark[to] {
            Mark::New => {
                top.why = why;
                mark[to] = Mark::Active;
                stack.push(Frame::new(to));
            }
            Mark::Active => {
                top.why = why;
                let from = stack.iter().position(|f| f.node == to)?;
                return Some(
                    stack[from..]
                        .iter()
                        .map(|f| (graph.names[f.node].to_string(), f.why))
                        .collect(),
                );
            }
            Mark::Done => {}
        }
    }
    None
}

/// The next successor of `top` in id order, merging its explicit and
/// implicit ones (one edge per pair, the explicit reason first), and moving
/// `top` past it.
fn next_successor<'s>(
    graph: &CycleGraph<'s>,
    open: &mut OpenLists,
    top: &mut Frame,
) -> Option<(&'s str, &'static str)> {
    let node = top.node;
    loop {
        let e = graph.explicit[node].get(top.exp).copied();
        let i = match graph.level[node] {
            0 => None,
            l => {
                let l = usize::from(l - 1);
                let p = open.first_open(l, top.imp);
                graph.lists[l].get(p).map(|&m| (p, graph.names[m]))
            }
        };
        let pick = match (e, i) {
            (None, None) => return None,
            (Some((to, why)), None) => {
                top.exp += 1;
                (to, why)
            }
            (None, Some((p, m))) => {
                top.imp = p + 1;
                (m, "implicit")
            }
            (Some((to, why)), Some((p, m))) => match to.cmp(m) {
                std::cmp::Ordering::Less => {
                    top.exp += 1;
                    (to, why)
                }
                std::cmp::Ordering::Equal => {
                    top.exp += 1;
                    top.imp = p + 1;
                    (to, why)
                }
                std::cmp::Ordering::Greater => {
                    top.imp = p + 1;
                    (m, "implicit")
                }
            },
        };
        // A resource after itself has an error of its own; it is not shown
        // as a cycle too.
        if pick.0 != graph.names[node] {
            return Some(pick);
        }
    }
}
