//! The plan's resource kinds in one place: one list ([`kinds!`]) names each
//! kind with its table, its spec type and the keys its table takes, and a
//! [`Resource`] trait says what the rest of drctl asks of any resource.
//!
//! Before this, every reader named the kinds itself: `plan show` had a loop
//! per kind, the RPO gate filtered databases by strategy, the old region's
//! side reads walked `spec.database`, and the known keys were a second list
//! beside the spec types. A new kind now means a spec type, its `Resource`
//! impl and one line in the list; readers ask the trait.

use super::Plan;
use super::spec::{
    BucketSpec, CheckSpec, ComputeSpec, DatabaseSpec, DbStrategy, DnsSpec, PerRegion, PlanSpec,
    ResourceKind, ResourceRef, SwitchMode,
};

/// What drctl asks of any resource of a plan.
pub trait Resource: Sync {
    /// Its kind.
    fn kind(&self) -> ResourceKind;
    /// Its id, unique in the plan.
    fn id(&self) -> &str;
    /// The resources that must be done first.
    fn after(&self) -> &[String];
    /// Its provider id per region, when the kind has them (`targets` for a
    /// DNS record that does not follow a database).
    fn regions(&self) -> Option<&PerRegion>;
    /// `plan show`'s line for it in `region` (after the kind's name).
    fn show(&self, plan: &Plan, region: &str) -> String;
    /// The replica whose lag the RPO gate reads before a failover, when it
    /// is one (a database promoted from its replica).
    fn lag_source(&self) -> Option<&DatabaseSpec> {
        None
    }
    /// The section of the old regions' side read that holds it (what a
    /// failover reads, bounded, of the regions it leaves), when it has one.
    fn side_read(&self) -> Option<&'static str> {
        None
    }
}

/// Declares the kinds once: table name, `ResourceKind`, spec type and the
/// keys its table takes. Generates the keys lookup and the walk over a
/// plan's resources in file order per kind.
macro_rules! kinds {
    ($( $table:literal => $kind:ident, $field:ident : $spec:ty, keys [$($key:literal),* $(,)?]; )*) => {
        /// The keys each kind's table takes (for "did you mean" hints).
        pub fn keys(table: &str) -> &'static [&'static str] {
            match table {
                $( $table => &[$($key),*], )*
                _ => &[],
            }
        }

        /// Every kind's table name, in the order of a plan file.
        pub const TABLES: &[&str] = &[$($table),*];

        /// Every resource of `spec`, in file order per kind.
        pub fn each(spec: &PlanSpec) -> Vec<&dyn Resource> {
            let mut out: Vec<&dyn Resource> = Vec::new();
            $( out.extend(spec.$field.iter().map(|r| r as &dyn Resource)); )*
            out
        }

        /// Every resource of `spec` as a borrowed view, with its index
        /// within its kind (for error paths).
        pub fn refs(spec: &PlanSpec) -> Vec<ResourceRef<'_>> {
            let mut out = Vec::new();
            $(
                for (index, r) in spec.$field.iter().enumerate() {
                    out.push(ResourceRef {
                        kind: ResourceKind::$kind,
                        index,
                        id: r.id(),
                        after: r.after(),
                        regions: r.regions(),
                    });
                }
            )*
            out
        }
    };
}

impl PlanSpec {
    /// Every resource, in file order per kind.
    pub fn resources(&self) -> Vec<ResourceRef<'_>> {
        refs(self)
    }
}

kinds! {
    "database" => Database, database: DatabaseSpec, keys ["id", "engine", "strategy", "regions", "after"];
    "compute" => Compute, compute: ComputeSpec, keys ["id", "active", "standby", "regions", "after"];
    "dns" => Dns, dns: DnsSpec, keys ["id", "zone", "name", "type", "ttl", "switch", "targets", "follows", "controls", "after"];
    "check" => Check, check: CheckSpec, keys ["id", "regions", "expect_status", "timeout", "after"];
    "bucket" => Bucket, bucket: BucketSpec, keys ["id", "regions", "after"];
}

/// The fields every kind has, the same way: its kind, id and `after`
/// (the rest of each [`Resource`] impl is the kind's own).
macro_rules! resource {
    ($spec:ty, $kind:ident, $($rest:tt)*) => {
        impl Resource for $spec {
            fn kind(&self) -> ResourceKind {
                ResourceKind::$kind
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn after(&self) -> &[String] {
                &self.after
            }
            $($rest)*
        }
    };
}

resource! { DatabaseSpec, Database,
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }
    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "database {:<22} {} ({}{})",
            self.id,
            self.regions[region],
            match self.strategy {
                DbStrategy::PromoteReplica => "promote-replica",
                DbStrategy::PointInTimeRestore => "point-in-time-restore",
            },
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }
    fn lag_source(&self) -> Option<&DatabaseSpec> {
        (self.strategy == DbStrategy::PromoteReplica).then_some(self)
    }
    fn side_read(&self) -> Option<&'static str> {
        Some("databases")
    }
}

resource! { ComputeSpec, Compute,
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }
    fn show(&self, plan: &Plan, region: &str) -> String {
        let cap = if region == plan.home() {
            self.active
        } else {
            self.standby
        };
        format!(
            "compute  {:<22} {} (normally {}/{}/{})",
            self.id, self.regions[region], cap.min, cap.desired, cap.max
        )
    }
}

resource! { DnsSpec, Dns,
    fn regions(&self) -> Option<&PerRegion> {
        self.follows.is_none().then_some(&self.targets)
    }
    fn show(&self, _: &Plan, region: &str) -> String {
        let target = match (&self.follows, self.switch) {
            (Some(db), _) => format!("endpoint of {db} here"),
            (None, SwitchMode::Upsert) => self.targets[region].clone(),
            (None, SwitchMode::Weighted) => {
                format!("{} (weighted, set id {region})", self.targets[region])
            }
            (None, SwitchMode::HealthCheck) => format!(
                "{} (health-check, control {})",
                self.targets[region],
                self.controls.get(region).map(String::as_str).unwrap_or("-")
            ),
        };
        format!(
            "dns      {:<22} {} {} → {}",
            self.id, self.name, self.rtype, target
        )
    }
}

resource! { CheckSpec, Check,
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }
    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "check    {:<22} {} (expect {})",
            self.id, self.regions[region], self.expect_status
        )
    }
}

resource! { BucketSpec, Bucket,
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }
    fn show(&self, _: &Plan, region: &str) -> String {
        format!("bucket   {:<22} {}", self.id, self.regions[region])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payments() -> Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .expect("the reference payments plan")
    }

    #[test]
    fn every_kind_is_walked_in_file_order_and_answers_for_itself() {
        let p = payments();
        let all = each(&p.spec);
        let kinds: Vec<ResourceKind> = all.iter().map(|r| r.kind()).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted, "grouped by kind, in the order of the list");
        assert_eq!(all.len(), refs(&p.spec).len());
        for (r, view) in all.iter().zip(refs(&p.spec)) {
            assert_eq!((r.kind(), r.id()), (view.kind, view.id));
            assert!(TABLES.contains(&r.kind().table()));
            assert!(keys(r.kind().table()).contains(&"id"));
        }
    }

    #[test]
    fn only_a_promoted_replica_is_a_lag_source_and_only_databases_are_side_read() {
        let p = payments();
        let sources: Vec<&str> = each(&p.spec)
            .into_iter()
            .filter_map(|r| r.lag_source())
            .map(|d| d.id.as_str())
            .collect();
        let promoted: Vec<&str> = (p.spec.database.iter())
            .filter(|d| d.strategy == DbStrategy::PromoteReplica)
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(sources, promoted);
        assert!(!sources.is_empty());
        for r in each(&p.spec) {
            assert_eq!(r.side_read().is_some(), r.kind() == ResourceKind::Database);
        }
    }

    #[test]
    fn each_kind_shows_its_line_in_a_region() {
        let p = payments();
        let home = p.home().to_string();
        for r in each(&p.spec) {
            let line = r.show(&p, &home);
            assert!(line.starts_with(r.kind().table()), "{line}");
            assert!(line.contains(r.id()), "{line}");
        }
    }
}
