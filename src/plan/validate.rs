//! Semantic checks of a plan: everything serde cannot know.
//!
//! Each check reports *all* its findings with the path of the offending value,
//! so that one `drctl plan validate` run lists every mistake with file, line,
//! column and a hint, like a compiler.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::duration::{format_duration, parse_duration};
use super::source::{Diagnostic, Seg, SourceFile};
use super::spec::{PlanSpec, ResourceKind, SwitchMode};
use super::tiers::Tier;
use crate::cloud::ObjectUrl;
use crate::path;

/// Collects diagnostics for one file.
pub struct Checker<'a> {
    file: &'a SourceFile,
    /// Findings so far.
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    /// A checker for `file`.
    pub fn new(file: &'a SourceFile) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
        }
    }

    /// Reports an error at the value `path`.
    pub fn error(&mut self, path: Vec<Seg>, message: impl Into<String>, hint: impl Into<String>) {
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
        let pos = self.file.locate_key(&path);
        self.diagnostics
            .push(Diagnostic::error(self.file, pos, message).hint(hint));
    }
}

/// "did you mean `x`?" when one candidate is close enough.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn known_list(items: &[&str]) -> String {
    if items.is_empty() {
        "none are defined".into()
    } else {
        items
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn fqdn(s: &str) -> String {
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
                c.error(
                    p,
                    e.to_string(),
                    "durations are written like 90s, 15m, 1h, 2h30m or 7d",
                );
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
    ok.then(|| Tier {
        name: name.to_string(),
        rto,
        rpo,
        approval: spec.approval,
        drill_interval: interval,
        rank: super::tiers::rank_of(name),
    })
}

/// Checks one plan. Returns the resolved tier when the plan is valid.
pub fn check_plan(
    c: &mut Checker<'_>,
    spec: &PlanSpec,
    tiers: &BTreeMap<String, Tier>,
) -> Option<Tier> {
    let before = c.diagnostics.len();
    let header = &spec.plan;

    if !name_ok(&header.name) {
        c.error(
            path!["plan", "name"],
            format!("plan name `{}` is not valid", header.name),
            "use 1-63 lowercase letters, digits and '-' (it names journals and locks)",
        );
    }

    // Tier.
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

    // Regions.
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
    let region_set: Vec<&str> = regions.iter().map(String::as_str).collect();

    // Resource ids.
    let resources = spec.resources();
    let mut ids: HashMap<&str, (ResourceKind, usize)> = HashMap::new();
    for r in &resources {
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
    let all_ids: Vec<&str> = resources.iter().map(|r| r.id).collect();

    // Per-region maps: every plan region, no other.
    for r in &resources {
        let Some(map) = r.regions else { continue };
        if r.kind == ResourceKind::Dns && map.is_empty() {
            // Reported once below as "neither `targets` nor `follows`".
            continue;
        }
        let field = if r.kind == ResourceKind::Dns {
            "targets"
        } else {
            "regions"
        };
        for (i, (region, value)) in map.iter().enumerate() {
            let _ = i;
            if !region_set.contains(&region.as_str()) {
                let hint = match did_you_mean(region, region_set.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{s}`? the plan's regions are {}",
                        known_list(&region_set)
                    ),
                    None => format!(
                        "the plan's regions are {}; add it to [plan] regions or remove it here",
                        known_list(&region_set)
                    ),
                };
                c.key_error(
                    path![r.kind.table(), r.index, field, region.as_str()],
                    format!(
                        "{} `{}` names region `{region}`, which is not one of the plan's regions",
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
        for region in &region_set {
            if !map.contains_key(*region) {
                c.error(path![r.kind.table(), r.index, field], format!("{} `{}` has no {} for region `{region}`", r.kind.table(), r.id, if field == "targets" { "target" } else { "id" }), format!("add `{region} = \"...\"` to its {field}: every resource needs a counterpart in every region of the plan"));
            }
        }
    }

    // Compute capacities.
    for (i, g) in spec.compute.iter().enumerate() {
        for (key, cap) in [("active", g.active), ("standby", g.standby)] {
            if !(cap.min <= cap.desired && cap.desired <= cap.max) {
                c.error(
                    path!["compute", i, key],
                    format!(
                        "compute `{}` {key} capacity {}/{}/{} is not min <= desired <= max",
                        g.id, cap.min, cap.desired, cap.max
                    ),
                    "Auto Scaling refuses a desired capacity outside [min, max]",
                );
            }
        }
        if g.active.desired == 0 {
            c.error(path!["compute", i, "active", "desired"], format!("compute `{}` has an active desired capacity of 0", g.id), "a failover would scale the target region to nothing; give the capacity that serves production");
        }
    }

    // DNS records.
    for (i, d) in spec.dns.iter().enumerate() {
        let zone = fqdn(&d.zone);
        let name = fqdn(&d.name);
        if name != zone && !name.ends_with(&format!(".{zone}")) {
            c.error(
                path!["dns", i, "name"],
                format!("record `{}` is not inside zone `{}`", d.name, d.zone),
                "the record name must end with the zone name",
            );
        }
        let rtype = d.rtype.as_str();
        if !matches!(rtype, "A" | "AAAA" | "CNAME") {
            c.error(
                path!["dns", i, "type"],
                format!("record type `{rtype}` is not supported"),
                "use A, AAAA or CNAME (upper case)",
            );
        }
        if !(0..=604_800).contains(&d.ttl) {
            c.error(
                path!["dns", i, "ttl"],
                format!("TTL {} is out of range", d.ttl),
                "use 0 to 604800 seconds; failover records usually use 60 or less",
            );
        }
        match (&d.follows, d.targets.is_empty()) {
            (Some(_), false) => c.error(path!["dns", i, "follows"], format!("dns `{}` has both `follows` and `targets`", d.id), "use `targets` for fixed values per region, or `follows` to track a database's primary endpoint, not both"),
            (None, true) => c.error(path!["dns", i], format!("dns `{}` has neither `targets` nor `follows`", d.id), "add `targets = { region = \"value\", ... }` or `follows = \"<database id>\"`"),
            _ => {}
        }
        if let Some(f) = &d.follows {
            if spec.database(f).is_none() {
                let dbs: Vec<&str> = spec.database.iter().map(|d| d.id.as_str()).collect();
                let hint = match did_you_mean(f, dbs.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{s}`? databases in this plan: {}",
                        known_list(&dbs)
                    ),
                    None => format!(
                        "`follows` names a [[database]] of this plan; databases: {}",
                        known_list(&dbs)
                    ),
                };
                c.error(
                    path!["dns", i, "follows"],
                    format!("dns `{}` follows unknown database `{f}`", d.id),
                    hint,
                );
            } else if rtype != "CNAME" {
                c.error(
                    path!["dns", i, "type"],
                    format!("dns `{}` follows a database but is of type {rtype}", d.id),
                    "a database endpoint is a host name: use type = \"CNAME\"",
                );
            }
            if d.switch == SwitchMode::Weighted {
                c.error(
                    path!["dns", i, "switch"],
                    format!("dns `{}` follows a database with weighted switching", d.id),
                    "a record that follows a database is switched by upsert",
                );
            }
        }
        if rtype == "CNAME" && name == zone {
            c.error(
                path!["dns", i, "name"],
                "a CNAME cannot be at the zone apex",
                "use an A/AAAA record (or an alias) for the apex",
            );
        }
    }

    // Checks.
    for (i, ch) in spec.check.iter().enumerate() {
        for (region, url) in &ch.regions {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                c.error(
                    path!["check", i, "regions", region.as_str()],
                    format!("check `{}` URL `{url}` is not http(s)", ch.id),
                    "probes are HTTP GETs: give a full http:// or https:// URL",
                );
            }
        }
        if !(100..=599).contains(&ch.expect_status) {
            c.error(
                path!["check", i, "expect_status"],
                format!("`{}` is not an HTTP status", ch.expect_status),
                "use e.g. 200",
            );
        }
        if let Err(e) = parse_duration(&ch.timeout) {
            c.error(
                path!["check", i, "timeout"],
                e.to_string(),
                "durations are written like 5s or 1m",
            );
        }
    }

    // Buckets.
    for (i, b) in spec.bucket.iter().enumerate() {
        for (region, url) in &b.regions {
            if let Err(e) = ObjectUrl::parse(url) {
                c.error(
                    path!["bucket", i, "regions", region.as_str()],
                    e.to_string(),
                    "write s3://bucket-name or gs://bucket-name",
                );
            }
        }
    }

    // Evidence destinations.
    if let Some(ev) = &spec.evidence {
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

    // Drill schedule.
    if let Some(drill) = &spec.drill
        && let Err(e) = parse_cron(&drill.schedule)
    {
        c.error(path!["drill", "schedule"], format!("cron expression `{}` does not parse: {e}", drill.schedule), "use 5 fields, minute hour day-of-month month day-of-week, in UTC: e.g. \"0 3 * * MON\"");
    }

    // `after` references and cycles.
    for r in &resources {
        for (j, dep) in r.after.iter().enumerate() {
            if dep == r.id {
                c.error(
                    path![r.kind.table(), r.index, "after", j],
                    format!("{} `{}` lists itself in `after`", r.kind.table(), r.id),
                    "remove it",
                );
            } else if !ids.contains_key(dep.as_str()) {
                let hint = match did_you_mean(dep, all_ids.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? resources: {}", known_list(&all_ids)),
                    None => format!(
                        "`after` names resources of this plan: {}",
                        known_list(&all_ids)
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
    // Cycles are looked for whatever else is wrong: unknown references are
    // simply not edges, so a cycle among the known resources still shows.
    if let Some(cycle) = find_cycle(spec) {
        let first = resources
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

    (c.diagnostics.len() == before).then_some(tier).flatten()
}

/// Parses a 5-field cron expression (UTC), as drill schedules use.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    if expr.split_whitespace().count() != 5 {
        return Err(format!(
            "expected 5 fields, found {}",
            expr.split_whitespace().count()
        ));
    }
    croner::parser::CronParser::builder()
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
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
        let waits_for: &[ResourceKind] = match r.kind {
            ResourceKind::Dns => &[
                ResourceKind::Database,
                ResourceKind::Compute,
                ResourceKind::Check,
            ],
            ResourceKind::Check => &[ResourceKind::Database, ResourceKind::Compute],
            _ => &[],
        };
        for other in resources.iter().filter(|o| waits_for.contains(&o.kind)) {
            out.push((r.id.to_string(), other.id.to_string(), "implicit"));
        }
    }
    for d in &spec.dns {
        if let Some(f) = &d.follows {
            out.push((d.id.clone(), f.clone(), "follows"));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

/// Finds a dependency cycle, as `(id, why it waits for the next)` pairs.
pub fn find_cycle(spec: &PlanSpec) -> Option<Vec<(String, &'static str)>> {
    let edges = edges(spec);
    let mut adj: BTreeMap<&str, Vec<(&str, &'static str)>> = BTreeMap::new();
    // A resource after itself has an error of its own; it is not shown as a cycle too.
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
    // Iterative DFS keeping the current path.
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
