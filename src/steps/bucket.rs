//! `verify-bucket`: the data a plan keeps in object storage is where a
//! failover needs it. What `docs/plans.md` promises for `[[bucket]]`:
//!
//! * S3: the target region's bucket exists, has versioning on (replication
//!   needs it on both sides), and (read by `status`, which may read every
//!   region) an enabled replication rule on the source bucket writes into it;
//! * GCS: the bucket is reachable and its location covers the target region.
//!
//! Before a failover (preflight) only the target side is read: the source
//! bucket's rules live in the region being left, which may be down. After the
//! switch the target bucket is read again and its state journaled, so the
//! evidence says what the data looked like once traffic had moved.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::{BucketState, ObjectScheme, ObjectUrl};
use crate::steps::graph::{Builder, Phase};

/// Check one `[[bucket]]` in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyBucket {
    /// Plan resource id.
    pub resource: String,
    /// The bucket in the target region (`s3://name` or `gs://name`).
    pub bucket: String,
    /// Target region.
    pub region: String,
    /// The bucket that replicates into it (the home region's, or the first
    /// standby's when the target is home) and its region.
    pub source: Option<(String, String)>,
}

/// Read-only: records state after the switch, moves nothing.
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &["s3:GetBucketReplication", "s3:HeadBucket"],
        ..Cost::NONE
    },
    ..Traits::OFF_PATH
};

/// A failover verifies every bucket of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let regions = b.plan.regions();
    let from = if b.target == regions[0] {
        regions.get(1)
    } else {
        regions.first()
    };
    let steps: Vec<VerifyBucket> = b
        .plan
        .spec
        .bucket
        .iter()
        .map(|x| VerifyBucket {
            resource: x.id.clone(),
            bucket: x.regions[b.target].clone(),
            region: b.target.to_string(),
            source: from.map(|r| (x.regions[r].clone(), r.clone())),
        })
        .collect();
    for v in steps {
        let description = format!("read {} in {} back after the switch", v.bucket, v.region);
        b.add(
            StepKind::VerifyBucket(v.clone()),
            Some(v.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Bucket),
            vec![v.resource],
            description,
        );
    }
}

/// Whether a GCS location covers a region: the same region (`US-EAST1`
/// covers `us-east1` and `us-east-1`), or a multi-region (`US`, `EU`,
/// `ASIA`) that holds it. `None` for a dual-region (its pair is not in the
/// bucket's metadata here) or anything else this cannot tell.
pub fn gcs_location_covers(
    location: &str,
    location_type: Option<&str>,
    region: &str,
) -> Option<bool> {
    let squash = |s: &str| s.replace('-', "").to_ascii_uppercase();
    match location_type
        .unwrap_or("region")
        .to_ascii_lowercase()
        .as_str()
    {
        "region" => Some(squash(location) == squash(region)),
        "multi-region" => {
            let continent = match location.to_ascii_uppercase().as_str() {
                "US" => "US",
                "EU" => "EU",
                "ASIA" => "ASIA",
                _ => return None,
            };
            let r = region.to_ascii_uppercase();
            Some(r.starts_with(continent) || (continent == "EU" && r.starts_with("EUROPE")))
        }
        _ => None,
    }
}

impl VerifyBucket {
    /// What the target bucket looks like, as a finding.
    async fn inspect(&self, cx: &Cx<'_>) -> (Finding, Option<BucketState>) {
        let what = format!("bucket {}", self.bucket);
        let url = match ObjectUrl::parse(&self.bucket) {
            Ok(u) => u,
            Err(e) => {
                return (
                    Finding::blocks(&what, &self.region, "invalid", e.to_string()),
                    None,
                );
            }
        };
        let st = match cx.clouds.objects.bucket_state(&self.region, &url).await {
            Ok(st) => st,
            Err(e) => return (Finding::unreadable(&what, &self.region, &e), None),
        };
        let f = if !st.exists {
            Finding::missing(&what, &self.region)
        } else {
            match url.scheme {
                ObjectScheme::S3 => match st.versioning {
                    Some(true) => Finding::ok(&what, &self.region, "exists, versioning on"),
                    _ => Finding::blocks(
                        &what,
                        &self.region,
                        "exists, versioning off",
                        "replication into it needs versioning on (terraform/)",
                    ),
                },
                ObjectScheme::Gcs => {
                    let loc = st.location.clone().unwrap_or_default();
                    let ty = st.location_type.clone();
                    match gcs_location_covers(&loc, ty.as_deref(), &self.region) {
                        Some(true) => Finding::ok(
                            &what,
                            &self.region,
                            format!("location {loc} covers {}", self.region),
                        ),
                        Some(false) => Finding::blocks(
                            &what,
                            &self.region,
                            format!("location {loc}"),
                            format!("its location {loc} does not cover {}", self.region),
                        ),
                        None => Finding::ok(
                            &what,
                            &self.region,
                            format!(
                                "location {loc} ({}): cannot tell whether it covers {}",
                                ty.unwrap_or_default(),
                                self.region
                            ),
                        ),
                    }
                }
            }
        };
        (f, Some(st))
    }

    /// Whether the source bucket replicates into the target (S3 only).
    async fn replication(&self, cx: &Cx<'_>) -> Option<Finding> {
        let (source, region) = self.source.as_ref()?;
        let src = ObjectUrl::parse(source).ok()?;
        let target = ObjectUrl::parse(&self.bucket).ok()?;
        if src.scheme != ObjectScheme::S3 {
            return None;
        }
        let what = format!("replication {source} → {}", self.bucket);
        Some(match cx.clouds.objects.bucket_state(region, &src).await {
            Err(e) => Finding::blocks(&what, region, "could not be read", e.message),
            Ok(st) if !st.exists => Finding::blocks(
                &what,
                region,
                "no source bucket",
                format!("{source} does not exist"),
            ),
            Ok(st) => {
                let rules = st.replication.unwrap_or_default();
                match rules.iter().find(|r| r.targets(&target.bucket)) {
                    Some(r) if r.enabled => {
                        Finding::ok(&what, region, format!("rule {} enabled", r.id))
                    }
                    Some(r) => Finding::blocks(
                        &what,
                        region,
                        format!("rule {} disabled", r.id),
                        "enable the replication rule",
                    ),
                    None => Finding::blocks(
                        &what,
                        region,
                        "no rule",
                        format!("{source} has no replication rule into {}", target.bucket),
                    ),
                }
            }
        })
    }
}

/// What a bucket check publishes: the replication state it read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketOutput {
    /// The bucket.
    pub bucket: String,
    /// The region checked.
    pub region: String,
    /// The state, in words.
    pub state: String,
    /// What is wrong, when something is.
    pub problem: Option<String>,
    /// What was read.
    pub read: Option<BucketState>,
}

impl StepOutput for BucketOutput {
    const KIND: KindName = KindName::VerifyBucket;
}

#[async_trait]
impl super::Ready for VerifyBucket {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let (target, replication) = futures::join!(self.inspect(cx), self.replication(cx));
        std::iter::once(target.0).chain(replication).collect()
    }
}

#[async_trait]
impl Action for VerifyBucket {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        vec![self.inspect(cx).await.0]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let (f, _) = self.inspect(cx).await;
        Ok(vec![Planned {
            call: String::new(),
            resource: self.bucket.clone(),
            region: self.region.clone(),
            current: f.state,
            desired: "exists, replicated into".into(),
            change: false,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (f, st) = self.inspect(cx).await;
        if st.as_ref().is_none_or(|s| !s.exists) {
            return Err(StepFailure::state(
                format!(
                    "{} in {}: {}",
                    self.bucket,
                    self.region,
                    f.problem.as_deref().unwrap_or(&f.state)
                ),
                "create it (terraform/) or fix [[bucket]] in the plan, then `drctl runs resume`",
                &self.bucket,
                &self.region,
            ));
        }
        BucketOutput {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            state: f.state,
            problem: f.problem,
            read: st,
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::gcs_location_covers;

    #[test]
    fn gcs_locations_cover_their_regions() {
        assert_eq!(
            gcs_location_covers("US-EAST1", Some("region"), "us-east1"),
            Some(true)
        );
        assert_eq!(
            gcs_location_covers("US-EAST1", Some("region"), "us-east-1"),
            Some(true)
        );
        assert_eq!(
            gcs_location_covers("US-EAST1", Some("region"), "us-west-2"),
            Some(false)
        );
        assert_eq!(
            gcs_location_covers("US", Some("multi-region"), "us-west-2"),
            Some(true)
        );
        assert_eq!(
            gcs_location_covers("EU", Some("multi-region"), "us-west-2"),
            Some(false)
        );
        assert_eq!(
            gcs_location_covers("NAM4", Some("dual-region"), "us-east-1"),
            None
        );
    }
}
