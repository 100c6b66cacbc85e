//! Static checks of the Terraform in `terraform/` against the reference plans
//! in `plans/`.
//!
//! `terraform/` is the infrastructure a user applies so that the plans have
//! something to act on. No terraform binary or provider can run in CI or in
//! the development sandbox, so `terraform validate` is not available. These
//! tests are the substitute: they parse every `.tf` file as HCL, check that
//! every id the plans use (instances, groups, records, buckets) is spelled
//! somewhere in the Terraform, and check the properties drctl relies on
//! (replicas exist, backups are on, evidence cannot be deleted, the drctl
//! role cannot delete evidence or use wildcard actions). They read text only
//! and need no emulator.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::{Operation, TemplateExpr, TraversalOperator};
use hcl::{Block, BlockLabel, Body, Expression, ObjectKey};

/// An id a plan refers to, and where it came from (for failure messages).
struct PlanId {
    id: String,
    origin: String,
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Files directly in `dir` whose name ends with `.{ext}`, sorted.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Parses every `terraform/*.tf`; fails listing every file that does not parse.
pub(crate) fn parse_terraform() -> Vec<Body> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for path in files_with_ext(&repo_path("terraform"), "tf") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
        match hcl::parse(&text) {
            Ok(body) => parsed.push(body),
            Err(e) => errors.push(format!("terraform/{name}: {e}")),
        }
    }
    assert!(
        errors.is_empty(),
        "Terraform files do not parse:\n{}",
        errors.join("\n")
    );
    assert!(!parsed.is_empty(), "no .tf files under terraform/");
    parsed
}

/// Plan ids and Terraform names compare without the trailing dot of DNS names.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_string()
}

/// Adds every string literal and template string in `body` to `out`.
fn collect_body_strings(body: &Body, out: &mut BTreeSet<String>) {
    for attr in body.attributes() {
        collect_expr_strings(attr.expr(), out);
    }
    for block in body.blocks() {
        collect_body_strings(block.body(), out);
    }
}

pub(crate) fn collect_expr_strings(expr: &Expression, out: &mut BTreeSet<String>) {
    let mut walk = |e: &Expression| collect_expr_strings(e, out);
    match expr {
        Expression::String(s) => {
            out.insert(normalize(s));
        }
        Expression::TemplateExpr(template) => match template.as_ref() {
            TemplateExpr::QuotedString(s) => {
                out.insert(normalize(s));
            }
            TemplateExpr::Heredoc(heredoc) => {
                out.insert(normalize(&heredoc.template));
            }
        },
        Expression::Array(items) => items.iter().for_each(walk),
        Expression::Object(object) => {
            for (key, value) in object {
                if let ObjectKey::Expression(key) = key {
                    walk(key);
                }
                walk(value);
            }
        }
        Expression::Traversal(traversal) => {
            walk(&traversal.expr);
            for op in &traversal.operators {
                if let TraversalOperator::Index(index) = op {
                    walk(index);
                }
            }
        }
        Expression::FuncCall(call) => call.args.iter().for_each(walk),
        Expression::Parenthesis(inner) => walk(inner),
        Expression::Conditional(c) => {
            for e in [&c.cond_expr, &c.true_expr, &c.false_expr] {
                walk(e);
            }
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(unary) => walk(&unary.expr),
            Operation::Binary(binary) => {
                walk(&binary.lhs_expr);
                walk(&binary.rhs_expr);
            }
        },
        Expression::ForExpr(for_expr) => {
            walk(&for_expr.collection_expr);
            for_expr.key_expr.iter().for_each(&mut walk);
            walk(&for_expr.value_expr);
        }
        _ => {}
    }
}

/// The reference plans (every `plans/*.toml` except `tiers.toml`).
fn read_plans() -> Vec<(String, toml::Table)> {
    files_with_ext(&repo_path("plans"), "toml")
        .into_iter()
        .filter(|path| !path.ends_with("tiers.toml"))
        .map(|path| {
            let name = format!("plans/{}", path.file_name().unwrap().to_string_lossy());
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {name}: {e}"));
            let table = toml::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"));
            (name, table)
        })
        .collect()
}

/// The entries of an array of tables such as `[[database]]`.
fn entries<'a>(plan: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    plan.get(key)
        .and_then(toml::Value::as_array)
        .map(|items| items.iter().filter_map(toml::Value::as_table).collect())
        .unwrap_or_default()
}

/// `(key, value)` for each string value of the table `entry[key]`.
fn string_map<'a>(entry: &'a toml::Table, key: &str) -> Vec<(&'a str, &'a str)> {
    entry
        .get(key)
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn entry_id(entry: &toml::Table) -> &str {
    entry.get("id").and_then(toml::Value::as_str).unwrap_or("?")
}

/// `s3://NAME/prefix` or `gs://NAME/prefix` → `("s3" | "gs", NAME)`.
fn bucket_of(destination: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = destination.split_once("://")?;
    Some((scheme, rest.split('/').next()?))
}

fn evidence_buckets(plan: &toml::Table) -> Vec<(&str, &str)> {
    plan.get("evidence")
        .and_then(|e| e.get("destinations"))
        .and_then(toml::Value::as_array)
        .map(|d| d.iter().filter_map(|v| bucket_of(v.as_str()?)).collect())
        .unwrap_or_default()
}

/// Every id the plans refer to.
fn plan_ids(plans: &[(String, toml::Table)]) -> Vec<PlanId> {
    let mut ids = Vec::new();
    let mut add = |id: &str, origin: String| {
        ids.push(PlanId {
            id: normalize(id),
            origin,
        })
    };
    for (file, plan) in plans {
        for kind in [
            "database",
            "backup_database",
            "backup_cluster",
            "compute",
            "bucket",
        ] {
            for entry in entries(plan, kind) {
                for (region, id) in string_map(entry, "regions") {
                    add(
                        id,
                        format!("{file} [[{kind}]] {} regions.{region}", entry_id(entry)),
                    );
                }
            }
        }
        for entry in entries(plan, "dns") {
            for key in ["name", "zone"] {
                if let Some(value) = entry.get(key).and_then(toml::Value::as_str) {
                    add(value, format!("{file} [[dns]] {} {key}", entry_id(entry)));
                }
            }
            for (region, target) in string_map(entry, "targets") {
                add(
                    target,
                    format!("{file} [[dns]] {} targets.{region}", entry_id(entry)),
                );
            }
        }
        for (_, bucket) in evidence_buckets(plan) {
            add(bucket, format!("{file} [evidence] destinations"));
        }
    }
    ids
}

/// `resource "TYPE" ...` (or `data "TYPE" ...` with `kind = "data"`) blocks.
pub(crate) fn blocks_of<'a>(files: &'a [Body], kind: &str, ty: &str) -> Vec<&'a Block> {
    files
        .iter()
        .flat_map(Body::blocks)
        .filter(|b| {
            b.identifier() == kind && b.labels().first().map(BlockLabel::as_str) == Some(ty)
        })
        .collect()
}

pub(crate) fn label(block: &Block) -> &str {
    block.labels().get(1).map(BlockLabel::as_str).unwrap_or("?")
}

pub(crate) fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

pub(crate) fn str_attr<'a>(body: &'a Body, key: &str) -> Option<&'a str> {
    match attr(body, key)? {
        Expression::String(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn child<'a>(body: &'a Body, name: &str) -> Option<&'a Body> {
    body.blocks()
        .find(|b| b.identifier() == name)
        .map(Block::body)
}

/// The resource of type `ty` whose `key` attribute is the literal `value`.
fn resource_named<'a>(files: &'a [Body], ty: &str, key: &str, value: &str) -> Option<&'a Block> {
    blocks_of(files, "resource", ty)
        .into_iter()
        .find(|b| str_attr(b.body(), key) == Some(value))
}

/// Resources of type `ty` whose `bucket` attribute refers to `resource.bucket`.
fn attached_to<'a>(files: &'a [Body], ty: &str, bucket: &Block) -> Vec<&'a Block> {
    let reference = format!("aws_s3_bucket.{}.", label(bucket));
    blocks_of(files, "resource", ty)
        .into_iter()
        .filter(|b| attr(b.body(), "bucket").is_some_and(|e| e.to_string().starts_with(&reference)))
        .collect()
}

#[test]
fn terraform_defines_every_id_the_plans_use() {
    let files = parse_terraform();
    let mut strings = BTreeSet::new();
    for body in &files {
        collect_body_strings(body, &mut strings);
    }
    let ids = plan_ids(&read_plans());
    assert!(!ids.is_empty(), "the plans name no resource ids");

    let missing: Vec<String> = ids
        .iter()
        .filter(|p| !strings.contains(&p.id))
        .map(|p| format!("  {:?} ({})", p.id, p.origin))
        .collect();
    assert!(
        missing.is_empty(),
        "ids used by plans/ but not defined in terraform/:\n{}",
        missing.join("\n")
    );
}

#[test]
fn evidence_buckets_cannot_be_rewritten() {
    let files = parse_terraform();
    let plans = read_plans();
    let buckets: BTreeSet<_> = plans
        .iter()
        .flat_map(|(_, p)| evidence_buckets(p))
        .collect();
    assert!(
        !buckets.is_empty(),
        "the plans name no evidence destinations"
    );

    for (scheme, name) in buckets {
        if scheme == "gs" {
            let bucket = resource_named(&files, "google_storage_bucket", "name", name)
                .unwrap_or_else(|| panic!("no google_storage_bucket named {name}"));
            assert!(
                child(bucket.body(), "retention_policy").is_some(),
                "GCS bucket {name} has no retention_policy"
            );
            continue;
        }
        let bucket = resource_named(&files, "aws_s3_bucket", "bucket", name)
            .unwrap_or_else(|| panic!("no aws_s3_bucket named {name}"));
        assert_eq!(
            attr(bucket.body(), "object_lock_enabled"),
            Some(&Expression::Bool(true)),
            "S3 bucket {name} must be created with object_lock_enabled = true"
        );
        let versioning_on = attached_to(&files, "aws_s3_bucket_versioning", bucket)
            .iter()
            .filter_map(|v| child(v.body(), "versioning_configuration"))
            .any(|c| str_attr(c, "status") == Some("Enabled"));
        assert!(
            versioning_on,
            "S3 bucket {name} has no versioning with status Enabled"
        );
        let lock_mode = attached_to(&files, "aws_s3_bucket_object_lock_configuration", bucket)
            .iter()
            .filter_map(|l| child(l.body(), "rule").and_then(|r| child(r, "default_retention")))
            .find_map(|d| str_attr(d, "mode"));
        assert!(
            matches!(lock_mode, Some("GOVERNANCE" | "COMPLIANCE")),
            "S3 bucket {name} has no object lock default retention (mode {lock_mode:?})"
        );
    }
}

#[test]
fn databases_have_backups_and_replicas() {
    let files = parse_terraform();
    let mut checked = 0;
    for (file, plan) in read_plans() {
        let regions = plan
            .get("plan")
            .and_then(|p| p.get("regions"))
            .and_then(toml::Value::as_array);
        let home = regions
            .and_then(|r| r.first())
            .and_then(toml::Value::as_str);
        let home = home.unwrap_or_else(|| panic!("{file}: no [plan] regions"));
        for db in entries(&plan, "database") {
            for (region, id) in string_map(db, "regions") {
                let instance = resource_named(&files, "aws_db_instance", "identifier", id)
                    .unwrap_or_else(|| panic!("{file}: no aws_db_instance with identifier {id}"));
                let body = instance.body();
                if region == home {
                    let retention = match attr(body, "backup_retention_period") {
                        Some(Expression::Number(n)) => n.as_u64().unwrap_or(0),
                        _ => 0,
                    };
                    assert!(
                        retention >= 1,
                        "{id}: primary needs backup_retention_period >= 1"
                    );
                    assert!(
                        attr(body, "replicate_source_db").is_none(),
                        "{id}: primary is a replica"
                    );
                } else {
                    assert!(
                        attr(body, "replicate_source_db").is_some(),
                        "{id}: standby in {region} must be a replica (replicate_source_db)"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "the plans name no databases");
}

/// A backup standby's primary keeps automated backups, and they are
/// replicated into every other region of its plan: what a failover there
/// restores from.
#[test]
fn backup_standbys_have_their_backups_replicated_into_each_standby_region() {
    let files = parse_terraform();
    let mut checked = 0;
    for (file, plan) in read_plans() {
        let home = (plan.get("plan").and_then(|p| p.get("regions")))
            .and_then(toml::Value::as_array)
            .and_then(|r| r.first())
            .and_then(toml::Value::as_str)
            .unwrap_or_else(|| panic!("{file}: no [plan] regions"));
        for db in entries(&plan, "backup_database") {
            let regions = string_map(db, "regions");
            let (_, id) = (regions.iter().find(|(r, _)| *r == home))
                .unwrap_or_else(|| panic!("{file}: {} has no instance in {home}", entry_id(db)));
            let instance = resource_named(&files, "aws_db_instance", "identifier", id)
                .unwrap_or_else(|| panic!("{file}: no aws_db_instance with identifier {id}"));
            let retention = match attr(instance.body(), "backup_retention_period") {
                Some(Expression::Number(n)) => n.as_u64().unwrap_or(0),
                _ => 0,
            };
            assert!(
                retention >= 1,
                "{id}: a backup standby's primary needs backups"
            );
            let source = format!("aws_db_instance.{}.arn", label(instance));
            let replications = blocks_of(
                &files,
                "resource",
                "aws_db_instance_automated_backups_replication",
            );
            let standbys = regions.iter().filter(|(r, _)| *r != home).count();
            let replicated = (replications.iter())
                .filter(|b| {
                    attr(b.body(), "source_db_instance_arn")
                        .is_some_and(|e| e.to_string().contains(&source))
                })
                .count();
            assert_eq!(
                replicated, standbys,
                "{id}: replicated into each standby region"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "the plans name no backup standby");
}

/// Actions an Allow statement must never grant.
fn forbidden_action(action: &str) -> bool {
    let a = action.to_ascii_lowercase();
    a == "*"
        || a.ends_with(":*")
        || a.starts_with("s3:deleteobjectversion")
        || a == "s3:bypassgovernanceretention"
}

/// What drctl may delete in S3: the object its state-store probe writes
/// (`.../probe/*`) and a drill's own controls (`<control>.drill-<id>`);
/// never evidence, a journal or a lease.
fn deletable(resource: &str) -> bool {
    !resource.contains("evidence")
        && (resource.ends_with("/probe/*") || resource.ends_with("/*.drill-*"))
}

#[test]
fn iam_policies_grant_no_wildcard_actions_or_deletes_beyond_probes_and_drill_controls() {
    let files = parse_terraform();
    let documents = blocks_of(&files, "data", "aws_iam_policy_document");
    assert!(
        documents.iter().any(|d| label(d) == "drctl"),
        "no data \"aws_iam_policy_document\" \"drctl\""
    );
    let mut problems = Vec::new();
    for document in documents {
        for statement in document
            .body()
            .blocks()
            .filter(|b| b.identifier() == "statement")
        {
            // Deny statements may use wildcards (e.g. "deny s3:* without TLS").
            if str_attr(statement.body(), "effect") == Some("Deny") {
                continue;
            }
            if attr(statement.body(), "not_actions").is_some() {
                problems.push(format!("{}: Allow with not_actions", label(document)));
            }
            let mut actions = BTreeSet::new();
            if let Some(expr) = attr(statement.body(), "actions") {
                collect_expr_strings(expr, &mut actions);
            }
            for action in actions.iter().filter(|a| forbidden_action(a)) {
                problems.push(format!("{}: allows {action:?}", label(document)));
            }
            if actions
                .iter()
                .any(|a| a.to_ascii_lowercase().starts_with("s3:delete"))
            {
                let mut resources = BTreeSet::new();
                if let Some(expr) = attr(statement.body(), "resources") {
                    collect_expr_strings(expr, &mut resources);
                }
                if resources.is_empty() || !resources.iter().all(|r| deletable(r)) {
                    problems.push(format!(
                        "{}: allows deletes on {resources:?} (only probe objects and drill controls)",
                        label(document)
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "IAM policy problems:\n{}",
        problems.join("\n")
    );
}
