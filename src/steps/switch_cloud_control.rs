//! `switch-cloud-control`: the data-plane switch of a `[[cloud_dns]]`
//! record with `switch = "health-check"`, and the setup `drctl dns prepare`
//! makes for it.
//!
//! Why no Cloud DNS call: Cloud DNS's API is the control plane, and the
//! control plane may be what is down when a failover is needed. The record
//! set carries a `primaryBackup` routing policy (primary: the home region's
//! value; backups: the other regions'), whose targets Cloud DNS
//! health-checks; each region's serving endpoint answers its health path
//! from that region's control object in Cloud Storage (drained: unhealthy;
//! unreadable: unhealthy, so it fails closed). Failing over to R writes R's
//! control to `serve` and every other region's to `drain`, and Cloud DNS's
//! answers follow the health of the targets.
//!
//! The writes are `switch-control`'s, through the same function
//! ([`write_controls`]): each control read with its generation, decided
//! (pure, `controls::decide`), written conditionally with the run's
//! fencing token, bounded; the target's must succeed, the others are best
//! effort (a region that does not answer is drained closed anyway).
//! `verify-cloud-resolution` then resolves the name until it answers the
//! target's value, and ends the RTO clock.
//!
//! [`prepare`] (calm days, `drctl dns prepare`) creates the controls that
//! do not exist (home serve, the others drain; an existing control's state
//! is never overwritten) and makes the record set carry the routing policy
//! in one atomic Cloud DNS change whose deletion is the set as read
//! ([`decide_policy`], pure).

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::controls::{
    ControlOutcome, ControlRef, SwitchControlOutput, health_check_records, target_problems, token,
    write_controls,
};
use super::dns_setup::{Gap, Prepared, create_control};
use super::resolution::{Beside, Watched};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::control::ControlState;
use crate::cloud::{
    BackupItem, CloudError, CloudRecordSet, Clouds, ErrorKind, ObjectUrl, PrimaryBackup, gcp_dns,
};
use crate::plan::Plan;
use crate::plan::kinds::{CloudDnsSpec, CloudSwitch};
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, Phase};

/// Write every health-check `[[cloud_dns]]` record's controls: the
/// target's GCP region serves, the others drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchCloudControl {
    /// The target's GCP region.
    pub region: String,
    /// The records switched.
    #[serde(serialize_with = "record_ids")]
    pub records: Vec<CloudDnsSpec>,
}

fn record_ids<S: serde::Serializer>(r: &[CloudDnsSpec], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|d| &d.id))
}

/// Part of the recovery: traffic moves here (the RTO clock ends at
/// `verify-cloud-resolution`).
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &["gcs:objects.get", "gcs:objects.insert"],
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// One switch per plan, over all its health-check Cloud DNS records.
pub fn compile(b: &mut Builder<'_>) {
    let records = health_check_records(b);
    let Some(first) = records.first() else {
        return;
    };
    // The target site's GCP region (plan::sites).
    let region = first.sites.gcp(b.target).to_string();
    let names: Vec<&str> = records.iter().map(|d| d.name.as_str()).collect();
    let description = format!(
        "controls of {}: {region} serve, the other regions drain (Cloud Storage writes; no Cloud DNS API call)",
        names.join(", ")
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::SwitchCloudControl(SwitchCloudControl { region, records }),
        None,
        Phase::of(ResourceKind::CloudDns),
        resources,
        description,
    );
}

/// Every control of `records`, with the state a switch to GCP region
/// `target` wants.
pub fn wanted(records: &[CloudDnsSpec], target: &str) -> Vec<(ControlRef, ControlState)> {
    super::controls::wanted_of(records.iter().map(|d| (d.id.as_str(), &d.controls)), target)
}

/// Reads every control of `records` (bounded): what readiness and preview
/// show.
async fn read_controls(cx: &Cx<'_>, records: &[CloudDnsSpec], target: &str) -> Vec<Finding> {
    let how = super::controls::Shown {
        target,
        others_within: super::controls::CONTROL_TIMEOUT,
        fails_closed: "its target",
        url_kind: "a gs:// object URL",
    };
    super::controls::read_each(cx, wanted(records, target), how).await
}

impl StepOutput for SwitchCloudControlOutput {
    const KIND: KindName = KindName::SwitchCloudControl;
}

/// What `switch-cloud-control` publishes: `switch-control`'s output (every
/// control, the token, when the target's were written).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SwitchCloudControlOutput(pub SwitchControlOutput);

#[async_trait]
impl super::Ready for SwitchCloudControl {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        read_controls(cx, &self.records, &self.region).await
    }
}

#[async_trait]
impl Action for SwitchCloudControl {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        super::Ready::readiness(self, cx).await
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let found = read_controls(cx, &self.records, &self.region).await;
        Ok(wanted(&self.records, &self.region)
            .into_iter()
            .zip(found)
            .map(|((c, want), f)| Planned {
                call: "gcs:objects.get + objects.insert ifGenerationMatch (no Cloud DNS call)"
                    .into(),
                resource: format!("control {} of {}", c.url, c.record),
                region: c.region.clone(),
                change: !f.state.starts_with(&want.to_string()),
                current: f.state,
                desired: want.to_string(),
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let token = token(cx).await?;
        let writes = write_controls(
            cx,
            &wanted(&self.records, &self.region),
            token,
            &self.region,
        )
        .await;
        let problems = target_problems(&writes, &self.region);
        if !problems.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "the controls of {} were not set to serve: {}",
                    self.region,
                    problems.join("; ")
                ),
                "check the control objects in Cloud Storage (drctl status), then `drctl runs resume`",
                &self.region,
                &self.region,
            ));
        }
        for w in &writes {
            if let ControlOutcome::Unreachable(why) = &w.outcome {
                tracing::warn!(control = %w.control.url, region = %w.control.region,
                    "control not written ({why}): its target fails closed, so {} is drained anyway",
                    w.control.region);
            }
        }
        SwitchCloudControlOutput(SwitchControlOutput {
            controls: writes,
            token,
            written_at: Some(Utc::now()),
        })
        .to_output()
    }
}

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
    let norm = |v: &str| v.trim_end_matches('.').to_ascii_lowercase();
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
/// `target` (pure): needed where the set cannot answer the target's value
/// (missing, no `primaryBackup` policy, another routing policy, or a
/// policy that does not name the target's value).
pub fn policy_gaps(
    d: &CloudDnsSpec,
    read: Option<&CloudRecordSet>,
    home: &str,
    target: &str,
) -> Vec<Gap> {
    let what = format!("record {} {} primaryBackup", d.name, d.rtype);
    let norm = |v: &str| v.trim_end_matches('.').to_ascii_lowercase();
    let value = d.targets.get(target).map(|v| norm(v));
    let names_target = |pb: &PrimaryBackup| {
        let values = pb
            .primary
            .iter()
            .chain(pb.backups.iter().flat_map(|b| &b.rrdatas));
        values.map(|v| norm(v)).any(|v| Some(v) == value)
    };
    let (how, needed) = match decide_policy(read, &want_record(d, home)) {
        PolicyNext::Done => return Vec::new(),
        PolicyNext::Swap(None) => ("missing".to_string(), true),
        PolicyNext::Refuse(why) => (why, true),
        PolicyNext::Swap(Some(r)) => match &r.primary_backup {
            None => (
                "absent: the record set answers its own values".to_string(),
                true,
            ),
            Some(pb) if !names_target(pb) => (format!("does not name {target}'s value"), true),
            Some(_) => ("not as `dns prepare` makes it".to_string(), false),
        },
    };
    vec![Gap { what, how, needed }]
}

/// A health-check record's wait reads its controls and, where Cloud DNS's
/// API answers, its record set's routing policy ([`policy_gaps`]).
#[async_trait]
impl Watched for CloudDnsSpec {
    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn ttl(&self) -> i64 {
        self.ttl
    }

    async fn beside(&self, cx: &Cx<'_>) -> Beside {
        let target = self.sites.gcp(cx.target);
        let set = (cx.clouds.cloud_dns).read_record_set(
            &self.project,
            &self.zone,
            &self.name,
            &self.rtype,
        );
        let (set, controls) = futures::join!(
            tokio::time::timeout(cx.control_read_timeout, set),
            read_controls(cx, std::slice::from_ref(self), target)
        );
        let gaps = match set {
            Ok(Ok(read)) => Ok(policy_gaps(self, read.as_ref(), cx.plan.home(), target)),
            Ok(Err(e)) => Err(format!("setup not verifiable: {}", e.summary())),
            Err(_) => Err(format!(
                "setup not verifiable: Cloud DNS's API did not answer within {} s",
                cx.control_read_timeout.as_secs()
            )),
        };
        Beside {
            controls,
            followers: gaps.as_ref().ok().map(|_| Vec::new()),
            gaps,
            in_place: "the record set's primaryBackup policy in place",
        }
    }
}

/// `drctl dns prepare` for `plan`'s health-check `[[cloud_dns]]` records:
/// the controls (created when absent: home serves, the others drain; an
/// existing one is left as it is) and the routing policy (one atomic
/// change, deleting the set as read; nothing when already right).
/// Idempotent. Uses Cloud DNS's API: for calm days.
pub async fn prepare(clouds: &Clouds, plan: &Plan) -> Result<Vec<Prepared>, CloudError> {
    let mut out = Vec::new();
    let home = plan.home();
    for d in (plan.spec.cloud_dns.iter()).filter(|d| d.switch == CloudSwitch::HealthCheck) {
        out.extend(prepare_controls(clouds, d, home).await?);
        out.push(prepare_policy(clouds, d, home).await?);
    }
    Ok(out)
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
                .swap_record_set(&d.project, &d.zone, deletion.as_ref(), &want)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CloudDnsSpec {
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
    fn a_switch_serves_the_target_and_drains_every_other_region() {
        let w = wanted(&[spec()], "us-east4");
        let states: Vec<(&str, ControlState)> =
            w.iter().map(|(c, s)| (c.region.as_str(), *s)).collect();
        assert_eq!(
            states,
            vec![
                ("us-central1", ControlState::Drain),
                ("us-east4", ControlState::Serve)
            ]
        );
        assert_eq!(w[1].0.url, "gs://c/o/use4");
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
        assert!(gaps(Some(&geo))[0].1, "another routing policy");
        let mut other = want.clone();
        if let Some(p) = other.primary_backup.as_mut() {
            p.backups[0].rrdatas = vec!["10.0.9.9".into()];
        }
        assert_eq!(
            gaps(Some(&other)),
            [("does not name us-east4's value".to_string(), true)]
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
