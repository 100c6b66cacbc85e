//! Reads of the regions a run moves away from, made beside the run.
//!
//! During a regional outage every endpoint of the old home region times out
//! or refuses connections. A failover must not wait for it: nothing on its
//! path calls any region but the target (and Route 53, which is global). What
//! the old region looked like is still worth keeping as evidence when it
//! answers, so it is read here: the databases a failover splits from (the
//! old primary holds what never replicated; compute is cheap to put back
//! and not worth a request on every run), each **once** (the single-attempt
//! adapters, no retries), each read bounded by a short timeout, every
//! database's reads concurrently with the others' and started with the run,
//! so that they never delay a step. A database's regions are read in plan
//! order up to its primary, the region failed away from: a third region's
//! replica costs no request when the old home answers.
//! The evidence step awaits the result, which by then is long settled or
//! about to time out; a region that did not answer is recorded as
//! `unreachable`, never as missing.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use serde_json::{Map, Value, json};

use crate::cloud::{CloudError, Clouds, DbRole};
use crate::plan::Plan;
use crate::plan::kinds::Copies;
use crate::steps::SideReads;

/// Default bound on one side read.
pub const SIDE_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// What one bounded read gave.
fn outcome<T>(
    r: Result<Result<T, CloudError>, tokio::time::error::Elapsed>,
    timeout: Duration,
    show: impl FnOnce(T) -> Value,
) -> Value {
    match r {
        Ok(Ok(v)) => show(v),
        Ok(Err(e)) if e.kind.is_transient() => {
            json!({ "unreachable": e.message, "kind": e.kind.as_str() })
        }
        Ok(Err(e)) => json!({ "error": e.message, "kind": e.kind.as_str() }),
        Err(_) => json!({ "unreachable": format!("no answer within {} ms", timeout.as_millis()) }),
    }
}

/// Starts the reads of the regions of `plans` a run moves away from and
/// returns their shared result: `{plan: {region: {"databases": {..}}}}`.
/// `clouds` should be the single-attempt adapters.
///
/// Which region a database is failed away from is not known before the
/// run reads anything, and a third region's replica is not worth a request
/// on every run: each database's other regions are read one after the
/// other in plan order, and the reads stop at the first primary (the
/// region failed away from). One that does not answer is recorded and the
/// next one read, so an outage of the old home costs its timeout, off the
/// critical path.
pub fn other_regions(clouds: Clouds, plans: &[Plan], target: &str, timeout: Duration) -> SideReads {
    let mut reads = Vec::new();
    for p in plans {
        // The reads outlive the call (a task of their own): each holds the
        // plan's resources, shared, and finds its own again by position.
        let spec = Arc::new(p.spec.clone());
        for (n, r) in crate::plan::kinds::each(&p.spec).into_iter().enumerate() {
            let Some(side) = r.side_read() else {
                continue;
            };
            let order: Vec<(String, String)> = (p.regions().iter())
                .filter(|r| *r != target)
                .filter_map(|r| Some((r.clone(), side.copies.copy(r)?.to_string())))
                .collect();
            let (c, plan, spec) = (clouds.clone(), p.name().to_string(), spec.clone());
            let section = side.section;
            reads.push(
                async move {
                    let mut found = Vec::new();
                    let resources = crate::plan::kinds::each(&spec);
                    let Some(side) = resources.get(n).and_then(|r| r.side_read()) else {
                        return found;
                    };
                    for (region, id) in order {
                        let (v, primary) = read_one(&c, side.copies, &region, timeout).await;
                        found.push((plan.clone(), region, section, id, v));
                        if primary {
                            break;
                        }
                    }
                    found
                }
                .boxed(),
            );
        }
    }
    let all = async move {
        let mut out = Map::new();
        for (plan, region, kind, id, v) in join_all(reads).await.into_iter().flatten() {
            let p = out.entry(plan).or_insert_with(|| json!({}));
            p[&region][kind][&id] = v;
        }
        Value::Object(out)
    };
    // Started now, on its own task, so that the reads run while the steps do.
    let task = tokio::spawn(all);
    async move { task.await.unwrap_or(Value::Null) }
        .boxed()
        .shared()
}

/// One bounded read of a resource's copy in `region` (its kind reads
/// it), and whether that copy is the primary.
async fn read_one(
    c: &Clouds,
    copies: &dyn Copies,
    region: &str,
    timeout: Duration,
) -> (Value, bool) {
    let r = tokio::time::timeout(timeout, copies.describe(c, region)).await;
    let primary = matches!(&r, Ok(Ok(Some(i))) if i.role == DbRole::Primary);
    let v = outcome(r, timeout, |i| match i {
        None => json!({ "exists": false }),
        Some(i) => json!({
            "role": match &i.role { DbRole::Primary => "primary".to_string(), DbRole::Replica(s) => format!("replica of {s}") },
            "status": i.status,
            "endpoint": i.endpoint,
        }),
    });
    (v, primary)
}
