//! `[[bucket]]`: a bucket per region whose replication into the target is
//! checked (versioned, a rule from the serving region enabled) before and
//! after a failover; nothing is switched.

use serde::{Deserialize, Serialize};

use super::{Kind, Resource, Shown};
use crate::cloud::ObjectUrl;
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// A `[[bucket]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    /// Resource id.
    pub id: String,
    /// `s3://` or `gs://` bucket per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}
impl Kind for BucketSpec {
    const KEYS: &'static [&'static str] = &["id", "regions", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = None;
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Steps;
}

impl Resource for BucketSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!("bucket   {:<22} {}", self.id, self.regions[region])
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        for (region, url) in &self.regions {
            if let Err(e) = ObjectUrl::parse(url) {
                s.error(
                    path!["regions", region.as_str()],
                    e.to_string(),
                    "write s3://bucket-name or gs://bucket-name",
                );
            }
        }
    }

    fn shown(&self) -> Shown<'_> {
        // Its replication is its step's readiness (`steps::readiness`).
        // A drill's preflight checks its replication as a failover's does.
        Shown::Steps { drilled: true }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        use crate::cloud::{BucketState, ReplicationRule};
        let buckets: Vec<(&String, ObjectUrl)> = (self.regions.iter())
            .filter_map(|(region, url)| Some((region, ObjectUrl::parse(url).ok()?)))
            .collect();
        let mut s = w.fake.state();
        for (region, url) in &buckets {
            let key = ObjectUrl {
                key: String::new(),
                ..url.clone()
            }
            .to_string();
            // Versioned everywhere; the serving region's replicates into
            // every standby's, as terraform/ sets them up.
            let replication = (*region == w.home).then(|| {
                (buckets.iter().filter(|(r, _)| *r != *region))
                    .map(|(r, to)| ReplicationRule {
                        id: format!("to-{r}"),
                        enabled: true,
                        destination: format!("arn:aws:s3:::{}", to.bucket),
                    })
                    .collect()
            });
            if !s.buckets.contains(&key) {
                s.buckets.push(key.clone());
            }
            s.bucket_states.insert(
                key,
                BucketState {
                    exists: true,
                    location: Some(region.to_string()),
                    location_type: Some("region".into()),
                    versioning: Some(true),
                    replication,
                },
            );
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        Vec::new()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, _tag: &str, _zone: &str) {
        // Buckets are read, never changed: copies of a plan share them.
    }
}
