//! `[[check]]`: an HTTP probe per region that must pass in the target
//! before traffic moves there.

use serde::{Deserialize, Serialize};

use super::{Kind, Resource, Shown};
use crate::path;
use crate::plan::Plan;
use crate::plan::duration::parse_duration;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// A `[[check]]` entry: an HTTP probe that must pass before traffic moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// Resource id.
    pub id: String,
    /// URL to probe per region.
    pub regions: PerRegion,
    /// Expected HTTP status.
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// Per-probe timeout (`5s`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

fn default_status() -> u16 {
    200
}
fn default_timeout() -> String {
    "5s".into()
}
impl Kind for CheckSpec {
    const KEYS: &'static [&'static str] = &["id", "regions", "expect_status", "timeout", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Probe);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Steps;
}

impl Resource for CheckSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "check    {:<22} {} (expect {})",
            self.id, self.regions[region], self.expect_status
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        for (region, url) in &self.regions {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                s.error(
                    path!["regions", region.as_str()],
                    format!("check `{}` URL `{url}` is not http(s)", self.id),
                    "probes are HTTP GETs: give a full http:// or https:// URL",
                );
            }
        }
        if !(100..=599).contains(&self.expect_status) {
            s.error(
                path!["expect_status"],
                format!("`{}` is not an HTTP status", self.expect_status),
                "use e.g. 200",
            );
        }
        if let Err(e) = parse_duration(&self.timeout) {
            s.error(path!["timeout"], e.to_string(), e.hint());
        }
    }

    fn shown(&self) -> Shown<'_> {
        // Its probe is its step's readiness (`steps::readiness`).
        // A drill probes it as a failover does.
        Shown::Steps { drilled: true }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        for url in self.regions.values() {
            (w.fake.state().probes).insert(url.clone(), Some(self.expect_status));
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        Vec::new()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            v.push_str(tag);
        }
    }
}
