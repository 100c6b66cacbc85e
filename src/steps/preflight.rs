//! `preflight`: every resource the failover needs exists in the target region.
//!
//! Gates (lock, approval, RPO) run before the graph in the engine; this step
//! checks the target side so that a missing replica or group stops the run
//! before anything changes, not halfway through.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Action, Cx, Planned, StepFailure};

/// The preflight step.
pub struct Preflight;

#[async_trait]
impl Action for Preflight {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let found = inspect(cx).await?;
        Ok(found
            .into_iter()
            .map(|(kind, resource, state)| Planned {
                call: String::new(),
                resource: format!("{kind} {resource}"),
                region: cx.target.to_string(),
                current: state.clone(),
                desired: "exists".into(),
                change: false,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let found = inspect(cx).await?;
        let missing: Vec<String> = found
            .iter()
            .filter(|(_, _, s)| s == "missing")
            .map(|(k, r, _)| format!("{k} {r}"))
            .collect();
        if !missing.is_empty() {
            return Err(StepFailure::state(
                format!("not in {}: {}", cx.target, missing.join(", ")),
                "create the missing resources (see terraform/) or fix their ids in the plan; nothing was changed",
                &missing.join(", "),
                cx.target,
            ));
        }
        Ok(
            json!({ "checked": found.iter().map(|(k, r, s)| json!({"kind": k, "resource": r, "state": s})).collect::<Vec<_>>() }),
        )
    }
}

async fn inspect(cx: &Cx<'_>) -> Result<Vec<(&'static str, String, String)>, StepFailure> {
    let spec = &cx.plan.spec;
    let t = cx.target;
    let mut out = Vec::new();
    for d in &spec.database {
        let id = &d.regions[t];
        let state = match cx.clouds.database.describe_instance(t, id).await? {
            Some(i) => format!("{} ({:?})", i.status, i.role).to_lowercase(),
            None => "missing".into(),
        };
        out.push(("database", id.clone(), state));
    }
    for g in &spec.compute {
        let name = &g.regions[t];
        let state = match cx.clouds.compute.describe_group(t, name).await? {
            Some(g) => format!("capacity {}", g.capacity),
            None => "missing".into(),
        };
        out.push(("compute", name.clone(), state));
    }
    let mut zones: Vec<&str> = spec.dns.iter().map(|d| d.zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    for z in zones {
        let state = match cx.clouds.dns.find_zone(z).await? {
            Some(zone) => format!("zone {}", zone.id),
            None => "missing".into(),
        };
        out.push(("zone", z.to_string(), state));
    }
    Ok(out)
}
