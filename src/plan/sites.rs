//! Sites: one place of a plan, named by its AWS region, with the GCP
//! region that goes down and comes back with it.
//!
//! # Why
//!
//! A team on both clouds runs its database on Aurora in us-west-2 and its
//! API on Cloud Run in us-central1, and fails both over together: one plan,
//! one run, one journal, one report. A failover has one target, so the plan
//! must say which GCP region stands with which AWS region. `[plan]
//! gcp_regions` does, in the order of `regions`: `regions = ["us-west-2",
//! "us-east-1"]` with `gcp_regions = ["us-central1", "us-east4"]` makes two
//! sites, us-west-2 (with us-central1) and us-east-1 (with us-east4). The
//! plan's regions stay the sites' names (the journal's target, `--to`,
//! the report), so everything that knew a plan by its regions still does;
//! a GCP resource names its copies by GCP region, as its cloud does, and
//! asks [`Sites::gcp`] which of its copies a site means. A plan on GCP
//! alone lists its GCP regions as its regions and has no `gcp_regions`:
//! every site is its own GCP region.

use std::sync::Arc;

/// The GCP region of each site of a plan (empty: every site is its own GCP
/// region). Cheap to clone: the GCP resources of a plan each hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sites(Arc<Vec<(String, String)>>);

impl Sites {
    /// The sites of a plan: its `regions` paired in order with its
    /// `gcp_regions` (none: each region is its own site on GCP).
    pub fn new(regions: &[String], gcp_regions: &[String]) -> Self {
        Self(Arc::new(
            regions
                .iter()
                .cloned()
                .zip(gcp_regions.iter().cloned())
                .collect(),
        ))
    }

    /// The GCP region of `site` (itself, when the plan pairs no GCP region
    /// with it: a plan on GCP alone).
    pub fn gcp<'a>(&'a self, site: &'a str) -> &'a str {
        self.0
            .iter()
            .find(|(s, _)| s == site)
            .map_or(site, |(_, g)| g.as_str())
    }

    /// The site a region of either cloud belongs to: a site's own name, or
    /// the site whose GCP region it is.
    pub fn site_of<'a>(&'a self, region: &'a str) -> &'a str {
        self.0
            .iter()
            .find(|(_, g)| g == region)
            .map_or(region, |(s, _)| s.as_str())
    }

    /// Whether the plan pairs GCP regions with its sites (a mixed plan).
    pub fn paired(&self) -> bool {
        !self.0.is_empty()
    }

    /// `us-east-1 (GCP us-east4)` for a paired site, else the site.
    pub fn label(&self, site: &str) -> String {
        match self.gcp(site) {
            g if g == site => site.to_string(),
            g => format!("{site} (GCP {g})"),
        }
    }
}

/// Whether `region` is shaped like a GCP region (`us-central1`,
/// `europe-west4`: two words, the second ending in its number), not an
/// AWS one (`us-east-1`).
pub fn gcp_region(region: &str) -> bool {
    let Some((area, place)) = region.split_once('-') else {
        return false;
    };
    let letters = place.trim_end_matches(|c: char| c.is_ascii_digit());
    !area.is_empty()
        && area.bytes().all(|c| c.is_ascii_lowercase())
        && !letters.is_empty()
        && letters.len() < place.len()
        && letters.bytes().all(|c| c.is_ascii_lowercase())
}

/// Whether `name` follows Google's resource naming rule (RFC 1035's
/// labels: lowercase letters, digits or hyphens, starting with a letter,
/// not ending with a hyphen) within `lengths`: what Cloud SQL instances,
/// projects, managed instance groups, Cloud Run services and Cloud DNS
/// zones are each named by, with their own limits.
pub fn gcp_name(name: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    let b = name.as_bytes();
    lengths.contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && (b.iter()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_paired_site_names_its_gcp_region_and_back() {
        let s = Sites::new(
            &v(&["us-west-2", "us-east-1"]),
            &v(&["us-central1", "us-east4"]),
        );
        assert!(s.paired());
        assert_eq!(s.gcp("us-east-1"), "us-east4");
        assert_eq!(s.site_of("us-east4"), "us-east-1");
        assert_eq!(s.site_of("us-east-1"), "us-east-1");
        assert_eq!(s.label("us-west-2"), "us-west-2 (GCP us-central1)");
    }

    #[test]
    fn a_plan_on_gcp_alone_is_its_own_sites() {
        let s = Sites::new(&v(&["us-central1", "us-east4"]), &[]);
        assert!(!s.paired());
        assert_eq!(s.gcp("us-east4"), "us-east4");
        assert_eq!(s.site_of("us-central1"), "us-central1");
        assert_eq!(s.label("us-east4"), "us-east4");
    }
}
