//! A health-check `[[cloud_dns]]` record's setup as the steps use it: its
//! controls as a switch to a region wants them and as read, and `drctl dns
//! prepare` itself (calm days: controls create-only, the routing policy in
//! one atomic change whose deletion is the set as read). The policy as
//! `dns prepare` makes it and how a set read differs from it are the
//! kind's (`plan::kinds::cloud_dns_policy`, re-exported here), where the
//! traffic role's verification by resolution reads them too.
//!
//! Why here, not in a step kind: `switch-control` (the switch) and
//! readiness both read the controls, and no step kind imports another
//! (`tests/it/layers.rs`); Route 53's counterpart is `dns_setup.rs`.

use super::dns_setup::{Prepared, create_control};
use crate::cloud::control::ControlState;
use crate::cloud::{CloudError, Clouds, ErrorKind, ObjectUrl, gcp_dns};
use crate::plan::Plan;
pub use crate::plan::kinds::cloud_dns_policy::{
    PolicyNext, answers_target, decide_policy, policy_gaps, want_record,
};
use crate::plan::kinds::{CloudDnsSpec, CloudSwitch};

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
    use crate::plan::kinds::cloud_dns_policy::tests::spec;

    #[test]
    fn a_switch_serves_the_target_and_drains_every_other_region() {
        let d = spec();
        let w = crate::steps::controls::wanted(&[&d], "us-east4");
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
}
