//! Data-plane traffic controls as the steps write and read them: which
//! controls a switch to a region wants, each one's compare-and-swap
//! (read with its version, decided by [`decide`] (pure), replaced
//! `If-Match` that version with the run's fencing token), and how they
//! read back.
//!
//! Why here: a failover's `switch-control` (every traffic kind's controls,
//! each record through its traffic role's `Points::controls`) and a
//! drill's `drill-control` write controls the same way; each step kind
//! takes these from here, never from another step kind, so the fencing
//! rule of a control is written once.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Cx, Finding, KindName, Planned, StepFailure, StepOutput};
use crate::cloud::control::{Control, ControlState};
use crate::cloud::{CloudError, ObjectUrl, PutMode, PutOutcome, SwapOutcome, Versioned};
use crate::plan::kinds::traffic::Points;

/// How long one control's read and write may take before its region is
/// recorded as not answering.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the other regions' drains may go on once the target's controls
/// are written.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// One control to write: the record, the region it controls, where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRef {
    /// The record's resource id (`[[dns]]`, `[[cloud_dns]]`).
    pub record: String,
    /// The region its object lives in, whose endpoint writes it (a
    /// Cloud Storage control's GCP region).
    pub region: String,
    /// The object.
    pub url: String,
}

/// Every data-plane control of `records` (each through its traffic role,
/// [`Points::controls`]), with the state a switch to the plan's region
/// `target` wants: serve where its site is the target, drain elsewhere;
/// each written through the region its object lives in.
pub fn wanted(records: &[&dyn Points], target: &str) -> Vec<(ControlRef, ControlState)> {
    let mut out = Vec::new();
    for d in records {
        for c in d.controls() {
            let state = if c.site == target {
                ControlState::Serve
            } else {
                ControlState::Drain
            };
            let at = ControlRef {
                record: d.id().to_string(),
                region: c.via.to_string(),
                url: c.url.to_string(),
            };
            out.push((at, state));
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
/// of every data-plane switch (`switch-control`, every traffic kind's, and
/// the drills').
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

/// Writes every control concurrently. The target's (those wanted to
/// serve) are awaited (each bounded); the others get
/// [`DRAIN_GRACE`] more once the target's are done, and one still
/// without an answer then is recorded as not waited for: a region that
/// does not answer is drained closed anyway.
pub(super) async fn write_controls(
    cx: &Cx<'_>,
    wanted: &[(ControlRef, ControlState)],
    token: u64,
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
        (0..wanted.len()).partition(|i| wanted[*i].1 == ControlState::Serve);
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

/// A data-plane switch to `cx.target`, for every kind with controls: one
/// token, `wanted`'s writes ([`write_controls`]); the target's must all
/// end as wanted, else the step fails naming them (`hint`: where to look);
/// a control elsewhere that was not reached is said, not waited for (the
/// health check that reads it fails closed, so its region is drained
/// anyway).
pub(super) async fn switch(
    cx: &Cx<'_>,
    wanted: &[(ControlRef, ControlState)],
    hint: &str,
) -> Result<SwitchControlOutput, StepFailure> {
    let target = cx.target;
    let token = token(cx).await?;
    let writes = write_controls(cx, wanted, token).await;
    let problems = target_problems(&writes);
    if !problems.is_empty() {
        return Err(StepFailure::state(
            format!(
                "the controls of {target} were not set to serve: {}",
                problems.join("; ")
            ),
            hint,
            target,
            target,
        ));
    }
    for w in &writes {
        if let ControlOutcome::Unreachable(why) = &w.outcome {
            tracing::warn!(control = %w.control.url, region = %w.control.region,
                "control not written ({why}): the health check reading it fails closed, so {} is drained anyway",
                w.control.region);
        }
    }
    Ok(SwitchControlOutput {
        controls: writes,
        token,
        written_at: Some(Utc::now()),
    })
}

/// What a switch would write: each of `wanted`'s controls against its
/// read (`found`, in the same order), through `call` (what a preview
/// people approve names).
pub(super) fn planned(
    wanted: Vec<(ControlRef, ControlState)>,
    found: Vec<Finding>,
    call: impl Fn(&ControlRef) -> String,
) -> Vec<Planned> {
    (wanted.into_iter().zip(found))
        .map(|((c, want), f)| Planned {
            call: call(&c),
            resource: format!("control {} of {}", c.url, c.record),
            region: c.region.clone(),
            change: !f.state.starts_with(&want.to_string()),
            current: f.state,
            desired: want.to_string(),
        })
        .collect()
}

/// The target's controls (those wanted to serve) that did not end so.
pub(super) fn target_problems(writes: &[ControlWrite]) -> Vec<String> {
    writes
        .iter()
        .filter(|w| w.state == ControlState::Serve)
        .filter_map(|w| match &w.outcome {
            ControlOutcome::Written | ControlOutcome::AlreadySet => None,
            ControlOutcome::Unreachable(why) | ControlOutcome::Refused(why) => {
                Some(format!("{} ({}): {why}", w.control.url, w.control.record))
            }
        })
        .collect()
}

/// Reads every control of `records` (data plane, bounded, all at once),
/// as readiness, `status` and a preview show them: the target's must read;
/// another region's that does not answer within [`DRAIN_GRACE`] is shown,
/// not blocking (what reads it fails closed, so it drains anyway).
pub async fn read_controls(cx: &Cx<'_>, records: &[&dyn Points]) -> Vec<Finding> {
    let reads = wanted(records, cx.target)
        .into_iter()
        .map(|(c, want)| async move {
            let what = format!("control {} of {}", c.url, c.record);
            let Ok(url) = ObjectUrl::parse(&c.url) else {
                return Finding::blocks(&what, &c.region, "invalid", "not an object URL");
            };
            let other = want == ControlState::Drain;
            let bound = if other { DRAIN_GRACE } else { CONTROL_TIMEOUT };
            match tokio::time::timeout(bound, cx.clouds.objects.get(&c.region, &url)).await {
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
                Ok(Err(e)) if other => Finding::ok(
                    &what,
                    &c.region,
                    format!(
                        "unreachable ({}): the health check reading it fails closed",
                        e.kind.as_str()
                    ),
                ),
                Ok(Err(e)) => Finding::unreadable(&what, &c.region, &e),
                Err(_) if other => Finding::ok(
                    &what,
                    &c.region,
                    "no answer: the health check reading it fails closed",
                ),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A Cloud DNS record's controls, keyed by GCP region: the target's
    /// site serves, the others drain, each through its own region.
    #[test]
    fn a_cloud_dns_switch_serves_the_target_and_drains_every_other_region() {
        let d = crate::plan::kinds::cloud_dns_policy::tests::spec();
        let w = wanted(&[&d], "us-east4");
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
