//! RDS: instances, cross-region read replicas, promotion, point-in-time restore.
//!
//! # How the role of an instance is decided
//!
//! Real RDS clears `ReadReplicaSourceDBInstanceIdentifier` once
//! `PromoteReadReplica` has run, and removes the instance from its source's
//! `ReadReplicaDBInstanceIdentifiers`. moto 5.x (measured with 5.2.5) does
//! *neither*: after promotion the promoted instance still reports its source,
//! and the source still lists it among its replicas (moto only flips an
//! internal `is_replica` flag that no API returns). The RDS API of moto thus
//! holds no trace of a promotion at all.
//!
//! So that the adapter reports the truth on both without an emulator branch,
//! an instance that reports a source is a replica only when all of these hold:
//!
//! 1. it does not carry the tag [`PROMOTED_TAG`] naming that same source:
//!    [`promote_replica`](crate::cloud::Database::promote_replica) writes this
//!    tag right after a successful promotion (on AWS it is redundant with the
//!    cleared source, and it doubles as an audit trail in the console);
//! 2. the source still exists (a replica whose source is gone is standalone);
//! 3. the source still lists this instance (by id, or by ARN for a
//!    cross-region replica) among its read replicas.
//!
//! Criteria 2 and 3 are read only for a source in the **same region** as
//! the instance. A cross-region replica's source lives in another region,
//! typically the home region, which during an outage is the one that does
//! not answer (refuses, or hangs until a timeout): a describe of the standby
//! must never wait for it. So for a cross-region source the replica's own
//! report and the tag decide. What that leaves on moto: a cross-region
//! replica promoted *outside* drctl still reads as a replica (real RDS
//! clears the source, so on AWS the answer is right).
//!
//! # Deleting
//!
//! moto (5.2.5) removes a deleted instance at once (RDS shows `deleting`
//! for a while), and a deleted *same-region* replica leaves its source's
//! `ReadReplicaDBInstanceIdentifiers`. Deleting a *cross-region* replica,
//! moto removes the instance and then fails with an HTTP 500 (it looks for
//! the replica's id among the source's replicas, which hold its ARN), so the
//! source keeps listing the deleted replica's ARN. The adapter treats that
//! 500 like any answer lost after the call acted: it reads the instance, and
//! an instance that is gone (or `deleting`) is deleted
//! ([`super::delete_db_instance`], the rule of every deletion:
//! [`super::delete_once`]).

use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance as SdkDbInstance, Tag};

use super::{Call, Regional, Sdk, act_once, call, describe_db_instance, from_chrono, to_chrono};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    CloudError, DbInstance, DbRole, ErrorKind, MaintenanceOf, PendingMaintenance, ReplicaPlacement,
    Restorable, RestoreNeed, RestorePoint,
};

const SERVICE: &str = "rds";

/// What [`crate::cloud::Database::lacking`] says of a thing not there.
const GONE: &str = "does not exist";

/// Instances one DescribeDBInstances page asks for (RDS allows 20 to 100).
const LIST_PAGE: i32 = 100;

/// One of RDS's pending maintenance actions in drctl's terms.
fn maintenance_of(a: &aws_sdk_rds::types::PendingMaintenanceAction) -> PendingMaintenance {
    PendingMaintenance {
        action: a.action().unwrap_or("unnamed").to_string(),
        description: a.description().map(str::to_string),
        auto_applied_after: a.auto_applied_after_date().and_then(to_chrono),
        forced_apply: a.forced_apply_date().and_then(to_chrono),
        current_apply: a.current_apply_date().and_then(to_chrono),
        opt_in: a.opt_in_status().map(str::to_string),
    }
}

/// Tag written on an instance after drctl promoted it; its value is the
/// source the instance replicated from.
pub const PROMOTED_TAG: &str = "drctl:promoted-from";

/// [`crate::cloud::Database`] over RDS.
pub struct RdsDatabase {
    clients: Regional<aws_sdk_rds::Client>,
    /// KMS, for what a restore needs: the key its data is encrypted with
    /// ([`crate::cloud::Database::lacking`]).
    kms: Regional<aws_sdk_kms::Client>,
    retry: RetryPolicy,
}

impl RdsDatabase {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk.clone(), Sdk::rds),
            kms: Regional::new(sdk, Sdk::kms),
            retry,
        }
    }

    /// The ARN of KMS key `key` (an id, an alias, or an ARN) of `region`.
    async fn key_arn(&self, region: &str, key: &str) -> Result<String, CloudError> {
        let kms = self.kms.get(region);
        let c = Call::new("kms", "DescribeKey", key, region);
        let out = call(&self.retry, c, || kms.describe_key().key_id(key).send()).await?;
        (out.key_metadata().and_then(|m| m.arn()))
            .map(str::to_string)
            .ok_or_else(|| {
                let why = "DescribeKey answered no ARN";
                CloudError::new("kms", "DescribeKey", key, region, ErrorKind::Client, why)
            })
    }

    /// DescribeDBInstances for one id: `Ok(None)` when it does not exist.
    async fn describe_raw(
        &self,
        region: &str,
        id: &str,
        retry: &RetryPolicy,
    ) -> Result<Option<SdkDbInstance>, CloudError> {
        describe_db_instance(&self.clients.get(region), retry, (id, region)).await
    }

    /// The role of `inst` (see the module documentation).
    async fn role(&self, region: &str, inst: &SdkDbInstance) -> Result<DbRole, CloudError> {
        let Some(source) = inst.read_replica_source_db_instance_identifier() else {
            return Ok(DbRole::Primary);
        };
        if source.is_empty() {
            return Ok(DbRole::Primary);
        }
        let promoted = inst
            .tag_list()
            .iter()
            .any(|t| t.key() == Some(PROMOTED_TAG) && t.value() == Some(source));
        if promoted {
            return Ok(DbRole::Primary);
        }
        let (src_region, src_id) = parse_source(source, region);
        // Never ask another region: it may be the one that is down.
        if src_region != region {
            return Ok(DbRole::Replica(source.to_string()));
        }
        let src = match self
            .describe_raw(&src_region, &src_id, &RetryPolicy::none())
            .await
        {
            Ok(Some(src)) => src,
            Ok(None) => return Ok(DbRole::Primary),
            Err(e) => {
                tracing::warn!(
                    source = %source,
                    error = %e,
                    "cannot read the replica's source; reporting the replica's own view"
                );
                return Ok(DbRole::Replica(source.to_string()));
            }
        };
        let id = inst.db_instance_identifier().unwrap_or_default();
        let arn = inst.db_instance_arn().unwrap_or_default();
        let listed = src.read_replica_db_instance_identifiers().iter().any(|r| {
            (!arn.is_empty() && r == arn)
                || (src_region == region && r == id)
                || parse_source(r, &src_region) == (region.to_string(), id.to_string())
        });
        Ok(if listed {
            DbRole::Replica(source.to_string())
        } else {
            DbRole::Primary
        })
    }
}

impl RdsDatabase {
    /// Records the promotion on the instance itself (see the module docs):
    /// the tag [`PROMOTED_TAG`] naming the source it was promoted from.
    async fn tag_promoted(
        &self,
        region: &str,
        arn: &str,
        source: &str,
        c: Call<'_>,
    ) -> Result<(), CloudError> {
        if arn.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let tag = Tag::builder().key(PROMOTED_TAG).value(source).build();
        let c = Call {
            operation: "AddTagsToResource",
            ..c
        };
        call(&self.retry, c, || {
            client
                .add_tags_to_resource()
                .resource_name(arn)
                .tags(tag.clone())
                .send()
        })
        .await?;
        Ok(())
    }

    /// Whether instance `id` exists (one attempt: the caller is a retry loop).
    async fn exists(&self, region: &str, id: &str) -> Result<bool, CloudError> {
        Ok(self
            .describe_raw(region, id, &RetryPolicy::none())
            .await?
            .is_some())
    }
}

/// The error of a call on an instance that does not exist (as RDS says it).
fn instance_not_found(c: Call<'_>) -> CloudError {
    c.error(
        ErrorKind::NotFound,
        format!("DB instance {} not found", c.resource),
    )
    .with_code("DBInstanceNotFound")
}

/// Region and id of a source given as an ARN
/// (`arn:aws:rds:REGION:ACCOUNT:db:ID`) or as a bare id (same region).
fn parse_source(source: &str, own_region: &str) -> (String, String) {
    let parts: Vec<&str> = source.split(':').collect();
    if parts.len() >= 7 && parts[0] == "arn" && parts[5] == "db" {
        (parts[3].to_string(), parts[6..].join(":"))
    } else {
        (own_region.to_string(), source.to_string())
    }
}

/// Replicated automated backups in drctl's terms: restorable within
/// their window once `replicating` (or `retained`, after the source is
/// gone: still restorable, no newer point).
fn backups_of(b: &aws_sdk_rds::types::DbInstanceAutomatedBackup) -> Restorable {
    let status = b.status().unwrap_or_default().to_string();
    let window = b.restore_window();
    Restorable {
        id: (b.db_instance_automated_backups_arn())
            .unwrap_or_default()
            .to_string(),
        source: b.db_instance_identifier().unwrap_or_default().to_string(),
        source_arn: b.db_instance_arn().map(str::to_string),
        source_region: b.region().map(str::to_string),
        ready: matches!(status.as_str(), "replicating" | "retained" | "active"),
        status,
        earliest: window.and_then(|w| w.earliest_time()).and_then(to_chrono),
        latest: window.and_then(|w| w.latest_time()).and_then(to_chrono),
        kms_key_id: b.kms_key_id().map(str::to_string),
        progress: None,
        engine: b.engine().map(str::to_string),
        engine_version: b.engine_version().map(str::to_string),
    }
}

/// A DB snapshot in drctl's terms: restorable to the moment it was taken,
/// once `available`; a copy under way says how far it is. The moment is
/// its data's (`SnapshotDatabaseTime`), else when it was taken
/// (`OriginalSnapshotCreateTime`): a copy's `SnapshotCreateTime` is when
/// it was copied, which would make a nightly snapshot copied hours later
/// look hours fresher than its data.
fn snapshot_of(s: &aws_sdk_rds::types::DbSnapshot) -> Restorable {
    let status = s.status().unwrap_or_default().to_string();
    let taken = (s.snapshot_database_time())
        .or(s.original_snapshot_create_time())
        .or(s.snapshot_create_time())
        .and_then(to_chrono);
    let from = s.source_region().map(str::to_string);
    Restorable {
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        source: s.db_instance_identifier().unwrap_or_default().to_string(),
        source_arn: None,
        source_region: from,
        ready: status == "available",
        status,
        earliest: taken,
        latest: taken,
        kms_key_id: s.kms_key_id().map(str::to_string),
        progress: s.percent_progress(),
        engine: s.engine().map(str::to_string),
        engine_version: s.engine_version().map(str::to_string),
    }
}

/// A placement's security groups, when it names any (else the provider's).
fn security_groups(p: &ReplicaPlacement) -> Option<Vec<String>> {
    (!p.security_groups.is_empty()).then(|| p.security_groups.clone())
}

/// A placement's tags as RDS takes them (none: none sent).
fn tags_of(p: &ReplicaPlacement) -> Option<Vec<Tag>> {
    let tags = p
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build());
    (!p.tags.is_empty()).then(|| tags.collect())
}

fn to_domain(region: &str, inst: &SdkDbInstance, role: DbRole) -> DbInstance {
    DbInstance {
        id: inst
            .db_instance_identifier()
            .unwrap_or_default()
            .to_string(),
        arn: inst.db_instance_arn().unwrap_or_default().to_string(),
        region: region.to_string(),
        engine: inst.engine().unwrap_or_default().to_string(),
        instance_class: inst.db_instance_class().map(str::to_string),
        status: inst.db_instance_status().unwrap_or_default().to_string(),
        endpoint: inst
            .endpoint()
            .and_then(|e| e.address())
            .map(str::to_string),
        port: inst.endpoint().and_then(|e| e.port()),
        role,
        replicas: inst.read_replica_db_instance_identifiers().to_vec(),
        backup_retention_days: inst.backup_retention_period().unwrap_or(0),
        latest_restorable_time: inst.latest_restorable_time().and_then(to_chrono),
        storage_encrypted: inst.storage_encrypted().unwrap_or(false),
        kms_key_id: inst.kms_key_id().map(str::to_string),
        subnet_group: inst
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
        security_groups: inst
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        multi_az: inst.multi_az().unwrap_or(false),
        tags: inst
            .tag_list()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

#[async_trait]
impl crate::cloud::Database for RdsDatabase {
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbInstance>, CloudError> {
        let Some(inst) = self.describe_raw(region, id, &self.retry).await? else {
            return Ok(None);
        };
        let role = self.role(region, &inst).await?;
        Ok(Some(to_domain(region, &inst, role)))
    }

    async fn promote_replica(&self, region: &str, id: &str) -> Result<(), CloudError> {
        // Read first: a missing instance is a clean NotFound (moto answers
        // PromoteReadReplica on an unknown id with an HTTP 500, which would
        // otherwise be retried as a server failure), and promoting a primary
        // is refused the way RDS refuses it (moto silently accepts it). A
        // caller that has just read the instance calls `promote_known`.
        match self.describe_instance(region, id).await? {
            None => Err(instance_not_found(Call::new(
                SERVICE,
                "PromoteReadReplica",
                id,
                region,
            ))),
            Some(known) => self.promote_known(region, &known).await.map(|_| ()),
        }
    }

    async fn promote_known(
        &self,
        region: &str,
        known: &DbInstance,
    ) -> Result<DbInstance, CloudError> {
        let id = known.id.as_str();
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "PromoteReadReplica", id, region);
        let DbRole::Replica(source) = &known.role else {
            return Err(c
                .error(
                    ErrorKind::Client,
                    format!("DB instance {id} is not a read replica"),
                )
                .with_code("InvalidDBInstanceState"));
        };
        // Settled: the instance reports itself a primary, or has left
        // `available` (RDS shows a promotion under way as `modifying`).
        let settled = || async {
            let inst = self.describe_raw(region, id, &RetryPolicy::none()).await?;
            Ok(match inst {
                None => false,
                Some(inst) => {
                    inst.db_instance_status() != Some("available")
                        || self.role(region, &inst).await? == DbRole::Primary
                }
            })
        };
        let answer = act_once(
            &self.retry,
            c,
            Some("InvalidDBInstanceState"),
            || {
                client
                    .promote_read_replica()
                    .db_instance_identifier(id)
                    .send()
            },
            settled,
        )
        .await?;
        self.tag_promoted(region, &known.arn, source, c).await?;
        // The answer describes the instance: RDS answers a promotion under
        // way as `modifying` (the caller then waits for it); an instance the
        // answer shows `available` right after the call has been promoted
        // (an emulator promotes at once). Only a lost answer costs a read.
        match answer.and_then(|a| a.db_instance().cloned()) {
            Some(inst) if inst.db_instance_status() == Some("available") => {
                Ok(to_domain(region, &inst, DbRole::Primary))
            }
            Some(inst) => Ok(to_domain(region, &inst, DbRole::Replica(source.clone()))),
            None => self
                .describe_instance(region, id)
                .await?
                .ok_or_else(|| instance_not_found(c)),
        }
    }

    async fn rename_instance(
        &self,
        region: &str,
        id: &str,
        new_id: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "ModifyDBInstance", id, region);
        act_once(
            &self.retry,
            c,
            Some("DBInstanceAlreadyExists"),
            || {
                client
                    .modify_db_instance()
                    .db_instance_identifier(id)
                    .new_db_instance_identifier(new_id)
                    .apply_immediately(true)
                    .send()
            },
            || self.exists(region, new_id),
        )
        .await
        .map(|_| ())
    }

    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        // The replica is created by the *target* region's endpoint, with the
        // source named by its ARN. (The Rust SDK has no `SourceRegion`
        // parameter: that is a presigning helper of other SDKs. Outside
        // GovCloud and China, RDS ignores `PreSignedUrl`; an encrypted source
        // needs only `KmsKeyId`, a key of the replica's region.)
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateDBInstanceReadReplica", id, region);
        act_once(
            &self.retry,
            c,
            Some("DBInstanceAlreadyExists"),
            || {
                client
                    .create_db_instance_read_replica()
                    .db_instance_identifier(id)
                    .source_db_instance_identifier(source_arn)
                    .set_db_instance_class(placement.instance_class.clone())
                    .set_kms_key_id(placement.kms_key_id.clone())
                    .set_db_subnet_group_name(placement.subnet_group.clone())
                    .set_db_parameter_group_name(placement.parameter_group.clone())
                    .set_option_group_name(placement.option_group.clone())
                    .set_vpc_security_group_ids(security_groups(placement))
                    .set_multi_az(placement.multi_az)
                    .set_tags(tags_of(placement))
                    .send()
            },
            || self.exists(region, id),
        )
        .await
        .map(|_| ())
    }

    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        super::delete_db_instance(&client, &self.retry, (id, region), true).await
    }

    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstance>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBInstances", "*", region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_db_instances()
                    .max_records(LIST_PAGE)
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
            // The role as the instance reports it: no call per instance (see
            // the trait), and no other region asked.
            for inst in page.db_instances() {
                let role = match inst.read_replica_source_db_instance_identifier() {
                    Some(src) if !src.is_empty() => DbRole::Replica(src.to_string()),
                    _ => DbRole::Primary,
                };
                out.push(to_domain(region, inst, role));
            }
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        Ok(out)
    }

    async fn pending_maintenance(
        &self,
        region: &str,
        of: MaintenanceOf,
        id: &str,
    ) -> Result<Vec<PendingMaintenance>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribePendingMaintenanceActions", id, region);
        // The filters take an identifier or an ARN (RDS API Reference).
        let filter = aws_sdk_rds::types::Filter::builder()
            .name(match of {
                MaintenanceOf::Instance => "db-instance-id",
                MaintenanceOf::Cluster => "db-cluster-id",
            })
            .values(id)
            .build();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_pending_maintenance_actions()
                    .filters(filter.clone())
                    .set_marker(marker.clone())
                    .send()
            })
            .await?;
            for resource in page.pending_maintenance_actions() {
                out.extend(
                    (resource.pending_maintenance_action_details().iter()).map(maintenance_of),
                );
            }
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        Ok(out)
    }

    async fn replicated_backups(
        &self,
        region: &str,
        source: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(
            SERVICE,
            "DescribeDBInstanceAutomatedBackups",
            source,
            region,
        );
        let (mut out, mut marker) = (Vec::new(), None::<String>);
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_db_instance_automated_backups()
                    .db_instance_identifier(source)
                    .max_records(LIST_PAGE)
                    .set_marker(marker.clone())
                    .send()
            })
            .await;
            // RDS answers a name with no backups in the Region with
            // DBInstanceAutomatedBackupNotFound (404): none.
            let page = match page {
                Err(e) if e.kind == ErrorKind::NotFound => break,
                other => other?,
            };
            let replicated = (page.db_instance_automated_backups().iter())
                .filter(|b| b.region().is_some_and(|r| r != region));
            out.extend(replicated.map(backups_of));
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        Ok(out)
    }

    async fn snapshots_of(
        &self,
        region: &str,
        source: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeDBSnapshots", source, region);
        let (mut out, mut marker) = (Vec::new(), None::<String>);
        loop {
            let page = call(&self.retry, c, || {
                client
                    .describe_db_snapshots()
                    .db_instance_identifier(source)
                    .snapshot_type("manual")
                    .max_records(LIST_PAGE)
                    .set_marker(marker.clone())
                    .send()
            })
            .await;
            let page = match page {
                Err(e) if e.kind == ErrorKind::NotFound => break,
                other => other?,
            };
            // Copies from another region only: a snapshot taken here (an
            // old primary's, before it was set aside) is no standby's.
            let copied = (page.db_snapshots().iter())
                .filter(|s| s.source_region().is_some_and(|r| r != region));
            out.extend(copied.map(snapshot_of));
            if !super::advance(&mut marker, page.marker()) {
                break;
            }
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.latest));
        Ok(out)
    }

    async fn restore_backups(
        &self,
        region: &str,
        backups_arn: &str,
        target_id: &str,
        point: RestorePoint,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "RestoreDBInstanceToPointInTime", target_id, region);
        // The data keeps the key the backups were replicated with (a key
        // of this Region): the call takes none.
        act_once(
            &self.retry,
            c,
            Some("DBInstanceAlreadyExists"),
            || {
                let req = client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_automated_backups_arn(backups_arn)
                    .target_db_instance_identifier(target_id)
                    .set_db_instance_class(placement.instance_class.clone())
                    .set_db_subnet_group_name(placement.subnet_group.clone())
                    .set_db_parameter_group_name(placement.parameter_group.clone())
                    .set_option_group_name(placement.option_group.clone())
                    .set_vpc_security_group_ids(security_groups(placement))
                    .set_multi_az(placement.multi_az)
                    .set_tags(tags_of(placement));
                let req = match point {
                    RestorePoint::Latest => req.use_latest_restorable_time(true),
                    RestorePoint::At(t) => req.restore_time(from_chrono(t)),
                };
                req.send()
            },
            || self.exists(region, target_id),
        )
        .await
        .map(|_| ())
    }

    async fn restore_snapshot(
        &self,
        region: &str,
        snapshot: &str,
        target_id: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(
            SERVICE,
            "RestoreDBInstanceFromDBSnapshot",
            target_id,
            region,
        );
        // The key is the snapshot's (a copy is encrypted with a key of its
        // Region when it is copied): a restore takes no KmsKeyId.
        act_once(
            &self.retry,
            c,
            Some("DBInstanceAlreadyExists"),
            || {
                client
                    .restore_db_instance_from_db_snapshot()
                    .db_snapshot_identifier(snapshot)
                    .db_instance_identifier(target_id)
                    .set_db_instance_class(placement.instance_class.clone())
                    .set_db_subnet_group_name(placement.subnet_group.clone())
                    .set_db_parameter_group_name(placement.parameter_group.clone())
                    .set_option_group_name(placement.option_group.clone())
                    .set_vpc_security_group_ids(security_groups(placement))
                    .set_multi_az(placement.multi_az)
                    .set_tags(tags_of(placement))
                    .send()
            },
            || self.exists(region, target_id),
        )
        .await
        .map(|_| ())
    }

    async fn replicate_backups(
        &self,
        region: &str,
        source_arn: &str,
        retention_days: i32,
        kms_key_id: Option<&str>,
    ) -> Result<(), CloudError> {
        // The call takes the key's ARN in the destination (its reference
        // gives no other form): an id or alias the plan names is read there.
        let kms_key_id = match kms_key_id {
            Some(k) if !(k.starts_with("arn:") && k.contains(":key/")) => {
                Some(self.key_arn(region, k).await?)
            }
            other => other.map(str::to_string),
        };
        let client = self.clients.get(region);
        let c = Call::new(
            SERVICE,
            "StartDBInstanceAutomatedBackupsReplication",
            source_arn,
            region,
        );
        let (_, source) = parse_source(source_arn, region);
        // Settled: the source's backups are replicated here (pending or
        // replicating), as a lost answer leaves them.
        let settled = || async {
            let here = self.replicated_backups(region, &source).await?;
            let from = |b: &Restorable| b.status != "retained";
            Ok(here.iter().any(from))
        };
        act_once(
            &self.retry,
            c,
            Some("InvalidDBInstanceAutomatedBackupState"),
            || {
                client
                    .start_db_instance_automated_backups_replication()
                    .source_db_instance_arn(source_arn)
                    .backup_retention_period(retention_days)
                    .set_kms_key_id(kms_key_id.clone())
                    .send()
            },
            settled,
        )
        .await
        .map(|_| ())
    }

    async fn stop_replicating_backups(
        &self,
        region: &str,
        source_arn: &str,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let op = "StopDBInstanceAutomatedBackupsReplication";
        let c = Call::new(SERVICE, op, source_arn, region);
        let (_, source) = parse_source(source_arn, region);
        // Settled: no backups of that instance replicate here any more.
        let settled = || async {
            let here = self.replicated_backups(region, &source).await?;
            let live = |b: &Restorable| {
                b.source_arn.as_deref() == Some(source_arn) && b.status != "retained"
            };
            Ok(!here.iter().any(live))
        };
        let sent = act_once(
            &self.retry,
            c,
            None,
            || {
                client
                    .stop_db_instance_automated_backups_replication()
                    .source_db_instance_arn(source_arn)
                    .send()
            },
            settled,
        )
        .await;
        // Stopped already (a resumed run, an answer lost): RDS refuses as
        // the instance not replicating here.
        match sent {
            Err(e) if settled().await.unwrap_or(false) => {
                tracing::debug!(source_arn, "replication stopped already ({e})");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    async fn lacking(
        &self,
        region: &str,
        need: &RestoreNeed,
    ) -> Result<Option<String>, CloudError> {
        let rds = self.clients.get(region);
        let (service, op) = need.call().split_once(':').unwrap_or(("rds", need.call()));
        let what = need.to_string();
        let c = Call::new(service, op, &what, region);
        // Each read answers "not found" (an error code ending NotFound or
        // NotFoundFault) or an empty list for what is not there.
        let found = match need {
            RestoreNeed::SubnetGroup(name) => call(&self.retry, c, || {
                rds.describe_db_subnet_groups()
                    .db_subnet_group_name(name)
                    .send()
            })
            .await
            .map(|o| (!o.db_subnet_groups().is_empty()).then_some(())),
            RestoreNeed::ParameterGroup(name) => call(&self.retry, c, || {
                rds.describe_db_parameter_groups()
                    .db_parameter_group_name(name)
                    .send()
            })
            .await
            .map(|o| (!o.db_parameter_groups().is_empty()).then_some(())),
            RestoreNeed::ClusterParameterGroup(name) => call(&self.retry, c, || {
                rds.describe_db_cluster_parameter_groups()
                    .db_cluster_parameter_group_name(name)
                    .send()
            })
            .await
            .map(|o| (!o.db_cluster_parameter_groups().is_empty()).then_some(())),
            RestoreNeed::OptionGroup(name) => call(&self.retry, c, || {
                rds.describe_option_groups().option_group_name(name).send()
            })
            .await
            .map(|o| (!o.option_groups_list().is_empty()).then_some(())),
            RestoreNeed::InstanceClass {
                class,
                engine,
                version,
            } => {
                // Offered when one orderable option of the engine (at the
                // backup's version) has the class: one page answers it.
                let out = call(&self.retry, c, || {
                    rds.describe_orderable_db_instance_options()
                        .engine(engine)
                        .set_engine_version(version.clone())
                        .db_instance_class(class)
                        .max_records(LIST_PAGE)
                        .send()
                })
                .await?;
                let offered = (out.orderable_db_instance_options().iter())
                    .any(|o| o.db_instance_class() == Some(class.as_str()));
                return Ok((!offered).then(|| "is not offered".to_string()));
            }
            RestoreNeed::KmsKey(key) => {
                let kms = self.kms.get(region);
                let out = call(&self.retry, c, || kms.describe_key().key_id(key).send()).await;
                return match out {
                    Ok(o) => {
                        let state = (o.key_metadata())
                            .and_then(|m| m.key_state())
                            .map(|s| s.as_str().to_string());
                        Ok(state.filter(|s| s != "Enabled").map(|s| format!("is {s}")))
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(Some(GONE.into())),
                    Err(e) => Err(e),
                };
            }
        };
        match found {
            Ok(Some(())) => Ok(None),
            Ok(None) => Ok(Some(GONE.into())),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Some(GONE.into())),
            Err(e) => Err(e),
        }
    }

    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        point: RestorePoint,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "RestoreDBInstanceToPointInTime", source_id, region);
        act_once(
            &self.retry,
            c,
            Some("DBInstanceAlreadyExists"),
            || {
                let req = client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(source_id)
                    .target_db_instance_identifier(target_id);
                let req = match point {
                    RestorePoint::Latest => req.use_latest_restorable_time(true),
                    RestorePoint::At(t) => req.restore_time(from_chrono(t)),
                };
                req.send()
            },
            || self.exists(region, target_id),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_from_arns_and_ids() {
        assert_eq!(
            parse_source(
                "arn:aws:rds:us-west-2:123456789012:db:payments-db",
                "us-east-1"
            ),
            ("us-west-2".to_string(), "payments-db".to_string())
        );
        assert_eq!(
            parse_source("payments-db", "us-east-1"),
            ("us-east-1".to_string(), "payments-db".to_string())
        );
    }
}
