//! `switch-control`: a data-plane traffic switch. The plan's
//! `switch = "health-check"` records are Route 53 failover records, each
//! region's following a health check that reads that region's control
//! object (see [`crate::cloud::control`]). Failing over to R writes R's
//! controls to `serve` and every other region's to `drain`, **each through
//! its own region's endpoint**, with no Route 53 API call: Route 53's API is
//! hosted in us-east-1 alone, and this switch must work when us-east-1 is the
//! region that is gone.
//!
//! Every write is bounded and they run concurrently. The target's controls
//! must be written (the switch fails otherwise); a control in a region that
//! does not answer is recorded and not waited for: its health check cannot
//! read it either, so that region is drained closed.
//!
//! A control is a compare-and-swap: read with its version, decided (pure,
//! [`decide`]), then replaced `If-Match` that version, carrying the run's
//! fencing token. A control already written by a newer run (a higher
//! token) is never overwritten.
//!
//! `verify-resolution` then stops the RTO clock when the names resolve to
//! the target at the zone's authoritative servers.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::control::{Control, ControlState};
use crate::cloud::{CloudError, ObjectUrl, PutMode, PutOutcome, SwapOutcome, Versioned};
use crate::plan::spec::{DnsSpec, ResourceKind, SwitchMode};
use crate::steps::graph::{Builder, Phase};

/// How long one control's read and write may take before its region is
/// recorded as not answering.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the other regions' drains may go on once the target's controls
/// are written.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Write every health-check record's controls: the target serves, the
/// others drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchControl {
    /// Target region.
    pub region: String,
    /// The records switched (the plan's `health-check` entries).
    #[serde(serialize_with = "record_ids")]
    pub records: Vec<DnsSpec>,
}

fn record_ids<S: serde::Serializer>(r: &[DnsSpec], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(r.iter().map(|d| &d.id))
}

/// Part of the recovery: traffic moves here.
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: Cost {
        calls: &["s3:PutObject", "s3:PutObject"],
        waits: &[],
        polls: None,
    },
};

/// The plan's data-plane records, in a run that moves traffic.
pub(super) fn data_plane_records(b: &Builder<'_>) -> Vec<DnsSpec> {
    if !b.mode.fails_over() {
        return Vec::new();
    }
    (b.plan.spec.dns.iter())
        .filter(|d| d.switch == SwitchMode::HealthCheck)
        .cloned()
        .collect()
}

/// One switch per plan, over all its health-check records.
pub fn compile(b: &mut Builder<'_>) {
    let records = data_plane_records(b);
    if records.is_empty() {
        return;
    }
    let target = b.target.to_string();
    let others: Vec<&str> = (b.plan.regions().iter())
        .map(String::as_str)
        .filter(|r| *r != target)
        .collect();
    let description = format!(
        "controls of {}: {target} serve, {} drain (each through its own region; no Route 53 API call)",
        super::switch_dns::joined_names(&records),
        others.join(", ")
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::SwitchControl(SwitchControl {
            region: target,
            records,
        }),
        None,
        Phase::of(ResourceKind::Dns),
        resources,
        description,
    );
}

/// One control to write: the record, the region it controls, where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRef {
    /// The `[[dns]]` resource id.
    pub record: String,
    /// The region whose records it controls (and whose endpoint writes it).
    pub region: String,
    /// The object.
    pub url: String,
}

/// Every control of `records`, with the state a switch to `target` wants.
pub fn wanted(records: &[DnsSpec], target: &str) -> Vec<(ControlRef, ControlState)> {
    let mut out = Vec::new();
    for d in records {
        for (region, url) in &d.controls {
            let state = if region == target {
                ControlState::Serve
            } else {
                ControlState::Drain
            };
            out.push((
                ControlRef {
                    record: d.id.clone(),
                    region: region.clone(),
                    url: url.clone(),
                },
                state,
            ));
        }
    }
    out
}

/// What happened to one control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum ControlOutcome {
    /// Written now.
    Written,
    /// Already in the wanted state: nothing written.
    AlreadySet,
    /// Its region did not answer within the bound: recorded, not waited
    /// for (its health check fails closed).
    Unreachable(String),
    /// Not written: a newer run's token holds it, or it changed between
    /// the read and the write.
    Refused(String),
}

/// One control's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlWrite {
    /// Which control.
    #[serde(flatten)]
    pub control: ControlRef,
    /// The state wanted.
    pub state: ControlState,
    /// What was there before (`None`: absent or unreadable).
    pub before: Option<ControlState>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: ControlOutcome,
}

/// What the switch publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchControlOutput {
    /// Every control, in plan order.
    pub controls: Vec<ControlWrite>,
    /// The fencing token written into the controls.
    pub token: u64,
    /// When the target's controls were all written.
    pub written_at: Option<DateTime<Utc>>,
}

impl StepOutput for SwitchControlOutput {
    const KIND: KindName = KindName::SwitchControl;
}

/// What to do with one control, given what was read (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: it already says what we want.
    Keep,
    /// Create it (it does not exist).
    Create,
    /// Replace the version read.
    Replace(String),
    /// Leave it: a newer run (a higher token) wrote it.
    Refuse(String),
}

/// Decides one control from what was read.
pub fn decide(read: Option<&Versioned>, want: ControlState, token: u64) -> Decision {
    let Some(v) = read else {
        return Decision::Create;
    };
    match Control::parse(&v.body) {
        Some(c) if c.token > token => Decision::Refuse(format!(
            "run {} wrote it with fencing token {} (ours is {token})",
            c.run, c.token
        )),
        Some(c) if c.state == want => Decision::Keep,
        _ => Decision::Replace(v.version.clone()),
    }
}

/// Reads, decides and writes one control, bounded: the one control write
/// of every data-plane switch (Route 53's `switch-control`, Cloud DNS's
/// `switch-cloud-control`, the drills').
async fn write_one(cx: &Cx<'_>, c: &ControlRef, want: ControlState, token: u64) -> ControlWrite {
    let (before, outcome) = match tokio::time::timeout(CONTROL_TIMEOUT, swap(cx, c, want, token))
        .await
    {
        Ok(Ok(done)) => done,
        Ok(Err(e)) if e.kind.is_transient() => (None, ControlOutcome::Unreachable(e.to_string())),
        Ok(Err(e)) => (None, ControlOutcome::Refused(e.to_string())),
        Err(_) => (
            None,
            ControlOutcome::Unreachable(format!(
                "no answer within {} s",
                CONTROL_TIMEOUT.as_secs()
            )),
        ),
    };
    ControlWrite {
        control: c.clone(),
        state: want,
        before,
        outcome,
    }
}

/// Writes every control concurrently. The target's (those whose region
/// is `target`: the run's target site, or its GCP region for Cloud
/// DNS's controls) are awaited (each bounded); the others get
/// [`DRAIN_GRACE`] more once the target's are done, and one still
/// without an answer then is recorded as not waited for: a region that
/// does not answer is drained closed anyway.
pub(super) async fn write_controls(
    cx: &Cx<'_>,
    wanted: &[(ControlRef, ControlState)],
    token: u64,
    target: &str,
) -> Vec<ControlWrite> {
    let slots: Vec<Mutex<Option<ControlWrite>>> = wanted.iter().map(|_| Mutex::new(None)).collect();
    let write = |i: usize| {
        let (c, want) = &wanted[i];
        let slot = &slots[i];
        async move {
            let w = write_one(cx, c, *want, token).await;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
        }
    };
    let (targets, others): (Vec<usize>, Vec<usize>) =
        (0..wanted.len()).partition(|i| wanted[*i].0.region == target);
    {
        let mut drains = std::pin::pin!(futures::future::join_all(others.into_iter().map(write)));
        let mut serves = std::pin::pin!(futures::future::join_all(targets.into_iter().map(write)));
        let drained = tokio::select! {
            _ = &mut serves => false,
            _ = &mut drains => { serves.await; true }
        };
        if !drained {
            let _ = tokio::time::timeout(DRAIN_GRACE, drains).await;
        }
    }
    (wanted.iter())
        .zip(&slots)
        .map(|((c, want), slot)| {
            (slot.lock().unwrap_or_else(|p| p.into_inner()).take()).unwrap_or_else(|| {
                ControlWrite {
                    control: c.clone(),
                    state: *want,
                    before: None,
                    outcome: ControlOutcome::Unreachable(format!(
                        "no answer {} s after the target's controls were written; not waited for",
                        DRAIN_GRACE.as_secs()
                    )),
                }
            })
        })
        .collect()
}

async fn swap(
    cx: &Cx<'_>,
    c: &ControlRef,
    want: ControlState,
    token: u64,
) -> Result<(Option<ControlState>, ControlOutcome), CloudError> {
    let url = ObjectUrl::parse(&c.url).map_err(|e| {
        CloudError::new(
            if c.url.starts_with("gs://") {
                "gcs"
            } else {
                "s3"
            },
            "PutObject",
            &c.url,
            &c.region,
            crate::cloud::ErrorKind::Client,
            e.to_string(),
        )
    })?;
    let read = cx.clouds.objects.get_versioned(&c.region, &url).await?;
    let before = (read.as_ref())
        .and_then(|v| Control::parse(&v.body))
        .map(|x| x.state);
    let body = Bytes::from(
        Control {
            state: want,
            token,
            run: cx.run_id.to_string(),
            at: Utc::now(),
        }
        .body(),
    );
    let outcome = match decide(read.as_ref(), want, token) {
        Decision::Keep => ControlOutcome::AlreadySet,
        Decision::Refuse(why) => ControlOutcome::Refused(why),
        Decision::Create => match cx
            .clouds
            .objects
            .put(&c.region, &url, body, PutMode::CreateOnly)
            .await?
        {
            PutOutcome::Written(_) => ControlOutcome::Written,
            PutOutcome::AlreadyExists => ControlOutcome::Refused(
                "created by someone else between the read and the write".into(),
            ),
        },
        Decision::Replace(version) => match cx
            .clouds
            .objects
            .replace_if(&c.region, &url, body, &version)
            .await?
        {
            SwapOutcome::Swapped(_) => ControlOutcome::Written,
            _ => ControlOutcome::Refused("changed between the read and the write".into()),
        },
    };
    Ok((before, outcome))
}

/// The token a run writes into controls. One check of the lease before the
/// concurrent writes; each write is then conditional and carries the token,
/// so a writer that paused after this check cannot overwrite a newer run's
/// control. Without shared state there is no lease: the token is then the
/// time in ms, which is how lease tokens grow too, so that a later run's
/// control is never refused for an earlier run's.
pub(super) async fn token(cx: &Cx<'_>) -> Result<u64, StepFailure> {
    Ok(
        match cx.fenced("s3:PutObject of the controls", cx.target).await? {
            Some(t) => t,
            None => u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0),
        },
    )
}

/// The target's controls that did not end in the wanted state.
pub(super) fn target_problems(writes: &[ControlWrite], target: &str) -> Vec<String> {
    writes
        .iter()
        .filter(|w| w.control.region == target)
        .filter_map(|w| match &w.outcome {
            ControlOutcome::Written | ControlOutcome::AlreadySet => None,
            ControlOutcome::Unreachable(why) | ControlOutcome::Refused(why) => {
                Some(format!("{} ({}): {why}", w.control.url, w.control.record))
            }
        })
        .collect()
}

/// Reads every control of `records` (data plane, bounded): the findings of
/// preflight and `status`.
pub async fn read_controls(cx: &Cx<'_>, records: &[DnsSpec]) -> Vec<Finding> {
    let reads = wanted(records, cx.target)
        .into_iter()
        .map(|(c, _)| async move {
            let what = format!("control {} of {}", c.url, c.record);
            let Ok(url) = ObjectUrl::parse(&c.url) else {
                return Finding::blocks(&what, &c.region, "invalid", "not an S3 object URL");
            };
            // Another region's control is only shown: a region that does
            // not answer must not hold preflight up (it drains closed anyway).
            let bound = if c.region == cx.target {
                CONTROL_TIMEOUT
            } else {
                DRAIN_GRACE
            };
            let read = tokio::time::timeout(bound, cx.clouds.objects.get(&c.region, &url)).await;
            match read {
                Ok(Ok(Some(body))) => match Control::parse(&body) {
                    Some(ctl) => Finding::ok(
                        &what,
                        &c.region,
                        format!("{} (token {}, run {})", ctl.state, ctl.token, ctl.run),
                    ),
                    None => Finding::blocks(
                        &what,
                        &c.region,
                        "unreadable",
                        "not a drctl control object; run `drctl dns prepare`",
                    ),
                },
                Ok(Ok(None)) => Finding::blocks(
                    &what,
                    &c.region,
                    "missing",
                    "does not exist; run `drctl dns prepare` on a calm day",
                ),
                Ok(Err(e)) if c.region != cx.target => Finding::ok(
                    &what,
                    &c.region,
                    format!(
                        "unreachable ({}): its health check fails closed",
                        e.kind.as_str()
                    ),
                ),
                Ok(Err(e)) => Finding::unreadable(&what, &c.region, &e),
                Err(_) if c.region != cx.target => {
                    Finding::ok(&what, &c.region, "no answer: its health check fails closed")
                }
                Err(_) => Finding::blocks(
                    &what,
                    &c.region,
                    "no answer",
                    format!("no answer within {} s", CONTROL_TIMEOUT.as_secs()),
                ),
            }
        });
    futures::future::join_all(reads).await
}

#[async_trait]
impl Action for SwitchControl {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let (mut out, setup) = futures::join!(
            read_controls(cx, &self.records),
            super::dns_setup::setup_findings(cx, &self.records)
        );
        out.extend(setup);
        out
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        self.readiness(cx).await
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let found = read_controls(cx, &self.records).await;
        Ok(wanted(&self.records, cx.target)
            .into_iter()
            .zip(found)
            .map(|((c, want), f)| Planned {
                call: format!(
                    "s3:GetObject + PutObject If-Match via {} (no Route 53 call)",
                    c.region
                ),
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
        let writes = write_controls(cx, &wanted(&self.records, cx.target), token, cx.target).await;
        let problems = target_problems(&writes, cx.target);
        if !problems.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "the controls of {} were not set to serve: {}",
                    cx.target,
                    problems.join("; ")
                ),
                "check the control buckets in the target region (drctl status), then `drctl runs resume`",
                &self.region,
                cx.target,
            ));
        }
        for w in &writes {
            if let ControlOutcome::Unreachable(why) = &w.outcome {
                tracing::warn!(control = %w.control.url, region = %w.control.region,
                    "control not written ({why}): its health check fails closed, so {} is drained anyway",
                    w.control.region);
            }
        }
        SwitchControlOutput {
            controls: writes,
            token,
            written_at: Some(Utc::now()),
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(state: ControlState, token: u64) -> Versioned {
        Versioned {
            body: Bytes::from(
                Control {
                    state,
                    token,
                    run: "r-old".into(),
                    at: Utc::now(),
                }
                .body(),
            ),
            version: "v1".into(),
            times: Default::default(),
        }
    }

    #[test]
    fn a_control_is_created_kept_replaced_or_refused_by_its_token() {
        use ControlState::*;
        assert_eq!(decide(None, Serve, 5), Decision::Create);
        assert_eq!(decide(Some(&read(Serve, 5)), Serve, 5), Decision::Keep);
        assert_eq!(decide(Some(&read(Serve, 0)), Serve, 5), Decision::Keep);
        assert_eq!(
            decide(Some(&read(Drain, 3)), Serve, 5),
            Decision::Replace("v1".into())
        );
        assert!(matches!(
            decide(Some(&read(Drain, 9)), Serve, 5),
            Decision::Refuse(_)
        ));
        // Something that is not a control is replaced, not trusted.
        let junk = Versioned {
            body: Bytes::from_static(b"hello"),
            version: "v7".into(),
            times: Default::default(),
        };
        assert_eq!(
            decide(Some(&junk), Drain, 1),
            Decision::Replace("v7".into())
        );
    }
}
