//! What the kinds whose standby is their backups share (`[[backup_database]]`,
//! `[[backup_cluster]]`): how copies restorable in a region are judged
//! (the newest, the window they make together, the one a point needs),
//! what a restore asks the region for and how to give it, and the plan
//! keys that name those things per region. Pure, or one read per thing
//! through the data role's clouds: the kinds read their own copies.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::drilling::Refusable;
use super::restoring::{Point, RESTORED_BY_TAG, Source, Window};
use crate::cloud::{
    CloudError, Clouds, LagReading, ReplicaPlacement, Restorable, RestoreNeed, RestorePoint,
};
use crate::path;
use crate::plan::spec::PerRegion;
use crate::plan::validate::Scope;

/// Whether `s` is an RDS identifier (a letter first; letters, digits and
/// single hyphens; at most 63; no hyphen last).
pub(super) fn rds_name(s: &str) -> bool {
    rds_ident(s, 63)
}

/// Whether `s` is an RDS name of at most `max` characters: a letter
/// first; letters, digits and single hyphens; no hyphen last.
pub(super) fn rds_ident(s: &str, max: usize) -> bool {
    s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.ends_with('-')
        && !s.contains("--")
}

/// A plan key naming something per region, and what a valid value is.
pub(super) struct Named<'a> {
    pub key: &'static str,
    pub values: &'a PerRegion,
    pub noun: &'static str,
    pub valid: fn(&str) -> bool,
    pub hint: &'static str,
}

impl<'a> Named<'a> {
    /// A DB subnet group's names, per region.
    pub(super) fn group(key: &'static str, values: &'a PerRegion, noun: &'static str) -> Self {
        Self {
            key,
            values,
            noun,
            valid: group_name,
            hint: "1 to 255 letters, digits, spaces, periods, underscores or hyphens",
        }
    }

    /// A parameter or option group's names, per region (RDS's rule for
    /// them: a letter first; letters, digits and single hyphens).
    pub(super) fn rds(key: &'static str, values: &'a PerRegion, noun: &'static str) -> Self {
        Self {
            key,
            values,
            noun,
            valid: |v| rds_ident(v, 255),
            hint: "a letter, then letters, digits and single hyphens, at most 255, no hyphen last",
        }
    }
}

/// Whether `s` may name an RDS group (subnet, parameter or option): 1 to
/// 255 letters, digits, spaces, periods, underscores or hyphens.
pub(super) fn group_name(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && (s.chars()).all(|c| c.is_ascii_alphanumeric() || " ._-".contains(c))
}

/// Whether `s` may name a KMS key of `region` (pure): an ARN, an alias
/// (`alias/...`) or a key id, without spaces, at most 2048.
pub(super) fn kms_key(s: &str) -> bool {
    (1..=2048).contains(&s.len()) && !s.contains(char::is_whitespace)
}

/// A KMS key's plan value, in a hint.
pub(super) const KEY: &str = "a key ARN, key id or alias (alias/...) of that region";

/// Checks `named`, the plan keys of resource `id` (a `kind` whose copies
/// are each an `noun_of`) that name something per region: each region
/// one of its `regions`, each value valid, both errors with the key's
/// position.
pub(super) fn check_named(
    s: &mut Scope<'_, '_, '_>,
    kind: &str,
    id: &str,
    regions: &PerRegion,
    noun_of: &str,
    named: &[Named<'_>],
) {
    for n in named {
        let (key, noun, hint) = (n.key, n.noun, n.hint);
        for (region, value) in n.values {
            if !regions.contains_key(region) {
                s.key_error(
                    path![key, region.as_str()],
                    format!(
                        "{kind} `{id}` places a restore in {region}, where it has no {noun_of}"
                    ),
                    format!("name the {noun_of} in `regions` too, or remove it from `{key}`"),
                );
            } else if !(n.valid)(value) {
                s.error(
                    path![key, region.as_str()],
                    format!("`{value}` does not name {noun}"),
                    hint,
                );
            }
        }
    }
}

/// The age of `point` now, as one lag datapoint stamped with the point.
pub(super) fn point_age(point: DateTime<Utc>, window: Duration) -> LagReading {
    let age = (Utc::now() - point).to_std().unwrap_or_default();
    LagReading {
        max: Some(age),
        latest: Some((age, point)),
        datapoints: 1,
        window,
    }
}

/// What a restorable copy is, in a sentence.
pub(super) fn said(r: &Restorable) -> String {
    let what = match r.id.starts_with("arn:") {
        true => "replicated automated backups".to_string(),
        false => format!("snapshot {}", r.id),
    };
    let from = (r.source_region.as_deref())
        .map(|f| format!(" from {f}"))
        .unwrap_or_default();
    let point = (r.latest)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "unknown".into());
    let progress = (r.progress)
        .filter(|_| !r.ready)
        .map(|p| format!(", {p}% copied"))
        .unwrap_or_default();
    format!(
        "{what} of {}{from} ({}{progress}): newest restorable point {point}",
        r.source, r.status
    )
}

/// What a restorable copy is called in sentences.
pub(super) fn what(r: &Restorable) -> String {
    match r.id.starts_with("arn:") {
        true => format!("the automated backups of {} replicated here", r.source),
        false => format!("snapshot {}", r.id),
    }
}

/// The ready ones of `all` (pure).
pub(super) fn ready(all: Vec<Restorable>) -> Vec<Restorable> {
    all.into_iter().filter(|r| r.ready).collect()
}

/// The window of copies taken together (pure): the earliest of their
/// earliest points to the latest of their latest.
pub(super) fn window_of(ready: &[Restorable]) -> Window {
    Window {
        earliest: ready.iter().filter_map(|r| r.earliest).min(),
        latest: ready.iter().filter_map(|r| r.latest).max(),
    }
}

/// The newest ready restorable copy, else the newest (pure).
pub(super) fn pick(all: Vec<Restorable>) -> Option<Restorable> {
    let best = |rs: Vec<&Restorable>| rs.into_iter().max_by_key(|r| r.latest).cloned();
    best(all.iter().filter(|r| r.ready).collect()).or_else(|| best(all.iter().collect()))
}

/// What a restore found under the name it takes, as read: an instance
/// or a cluster.
pub(super) struct InTheWay<'a> {
    /// What it is (`instance`, `cluster`).
    pub noun: &'static str,
    /// Its name.
    pub id: &'a str,
    /// Its status, in the provider's words.
    pub status: &'a str,
    /// Its tags: whose restore made it.
    pub tags: &'a BTreeMap<String, String>,
}

/// What region `region` lacks for a restore into `target`, placed as
/// `place` says, of `data` (the copy it would restore, whose engine and
/// key the restore keeps): each thing with its fix.
pub(super) async fn lacks(
    clouds: &Clouds,
    region: &str,
    target: Option<InTheWay<'_>>,
    place: &ReplicaPlacement,
    data: Option<&Restorable>,
) -> Result<Vec<(String, String)>, CloudError> {
    let mut out = Vec::new();
    for need in needs(place, data) {
        if let Some(why) = clouds.database.lacking(region, &need).await? {
            let fix = fix(&need, region, &why);
            out.push((format!("{need} {why} in {region}"), fix));
        }
    }
    // Only this run's restore is taken as made: an instance another run
    // restored (before a failback) holds data as old as that run's point.
    let ours = place.tags.get(RESTORED_BY_TAG);
    if let Some(i) = target.filter(|i| ours.is_none() || i.tags.get(RESTORED_BY_TAG) != ours) {
        let by = match i.tags.get(RESTORED_BY_TAG) {
            Some(run) => format!("restored by run {run}, not this one"),
            None => "no restore of drctl's made it".into(),
        };
        out.push((
            format!(
                "{} {} already exists in {region} ({}; {by})",
                i.noun, i.id, i.status
            ),
            "if the plan serves from it (a failover to this region ran already: `drctl status`), nothing is to be restored; else it is in the way of the restore, which takes the plan's name: `drctl reprotect` from the region that serves renames it out of the way, data kept".into(),
        ));
    }
    Ok(out)
}

/// What a restore of `data` placed as `place` asks the region for (pure):
/// the groups the plan names, the class it asks for (offered for the
/// data's engine and version), and the key the data is encrypted with.
pub(super) fn needs(place: &ReplicaPlacement, data: Option<&Restorable>) -> Vec<RestoreNeed> {
    let mut out = Vec::new();
    out.extend(place.subnet_group.clone().map(RestoreNeed::SubnetGroup));
    out.extend(
        place
            .parameter_group
            .clone()
            .map(RestoreNeed::ParameterGroup),
    );
    out.extend(place.option_group.clone().map(RestoreNeed::OptionGroup));
    out.extend((place.cluster_parameter_group.clone()).map(RestoreNeed::ClusterParameterGroup));
    if let (Some(class), Some(engine)) =
        (&place.instance_class, data.and_then(|d| d.engine.clone()))
    {
        out.push(RestoreNeed::InstanceClass {
            class: class.clone(),
            engine,
            version: data.and_then(|d| d.engine_version.clone()),
        });
    }
    out.extend(
        data.and_then(|d| d.kms_key_id.clone())
            .map(RestoreNeed::KmsKey),
    );
    out
}

/// How to give region `region` what `need` names, which the region says
/// `why` of (pure).
pub(super) fn fix(need: &RestoreNeed, region: &str, why: &str) -> String {
    match need {
        RestoreNeed::SubnetGroup(g) => format!(
            "create it (aws rds create-db-subnet-group --region {region} --db-subnet-group-name {g} ...) or fix `subnet_groups` in the plan"
        ),
        RestoreNeed::ParameterGroup(g) => format!(
            "create it (aws rds create-db-parameter-group --region {region} --db-parameter-group-name {g} ...) or fix `parameter_groups` in the plan"
        ),
        RestoreNeed::ClusterParameterGroup(g) => format!(
            "create it (aws rds create-db-cluster-parameter-group --region {region} --db-cluster-parameter-group-name {g} ...) or fix `cluster_parameter_groups` in the plan"
        ),
        RestoreNeed::OptionGroup(g) => format!(
            "create it (aws rds create-option-group --region {region} --option-group-name {g} ...) or fix `option_groups` in the plan"
        ),
        RestoreNeed::InstanceClass { engine, .. } => format!(
            "ask for a class offered there (aws rds describe-orderable-db-instance-options --region {region} --engine {engine}): fix `instance_class` in the plan"
        ),
        // The data is encrypted with it: without it, nothing restores.
        RestoreNeed::KmsKey(k) => match why {
            "is PendingDeletion" => format!(
                "cancel its deletion, then enable it (aws kms cancel-key-deletion --region {region} --key-id {k}; aws kms enable-key --region {region} --key-id {k})"
            ),
            "is Disabled" => {
                format!("enable it (aws kms enable-key --region {region} --key-id {k})")
            }
            _ => format!(
                "the backups there cannot be decrypted without it: copy them again into {region} under a key that is enabled there (aws rds copy-db-snapshot, or copy-db-cluster-snapshot, with --kms-key-id ...)"
            ),
        },
    }
}

/// Which restorable copy makes `point` (pure): for the latest, the ready
/// one whose newest point is newest; for a time, the backups whose window
/// holds it, else the snapshot taken exactly then.
pub(super) fn choose(all: &[Restorable], point: Point) -> Option<&Restorable> {
    let ready = all.iter().filter(|r| r.ready);
    match (point.ask, point.known) {
        (RestorePoint::Latest, None) => ready.max_by_key(|r| r.latest),
        (RestorePoint::Latest, Some(t)) | (RestorePoint::At(t), _) => {
            let holds = |r: &&Restorable| {
                r.earliest.is_none_or(|e| e <= t) && r.latest.is_none_or(|l| t <= l)
            };
            let mut holding: Vec<&Restorable> = ready.filter(holds).collect();
            // The backups first: they restore that very point.
            holding.sort_by_key(|r| !r.id.starts_with("arn:"));
            holding.first().copied()
        }
    }
}

/// Refuses the restore of `from` in `region` when the key its data is
/// encrypted with is not usable there, read again: the copy a restore
/// chose may not be the newest that readiness judged (a time asked for,
/// a snapshot under another key).
pub(super) async fn key_usable(
    clouds: &Clouds,
    region: &str,
    from: &Restorable,
) -> Result<(), CloudError> {
    let Some(key) = &from.kms_key_id else {
        return Ok(());
    };
    let need = RestoreNeed::KmsKey(key.clone());
    let Some(why) = clouds.database.lacking(region, &need).await? else {
        return Ok(());
    };
    Err(CloudError::new(
        "kms",
        "DescribeKey",
        key,
        region,
        crate::cloud::ErrorKind::Client,
        format!(
            "{need} {why} in {region}: {} cannot be restored; {}",
            what(from),
            fix(&need, region, &why)
        ),
    ))
}

/// What a restore into `region` starts from, for both RDS backup kinds'
/// `Restoring::source`: `all` the copies there (one read: the newest is
/// judged and named, every ready one makes the window), what is found
/// under the restore's name (`existing`), and what the region lacks. A
/// copy restored already by this run (a resume) is said so, with no
/// window: the step finds it before it would restore. `none` says there
/// is no copy at all.
pub(super) async fn standby_source(
    clouds: &Clouds,
    region: &str,
    existing: Option<InTheWay<'_>>,
    all: Vec<Restorable>,
    place: &ReplicaPlacement,
    none: String,
) -> Result<Source, CloudError> {
    let found = pick(all.clone());
    let data = found.as_ref().filter(|_| existing.is_none());
    let restored = (existing.as_ref()).map(|e| format!("{} restored already ({})", e.id, e.status));
    let lacks = lacks(clouds, region, existing, place, data).await?;
    if let Some(said) = restored.filter(|_| lacks.is_empty()) {
        let window = Ok(Window::default());
        return Ok(Source {
            said,
            window,
            lacks,
        });
    }
    let (said, window) = match &found {
        None => (none.clone(), Err(none)),
        Some(r) if !r.ready => (said(r), Err(format!("{} is {}", what(r), r.status))),
        // Every ready copy's window together: a time the backups hold is
        // restorable though a snapshot is newer (`choose` picks the copy
        // that holds it).
        Some(r) => (said(r), Ok(window_of(&ready(all)))),
    };
    Ok(Source {
        said,
        window,
        lacks,
    })
}

/// Whether a drill can restore `found`, the newest copy in `region`, for
/// both RDS backup kinds' `Drilling::source`: what the region lacks first,
/// then `none` (why and hint) without a copy, then a copy not ready yet.
pub(super) async fn drill_source(
    clouds: &Clouds,
    region: &str,
    found: Option<Restorable>,
    place: &ReplicaPlacement,
    none: (String, String),
) -> Result<Refusable, CloudError> {
    let lacks = lacks(clouds, region, None, place, found.as_ref()).await?;
    Ok(match found {
        _ if !lacks.is_empty() => {
            let (why, fix): (Vec<_>, Vec<_>) = lacks.into_iter().unzip();
            Err((why.join("; "), fix.join("; ")))
        }
        None => Err(none),
        Some(r) if !r.ready => Err((
            format!("{} is {}", what(&r), r.status),
            "drill again once it is available".into(),
        )),
        Some(r) => Ok(said(&r)),
    })
}

/// The copies `regions` names outside `region`, each once: whose copies a
/// restore in `region` reads (its home's, or after a failover the new
/// primary's).
pub(super) fn others(regions: &PerRegion, region: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, id) in regions.iter().filter(|(r, _)| *r != region) {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}
