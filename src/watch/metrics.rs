//! What a watcher shows Prometheus (`--metrics-addr`, `/metrics`): per-plan
//! readiness, replica lag against the RPO, observations per region and
//! observer, quorum state, drill age, notifications pending. Encoded by the
//! `prometheus-client` crate (the Prometheus project's own Rust client) in
//! the OpenMetrics text format, which Prometheus scrapes natively; the
//! names are listed in docs/watch.md and used by
//! `deploy/watch/grafana-dashboard.json` and `deploy/watch/alerts.yaml`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `{plan}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabel {
    /// The plan.
    pub plan: String,
}

/// `{plan, region}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegionLabels {
    /// The plan.
    pub plan: String,
    /// The region.
    pub region: String,
}

/// `{plan, region, observer}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObserverLabels {
    /// The plan.
    pub plan: String,
    /// The region.
    pub region: String,
    /// The observer.
    pub observer: String,
}

/// `{plan, region, observer, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObservationLabels {
    /// The plan.
    pub plan: String,
    /// The region.
    pub region: String,
    /// The observer.
    pub observer: String,
    /// `ok` or `fail`.
    pub result: String,
}

/// `{plan, decision}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The plan.
    pub plan: String,
    /// The decision (journal vocabulary).
    pub decision: String,
}

type FGauge = Gauge<f64, AtomicU64>;

/// Every metric a watcher serves.
pub struct WatchMetrics {
    registry: Registry,
    /// A fit standby exists (1) or not (0).
    pub plan_ready: Family<PlanLabel, Gauge>,
    /// Replica lag, seconds.
    pub replica_lag: Family<RegionLabels, FGauge>,
    /// The tier's RPO, seconds.
    pub rpo: Family<PlanLabel, FGauge>,
    /// Observations by result.
    pub observations: Family<ObservationLabels, Counter>,
    /// Failed observations in a row.
    pub consecutive_failures: Family<ObserverLabels, Gauge>,
    /// Observers that judge the region down.
    pub down_votes: Family<RegionLabels, Gauge>,
    /// Votes required.
    pub quorum: Family<PlanLabel, Gauge>,
    /// Whether the quorum judges the region down.
    pub quorum_reached: Family<RegionLabels, Gauge>,
    /// Fresh, unimpaired observers.
    pub observers_fresh: Family<PlanLabel, Gauge>,
    /// Decisions made (counted when they change).
    pub decisions: Family<DecisionLabels, Counter>,
    /// Whether the shared state answered in the last round.
    pub state_reachable: Gauge,
    /// When the last round ended (Unix seconds).
    pub last_round: FGauge,
    /// Time since the last passing drill, seconds.
    pub drill_age: Family<PlanLabel, FGauge>,
    /// Whether the plan's drill is overdue.
    pub drill_overdue: Family<PlanLabel, Gauge>,
    /// Whether the plan is verified by its definition and its last passing
    /// drill's age (1) or not (0).
    pub plan_verified: Family<PlanLabel, Gauge>,
    /// Notifications journaled and not yet delivered.
    pub notifications_pending: Gauge,
}

impl Default for WatchMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WatchMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            plan_ready: Family::default(),
            replica_lag: Family::default(),
            rpo: Family::default(),
            observations: Family::default(),
            consecutive_failures: Family::default(),
            down_votes: Family::default(),
            quorum: Family::default(),
            quorum_reached: Family::default(),
            observers_fresh: Family::default(),
            decisions: Family::default(),
            state_reachable: Gauge::default(),
            last_round: FGauge::default(),
            drill_age: Family::default(),
            drill_overdue: Family::default(),
            plan_verified: Family::default(),
            notifications_pending: Gauge::default(),
            registry: Registry::default(),
        };
        m.register_readiness(&mut registry);
        m.register_observations(&mut registry);
        m.register_drills(&mut registry);
        registry.register(
            "drctl_notifications_pending",
            "Notifications journaled by this watcher and not yet delivered",
            m.notifications_pending.clone(),
        );
        Self { registry, ..m }
    }

    /// Registers whether each plan could fail over: its readiness, its
    /// replicas' lag and its RPO.
    fn register_readiness(&self, registry: &mut Registry) {
        registry.register(
            "drctl_plan_ready",
            "Whether a standby of the plan is fit to take over (1) or not (0)",
            self.plan_ready.clone(),
        );
        registry.register(
            "drctl_replica_lag_seconds",
            "Replica lag of the plan's database in a region, as last read",
            self.replica_lag.clone(),
        );
        registry.register("drctl_rpo_seconds", "The plan's tier RPO", self.rpo.clone());
    }

    /// Registers what the watcher observes and decides: observations,
    /// votes and quorum, decisions, the shared state, the last round.
    fn register_observations(&self, registry: &mut Registry) {
        registry.register(
            "drctl_watch_observations",
            "Observations of a plan's region by an observer, by result",
            self.observations.clone(),
        );
        registry.register(
            "drctl_watch_consecutive_failures",
            "Failed observations in a row of a plan's region by an observer",
            self.consecutive_failures.clone(),
        );
        registry.register(
            "drctl_watch_down_votes",
            "Fresh observers that judge the plan's region down",
            self.down_votes.clone(),
        );
        registry.register(
            "drctl_watch_quorum",
            "Observers that must agree before a region is judged down",
            self.quorum.clone(),
        );
        registry.register(
            "drctl_watch_quorum_reached",
            "Whether a quorum of observers judges the plan's region down",
            self.quorum_reached.clone(),
        );
        registry.register(
            "drctl_watch_observers_fresh",
            "Observers whose latest report on the plan is fresh and unimpaired",
            self.observers_fresh.clone(),
        );
        registry.register(
            "drctl_watch_decisions",
            "Decisions of this watcher, counted when they change",
            self.decisions.clone(),
        );
        registry.register(
            "drctl_watch_state_reachable",
            "Whether the shared state answered in the last round (a watcher that cannot reach it never acts)",
            self.state_reachable.clone(),
        );
        registry.register(
            "drctl_watch_last_round_timestamp_seconds",
            "When the last observation round ended (Unix time)",
            self.last_round.clone(),
        );
    }

    /// Registers each plan's drill age, whether its drill is overdue, and
    /// whether the plan is verified.
    fn register_drills(&self, registry: &mut Registry) {
        registry.register(
            "drctl_drill_age_seconds",
            "Time since the plan's last passing drill",
            self.drill_age.clone(),
        );
        registry.register(
            "drctl_drill_overdue",
            "Whether the plan's drill is overdue (no passing drill within its tier's interval)",
            self.drill_overdue.clone(),
        );
        registry.register(
            "drctl_plan_verified",
            "Whether the plan is what its last passing drill proved: its definition unchanged since, and the drill within its tier's interval (from journals and the plan; drctl status also compares the cloud's inventory)",
            self.plan_verified.clone(),
        );
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out = "# EOF\n".into();
        }
        out
    }

    /// The labels of a plan.
    pub fn plan(plan: &str) -> PlanLabel {
        PlanLabel {
            plan: plan.to_string(),
        }
    }

    /// The labels of a plan's region.
    pub fn region(plan: &str, region: &str) -> RegionLabels {
        RegionLabels {
            plan: plan.to_string(),
            region: region.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_every_family() {
        let m = WatchMetrics::new();
        m.plan_ready
            .get_or_create(&WatchMetrics::plan("payments"))
            .set(1);
        m.replica_lag
            .get_or_create(&WatchMetrics::region("payments", "us-east-1"))
            .set(2.5);
        m.observations
            .get_or_create(&ObservationLabels {
                plan: "payments".into(),
                region: "us-west-2".into(),
                observer: "a".into(),
                result: "ok".into(),
            })
            .inc();
        m.quorum
            .get_or_create(&WatchMetrics::plan("payments"))
            .set(2);
        let text = m.render();
        assert!(
            text.contains("drctl_plan_ready{plan=\"payments\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("drctl_replica_lag_seconds{plan=\"payments\",region=\"us-east-1\"} 2.5"),
            "{text}"
        );
        assert!(text.contains("drctl_watch_observations_total{"), "{text}");
        assert!(text.contains("# TYPE drctl_watch_quorum gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
