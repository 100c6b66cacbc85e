//! `verify-cloud-resolution`: a health-check `[[cloud_dns]]` switch is in
//! effect when the name resolves to the target's value, asked of the
//! world's DNS (the settings' `dns_servers`, else the zone's NS servers),
//! N answers in a row; it ends the RTO clock.
//!
//! Why resolution and not Cloud DNS's API: the switch
//! (`switch-cloud-control`) made no Cloud DNS call because the control
//! plane may be what is down; what clients see is what the name servers
//! answer. The loop is `verify-resolution`'s
//! ([`super::resolution::resolve_until`]): same streak, same
//! pauses, same clock rule (the first of the N answers).

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::resolution::{
    Asked, CONSECUTIVE_ANSWERS, Resolved, Streak, VerifyResolutionOutput, resolve_until,
};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::plan::kinds::CloudDnsSpec;
use crate::steps::graph::{Builder, Phase};

/// Resolve every health-check Cloud DNS record until it answers the
/// target's value N times in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyCloudResolution {
    /// The target's GCP region.
    pub region: String,
    /// The records.
    #[serde(serialize_with = "names")]
    pub records: Vec<CloudDnsSpec>,
}

fn names<S: serde::Serializer>(r: &[CloudDnsSpec], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|d| &d.name))
}

/// Stops the RTO clock: clients are sent to the target once this holds.
pub const TRAITS: Traits = Traits {
    ends_rto: true,
    time: Cost {
        calls: &[],
        waits: &["clouddns:HealthCheckFailover"],
        polls: Some("dns:query"),
    },
    ..Traits::RECOVERY
};

/// One verification per plan with health-check Cloud DNS records.
pub fn compile(b: &mut Builder<'_>) {
    let records = super::controls::health_check_records(b);
    let Some(first) = records.first() else {
        return;
    };
    let region = first.sites.gcp(b.target).to_string();
    let description = format!(
        "resolve {} until they answer {region}'s values {CONSECUTIVE_ANSWERS} times in a row (no Cloud DNS API call)",
        records
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::VerifyCloudResolution(VerifyCloudResolution { region, records }),
        None,
        Phase::Verify,
        resources,
        description,
    );
}

/// What it publishes: `verify-resolution`'s output (`in_sync_at` is the
/// RTO clock's end).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct VerifyCloudResolutionOutput(pub VerifyResolutionOutput);

impl StepOutput for VerifyCloudResolutionOutput {
    const KIND: KindName = KindName::VerifyCloudResolution;
}

impl VerifyCloudResolution {
    async fn one(&self, cx: &Cx<'_>, d: &CloudDnsSpec) -> Result<Resolved, StepFailure> {
        let Some(target) = d.targets.get(&self.region) else {
            return Err(StepFailure::state(
                format!("cloud_dns `{}` has no target for {}", d.id, self.region),
                "add the region's value to the record's targets",
                &d.id,
                &self.region,
            ));
        };
        let hint = format!(
            "read the controls (drctl status) and the record's routing policy (`gcloud dns record-sets describe {} --type {} --zone {} --project {}`); `drctl dns prepare --plan {}` makes what is missing",
            d.name,
            d.rtype,
            d.zone,
            d.project,
            cx.plan.name()
        );
        let asked = Asked {
            id: &d.id,
            zone: d.resolver_zone(),
            name: &d.name,
            rtype: &d.rtype,
            target,
            hint: &hint,
        };
        let streak = Mutex::new(Streak::default());
        resolve_until(
            cx,
            &asked,
            &streak,
            tokio::time::Instant::now(),
            std::future::pending(),
        )
        .await
    }
}

#[async_trait]
impl Action for VerifyCloudResolution {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let mut out = Vec::new();
        for d in &self.records {
            let now = cx
                .clouds
                .resolver
                .resolve(d.resolver_zone(), &d.name, &d.rtype)
                .await
                .map(|v| v.join(" "))
                .unwrap_or_else(|e| format!("no answer ({})", e.kind.as_str()));
            let want = d.targets.get(&self.region).cloned().unwrap_or_default();
            out.push(Planned {
                call: format!(
                    "dns:query at {} (no Cloud DNS call)",
                    cx.clouds.resolver.servers()
                ),
                resource: format!("{} {}", d.name, d.rtype),
                region: self.region.clone(),
                change: !super::resolution::names_target(
                    &now.split(' ').map(String::from).collect::<Vec<_>>(),
                    &want,
                ),
                current: now,
                desired: want,
            });
        }
        Ok(out)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let all = futures::future::join_all(self.records.iter().map(|d| self.one(cx, d))).await;
        let resolved: Vec<Resolved> = all.into_iter().collect::<Result<_, _>>()?;
        let in_sync_at: DateTime<Utc> = (resolved.iter())
            .filter_map(|r| r.first_at)
            .max()
            .unwrap_or_else(Utc::now);
        VerifyCloudResolutionOutput(VerifyResolutionOutput {
            in_sync_at,
            resolved,
            servers: cx.clouds.resolver.servers(),
            consecutive: CONSECUTIVE_ANSWERS,
            basis: format!(
                "resolution: every name answered {}'s value {CONSECUTIVE_ANSWERS} times in a row (Cloud DNS primaryBackup, no API call)",
                self.region
            ),
        })
        .to_output()
    }
}
