//! A plan's `[watch]` section: how `drctl watch` judges its regions and
//! what it may do about an outage (docs/watch.md).
//!
//! Automatic failover is where DR tools do damage (a partition read as an
//! outage, a flapping check, one observer's broken network), so every knob
//! here is a brake with a safe default: watch only observes unless the plan
//! (or its tier) says otherwise, a region is judged down only after
//! `failures` failed observations in a row by each of `quorum` observers,
//! and a proposal waits `veto_window` before it starts. `propose` or
//! `auto` with a quorum of one is refused: one vantage point may never
//! start a failover by itself.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::duration::{MAX_DURATION, parse_duration};

/// What watch may do when a plan's active region is judged down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// Tell people; start nothing.
    #[default]
    Observe,
    /// Tell people with the exact command, and start the failover after the
    /// veto window unless someone vetoes it.
    Propose,
    /// Start the failover at once.
    Auto,
}

impl WatchMode {
    /// The name as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Observe => "observe",
            Self::Propose => "propose",
            Self::Auto => "auto",
        }
    }
}

/// `[watch]` as the plan file writes it (durations as text, checked by
/// [`WatchSpec::problems`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WatchSpec {
    /// `observe`, `propose` or `auto` (default: the tier's `watch`, else observe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WatchMode>,
    /// Time between observations (`10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Failed observations in a row, per observer, before it judges a
    /// region down (1 to [`MAX_FAILURES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// Observers that must agree (1 to [`MAX_QUORUM`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// Propose mode: time between the proposal and the failover's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub veto_window: Option<String>,
    /// An observation older than this does not count (default:
    /// `interval × (failures + 1)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<String>,
    /// Replica lag above the RPO that watch may accept when it starts a
    /// failover (default: none; the target must be within the RPO).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_data_loss: Option<String>,
    /// CloudWatch alarms per region; one in ALARM fails that region's observation.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub alarms: IndexMap<String, Vec<String>>,
}

/// `[watch]` resolved: defaults applied, durations parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchRules {
    /// What watch may do.
    pub mode: WatchMode,
    /// Time between observations.
    pub interval: Duration,
    /// Failed observations in a row, per observer, before it judges a region down.
    pub failures: u32,
    /// Observers that must agree.
    pub quorum: u32,
    /// Propose mode: time before the failover starts.
    pub veto_window: Duration,
    /// The age past which an observation does not count.
    pub freshness: Duration,
    /// Lag above the RPO that watch may accept (`None`: none).
    pub accept_data_loss: Option<Duration>,
    /// CloudWatch alarms per region.
    pub alarms: IndexMap<String, Vec<String>>,
}

/// The default interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// The default number of failed observations in a row.
pub const DEFAULT_FAILURES: u32 = 3;
/// The default quorum.
pub const DEFAULT_QUORUM: u32 = 2;
/// The default veto window.
pub const DEFAULT_VETO_WINDOW: Duration = Duration::from_secs(120);
/// The most failed observations in a row `failures` may ask for: 1000 (at
/// the default interval, near three hours before a region is judged down).
pub const MAX_FAILURES: u32 = 1000;
/// The largest quorum: 100 observers.
pub const MAX_QUORUM: u32 = 100;

impl WatchSpec {
    /// The rules, with defaults (`tier`: the tier's default mode). A value
    /// that does not parse falls back to its default: [`WatchSpec::problems`]
    /// is what reports it, and a plan with problems does not load.
    pub fn rules(&self, tier: Option<WatchMode>) -> WatchRules {
        let dur = |t: &Option<String>, d: Duration| {
            t.as_deref()
                .and_then(|t| parse_duration(t).ok())
                .unwrap_or(d)
        };
        let interval = dur(&self.interval, DEFAULT_INTERVAL);
        let failures = self.failures.unwrap_or(DEFAULT_FAILURES);
        // Saturating: `problems` refuses the values that would overflow,
        // and the rules of a refused section must not panic either.
        let derived = interval
            .saturating_mul(failures.saturating_add(1))
            .min(MAX_DURATION);
        WatchRules {
            mode: self.mode.or(tier).unwrap_or_default(),
            interval,
            failures,
            quorum: self.quorum.unwrap_or(DEFAULT_QUORUM),
            veto_window: dur(&self.veto_window, DEFAULT_VETO_WINDOW),
            freshness: dur(&self.freshness, derived),
            accept_data_loss: self
                .accept_data_loss
                .as_deref()
                .and_then(|t| parse_duration(t).ok()),
            alarms: self.alarms.clone(),
        }
    }

    /// What is wrong with the section: `(key, message, hint)` per problem
    /// (`regions`: the plan's; `tier`: the tier's default mode).
    pub fn problems(
        &self,
        regions: &[String],
        tier: Option<WatchMode>,
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        self.duration_problems(&mut out);
        let rules = self.rules(tier);
        if rules.interval < Duration::from_secs(1) {
            out.push((
                "interval".into(),
                "the watch interval is under a second".into(),
                "observe every few seconds at most: 10s is the default".into(),
            ));
        }
        range_problems(&rules, &mut out);
        if rules.mode != WatchMode::Observe && rules.quorum < 2 {
            out.push((
                "quorum".into(),
                format!(
                    "`mode = \"{}\"` with a quorum of one lets one observer start a failover by itself (a partition of its own network would look like an outage)",
                    rules.mode.as_str()
                ),
                "set quorum = 2 or more (and run that many observers in different places), or use mode = \"observe\"".into(),
            ));
        }
        if rules.freshness < rules.interval {
            out.push((
                "freshness".into(),
                "observations expire before the next one is due (freshness < interval)".into(),
                "leave it out (default: interval × (failures + 1)) or make it longer than the interval".into(),
            ));
        }
        for region in self.alarms.keys() {
            if !regions.contains(region) {
                out.push((
                    "alarms".into(),
                    format!("alarms name region `{region}`, which the plan does not have"),
                    format!("the plan's regions: {}", regions.join(", ")),
                ));
            }
        }
        out
    }

    /// The durations that do not parse, each at its key.
    fn duration_problems(&self, out: &mut Vec<(String, String, String)>) {
        let mut dur = |key: &str, text: &Option<String>| {
            if let Some(t) = text
                && let Err(e) = parse_duration(t)
            {
                out.push((key.to_string(), e.to_string(), e.hint().to_string()));
            }
        };
        dur("interval", &self.interval);
        dur("veto_window", &self.veto_window);
        dur("freshness", &self.freshness);
        dur("accept_data_loss", &self.accept_data_loss);
    }
}

/// `failures` and `quorum` outside 1 to their maximum: zero would judge a
/// region down on no evidence, and more asks for what no watch runs.
fn range_problems(rules: &WatchRules, out: &mut Vec<(String, String, String)>) {
    if rules.failures == 0 {
        out.push((
            "failures".into(),
            "`failures = 0` would judge a region down without a failed observation".into(),
            "use 3 (the default) or more".into(),
        ));
    }
    if rules.failures > MAX_FAILURES {
        out.push((
            "failures".into(),
            format!(
                "`failures = {}` is more than {MAX_FAILURES} failed observations in a row",
                rules.failures
            ),
            format!("use 1 to {MAX_FAILURES} (3 is the default); a slower judgement wants a longer interval"),
        ));
    }
    if rules.quorum == 0 {
        out.push((
            "quorum".into(),
            "`quorum = 0` would judge a region down with no observer agreeing".into(),
            "use 2 (the default) or more".into(),
        ));
    }
    if rules.quorum > MAX_QUORUM {
        out.push((
            "quorum".into(),
            format!(
                "`quorum = {}` asks more than {MAX_QUORUM} observers to agree",
                rules.quorum
            ),
            format!("use 1 to {MAX_QUORUM} (2 is the default), at most the observers you run"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_observe_and_derive_freshness() {
        let r = WatchSpec::default().rules(None);
        assert_eq!(r.mode, WatchMode::Observe);
        assert_eq!(r.interval, Duration::from_secs(10));
        assert_eq!(r.freshness, Duration::from_secs(40));
        assert_eq!(r.quorum, 2);
        let r = WatchSpec::default().rules(Some(WatchMode::Propose));
        assert_eq!(r.mode, WatchMode::Propose);
    }

    #[test]
    fn auto_with_one_observer_is_refused() {
        let spec = WatchSpec {
            mode: Some(WatchMode::Auto),
            quorum: Some(1),
            ..Default::default()
        };
        let p = spec.problems(&["us-west-2".into()], None);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "quorum");
    }

    /// `failures = 4294967295` panicked `plan validate` with an add
    /// overflow (the default freshness is `interval × (failures + 1)`).
    #[test]
    fn regression_watch_failures_overflow_panicked() {
        let spec = WatchSpec {
            failures: Some(u32::MAX),
            quorum: Some(u32::MAX),
            interval: Some("3650d".into()),
            ..Default::default()
        };
        let r = spec.rules(None);
        assert_eq!(r.freshness, MAX_DURATION);
        let p = spec.problems(&["us-west-2".into()], None);
        let keys: Vec<_> = p.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(keys, ["failures", "quorum"], "{p:?}");
        assert!(p[0].1.contains("4294967295"), "{p:?}");
        assert!(p[0].2.contains("1 to 1000"), "{p:?}");
        // At the bounds, accepted.
        let spec = WatchSpec {
            failures: Some(MAX_FAILURES),
            quorum: Some(MAX_QUORUM),
            ..Default::default()
        };
        assert!(spec.problems(&[], None).is_empty());
    }

    /// `interval = "50000000000000d"` panicked `plan validate` (a duration
    /// multiplied past its end); it is refused where it is written, and the
    /// rules of the refused section fall back to the default.
    #[test]
    fn regression_watch_interval_overflow_panicked() {
        for key in ["interval", "veto_window", "freshness", "accept_data_loss"] {
            let mut spec = WatchSpec::default();
            let huge = Some("50000000000000d".to_string());
            match key {
                "interval" => spec.interval = huge,
                "veto_window" => spec.veto_window = huge,
                "freshness" => spec.freshness = huge,
                _ => spec.accept_data_loss = huge,
            }
            let p = spec.problems(&[], None);
            assert_eq!(p.len(), 1, "{key}: {p:?}");
            assert_eq!(p[0].0, key);
            assert!(p[0].1.contains("3650d"), "{p:?}");
            assert!(p[0].2.contains("ten years"), "{p:?}");
            let r = spec.rules(None);
            assert!(r.interval <= MAX_DURATION && r.veto_window <= MAX_DURATION);
        }
    }

    #[test]
    fn bad_durations_and_regions_are_named() {
        let spec = WatchSpec {
            interval: Some("soon".into()),
            alarms: IndexMap::from([("mars-1".to_string(), vec!["x".to_string()])]),
            ..Default::default()
        };
        let p = spec.problems(&["us-west-2".into()], None);
        let keys: Vec<_> = p.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(keys, ["interval", "alarms"]);
    }
}
