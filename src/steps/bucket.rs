//! `verify-bucket`: the data a plan keeps in object storage is where a
//! failover needs it. Before the run (preflight, `status`) the target
//! region's bucket must be there; after the switch, its state is read again
//! and journaled, so the evidence says what the data looked like once
//! traffic had moved.
//!
//! Only the target side is read on a failover's path: replication rules
//! live on the *source* bucket, in the home region, which may be the one
//! that is down (`status` reads them, bounded).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Action, Cx, Finding, Planned, StepFailure, StepKind, Traits};
use crate::cloud::ObjectUrl;
use crate::graph::{Builder, Phase, RunMode};

/// Check one `[[bucket]]` in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyBucket {
    /// Plan resource id.
    pub resource: String,
    /// The bucket in the target region (`s3://name` or `gs://name`).
    pub bucket: String,
    /// Target region.
    pub region: String,
}

/// Read-only: records state after the switch, moves nothing.
pub const TRAITS: Traits = Traits {
    recovery: false,
    ends_rto: false,
    irreversible: false,
    rpo: None,
    in_status: true,
};

/// A failover verifies every bucket of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode != RunMode::Failover {
        return;
    }
    let steps: Vec<VerifyBucket> = b
        .plan
        .spec
        .bucket
        .iter()
        .map(|x| VerifyBucket {
            resource: x.id.clone(),
            bucket: x.regions[b.target].clone(),
            region: b.target.to_string(),
        })
        .collect();
    for v in steps {
        let description = format!("read {} in {} back after the switch", v.bucket, v.region);
        b.add(
            StepKind::VerifyBucket(v.clone()),
            Some(v.resource.clone()),
            Phase::Verify,
            vec![v.resource],
            description,
        );
    }
}

impl VerifyBucket {
    /// What the target bucket looks like, as a finding.
    async fn inspect(&self, cx: &Cx<'_>) -> Finding {
        let what = format!("bucket {}", self.bucket);
        let url = match ObjectUrl::parse(&self.bucket) {
            Ok(u) => u,
            Err(e) => return Finding::blocks(&what, &self.region, "invalid", e.to_string()),
        };
        match cx.clouds.objects.bucket_exists(&self.region, &url).await {
            Ok(true) => Finding::ok(&what, &self.region, "exists"),
            Ok(false) => Finding::blocks(&what, &self.region, "missing", "does not exist"),
            Err(e) => Finding::unreadable(&what, &self.region, &e),
        }
    }
}

#[async_trait]
impl Action for VerifyBucket {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        vec![self.inspect(cx).await]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let f = self.inspect(cx).await;
        Ok(vec![Planned {
            call: String::new(),
            resource: self.bucket.clone(),
            region: self.region.clone(),
            current: f.state,
            desired: "exists".into(),
            change: false,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let f = self.inspect(cx).await;
        if let Some(problem) = &f.problem {
            return Err(StepFailure::state(
                format!("{} in {}: {problem}", self.bucket, self.region),
                "create it (terraform/) or fix [[bucket]] in the plan, then `drctl runs resume`",
                &self.bucket,
                &self.region,
            ));
        }
        Ok(json!({ "bucket": self.bucket, "region": self.region, "state": f.state }))
    }
}
