//! Why a step failed ([`StepFailure`]): a cloud error, a state the step
//! will not act on, a wait that ran out, a lease lost at the fence, with
//! the resource and region each names and the hint the CLI prints. Apart
//! from `steps/mod.rs` so that each file stays one reader's size;
//! re-exported there.

use std::time::Duration;

use crate::cloud::CloudError;

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepFailure {
    /// A cloud call failed (after retries, when transient). A call refused
    /// at the wire by its lease ([`crate::cloud::wire`]) becomes
    /// [`Self::Fenced`] instead (see the `From` below).
    #[error(transparent)]
    Cloud(CloudError),
    /// Waiting ran out of time.
    #[error(
        "timed out after {} waiting for {what}", crate::plan::duration::format_duration(*waited)
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// The world is not in a state the step can work from.
    #[error("{message}")]
    State {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
        /// Resource.
        resource: String,
        /// Region.
        region: String,
    },
    /// The run's lease was lost before a cloud write ([`Cx::fenced`]):
    /// nothing was changed, and the run ends as a fenced journal ends it.
    #[error(
        "lease lost: {what} ({region}) was not sent, and this process made no change: {detail}"
    )]
    Fenced {
        /// The write that was not made (`promote payments-db-usw2`).
        what: String,
        /// Where it would have gone.
        region: String,
        /// Why the lease is not ours (taken over, expired, unreadable).
        detail: String,
    },
}

impl From<CloudError> for StepFailure {
    /// A cloud error as a step's failure: a call the wire fence refused is
    /// the run's lease lost ([`Self::Fenced`]), as a refused journal append
    /// is; anything else is [`Self::Cloud`].
    fn from(e: CloudError) -> Self {
        if e.kind == crate::cloud::ErrorKind::Fenced {
            Self::Fenced {
                what: format!("{}:{} of {}", e.service, e.operation, e.resource),
                region: e.region.to_string(),
                detail: e.message,
            }
        } else {
            Self::Cloud(e)
        }
    }
}

impl StepFailure {
    /// A state failure.
    pub fn state(
        message: impl Into<String>,
        hint: impl Into<String>,
        resource: &str,
        region: &str,
    ) -> Self {
        Self::State {
            message: message.into(),
            hint: hint.into(),
            resource: resource.to_string(),
            region: region.to_string(),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &str {
        match self {
            Self::Cloud(e) => e.hint(),
            Self::Timeout { .. } => {
                "a step may wait for what is left of the tier's RTO budget (at least a quarter of the RTO), or --step-timeout; check the resource in the console, then resume the run"
            }
            Self::State { hint, .. } => hint,
            Self::Fenced { .. } => {
                "another process took the plan over; `drctl lock status` shows who holds it, and `drctl runs show` who continued the run"
            }
        }
    }

    /// What happened, one line, without the hint.
    pub fn summary(&self) -> String {
        match self {
            Self::Cloud(e) => e.summary(),
            _ => self.to_string(),
        }
    }

    /// The journal's serializable form (its message followed by the hint,
    /// as journals have always held it: see [`crate::journal::StepError::summary`]).
    pub fn to_record(&self) -> crate::journal::event::StepError {
        use crate::journal::event::ErrorClass;
        let (kind, transient, resource, region) = match self {
            Self::Cloud(e) => (
                ErrorClass::from(e.kind),
                e.is_transient(),
                Some(e.resource.to_string()),
                Some(e.region.to_string()),
            ),
            Self::Timeout { .. } => (ErrorClass::Timeout, true, None, None),
            Self::State {
                resource, region, ..
            } => (
                ErrorClass::State,
                false,
                Some(resource.clone()),
                Some(region.clone()),
            ),
            Self::Fenced { what, region, .. } => (
                ErrorClass::State,
                false,
                Some(what.clone()),
                Some(region.clone()),
            ),
        };
        crate::journal::event::StepError {
            message: format!("{}\n  hint: {}", self.summary(), self.hint()),
            kind,
            transient,
            resource,
            region,
        }
    }
}
