//! `terraform/iam.tf` against the calls drctl really makes.
//!
//! The role's policy is meant to allow exactly what drctl calls. A list
//! written by hand drifts: the security review of issue 29 found tags,
//! drill deletions, health checks, notifications, alarms and deletes that
//! the code called and the policy lacked, and a record-name condition that
//! left out the names drills and failover chains write. So the comparison
//! is made from the calls themselves:
//!
//! * every command of a day's work runs against the emulators with a call
//!   log (`call_log`, the metering layer's record of every cloud call:
//!   `src/cloud/metered.rs`): `dns prepare`, the drills of a plan with a
//!   database and of a data-plane switch, a failover, `notify test` and
//!   `watch --once`;
//! * each call is mapped to the SDK operations its adapter method sends
//!   (`src/cloud/aws/`), and each of those to its IAM action
//!   ([`iam_actions`]: a label nobody mapped fails the test);
//! * every action must be allowed by an `Allow` statement of the `drctl`
//!   policy document; every GCS call's permission by a role the `drctl`
//!   service account is granted ([`gcs_permissions`]).
//!
//! Resources are not compared here: the emulator world names everything
//! with a suffix of its own, the Terraform names the reference world.
//! Record names, where a wrong pattern locks drctl out of a whole
//! mechanism, are checked statically instead: the names the reference plans'
//! failovers, failover chains and drills write (made by drctl's own naming
//! functions) must each satisfy the condition of the statement that allows
//! `ChangeResourceRecordSets`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::{Block, Body};

use crate::fixture::{Fixture, Ran};
use crate::terraform::{
    attr, blocks_of, child, collect_expr_strings, label, parse_terraform, str_attr,
};
use crate::world::{self, HOME, STANDBY};

/// The IAM actions one metered call needs: the AWS operations its adapter
/// method sends (`src/cloud/aws/*.rs`), each as its IAM action; `None`
/// for calls that are not AWS API calls (GCS, whose roles are Google's;
/// HTTP checks; DNS queries). A label that is not here panics: a new call
/// must be mapped before it can be compared.
fn iam_actions(label: &str) -> Option<&'static [&'static str]> {
    Some(match label {
        "route53:ListHostedZonesByName" => &["route53:ListHostedZonesByName"],
        "route53:GetHostedZone" => &["route53:GetHostedZone"],
        "route53:ListResourceRecordSetProtections" => &["route53:ListResourceRecordSetProtections"],
        "elasticloadbalancing:DescribeTargetHealth" => {
            &["elasticloadbalancing:DescribeTargetHealth"]
        }
        "route53:ListResourceRecordSets" => &["route53:ListResourceRecordSets"],
        "route53:ChangeResourceRecordSets" => &["route53:ChangeResourceRecordSets"],
        "route53:GetChange" => &["route53:GetChange"],
        "route53:ListHealthChecks" => &["route53:ListHealthChecks"],
        "route53:CreateHealthCheck" => &["route53:CreateHealthCheck"],
        "route53:DeleteHealthCheck" => &["route53:DeleteHealthCheck"],
        "rds:DescribeDBInstances" => &["rds:DescribeDBInstances"],
        // Read first (a missing instance, a primary), then tagged with its
        // source (`drctl:promoted-from`); an attempt whose answer was lost
        // is judged by a describe.
        "rds:PromoteReadReplica" => &[
            "rds:DescribeDBInstances",
            "rds:PromoteReadReplica",
            "rds:AddTagsToResource",
        ],
        // Created with the drill's tags (tagging on create is
        // `AddTagsToResource` too); a lost answer is judged by a describe.
        "rds:CreateDBInstanceReadReplica" => &[
            "rds:CreateDBInstanceReadReplica",
            "rds:AddTagsToResource",
            "rds:DescribeDBInstances",
        ],
        "rds:ModifyDBInstance" => &["rds:ModifyDBInstance", "rds:DescribeDBInstances"],
        // Restored with tags (the run that restored it; a drill's), which
        // is `AddTagsToResource` too; a lost answer is judged by a read.
        "rds:RestoreDBInstanceToPointInTime" => &[
            "rds:RestoreDBInstanceToPointInTime",
            "rds:AddTagsToResource",
            "rds:DescribeDBInstances",
        ],
        "rds:RestoreDBInstanceFromDBSnapshot" => &[
            "rds:RestoreDBInstanceFromDBSnapshot",
            "rds:AddTagsToResource",
            "rds:DescribeDBInstances",
        ],
        "rds:DescribeDBInstanceAutomatedBackups" => &["rds:DescribeDBInstanceAutomatedBackups"],
        "rds:DescribeDBSnapshots" => &["rds:DescribeDBSnapshots"],
        "rds:DescribeDBSubnetGroups" => &["rds:DescribeDBSubnetGroups"],
        "rds:DescribeDBParameterGroups" => &["rds:DescribeDBParameterGroups"],
        "rds:DescribeDBClusterParameterGroups" => &["rds:DescribeDBClusterParameterGroups"],
        // A cluster backup standby: restored with its tags (the run's), a
        // lost answer judged by a read of the cluster; reprotect's snapshot
        // and its copy judged by a read of the snapshot.
        "rds:RestoreDBClusterFromSnapshot" => &[
            "rds:RestoreDBClusterFromSnapshot",
            "rds:AddTagsToResource",
            "rds:DescribeDBClusters",
        ],
        "rds:CreateDBClusterSnapshot" => &[
            "rds:CreateDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
        ],
        "rds:CopyDBClusterSnapshot" => &[
            "rds:CopyDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
        ],
        "rds:DescribeOptionGroups" => &["rds:DescribeOptionGroups"],
        "rds:DescribeOrderableDBInstanceOptions" => &["rds:DescribeOrderableDBInstanceOptions"],
        "kms:DescribeKey" => &["kms:DescribeKey"],
        "rds:StopDBInstanceAutomatedBackupsReplication" => &[
            "rds:StopDBInstanceAutomatedBackupsReplication",
            "rds:DescribeDBInstanceAutomatedBackups",
        ],
        // A lost answer is judged by a read of the backups replicated.
        "rds:StartDBInstanceAutomatedBackupsReplication" => &[
            "rds:StartDBInstanceAutomatedBackupsReplication",
            "rds:DescribeDBInstanceAutomatedBackups",
        ],
        "rds:DeleteDBInstance" => &["rds:DeleteDBInstance", "rds:DescribeDBInstances"],
        "autoscaling:DescribeAutoScalingGroups" => &["autoscaling:DescribeAutoScalingGroups"],
        "autoscaling:UpdateAutoScalingGroup" => &["autoscaling:UpdateAutoScalingGroup"],
        "autoscaling:CreateOrUpdateTags" => &["autoscaling:CreateOrUpdateTags"],
        "autoscaling:DeleteTags" => &["autoscaling:DeleteTags"],
        // Aurora global databases (`src/cloud/aws/aurora.rs`): a move whose
        // answer was lost is judged by a read of the global cluster; a
        // create, rename or detach by a read of the cluster.
        "rds:DescribeGlobalClusters" => &["rds:DescribeGlobalClusters"],
        "rds:DescribeDBClusters" => &["rds:DescribeDBClusters"],
        "rds:DescribeDBClusterSnapshots" => &["rds:DescribeDBClusterSnapshots"],
        "rds:SwitchoverGlobalCluster" => {
            &["rds:SwitchoverGlobalCluster", "rds:DescribeGlobalClusters"]
        }
        "rds:FailoverGlobalCluster" => &["rds:FailoverGlobalCluster", "rds:DescribeGlobalClusters"],
        "rds:RemoveFromGlobalCluster" => &["rds:RemoveFromGlobalCluster", "rds:DescribeDBClusters"],
        "rds:DeleteGlobalCluster" => &["rds:DeleteGlobalCluster", "rds:DescribeGlobalClusters"],
        "rds:CreateGlobalCluster" => &["rds:CreateGlobalCluster", "rds:DescribeGlobalClusters"],
        "rds:CreateDBCluster" => &["rds:CreateDBCluster", "rds:DescribeDBClusters"],
        "rds:ModifyDBCluster" => &["rds:ModifyDBCluster", "rds:DescribeDBClusters"],
        // A drill's copy: cloned with its tags (tags on create need
        // AddTagsToResource), its writer added with them, and removed
        // (its instances, then the cluster), each judged by a read.
        "rds:RestoreDBClusterToPointInTime" => &[
            "rds:RestoreDBClusterToPointInTime",
            "rds:AddTagsToResource",
            "rds:DescribeDBClusters",
        ],
        "rds:CreateDBInstance" => &[
            "rds:CreateDBInstance",
            "rds:AddTagsToResource",
            "rds:DescribeDBInstances",
        ],
        "rds:DeleteDBCluster" => &[
            "rds:DeleteDBCluster",
            "rds:DeleteDBInstance",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
        ],
        "eks:DescribeNodegroup" => &["eks:DescribeNodegroup"],
        "eks:UpdateNodegroupConfig" => &["eks:UpdateNodegroupConfig"],
        "eks:TagResource" => &["eks:TagResource"],
        "eks:UntagResource" => &["eks:UntagResource"],
        "ecs:DescribeServices" => &["ecs:DescribeServices"],
        "ecs:UpdateService" => &["ecs:UpdateService"],
        "ecs:TagResource" => &["ecs:TagResource"],
        "ecs:UntagResource" => &["ecs:UntagResource"],
        "cloudwatch:GetMetricData" => &["cloudwatch:GetMetricData"],
        "cloudwatch:DescribeAlarms" => &["cloudwatch:DescribeAlarms"],
        // Every object call may first locate its bucket (HeadBucket, which
        // IAM authorises as ListBucket).
        "s3:HeadBucket" | "s3:ListObjectsV2" => &["s3:ListBucket"],
        // put, replace_if and put_retained (evidence under Object Lock
        // retention headers).
        "s3:PutObject" => &["s3:ListBucket", "s3:PutObject", "s3:PutObjectRetention"],
        "s3:GetObject" => &["s3:ListBucket", "s3:GetObject"],
        "s3:DeleteObject" => &["s3:ListBucket", "s3:DeleteObject"],
        "s3:GetObjectLockConfiguration" => {
            &["s3:ListBucket", "s3:GetBucketObjectLockConfiguration"]
        }
        // bucket_state: located, then versioning and replication read.
        "s3:GetBucketReplication" => &[
            "s3:ListBucket",
            "s3:GetBucketVersioning",
            "s3:GetReplicationConfiguration",
        ],
        "rds:DescribePendingMaintenanceActions" => &["rds:DescribePendingMaintenanceActions"],
        "sts:GetCallerIdentity" => &["sts:GetCallerIdentity"],
        "sns:Publish" => &["sns:Publish"],
        "events:PutEvents" => &["events:PutEvents"],
        l if l.starts_with("gcs:") || l == "http:GET" || l == "dns:query" => return None,
        l if gcp_permissions(l).is_some() => return None,
        other => panic!(
            "the metered call {other} is not mapped to IAM actions: add it to iam_actions (tests/it/iam.rs) from what its adapter method sends"
        ),
    })
}

/// The Cloud Storage permissions one metered GCS call needs (`None`: not a
/// GCS call). The labels are coarser than the requests: `objects.insert`
/// stands for create-only writes and for replacing an object (a lease
/// renewal), which GCS authorises as a delete too; `buckets.get` for the
/// bucket's Object Lock and state reads (and for a `[[bucket]]` check's
/// read, which the reference plans do not have); the bucket probe is the
/// `objects.list` of one object it makes.
fn gcs_permissions(label: &str) -> Option<&'static [&'static str]> {
    Some(match label {
        "gcs:objects.insert" => &["storage.objects.create", "storage.objects.delete"],
        "gcs:objects.get" => &["storage.objects.get"],
        "gcs:objects.list" | "gcs:buckets.get" => &["storage.objects.list"],
        "gcs:objects.delete" => &["storage.objects.delete"],
        l if l.starts_with("gcs:") => panic!(
            "the metered call {l} is not mapped to GCS permissions: add it to gcs_permissions (tests/it/iam.rs)"
        ),
        _ => return None,
    })
}

/// The Google Cloud permissions one metered call to a GCP API needs
/// (`None`: not such a call), from Google's IAM permission reference for
/// each API (Cloud SQL's table of gcloud commands to permissions: an
/// operation read is `cloudsql.instances.get`, a listing
/// `cloudsql.instances.list`). `instances.switchover` has no permission of
/// its own in Google's list: it is taken as the pair's failover.
fn gcp_permissions(label: &str) -> Option<&'static [&'static str]> {
    Some(match label {
        "sqladmin:instances.get"
        | "sqladmin:instances.getLatestRecoveryTime"
        | "sqladmin:operations.get" => &["cloudsql.instances.get"],
        "sqladmin:operations.list" | "sqladmin:instances.list" => &["cloudsql.instances.list"],
        "sqladmin:instances.promoteReplica" => &["cloudsql.instances.promoteReplica"],
        "sqladmin:instances.switchover" => &[
            "cloudsql.instances.failover",
            "cloudsql.instances.promoteReplica",
        ],
        "sqladmin:instances.clone" => &["cloudsql.instances.clone"],
        // A backup standby: its backups listed, one restored into a new
        // instance (which creating needs too).
        "sqladmin:backups.list" => &["cloudsql.backupRuns.list"],
        "sqladmin:instances.restoreBackup" => &[
            "cloudsql.instances.restoreBackup",
            "cloudsql.instances.create",
            "cloudsql.backupRuns.get",
        ],
        "sqladmin:instances.patch" => &["cloudsql.instances.update"],
        "sqladmin:backups.insertBackup" => &["cloudsql.backupRuns.create"],
        "sqladmin:instances.delete" => &["cloudsql.instances.delete"],
        "monitoring:timeSeries.list" => &["monitoring.timeSeries.list"],
        "compute:regionInstanceGroupManagers.get"
        | "compute:regionInstanceGroupManagers.listManagedInstances" => {
            &["compute.instanceGroupManagers.get"]
        }
        "compute:regionInstanceGroupManagers.resize" => &["compute.instanceGroupManagers.update"],
        "compute:regionAutoscalers.get" => &["compute.autoscalers.get"],
        "compute:regionAutoscalers.patch" => &["compute.autoscalers.update"],
        "compute:regionOperations.get" => &["compute.regionOperations.get"],
        "run:services.get" => &["run.services.get"],
        "run:services.patch" => &["run.services.update"],
        "clouddns:managedZones.get" => &["dns.managedZones.get"],
        "clouddns:resourceRecordSets.list" => &["dns.resourceRecordSets.list"],
        "clouddns:changes.create" => &[
            "dns.changes.create",
            "dns.resourceRecordSets.create",
            "dns.resourceRecordSets.delete",
        ],
        "clouddns:changes.get" => &["dns.changes.get"],
        "clouddns:changes.list" => &["dns.changes.list"],
        l if ["sqladmin:", "monitoring:", "compute:", "run:", "clouddns:"]
            .iter()
            .any(|p| l.starts_with(p)) =>
        {
            panic!(
                "the metered call {l} is not mapped to GCP permissions: add it to gcp_permissions (tests/it/iam.rs)"
            )
        }
        _ => return None,
    })
}

/// Every GCP call drctl makes that changes something (each mapped to its
/// permissions by [`gcp_permissions`]).
const GCP_WRITES: [&str; 9] = [
    "sqladmin:instances.promoteReplica",
    "sqladmin:instances.switchover",
    "sqladmin:instances.clone",
    "sqladmin:instances.patch",
    "sqladmin:instances.delete",
    "compute:regionInstanceGroupManagers.resize",
    "compute:regionAutoscalers.patch",
    "run:services.patch",
    "clouddns:changes.create",
];

/// The Terraform resources that bind a GCP role to a member: in the
/// project (with or without a condition), on one Cloud Run service, on one
/// Cloud DNS managed zone.
const GCP_BINDINGS: [&str; 3] = [
    "google_project_iam_member",
    "google_cloud_run_v2_service_iam_member",
    "google_dns_managed_zone_iam_member",
];

/// Every permission of the custom roles granted to the `drctl` service
/// account (in the project, or on one of its resources).
fn granted_gcp_permissions(files: &[Body]) -> BTreeSet<String> {
    granted_gcp_permissions_of(files, "drctl")
}

/// Every permission of the custom roles granted to service account
/// `account` (its Terraform name) in the project.
fn granted_gcp_permissions_of(files: &[Body], account: &str) -> BTreeSet<String> {
    let member = format!("google_service_account.{account}.");
    let roles: BTreeSet<String> = GCP_BINDINGS
        .iter()
        .flat_map(|ty| blocks_of(files, "resource", ty))
        .filter(|b| attr(b.body(), "member").is_some_and(|m| m.to_string().contains(&member)))
        .filter_map(|b| attr(b.body(), "role").map(|r| r.to_string()))
        .collect();
    blocks_of(files, "resource", "google_project_iam_custom_role")
        .into_iter()
        .filter(|b| {
            roles
                .iter()
                .any(|r| r.contains(&format!("google_project_iam_custom_role.{}.", label(b))))
        })
        .flat_map(|b| strings(b.body(), "permissions"))
        .collect()
}

/// The Cloud Storage permissions of the predefined roles iam.tf grants
/// (Google's documentation of IAM roles for Cloud Storage; object
/// permissions only).
fn role_permissions(role: &str) -> &'static [&'static str] {
    match role {
        "roles/storage.objectCreator" => &["storage.objects.create"],
        "roles/storage.objectViewer" => &["storage.objects.get", "storage.objects.list"],
        "roles/storage.objectUser" | "roles/storage.objectAdmin" => &[
            "storage.objects.create",
            "storage.objects.delete",
            "storage.objects.get",
            "storage.objects.list",
            "storage.objects.update",
        ],
        other => panic!("role {other} granted to drctl: add its permissions to role_permissions"),
    }
}

/// Every Cloud Storage permission the `drctl` service account holds on
/// some bucket.
fn granted_gcs_permissions(files: &[Body]) -> BTreeSet<&'static str> {
    blocks_of(files, "resource", "google_storage_bucket_iam_member")
        .into_iter()
        .filter(|b| {
            attr(b.body(), "member")
                .is_some_and(|m| m.to_string().contains("google_service_account.drctl."))
        })
        .filter_map(|b| str_attr(b.body(), "role"))
        .flat_map(role_permissions)
        .copied()
        .collect()
}

/// The statements of the `drctl` policy document (plain and `dynamic`).
fn drctl_statements(files: &[Body]) -> Vec<&Body> {
    statements_of(files, "drctl")
}

/// The statements of the policy document `name` (plain and `dynamic`).
fn statements_of<'a>(files: &'a [Body], name: &str) -> Vec<&'a Body> {
    let document = blocks_of(files, "data", "aws_iam_policy_document")
        .into_iter()
        .find(|d| label(d) == name)
        .unwrap_or_else(|| {
            panic!("data \"aws_iam_policy_document\" \"{name}\" in terraform/iam.tf")
        });
    document
        .body()
        .blocks()
        .filter_map(|b| match b.identifier() {
            "statement" => Some(b.body()),
            "dynamic" if b.labels().first().map(|l| l.as_str()) == Some("statement") => {
                child(b.body(), "content")
            }
            _ => None,
        })
        .collect()
}

/// Every string of `key` in `body` (actions, resources, values).
fn strings(body: &Body, key: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(e) = attr(body, key) {
        collect_expr_strings(e, &mut out);
    }
    out
}

/// IAM's wildcard match (`*` any run, `?` one character), as `StringLike`
/// and action patterns use it; case-insensitive when `fold`.
pub(crate) fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if fold {
        (
            pattern.to_ascii_lowercase().chars().collect(),
            text.to_ascii_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The actions the `drctl` policy allows (patterns as written).
fn allowed_actions(files: &[Body]) -> BTreeSet<String> {
    allowed_actions_of(files, "drctl")
}

/// The actions the policy document `name` allows (patterns as written).
fn allowed_actions_of(files: &[Body], name: &str) -> BTreeSet<String> {
    statements_of(files, name)
        .into_iter()
        .filter(|s| str_attr(s, "effect") != Some("Deny"))
        .flat_map(|s| strings(s, "actions"))
        .collect()
}

/// Which of `actions` no `Allow` statement grants.
fn not_allowed<'a>(allowed: &BTreeSet<String>, actions: &[&'a str]) -> Vec<&'a str> {
    actions
        .iter()
        .filter(|a| !allowed.iter().any(|p| glob(p, a, true)))
        .copied()
        .collect()
}

/// Issue 39: an observer cannot fail over alone. The role observers run
/// with where a starter is named (`drctl_observer`) is refused every write
/// the failover role (`drctl`) allows outside the state, notifications and
/// identity: no promotion, record change, resize or delete; and in the
/// state bucket it writes only under `watch/`, `notices/` and the probe.
#[test]
fn an_observers_role_is_refused_every_write_of_a_failover() {
    let files = parse_terraform();
    let observer = allowed_actions_of(&files, "drctl_observer");
    let reads = |a: &str| {
        let verb = a.split(':').nth(1).unwrap_or("");
        ["Describe", "List", "Get"]
            .iter()
            .any(|p| verb.starts_with(p))
    };
    let beside = |a: &str| {
        ["s3:", "sns:", "events:", "sts:"]
            .iter()
            .any(|p| a.to_ascii_lowercase().starts_with(p))
    };
    let writes: Vec<String> = (allowed_actions(&files).into_iter())
        .filter(|a| !reads(a) && !beside(a))
        .collect();
    assert!(
        writes.iter().any(|a| a == "rds:PromoteReadReplica")
            && writes
                .iter()
                .any(|a| a == "route53:ChangeResourceRecordSets"),
        "the failover role's writes: {writes:?}"
    );
    for a in &writes {
        assert!(
            !observer.iter().any(|p| glob(p, a, true)),
            "the observer role allows {a}, a write of a failover"
        );
    }
    for a in &observer {
        assert!(
            reads(a) || beside(a),
            "the observer role allows {a}, which is not a read"
        );
    }
    // Its state writes: only its own places.
    for s in statements_of(&files, "drctl_observer") {
        let actions = strings(s, "actions");
        if actions
            .iter()
            .any(|a| a == "s3:PutObject" || a == "s3:DeleteObject")
        {
            for r in strings(s, "resources") {
                assert!(
                    ["/watch/*", "/notices/*", "/probe/*"]
                        .iter()
                        .any(|end| r.ends_with(end)),
                    "the observer role writes {r}"
                );
            }
        }
    }
}

/// Issue 39: the GCP observer's account (`drctl_observer`, iam.tf) holds
/// every read `watch` makes of a GCP plan (a Cloud SQL copy and its lag, a
/// group and its autoscaler, a service's floor, a Cloud DNS record) and no
/// permission a write of a failover maps to: one observer host taken over
/// cannot promote, switch over, resize, raise a floor or change a record.
/// In the state it writes only its own places.
#[test]
fn a_gcp_observers_role_reads_what_watch_reads_and_writes_nothing() {
    let files = parse_terraform();
    let observer = granted_gcp_permissions_of(&files, "drctl_observer");
    let reads = [
        "sqladmin:instances.get",
        "monitoring:timeSeries.list",
        "compute:regionInstanceGroupManagers.get",
        "compute:regionInstanceGroupManagers.listManagedInstances",
        "compute:regionAutoscalers.get",
        "run:services.get",
        "clouddns:managedZones.get",
        "clouddns:resourceRecordSets.list",
    ];
    for label in reads {
        for p in gcp_permissions(label).expect("a GCP call") {
            assert!(
                observer.contains(*p),
                "the observer cannot {label}: {p} is not granted"
            );
        }
    }
    for label in GCP_WRITES {
        for p in gcp_permissions(label).expect("a GCP call") {
            assert!(
                !observer.contains(*p),
                "the observer may {label}: {p} is granted"
            );
        }
    }
    for p in &observer {
        let verb = p.rsplit('.').next().unwrap_or_default();
        assert!(
            ["get", "list"].contains(&verb),
            "the observer holds {p}, which is not a read"
        );
    }
    // Its writes in the state: its own places only, by their conditions.
    let member = "google_service_account.drctl_observer.";
    for b in blocks_of(&files, "resource", "google_storage_bucket_iam_member") {
        let body = b.body();
        if !attr(body, "member").is_some_and(|m| m.to_string().contains(member)) {
            continue;
        }
        let role = str_attr(body, "role").unwrap_or_default().to_string();
        if role == "roles/storage.objectViewer" {
            continue;
        }
        let condition = child(body, "condition")
            .and_then(|c| attr(c, "expression"))
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("the observer holds {role} on the whole bucket"));
        for place in condition.split("||") {
            assert!(
                ["/watch/", "/notices/", "/probe/"]
                    .iter()
                    .any(|p| place.contains(p)),
                "the observer's {role} reaches {place}"
            );
        }
    }
}

#[test]
fn the_iam_glob_matches_as_iam_does() {
    assert!(glob("s3:Get*", "s3:GetObject", true));
    assert!(glob("S3:GETOBJECT", "s3:GetObject", true));
    assert!(!glob("s3:Get*", "s3:PutObject", true));
    assert!(glob(
        "drill-*.api.example.com",
        "drill-x.api.example.com",
        false
    ));
    assert!(glob(
        "drill-*.checkout.example.com",
        "drill-20261125t0000z-ab12.drctl-failover-1.checkout.example.com",
        false
    ));
    assert!(!glob("drill-*.api.example.com", "api.example.com", false));
    assert!(!glob("api.example.com", "api.example.com.evil", false));
    assert!(glob("a?c", "abc", false) && !glob("a?c", "ac", false));
}

/// The record names a plan's runs write: each `[[dns]]` record, each level
/// of a data-plane record's failover chain (as `dns prepare` and the
/// failover write them), and the drill copies of all of those, as drctl's
/// own naming functions make them; normalized as Route 53 does for the
/// condition key (lower case, no trailing dot).
fn written_names(plan: &drctl::plan::Plan) -> BTreeSet<String> {
    use drctl::plan::spec::SwitchMode;
    use drctl::steps::{dns_setup, drill_names};
    let run = "20261125T020000Z-drill-ab12";
    let mut names = BTreeSet::new();
    for d in &plan.spec.dns {
        let mut own: BTreeSet<String> = BTreeSet::from([d.name.clone()]);
        if d.switch == SwitchMode::HealthCheck {
            let checks = BTreeMap::new();
            own.extend(
                dns_setup::failover_records(d, plan.regions(), &checks)
                    .into_iter()
                    .map(|r| r.name),
            );
        }
        for n in own {
            names.insert(drill_names::record_name(run, &n));
            names.insert(n);
        }
    }
    names
        .into_iter()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

/// Whether `name` passes the record-name condition of `statement` (none:
/// every name does).
fn condition_allows(statement: &Body, name: &str) -> Result<bool, String> {
    let conditions: Vec<&Block> = statement
        .blocks()
        .filter(|b| b.identifier() == "condition")
        .filter(|b| {
            str_attr(b.body(), "variable")
                == Some("route53:ChangeResourceRecordSetsNormalizedRecordNames")
        })
        .collect();
    for c in conditions {
        let test = str_attr(c.body(), "test").unwrap_or("");
        let values = strings(c.body(), "values");
        let ok = match test {
            "ForAllValues:StringEquals" => values.contains(name),
            "ForAllValues:StringLike" => values.iter().any(|v| glob(v, name, false)),
            other => return Err(format!("a record-name condition of test {other}")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Regression (issue 39): the GCP role was project-wide, so drctl's
/// service account could delete any Cloud SQL instance of the project, a
/// production primary included; and it lacked `cloudsql.instances.update`,
/// which reprotect's patch needs. A delete is granted only under an IAM
/// Condition naming a drill's copies (`drill-*`), by a role that grants
/// nothing else; the recovery role deletes nothing and may update.
#[test]
fn regression_the_gcp_role_could_delete_any_cloud_sql_instance() {
    let files = parse_terraform();
    let roles = blocks_of(&files, "resource", "google_project_iam_custom_role");
    let permissions = |role: &Block| {
        let mut out = BTreeSet::new();
        if let Some(e) = attr(role.body(), "permissions") {
            collect_expr_strings(e, &mut out);
        }
        out
    };
    let bindings = blocks_of(&files, "resource", "google_project_iam_member");
    let mut deleting = 0;
    for role in &roles {
        let granted = permissions(role);
        let bound: Vec<&&Block> = (bindings.iter())
            .filter(|b| {
                attr(b.body(), "role").is_some_and(|r| {
                    r.to_string()
                        .contains(&format!("google_project_iam_custom_role.{}.", label(role)))
                })
            })
            .collect();
        if !granted.contains("cloudsql.instances.delete") {
            continue;
        }
        deleting += 1;
        assert_eq!(
            granted.len(),
            1,
            "{}: a role that deletes grants nothing else: {granted:?}",
            label(role)
        );
        assert!(!bound.is_empty(), "{} is bound to no one", label(role));
        for b in bound {
            let condition = child(b.body(), "condition")
                .and_then(|c| attr(c, "expression"))
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                condition.contains("/instances/drill-") && condition.contains("startsWith"),
                "{}: a delete bound without the drill-* condition: {condition:?}",
                label(b)
            );
        }
    }
    assert_eq!(deleting, 1, "one role deletes Cloud SQL instances");
    assert!(granted_gcp_permissions(&files).contains("cloudsql.instances.update"));
}

/// Every record name the reference plans' failovers, chains and drills
/// write is allowed by the condition on `ChangeResourceRecordSets`. (Issue
/// 29: the condition named three records and none of the drill or chain
/// names, so every drill and every data-plane setup was refused.)
#[test]
fn regression_the_record_name_condition_excluded_drill_and_chain_names() {
    let files = parse_terraform();
    let statements: Vec<&Body> = drctl_statements(&files)
        .into_iter()
        .filter(|s| str_attr(s, "effect") != Some("Deny"))
        .filter(|s| {
            strings(s, "actions")
                .iter()
                .any(|a| glob(a, "route53:ChangeResourceRecordSets", true))
        })
        .collect();
    assert!(
        !statements.is_empty(),
        "no statement allows route53:ChangeResourceRecordSets"
    );
    let loaded = drctl::plan::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("plans")]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let mut checked = 0;
    let mut refused = Vec::new();
    for plan in &loaded.plans {
        for name in written_names(plan) {
            checked += 1;
            let ok = statements
                .iter()
                .any(|s| condition_allows(s, &name).unwrap_or_else(|e| panic!("{e}")));
            if !ok {
                refused.push(format!("  {name} (plan {})", plan.name()));
            }
        }
    }
    // payments, ledger and checkout, with checkout's chain level and every
    // drill copy.
    assert!(checked >= 10, "only {checked} names: did the plans change?");
    assert!(
        refused.is_empty(),
        "record names drctl writes that terraform/iam.tf refuses:\n{}",
        refused.join("\n")
    );
}

/// A drctl command of the scenario, run with the call log.
struct Logged<'a> {
    fx: &'a Fixture,
    config: PathBuf,
    log: PathBuf,
    /// The observer `iam`'s secret key (`watch --once` signs its report).
    observer_key: String,
}

impl Logged<'_> {
    /// Runs `args` (exit `code`) and returns the labels it called.
    async fn run(&self, args: &[&str], code: i32) -> (Ran, BTreeSet<String>) {
        let _ = std::fs::remove_file(&self.log);
        let config = self.config.display().to_string();
        let log = self.log.display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        let ran = self
            .fx
            .drctl_with(
                &all,
                &[
                    ("DRCTL_CALL_LOG", log.as_str()),
                    ("DRCTL_OBSERVER_KEY", self.observer_key.as_str()),
                ],
                &world::endpoints_file(),
            )
            .await;
        assert_eq!(
            ran.code,
            Some(code),
            "drctl {}:\n{}",
            args.join(" "),
            ran.all()
        );
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let labels = text
            .lines()
            .filter_map(|l| l.split('\t').next())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        (ran, labels)
    }
}

/// Appends `text` to the plan file `name` in `dir`.
fn append(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    let mut t = std::fs::read_to_string(&path).expect("plan file");
    t.push_str(text);
    std::fs::write(path, t).expect("write plan");
}

/// The comparison itself: the calls of a day's work, each allowed by the
/// policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_tf_allows_every_call_of_a_failover_a_drill_dns_prepare_notify_and_watch() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("iam", Some("s3")).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "checkout.toml", &fx.suffix);
    crate::cli::add_suffixed_plan(fx.plans.path(), "orders.toml", &fx.suffix);
    // The plans on GCP: orders-gcp seeded for this world, storefront's
    // resources by the fixture's seed.
    crate::gcp_sql::seed(&fx, 1.0).await;
    crate::mixed::write_plan_to(&fx, fx.plans.path());
    // The backup standbys: archive (RDS, its backups replicated by the
    // fixture's seed) and archive-gcp (Cloud SQL, a backup kept in us-east4).
    crate::cli::add_suffixed_plan(fx.plans.path(), "archive.toml", &fx.suffix);
    crate::backups::archive_gcp(&fx).await;
    append(
        fx.plans.path(),
        "ledger.toml",
        &format!(
            "\n[watch]\nmode = \"observe\"\ninterval = \"1s\"\nalarms = {{ {HOME} = [\"ledger-5xx-{}\"] }}\n",
            fx.suffix
        ),
    );
    // Notifications through SNS and EventBridge, from drctl.toml.
    let sdk = world::sdk().await;
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(sdk.base())
            .region(aws_sdk_sns::config::Region::new(STANDBY))
            .endpoint_url(world::vars()["AWS_ENDPOINT_URL_SNS"].clone())
            .build(),
    );
    let topic = sns
        .create_topic()
        .name(format!("drctl-{}", fx.suffix))
        .send()
        .await
        .expect("topic");
    let topic_arn = topic.topic_arn().expect("topic arn").to_string();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("drctl.toml");
    // The one observer, listed with its own key.
    let observer = drctl::sign::SecretKey::generate();
    std::fs::write(
        &config,
        format!(
            "[[notify]]\nname = \"topic\"\nkind = \"sns\"\ntopic_arn = \"{}\"\n\n[[notify]]\nname = \"bus\"\nkind = \"eventbridge\"\n\n[[watch.observers]]\nname = \"iam\"\nkeys = [\"{}\"]\n",
            topic_arn.replace(STANDBY, "{region}"),
            observer.public()
        ),
    )
    .expect("drctl.toml");
    let logged = Logged {
        fx: &fx,
        config,
        log: dir.path().join("calls.log"),
        observer_key: observer.to_text(),
    };

    let mut by_command: Vec<(String, BTreeSet<String>)> = Vec::new();
    for (args, code) in [
        (vec!["dns", "prepare", "--plan", "checkout"], 0),
        (vec!["drill", "--plan", "payments", "--to", STANDBY], 0),
        (vec!["drill", "--plan", "checkout", "--to", HOME], 0),
        // An Aurora global database and EKS node groups: a drill (a clone,
        // a raised node group), then a failover (a managed failover).
        (vec!["drill", "--plan", "orders", "--to", STANDBY], 0),
        (
            vec![
                "failover",
                "--plan",
                "orders",
                "--to",
                STANDBY,
                "--approve",
                "iam test",
            ],
            0,
        ),
        (
            vec![
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "iam test",
            ],
            0,
        ),
        // On GCP: orders-gcp (Cloud SQL, a managed instance group, Cloud
        // Run, Cloud DNS) and storefront (both clouds), each drilled, then
        // failed over.
        (vec!["drill", "--plan", "orders-gcp", "--to", "us-east4"], 0),
        (
            vec![
                "failover",
                "--plan",
                "orders-gcp",
                "--to",
                "us-east4",
                "--approve",
                "iam test",
            ],
            0,
        ),
        (vec!["drill", "--plan", "storefront", "--to", "us-east4"], 0),
        (
            vec![
                "failover",
                "--plan",
                "storefront",
                "--to",
                "us-east4",
                "--approve",
                "iam test",
            ],
            0,
        ),
        // The backup standbys: restored by a drill and by a failover, then
        // reprotected (RDS: the old primary's replication stopped, it
        // parked, the new primary's backups replicated home; Cloud SQL:
        // the new primary's backup location set home, a backup taken).
        (vec!["drill", "--plan", "archive", "--to", STANDBY], 0),
        (vec!["failover", "--plan", "archive", "--to", STANDBY], 0),
        (vec!["reprotect", "--plan", "archive"], 0),
        (
            vec!["drill", "--plan", "archive-gcp", "--to", "us-east4"],
            0,
        ),
        (
            vec!["failover", "--plan", "archive-gcp", "--to", "us-east4"],
            0,
        ),
        // Its backups kept at home from then on, one taken there.
        (vec!["reprotect", "--plan", "archive-gcp"], 0),
        (vec!["notify", "test", "--region", STANDBY], 0),
        (
            vec![
                "watch",
                "--once",
                "--observer",
                "iam",
                "--plan",
                "ledger",
                "--output",
                "json",
            ],
            0,
        ),
    ] {
        let (_, labels) = logged.run(&args, code).await;
        eprintln!("drctl {}: {labels:?}", args.join(" "));
        by_command.push((args.join(" "), labels));
    }

    // The scenario exercised what the review found missing, so that a
    // pass means something.
    let all: BTreeSet<&str> = by_command
        .iter()
        .flat_map(|(_, l)| l.iter().map(String::as_str))
        .collect();
    for wanted in [
        "autoscaling:CreateOrUpdateTags",
        "autoscaling:DeleteTags",
        "rds:FailoverGlobalCluster",
        "rds:RestoreDBClusterToPointInTime",
        "rds:DeleteDBCluster",
        "eks:UpdateNodegroupConfig",
        "eks:TagResource",
        "eks:UntagResource",
        "ecs:UpdateService",
        "ecs:TagResource",
        "ecs:UntagResource",
        "rds:DeleteDBInstance",
        "route53:CreateHealthCheck",
        "route53:DeleteHealthCheck",
        "route53:ListHealthChecks",
        "sns:Publish",
        "events:PutEvents",
        "cloudwatch:DescribeAlarms",
        "s3:DeleteObject",
        "rds:PromoteReadReplica",
        "route53:ChangeResourceRecordSets",
        "gcs:objects.insert",
        "sqladmin:instances.promoteReplica",
        "sqladmin:instances.clone",
        "sqladmin:instances.delete",
        "compute:regionInstanceGroupManagers.resize",
        "run:services.patch",
        "clouddns:changes.create",
    ] {
        assert!(all.contains(wanted), "no command called {wanted}: {all:?}");
    }

    let files = parse_terraform();
    let allowed = allowed_actions(&files);
    // An observer that may not start runs with the read-only observer
    // role: every call `watch --once` made is allowed there too.
    let observer = allowed_actions_of(&files, "drctl_observer");
    for (command, labels) in by_command.iter().filter(|(c, _)| c.starts_with("watch")) {
        for label in labels {
            // A `PutObject` is mapped with its retention for evidence; an
            // observer writes no evidence, and state objects carry none.
            let actions: Vec<&str> = (iam_actions(label).unwrap_or(&[]).iter())
                .filter(|a| **a != "s3:PutObjectRetention")
                .copied()
                .collect();
            let lacking = not_allowed(&observer, &actions);
            assert!(
                lacking.is_empty(),
                "drctl_observer does not allow {lacking:?} ({label} in `drctl {command}`)"
            );
        }
    }
    let granted = granted_gcs_permissions(&files);
    let granted_gcp = granted_gcp_permissions(&files);
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (command, labels) in &by_command {
        for label in labels {
            let gcs = gcs_permissions(label).unwrap_or(&[]);
            let gcp = gcp_permissions(label).unwrap_or(&[]);
            let lacking = not_allowed(&allowed, iam_actions(label).unwrap_or(&[]))
                .into_iter()
                .chain(gcs.iter().copied().filter(|p| !granted.contains(p)))
                .chain(gcp.iter().copied().filter(|p| !granted_gcp.contains(*p)));
            for action in lacking {
                missing
                    .entry(action)
                    .or_default()
                    .insert(format!("{label} in `drctl {command}`"));
            }
        }
    }
    // And the GCP role holds nothing drctl does not call: the day's calls,
    // and those of paths the day does not take (a switchover, a group with
    // an autoscaler, a resumed Cloud DNS change, reprotect's patch of a
    // Cloud SQL DR replica).
    let needed: BTreeSet<&str> = (by_command.iter())
        .flat_map(|(_, l)| l.iter())
        .map(String::as_str)
        .chain([
            "sqladmin:instances.switchover",
            "sqladmin:instances.patch",
            "compute:regionAutoscalers.get",
            "compute:regionAutoscalers.patch",
            "clouddns:changes.list",
        ])
        .filter_map(gcp_permissions)
        .flatten()
        .copied()
        .collect();
    let extra: Vec<&String> = (granted_gcp.iter())
        .filter(|p| !needed.contains(p.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "terraform/iam.tf's drctl_recovery role grants what drctl never calls: {extra:?}"
    );
    assert!(
        missing.is_empty(),
        "terraform/iam.tf does not allow actions drctl calls:\n{}",
        missing
            .iter()
            .map(|(a, by)| format!(
                "  {a}: {}",
                by.iter().cloned().collect::<Vec<_>>().join(", ")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One grant of a custom role to the `drctl` service account: the role's
/// permissions and what it reaches.
struct GcpGrant {
    /// The binding's Terraform name, for messages.
    binding: String,
    permissions: BTreeSet<String>,
    reach: Reach,
}

/// What a grant reaches, as IAM reads it.
enum Reach {
    /// Every resource of the project: a project binding without a condition.
    Project,
    /// What one of these IAM Conditions admits (one per `for_each`
    /// instance, evaluated).
    Conditions(Vec<String>),
    /// These resources alone: a binding on the resource itself.
    Names(Vec<String>),
}

impl Reach {
    /// Whether it reaches the resource `name` of type `rtype`.
    fn admits(&self, rtype: &str, name: &str) -> bool {
        match self {
            Reach::Project => true,
            Reach::Conditions(all) => all.iter().any(|c| condition_admits(c, rtype, name)),
            Reach::Names(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Whether the IAM Condition `cel` admits resource `name` of type `rtype`:
/// alternatives (`||`) of terms (`&&`), each `resource.type == "T"`,
/// `resource.name == "N"` or `resource.name.startsWith("P")`, which is all
/// iam.tf writes. A term of any other form fails the test: it cannot judge
/// it.
fn condition_admits(cel: &str, rtype: &str, name: &str) -> bool {
    let unquote = |v: &str| v.trim().trim_matches('"').to_string();
    cel.split("||").any(|alternative| {
        alternative.split("&&").all(|term| {
            let t = term
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            if let Some(v) = t.strip_prefix("resource.type ==") {
                unquote(v) == rtype
            } else if let Some(v) = t.strip_prefix("resource.name ==") {
                unquote(v) == name
            } else if let Some(v) = t.strip_prefix("resource.name.startsWith(") {
                name.starts_with(&unquote(v.trim_end_matches(')')))
            } else {
                panic!("a condition term this test cannot judge: {t:?} in {cel:?}")
            }
        })
    })
}

/// The field `key` of the object `v` (null when there is none).
fn field<'a>(v: &'a hcl::Value, key: &str) -> &'a hcl::Value {
    static NULL: hcl::Value = hcl::Value::Null;
    v.as_object().and_then(|m| m.get(key)).unwrap_or(&NULL)
}

/// Terraform's `toset`, as far as the grants' `for_each` need it.
fn toset(args: hcl::eval::FuncArgs) -> Result<hcl::Value, String> {
    Ok(args[0].clone())
}

/// Every grant of a custom role to the `drctl` service account, each
/// binding's `for_each`, condition and resource evaluated with `vars`
/// (`var.*`) as Terraform would.
fn gcp_grants(files: &[Body], vars: &hcl::Value) -> Vec<GcpGrant> {
    use hcl::eval::{Context, Evaluate, FuncDef, ParamType};
    let mut ctx = Context::new();
    ctx.declare_var("var", vars.clone());
    ctx.declare_func(
        "toset",
        FuncDef::builder().param(ParamType::Any).build(toset),
    );
    let roles = blocks_of(files, "resource", "google_project_iam_custom_role");
    let project = field(vars, "gcp_project")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut grants = Vec::new();
    for ty in GCP_BINDINGS {
        for b in blocks_of(files, "resource", ty) {
            let body = b.body();
            if !attr(body, "member")
                .is_some_and(|m| m.to_string().contains("google_service_account.drctl."))
            {
                continue;
            }
            let role = attr(body, "role")
                .map(|r| r.to_string())
                .unwrap_or_default();
            let Some(custom) = roles
                .iter()
                .find(|r| role.contains(&format!("google_project_iam_custom_role.{}.", label(r))))
            else {
                continue;
            };
            // Each instance of the binding: (each.key, each.value).
            let instances: Vec<hcl::Value> = match attr(body, "for_each") {
                None => vec![hcl::Value::Null],
                Some(e) => match e.evaluate(&ctx).expect("for_each evaluates") {
                    hcl::Value::Array(items) => items,
                    hcl::Value::Object(map) => map.into_values().collect(),
                    other => panic!("{}: for_each is {other:?}", label(b)),
                },
            };
            let at = |each: &hcl::Value, key: &str| -> String {
                let mut c = ctx.clone();
                c.declare_var("each", hcl::value!({ value = (each.clone()) }));
                let v = attr(body, key).map(|e| e.evaluate(&c).expect("evaluates"));
                v.and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_else(|| panic!("{}: no {key}", label(b)))
            };
            let condition = child(body, "condition").and_then(|c| attr(c, "expression"));
            let reach = match (ty, condition) {
                ("google_project_iam_member", None) => Reach::Project,
                ("google_project_iam_member", Some(e)) => Reach::Conditions(
                    (instances.iter())
                        .map(|each| {
                            let mut c = ctx.clone();
                            c.declare_var("each", hcl::value!({ value = (each.clone()) }));
                            let v = e.evaluate(&c).expect("the condition evaluates");
                            v.as_str().expect("a string").to_string()
                        })
                        .collect(),
                ),
                ("google_cloud_run_v2_service_iam_member", _) => Reach::Names(
                    (instances.iter())
                        .map(|each| {
                            let (l, n) = (at(each, "location"), at(each, "name"));
                            format!("projects/{project}/locations/{l}/services/{n}")
                        })
                        .collect(),
                ),
                _ => Reach::Names(
                    (instances.iter())
                        .map(|each| {
                            let zone = at(each, "managed_zone");
                            format!("projects/{project}/managedZones/{zone}")
                        })
                        .collect(),
                ),
            };
            grants.push(GcpGrant {
                binding: format!("{ty}.{}", label(b)),
                permissions: strings(custom.body(), "permissions"),
                reach,
            });
        }
    }
    grants
}

/// The plans' GCP resources a write of each kind is made on, as IAM names
/// them (`project` the plans' project), from the reference plans.
fn gcp_plan_targets(project: &str) -> Vec<(&'static str, &'static str, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/gcp");
    let loaded = drctl::plan::load(&[dir]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let sql = "sqladmin.googleapis.com/Instance";
    let mut out = Vec::new();
    for plan in &loaded.plans {
        let s = &plan.spec;
        for c in &s.cloud_sql {
            assert_eq!(c.project, project);
            for name in c.regions.values() {
                for p in ["promoteReplica", "failover", "update", "clone"] {
                    let perm: &'static str = Box::leak(format!("cloudsql.instances.{p}").into());
                    out.push((perm, sql, format!("projects/{project}/instances/{name}")));
                }
            }
        }
        for g in &s.instance_group {
            for (region, name) in &g.regions {
                let at =
                    format!("projects/{project}/regions/{region}/instanceGroupManagers/{name}");
                out.push(("compute.instanceGroupManagers.update", "", at));
            }
        }
        for r in &s.cloud_run {
            for (region, name) in &r.regions {
                let at = format!("projects/{project}/locations/{region}/services/{name}");
                out.push(("run.services.update", "", at));
            }
        }
        for d in &s.cloud_dns {
            let at = format!("projects/{project}/managedZones/{}", d.zone);
            for p in [
                "dns.changes.create",
                "dns.resourceRecordSets.create",
                "dns.resourceRecordSets.delete",
            ] {
                out.push((p, "", at.clone()));
            }
        }
    }
    out
}

/// Regression (issue 39): the GCP recovery role was granted project-wide,
/// so drctl's service account could promote, patch or clone any Cloud SQL
/// instance of the project, resize any group, update any Cloud Run service
/// and change any managed zone's records. Each write a day's work makes is
/// now granted on the plans' resources alone (`var.gcp_plan_resources`,
/// whose default is exactly the reference plans' resources): every binding
/// that grants a write is evaluated as Terraform would (its `for_each`,
/// its IAM Condition, the resource it is made on), and must reach each of
/// the plans' resources and none besides.
#[test]
fn regression_the_gcp_roles_writes_were_project_wide() {
    let files = parse_terraform();
    let variable = blocks_of(&files, "variable", "gcp_plan_resources");
    let default = variable
        .first()
        .and_then(|v| attr(v.body(), "default"))
        .expect("variable gcp_plan_resources has a default");
    let resources = {
        use hcl::eval::{Context, Evaluate};
        default
            .evaluate(&Context::new())
            .expect("a literal default")
    };
    let project = "drctl-emu";
    let vars = hcl::value!({
        gcp_project = (project)
        gcp_plan_resources = (resources.clone())
    });
    let grants = gcp_grants(&files, &vars);
    let write_permissions: BTreeSet<&str> = GCP_WRITES
        .iter()
        .flat_map(|l| gcp_permissions(l).expect("a GCP call").iter().copied())
        .collect();
    let holding = |p: &str| -> Vec<&GcpGrant> {
        grants
            .iter()
            .filter(|g| g.permissions.contains(p))
            .collect()
    };
    // No write is granted project-wide.
    for p in &write_permissions {
        let by = holding(p);
        assert!(!by.is_empty(), "{p} is granted by no binding");
        for g in by {
            assert!(
                !matches!(g.reach, Reach::Project),
                "{} grants {p} on the whole project",
                g.binding
            );
        }
    }
    // Each of the plans' resources is reached by each write it needs...
    let mut targets = gcp_plan_targets(project);
    let groups = field(&resources, "instance_groups")
        .as_array()
        .expect("groups");
    for g in groups {
        let text = |k| field(g, k).as_str().unwrap_or_default();
        let (region, autoscaler) = (text("region"), text("autoscaler"));
        let at = format!("projects/{project}/regions/{region}/autoscalers/{autoscaler}");
        targets.push(("compute.autoscalers.update", "", at));
    }
    for (p, rtype, name) in &targets {
        assert!(
            holding(p).iter().any(|g| g.reach.admits(rtype, name)),
            "{p} is not granted on the plans' {name}"
        );
    }
    // ...and nothing besides: another instance, group, autoscaler,
    // service or zone of the project.
    let outsiders = [
        (
            "sqladmin.googleapis.com/Instance",
            format!("projects/{project}/instances/billing-prod"),
        ),
        (
            "sqladmin.googleapis.com/Instance",
            format!("projects/{project}/instances/orders-sql-old"),
        ),
        (
            "",
            format!("projects/{project}/regions/us-central1/instanceGroupManagers/billing"),
        ),
        (
            "",
            format!("projects/{project}/regions/us-central1/autoscalers/billing"),
        ),
        (
            "",
            format!("projects/{project}/locations/us-central1/services/billing-api"),
        ),
        ("", format!("projects/{project}/managedZones/billing-zone")),
        (
            "sqladmin.googleapis.com/Instance",
            "projects/other-project/instances/orders-sql".to_string(),
        ),
    ];
    for p in &write_permissions {
        for (rtype, name) in &outsiders {
            for g in holding(p) {
                assert!(
                    !g.reach.admits(rtype, name),
                    "{} grants {p} on {name}, which no plan names",
                    g.binding
                );
            }
        }
    }
    // The delete reaches a drill's copies alone, never a plan's instance.
    let sql = "sqladmin.googleapis.com/Instance";
    let drill = format!("projects/{project}/instances/drill-20261126t1000-orders-sql");
    let delete = holding("cloudsql.instances.delete");
    assert!(delete.iter().any(|g| g.reach.admits(sql, &drill)));
    for (_, _, name) in targets.iter().filter(|t| t.1 == sql) {
        assert!(
            !delete.iter().any(|g| g.reach.admits(sql, name)),
            "a plan's instance {name} may be deleted"
        );
    }
    // The variable lists the plans' resources and nothing more.
    let listed = |key: &str| -> BTreeSet<String> {
        (field(&resources, key).as_array().expect(key).iter())
            .map(|v| match v {
                hcl::Value::String(s) => s.clone(),
                o => {
                    let text = |k| field(o, k).as_str().unwrap_or_default();
                    format!("{}/{}", text("region"), text("name"))
                }
            })
            .collect()
    };
    let named = |prefix: &str| -> BTreeSet<String> {
        (targets.iter())
            .filter_map(|(_, _, n)| n.strip_prefix(&format!("projects/{project}/{prefix}")))
            .map(|rest| {
                let parts: Vec<&str> = rest.split('/').collect();
                match parts.as_slice() {
                    [one] => one.to_string(),
                    [region, _, name] => format!("{region}/{name}"),
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    };
    assert_eq!(listed("sql_instances"), named("instances/"));
    assert_eq!(listed("dns_zones"), named("managedZones/"));
    let groups: BTreeSet<String> = named("regions/")
        .into_iter()
        .filter(|g| !g.contains("autoscalers"))
        .collect();
    assert_eq!(listed("instance_groups"), groups);
    assert_eq!(listed("run_services"), named("locations/"));
}
