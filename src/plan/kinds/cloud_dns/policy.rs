//! A health-check `[[cloud_dns]]` record's routing policy as `drctl dns
//! prepare` makes it ([`want_record`], [`decide_policy`], pure), how a set
//! read differs from it ([`policy_gaps`], pure), and the kind's
//! verification by resolution ([`Resolving`]): what the wait and readiness
//! read of its setup, and `dns prepare` itself (calm days: controls
//! create-only, the policy in one atomic change whose deletion is the set
//! as read).
//!
//! Why here, under the steps: `dns prepare` makes the policy and the
//! traffic role's verification reads it; both take it from here.

use std::time::Duration;

use async_trait::async_trait;

use super::CloudDnsSpec;
use crate::cloud::control::ControlState;
use crate::cloud::{
    BackupItem, CloudError, CloudRecordSet, Clouds, ErrorKind, ObjectUrl, PrimaryBackup, gcp_dns,
};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{
    Gap, Prepared, Resolving, SetupAt, SetupSeen, create_control, norm,
};

/// The record set a health-check record carries: no rrdatas, a
/// `primaryBackup` policy whose primary is `home`'s value and whose backups
/// are the other regions' values, in plan order (pure).
pub fn want_record(d: &CloudDnsSpec, home: &str) -> CloudRecordSet {
    let home = d.sites.gcp(home);
    CloudRecordSet {
        name: d.name.clone(),
        rtype: d.rtype.clone(),
        ttl: d.ttl,
        rrdatas: Vec::new(),
        routed: true,
        primary_backup: Some(PrimaryBackup {
            primary: d.targets.get(home).into_iter().cloned().collect(),
            backups: (d.targets.iter())
                .filter(|(r, _)| r.as_str() != home)
                .map(|(r, v)| BackupItem {
                    location: r.clone(),
                    rrdatas: vec![v.clone()],
                })
                .collect(),
            health_check: d.health_check.clone(),
        }),
    }
}

/// What `dns prepare` does with a health-check record's set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyNext {
    /// It already carries the policy.
    Done,
    /// One change: delete the set as read (`None`: there is none), add the
    /// wanted one.
    Swap(Option<CloudRecordSet>),
    /// It carries another routing policy, which cannot be deleted as read.
    Refuse(String),
}

/// Decides what `dns prepare` does with `read` to make it `want` (pure).
pub fn decide_policy(read: Option<&CloudRecordSet>, want: &CloudRecordSet) -> PolicyNext {
    // In order: Cloud DNS answers a policy's items in the order given.
    let same_values = |a: &[String], b: &[String]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| norm(x) == norm(y))
    };
    match read {
        Some(r) if r.routed && r.primary_backup.is_none() => PolicyNext::Refuse(
            "it carries a routing policy other than primaryBackup (geo or weighted); remove it or set switch = \"records\"".into(),
        ),
        Some(r) => match (&r.primary_backup, &want.primary_backup) {
            (Some(have), Some(w))
                if r.ttl == want.ttl
                    && r.rrdatas.is_empty()
                    && same_values(&have.primary, &w.primary)
                    && have.health_check == w.health_check
                    && have.backups.len() == w.backups.len()
                    && (have.backups.iter().zip(&w.backups)).all(|(a, b)| {
                        a.location == b.location && same_values(&a.rrdatas, &b.rrdatas)
                    }) =>
            {
                PolicyNext::Done
            }
            _ => PolicyNext::Swap(Some(r.clone())),
        },
        None => PolicyNext::Swap(None),
    }
}

/// What keeps health-check record `d`'s set from being as `dns prepare`
/// makes it (home `home`), read as `read`, for a switch to GCP region
/// `target` (pure). A gap is needed where the set cannot come to answer
/// the target's value alone ([`answers_target`]): missing, without a
/// `primaryBackup` policy (a plain record answers its own values), with
/// another routing policy, or with a policy that never reaches the target.
pub fn policy_gaps(
    d: &CloudDnsSpec,
    read: Option<&CloudRecordSet>,
    home: &str,
    target: &str,
) -> Vec<Gap> {
    let what = format!("record {} {} primaryBackup", d.name, d.rtype);
    let (how, needed) = match decide_policy(read, &want_record(d, home)) {
        PolicyNext::Done => return Vec::new(),
        PolicyNext::Swap(None) => ("missing".to_string(), true),
        PolicyNext::Refuse(_) => (
            "replaced by another routing policy (geo or weighted)".to_string(),
            true,
        ),
        PolicyNext::Swap(Some(r)) => match &r.primary_backup {
            None => ("absent: the record set answers its own values".into(), true),
            Some(pb) if !answers_target(d, pb, target) => {
                (format!("never answers {target}'s value alone"), true)
            }
            Some(_) => ("not as `dns prepare` makes it".into(), false),
        },
    };
    vec![Gap { what, how, needed }]
}

/// Whether policy `pb` can come to answer `target`'s value alone (pure):
/// Cloud DNS answers the first of its items (the primary, then the backups
/// in order) with a healthy target, so some item must be that value alone,
/// and every item before it may hold only the plan's other regions'
/// values, whose controls the switch drains. An item holding the target's
/// value with another, or an address the plan has no control for, before
/// it, keeps the answer from ever naming the target alone.
pub fn answers_target(d: &CloudDnsSpec, pb: &PrimaryBackup, target: &str) -> bool {
    let Some(want) = d.targets.get(target).map(|v| norm(v)) else {
        return false;
    };
    let others: Vec<String> = (d.targets.iter())
        .filter(|(r, _)| r.as_str() != target)
        .map(|(_, v)| norm(v))
        .collect();
    let items = std::iter::once(&pb.primary).chain(pb.backups.iter().map(|b| &b.rrdatas));
    for item in items {
        let values: Vec<String> = item.iter().map(|v| norm(v)).collect();
        if values == [want.clone()] {
            return true;
        }
        if values.iter().any(|v| !others.contains(v)) {
            return false;
        }
    }
    false
}

/// Creates each of `d`'s controls that is absent (home's serves, the
/// others drain); an existing one is left as it is.
async fn prepare_controls(
    clouds: &Clouds,
    d: &CloudDnsSpec,
    home: &str,
) -> Result<Vec<Prepared>, CloudError> {
    let home_gcp = d.sites.gcp(home);
    let mut out = Vec::new();
    for (region, url) in &d.controls {
        let parsed = ObjectUrl::parse(url).map_err(|e| {
            CloudError::new(
                "gcs",
                "objects.insert",
                url,
                region,
                ErrorKind::Client,
                e.to_string(),
            )
        })?;
        let state = if region == home_gcp {
            ControlState::Serve
        } else {
            ControlState::Drain
        };
        out.push(Prepared {
            resource: format!("control {url}"),
            region: region.clone(),
            action: create_control(clouds, region, &parsed, state).await?,
        });
    }
    Ok(out)
}

/// Gives `d`'s record set its routing policy (home primary, the others
/// backups) in one atomic change deleting the set as read; nothing when it
/// is already right, a refusal when it cannot be replaced.
async fn prepare_policy(
    clouds: &Clouds,
    d: &CloudDnsSpec,
    home: &str,
) -> Result<Prepared, CloudError> {
    let want = want_record(d, home);
    let read = (clouds.cloud_dns)
        .read_record_set(&d.project, &d.zone, &d.name, &d.rtype)
        .await?;
    let resource = format!(
        "record {} {} primaryBackup (zone {}, project {})",
        d.name, d.rtype, d.zone, d.project
    );
    let action = match decide_policy(read.as_ref(), &want) {
        PolicyNext::Done => "exists".to_string(),
        PolicyNext::Refuse(why) => {
            return Err(CloudError::new(
                "clouddns",
                "changes.create",
                &d.name,
                gcp_dns::REGION,
                ErrorKind::Precondition,
                format!("{resource}: {why}"),
            ));
        }
        PolicyNext::Swap(deletion) => {
            let change = (clouds.cloud_dns)
                .swap_record_sets(&d.project, &d.zone, &[(deletion.clone(), want.clone())])
                .await?;
            format!(
                "{} (change {})",
                if deletion.is_some() {
                    "updated"
                } else {
                    "created"
                },
                change.id
            )
        }
    };
    Ok(Prepared {
        resource,
        region: gcp_dns::REGION.into(),
        action,
    })
}

/// A health-check record is verified by resolution: the value of the
/// target's GCP region; beside the wait, its record set's routing policy,
/// where Cloud DNS's API answers ([`policy_gaps`]).
#[async_trait]
impl Resolving for CloudDnsSpec {
    fn waits(&self) -> &'static [&'static str] {
        &["clouddns:HealthCheckFailover"]
    }

    fn resolver_zone(&self) -> &str {
        CloudDnsSpec::resolver_zone(self)
    }

    fn answer(&self, target: &str) -> Option<&str> {
        self.targets.get(self.sites.gcp(target)).map(String::as_str)
    }

    fn ttl(&self) -> i64 {
        self.ttl
    }

    /// Cloud DNS's health-checked answer as modelled
    /// (`clouddns:HealthCheckFailover`, its 90th percentile): the Compute
    /// health check this record names is not read.
    fn assumed_flip(&self) -> Duration {
        let modelled = crate::cloud::model::Model::aws()
            .ok()
            .and_then(|m| m.duration("clouddns:HealthCheckFailover").map(|d| d.p90()));
        modelled.unwrap_or(Duration::from_secs(60))
    }

    /// Its controls created where absent (home's serves, the others
    /// drain), then its record set given the routing policy in one atomic
    /// change deleting the set as read (nothing when already right, a
    /// refusal when it carries another routing policy).
    async fn prepare(
        &self,
        clouds: &Clouds,
        plan: &Plan,
        _s3_endpoint: Option<&str>,
    ) -> Result<Vec<Prepared>, CloudError> {
        let home = plan.home();
        let mut out = prepare_controls(clouds, self, home).await?;
        out.push(prepare_policy(clouds, self, home).await?);
        Ok(out)
    }

    fn hint(&self, plan: &str) -> String {
        format!(
            "read the controls (drctl status) and the record's routing policy (`gcloud dns record-sets describe {} --type {} --zone {} --project {}`); `drctl dns prepare --plan {plan}` makes what is missing",
            self.name, self.rtype, self.zone, self.project
        )
    }

    async fn setup(&self, at: SetupAt<'_>) -> SetupSeen {
        let (clouds, plan, limit) = (at.clouds, at.plan, at.limit);
        let target = self.sites.gcp(at.target);
        let set =
            (clouds.cloud_dns).read_record_set(&self.project, &self.zone, &self.name, &self.rtype);
        let set = tokio::time::timeout(limit, set).await;
        let home = plan.home();
        // A set with another routing policy, which `dns prepare` refuses
        // to replace, has a fix of its own.
        let replaced = matches!(&set, Ok(Ok(read))
            if matches!(decide_policy(read.as_ref(), &want_record(self, home)), PolicyNext::Refuse(_)));
        let gaps = match set {
            Ok(Ok(read)) => Ok(policy_gaps(self, read.as_ref(), home, target)),
            Ok(Err(e)) if e.kind == ErrorKind::NotFound => Ok(vec![Gap {
                what: format!("managed zone {} (project {})", self.zone, self.project),
                how: "missing".into(),
                needed: true,
            }]),
            Ok(Err(e)) => Err(format!("setup not verifiable: {}", e.summary())),
            Err(_) => Err(format!(
                "setup not verifiable: Cloud DNS's API did not answer within {} s",
                limit.as_secs()
            )),
        };
        let plan = plan.name();
        let fix = if replaced {
            format!(
                "remove the record set's other routing policy or set switch = \"records\" in the plan, then run `drctl dns prepare --plan {plan}`"
            )
        } else {
            format!(
                "run `drctl dns prepare --plan {plan}` (it gives the record set its primaryBackup policy and makes the controls that are missing, leaving the controls as a run set them)"
            )
        };
        SetupSeen {
            gaps,
            flip: None,
            in_place: "the record set's primaryBackup policy in place",
            fix,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cloud::{BackupItem, CloudRecordSet, PrimaryBackup};
    use crate::plan::kinds::CloudSwitch;

    pub(crate) fn spec() -> CloudDnsSpec {
        CloudDnsSpec {
            id: "orders-dns".into(),
            project: "drctl-emu".into(),
            zone: "orders-zone".into(),
            name: "orders.gcp.example.com.".into(),
            rtype: "A".into(),
            ttl: 30,
            targets: [
                ("us-central1".to_string(), "10.0.1.1".to_string()),
                ("us-east4".to_string(), "10.0.2.2".to_string()),
            ]
            .into_iter()
            .collect(),
            switch: CloudSwitch::HealthCheck,
            controls: [
                ("us-central1".to_string(), "gs://c/o/usc1".to_string()),
                ("us-east4".to_string(), "gs://c/o/use4".to_string()),
            ]
            .into_iter()
            .collect(),
            health_check: Some("projects/drctl-emu/global/healthChecks/orders".into()),
            after: vec![],
            sites: Default::default(),
        }
    }

    #[test]
    fn the_policy_is_primary_home_backups_the_others_and_prepare_swaps_only_when_wrong() {
        let want = want_record(&spec(), "us-central1");
        let pb = want.primary_backup.clone().expect("policy");
        assert_eq!(pb.primary, vec!["10.0.1.1".to_string()]);
        assert_eq!(
            pb.backups,
            vec![BackupItem {
                location: "us-east4".into(),
                rrdatas: vec!["10.0.2.2".into()]
            }]
        );
        assert_eq!(decide_policy(None, &want), PolicyNext::Swap(None));
        assert_eq!(decide_policy(Some(&want), &want), PolicyNext::Done);
        let plain = CloudRecordSet {
            rrdatas: vec!["10.0.1.1".into()],
            routed: false,
            primary_backup: None,
            ..want.clone()
        };
        assert_eq!(
            decide_policy(Some(&plain), &want),
            PolicyNext::Swap(Some(plain.clone()))
        );
        let geo = CloudRecordSet {
            routed: true,
            ..plain
        };
        assert!(matches!(
            decide_policy(Some(&geo), &want),
            PolicyNext::Refuse(_)
        ));
        let mut other = want.clone();
        if let Some(p) = other.primary_backup.as_mut() {
            p.primary = vec!["10.0.9.9".into()];
        }
        assert_eq!(
            decide_policy(Some(&other), &want),
            PolicyNext::Swap(Some(other.clone()))
        );
    }

    /// What keeps the set from answering the target's value is needed; a
    /// policy that differs but still names it is shown, not needed.
    #[test]
    fn a_policy_gap_is_needed_only_when_the_set_cannot_answer_the_target() {
        let d = spec();
        let want = want_record(&d, "us-central1");
        let gaps = |read: Option<&CloudRecordSet>| -> Vec<(String, bool)> {
            (policy_gaps(&d, read, "us-central1", "us-east4").into_iter())
                .map(|g| (g.how, g.needed))
                .collect()
        };
        assert_eq!(gaps(Some(&want)), []);
        assert_eq!(gaps(None), [("missing".to_string(), true)]);
        let plain = CloudRecordSet {
            rrdatas: vec!["10.0.1.1".into()],
            routed: false,
            primary_backup: None,
            ..want.clone()
        };
        assert_eq!(
            gaps(Some(&plain)),
            [(
                "absent: the record set answers its own values".to_string(),
                true
            )]
        );
        let geo = CloudRecordSet {
            routed: true,
            ..plain
        };
        assert_eq!(
            gaps(Some(&geo)),
            [(
                "replaced by another routing policy (geo or weighted)".to_string(),
                true
            )]
        );
        let never = [("never answers us-east4's value alone".to_string(), true)];
        let edited = |edit: &dyn Fn(&mut PrimaryBackup)| {
            let mut set = want.clone();
            edit(set.primary_backup.as_mut().expect("policy"));
            set
        };
        // The target's value is in no item.
        let other = edited(&|p| p.backups[0].rrdatas = vec!["10.0.9.9".into()]);
        assert_eq!(gaps(Some(&other)), never);
        // The target's value shares the primary with home's: the answer,
        // once the target serves, names both.
        let shared = edited(&|p| p.primary.push("10.0.2.2".into()));
        assert_eq!(gaps(Some(&shared)), never);
        // An address the plan has no control for comes first: nothing
        // drains it.
        let foreign = edited(&|p| {
            p.backups.insert(
                0,
                BackupItem {
                    location: "europe-west1".into(),
                    rrdatas: vec!["10.0.7.7".into()],
                },
            )
        });
        assert_eq!(gaps(Some(&foreign)), never);
        // The target first, home a backup: it answers the target once home
        // drains (and even before), not as prepare makes it but reachable.
        let swapped = edited(&|p| {
            std::mem::swap(&mut p.primary, &mut p.backups[0].rrdatas);
        });
        assert_eq!(
            gaps(Some(&swapped)),
            [("not as `dns prepare` makes it".to_string(), false)]
        );
        let slower = CloudRecordSet {
            ttl: 300,
            ..want.clone()
        };
        assert_eq!(
            gaps(Some(&slower)),
            [("not as `dns prepare` makes it".to_string(), false)]
        );
    }
}
