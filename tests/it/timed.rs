//! The model of AWS in time (`src/cloud/aws_model.toml`) on the emulators,
//! at a chosen time scale, through the [`FaultProxy`](crate::proxy::FaultProxy).
//!
//! # Why
//!
//! The emulators answer every call in milliseconds, never throttle, promote
//! a replica at once and are never PENDING. The in-memory cloud runs the
//! model under virtual time (`FakeCloud::timed`), but that is drctl's own
//! fake: the engine's budgets, its Route 53 queues and its waits should also
//! be seen against the real adapters, the real SDK and the emulators. A
//! [`TimedWorld`] put behind the proxies of every emulator gives them AWS's
//! behaviour in time, `1 / scale` times faster (at 1/60, a five-minute
//! promotion takes five seconds):
//!
//! - every call waits its latency, drawn from the model;
//! - AWS's buckets (per account, region, service and API) refuse a call
//!   that finds them empty with `Throttling`, as AWS does, without passing
//!   it on;
//! - a change to a hosted zone still processing the previous one is refused
//!   with `PriorRequestNotComplete`; a change is `PENDING` until its drawn
//!   propagation time has passed;
//! - a promoted replica, a replica being created and a point-in-time
//!   restore are `modifying` / `creating` until their drawn duration has
//!   passed, and the instances of a group scaled up are `Pending` until
//!   theirs has.
//!
//! The emulators still hold the state; this changes only *when* an answer
//! says what it says, by holding a call or rewriting its answer. drctl is
//! told the same scale through its own settings ([`TimedWorld::settings`]:
//! its budgets and its pace), as a team would tell it its account's quotas.
//!
//! Scope: the operations a failover, a restore and a reprotect wait on.
//! Draws come from a seed; the order of concurrent calls does not, so two
//! runs see the same distributions, not the same sequence.

#![allow(dead_code)] // each test uses its own part of the API

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use drctl::cloud::model::Model;
use drctl::cloud::timing::Timing;

use crate::proxy::lock;

/// How a call fares before it reaches the emulator.
pub enum Admitted {
    /// Pass it on; then [`TimedWorld::after`] with this.
    Pass(Call),
    /// Answer this AWS error without passing it on.
    Refuse {
        /// HTTP status.
        status: u16,
        /// AWS error code.
        code: &'static str,
        /// Message.
        message: String,
    },
}

/// One request as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The model's service name (`rds`, `route53`, `cloudwatch`...).
    pub service: String,
    /// The operation (`PromoteReadReplica`...).
    pub api: String,
    /// The region it was signed for (`global` for Route 53).
    pub region: String,
    /// The resource it names: an instance, a group, a zone or a change id.
    pub resource: String,
}

/// What the world did to the calls so far.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Calls refused by AWS's buckets, by `service:Api`.
    pub throttled: BTreeMap<String, u64>,
    /// Changes refused because their zone was still busy.
    pub prior_not_complete: u64,
    /// Answers rewritten to show an operation still under way.
    pub held: u64,
    /// Every slow operation started, with its draw (in scaled time).
    pub drawn: Vec<(String, Duration)>,
}

/// The model at a time scale, shared by the proxies in front of every
/// emulator (AWS's account-wide buckets are one).
pub struct TimedWorld {
    scale: f64,
    model: &'static Model,
    timing: Timing,
    prior: Mutex<u64>,
    held: Mutex<u64>,
    /// What each database under way shows meanwhile (`modifying`,
    /// `creating`), by its key.
    showing: Mutex<BTreeMap<String, &'static str>>,
}

/// One scaled model per scale and process: [`Timing`] borrows its model
/// for the life of the process.
fn scaled(scale: f64) -> &'static Model {
    static MODELS: LazyLock<Mutex<BTreeMap<u64, &'static Model>>> = LazyLock::new(Mutex::default);
    let mut models = lock(&MODELS);
    models.entry(scale.to_bits()).or_insert_with(|| {
        let m = Model::aws().expect("the model reads").at_scale(scale);
        Box::leak(Box::new(m))
    })
}

/// `service:Api` labels as `&'static str` (what [`Timing::call`] keeps).
fn label(service: &str, api: &str) -> &'static str {
    static LABELS: LazyLock<Mutex<BTreeSet<&'static str>>> = LazyLock::new(Mutex::default);
    let text = format!("{service}:{api}");
    let mut labels = lock(&LABELS);
    if let Some(l) = labels.get(text.as_str()) {
        return l;
    }
    let l: &'static str = Box::leak(text.into_boxed_str());
    labels.insert(l);
    l
}

impl TimedWorld {
    /// The model `1 / scale` times faster, drawing from `seed`.
    pub fn new(scale: f64, seed: u64) -> Arc<Self> {
        let model = scaled(scale);
        Arc::new(Self {
            scale,
            model,
            timing: Timing::new(model, seed),
            prior: Mutex::new(0),
            held: Mutex::new(0),
            showing: Mutex::default(),
        })
    }

    /// The time scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// A `drctl.toml` telling drctl the same world: every request bucket of
    /// the scaled model as a `[[budget]]` (its quotas, as a team with raised
    /// quotas would write them), and its `[pace]` scaled alike, so that its
    /// polls and its waits on a busy zone keep their proportion to what
    /// they wait for.
    pub fn settings(&self) -> String {
        let ms = |d: Duration| ((d.as_secs_f64() * self.scale * 1000.0).round() as u64).max(1);
        let pace = drctl::engine::Pace::default();
        let mut out = format!(
            "[pace]\npoll_first_ms = {}\npoll_max_ms = {}\nbusy_first_ms = {}\nbusy_max_ms = {}\n",
            ms(pace.poll.0),
            ms(pace.poll.1),
            ms(pace.busy_zone.0),
            ms(pace.busy_zone.1)
        );
        for l in self.model.limits.iter().filter(|l| l.unit == "requests") {
            out.push_str(&format!(
                "\n[[budget]]\nservice = \"{}\"\n{}burst = {:.3}\nrate = {:.3}\n",
                l.service,
                if l.api.is_empty() {
                    String::new()
                } else {
                    format!("api = \"{}\"\n", l.api)
                },
                l.burst,
                l.rate
            ));
        }
        out
    }

    /// What the world did so far.
    pub fn tally(&self) -> Tally {
        Tally {
            throttled: self.timing.throttled(),
            prior_not_complete: *lock(&self.prior),
            held: *lock(&self.held),
            drawn: self.timing.drawn(),
        }
    }

    /// A request arrives (`scope`: the region and service of its SigV4
    /// credential scope, when signed): it takes its latency, then spends
    /// from AWS's buckets, or is refused.
    pub async fn admit(
        &self,
        scope: Option<(String, String)>,
        method: &str,
        target: &str,
        action: Option<String>,
        body: &str,
    ) -> Admitted {
        let Some(call) = classify(scope, method, target, action, body) else {
            return Admitted::Pass(Call {
                service: String::new(),
                api: String::new(),
                region: String::new(),
                resource: String::new(),
            });
        };
        let l = label(&call.service, &call.api);
        if let Err(e) = self.timing.call(l, &call.region, &call.resource, 1.0).await {
            return Admitted::Refuse {
                status: 400,
                code: "Throttling",
                message: e.message,
            };
        }
        if call.service == "route53"
            && call.api == "ChangeResourceRecordSets"
            && self.timing.busy(&format!("zone:{}", call.resource))
        {
            *lock(&self.prior) += 1;
            return Admitted::Refuse {
                status: 400,
                code: "PriorRequestNotComplete",
                message: format!(
                    "The request was rejected because Route 53 was still processing a prior request (zone {})",
                    call.resource
                ),
            };
        }
        Admitted::Pass(call)
    }

    /// The emulator answered `call` with `status` and `body`: starts what
    /// the call began, and returns the body as AWS would say it now.
    pub fn after(&self, call: &Call, status: u16, body: &str, request: &str) -> Option<String> {
        if !(200..300).contains(&status) {
            return None;
        }
        let db = |id: &str| format!("db:{}/{id}", call.region);
        let group = |name: &str| format!("group:{}/{name}", call.region);
        let rewritten = match (call.service.as_str(), call.api.as_str()) {
            ("route53", "ChangeResourceRecordSets") => {
                let change = tag_value(body, "Id")?
                    .trim_start_matches("/change/")
                    .to_string();
                self.timing.start(
                    format!("zone:{}", call.resource),
                    "route53:ChangeProcessing",
                );
                self.timing.start(
                    format!("change:{change}"),
                    "route53:ChangeResourceRecordSets",
                );
                Some(body.replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>"))
            }
            ("route53", "GetChange") if self.timing.busy(&format!("change:{}", call.resource)) => {
                Some(body.replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>"))
            }
            (
                "rds",
                op @ ("PromoteReadReplica"
                | "CreateDBInstanceReadReplica"
                | "RestoreDBInstanceToPointInTime"),
            ) => {
                let id = form_value(request, target_id_field(op))?;
                self.timing.start(db(&id), &format!("rds:{op}"));
                let showing = status_while(op);
                lock(&self.showing).insert(db(&id), showing);
                Some(rewrite_items(
                    body,
                    "DBInstance",
                    "DBInstanceIdentifier",
                    |_| true,
                    |item| replace_status(item, showing),
                ))
            }
            ("rds", "DescribeDBInstances") => {
                let showing = |id: &str| {
                    let key = db(id);
                    self.timing
                        .busy(&key)
                        .then(|| lock(&self.showing).get(&key).copied())
                        .flatten()
                };
                hold(body, "DBInstance", "DBInstanceIdentifier", |id| {
                    showing(id).map(|s| move |item: &str| replace_status(item, s))
                })
            }
            ("autoscaling", "UpdateAutoScalingGroup" | "SetDesiredCapacity") => {
                let name = form_value(request, "AutoScalingGroupName")?;
                let up = ["DesiredCapacity", "MinSize"]
                    .iter()
                    .filter_map(|k| form_value(request, k))
                    .any(|v| v.parse::<u32>().is_ok_and(|n| n > 0));
                if up {
                    self.timing.start(group(&name), "autoscaling:InService");
                }
                return None;
            }
            ("autoscaling", "DescribeAutoScalingGroups") => {
                hold(body, "member", "AutoScalingGroupName", |name| {
                    self.timing.busy(&group(name)).then_some(|item: &str| {
                        item.replace(
                            "<LifecycleState>InService</LifecycleState>",
                            "<LifecycleState>Pending</LifecycleState>",
                        )
                    })
                })
            }
            _ => None,
        };
        if rewritten.as_deref().is_some_and(|r| r != body) {
            *lock(&self.held) += 1;
        }
        rewritten
    }
}

/// A listing's answer with each outermost `<item>` whose `<name_tag>` is
/// under way edited as `under_way` says (`None`: not under way); `None`
/// when nothing in it is.
fn hold<E: Fn(&str) -> String>(
    xml: &str,
    item: &str,
    name_tag: &str,
    under_way: impl Fn(&str) -> Option<E>,
) -> Option<String> {
    if !body_names_busy(xml, name_tag, |n| under_way(n).is_some()) {
        return None;
    }
    Some(rewrite_items(
        xml,
        item,
        name_tag,
        |n| under_way(n).is_some(),
        |element| {
            let name = tag_value(element, name_tag).unwrap_or_default();
            under_way(&name).map_or_else(|| element.to_string(), |edit| edit(element))
        },
    ))
}

/// The field of a creating call that names the new instance.
fn target_id_field(op: &str) -> &'static str {
    match op {
        "RestoreDBInstanceToPointInTime" => "TargetDBInstanceIdentifier",
        _ => "DBInstanceIdentifier",
    }
}

/// The status an instance shows while `op` is under way.
fn status_while(op: &str) -> &'static str {
    match op {
        "PromoteReadReplica" => "modifying",
        _ => "creating",
    }
}

fn replace_status(item: &str, to: &str) -> String {
    item.replace(
        "<DBInstanceStatus>available</DBInstanceStatus>",
        &format!("<DBInstanceStatus>{to}</DBInstanceStatus>"),
    )
}

/// Which call a request is, in the model's names; `None` for one the model
/// does not know (it then passes at once).
fn classify(
    scope: Option<(String, String)>,
    method: &str,
    target: &str,
    action: Option<String>,
    body: &str,
) -> Option<Call> {
    let (region, signing) = scope?;
    let service = match signing.as_str() {
        "monitoring" => "cloudwatch".to_string(),
        other => other.to_string(),
    };
    let path = target.split('?').next().unwrap_or(target);
    let (api, resource) = match service.as_str() {
        "route53" => route53_call(method, path)?,
        "s3" => {
            let api = match method {
                "PUT" => "PutObject",
                "GET" | "HEAD" => "GetObject",
                "DELETE" => "DeleteObject",
                _ => "PostObject",
            };
            (api.to_string(), path.to_string())
        }
        _ => {
            let api = action?;
            let resource = ["DBInstanceIdentifier", "AutoScalingGroupName"]
                .iter()
                .find_map(|k| form_value(body, k))
                .unwrap_or_default();
            (api, resource)
        }
    };
    let region = if service == "route53" {
        "global".to_string()
    } else {
        region
    };
    Some(Call {
        service,
        api,
        region,
        resource,
    })
}

/// Route 53's REST paths: the operation, and the zone or change it names.
fn route53_call(method: &str, path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/2013-04-01/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let (api, resource) = match (method, parts.as_slice()) {
        ("POST", ["hostedzone", zone, "rrset"]) => ("ChangeResourceRecordSets", *zone),
        ("GET", ["hostedzone", zone, "rrset"]) => ("ListResourceRecordSets", *zone),
        ("GET", ["change", change]) => ("GetChange", *change),
        ("GET", ["hostedzone", zone]) => ("GetHostedZone", *zone),
        ("GET", ["hostedzonesbyname"]) => ("ListHostedZonesByName", ""),
        ("GET", ["hostedzone"]) => ("ListHostedZones", ""),
        ("GET", ["healthcheck"]) => ("ListHealthChecks", ""),
        ("POST", ["healthcheck"]) => ("CreateHealthCheck", ""),
        ("DELETE", ["healthcheck", id]) => ("DeleteHealthCheck", *id),
        ("GET", ["healthcheck", id, "status"]) => ("GetHealthCheckStatus", *id),
        ("GET", ["healthcheck", id]) => ("GetHealthCheck", *id),
        _ => ("Other", ""),
    };
    Some((api.to_string(), resource.to_string()))
}

/// `key=value` of a form body or query (URL-decoded enough for ids).
fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| {
            v.replace("%2F", "/")
                .replace("%3A", ":")
                .replace("%2D", "-")
        })
}

/// The text of the first `<tag>..</tag>` of `xml`.
fn tag_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

/// Whether any `<name_tag>` of `xml` names something `busy`.
fn body_names_busy(xml: &str, name_tag: &str, busy: impl Fn(&str) -> bool) -> bool {
    let open = format!("<{name_tag}>");
    let close = format!("</{name_tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(v, _)| v))
        .any(busy)
}

/// Rewrites, with `edit`, each outermost `<item>..</item>` element of `xml`
/// whose first `<name_tag>` value `matches`; nested elements of the same
/// tag (an Auto Scaling group's instances are `member`s too) stay inside
/// their outermost one.
fn rewrite_items(
    xml: &str,
    item: &str,
    name_tag: &str,
    matches: impl Fn(&str) -> bool,
    edit: impl Fn(&str) -> String,
) -> String {
    let open = format!("<{item}>");
    let close = format!("</{item}>");
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start]);
        let element = &rest[start..];
        // Find the matching close, counting nested opens.
        let mut depth = 0usize;
        let mut at = 0usize;
        let mut end = None;
        while at < element.len() {
            let next_open = element[at..].find(&open).map(|i| i + at);
            let next_close = element[at..].find(&close).map(|i| i + at);
            match (next_open, next_close) {
                (Some(o), Some(c)) if o < c => {
                    depth += 1;
                    at = o + open.len();
                }
                (_, Some(c)) => {
                    depth = depth.saturating_sub(1);
                    at = c + close.len();
                    if depth == 0 {
                        end = Some(at);
                        break;
                    }
                }
                _ => break,
            }
        }
        let Some(end) = end else {
            out.push_str(element);
            return out;
        };
        let whole = &element[..end];
        let named = tag_value(whole, name_tag).is_some_and(|n| matches(&n));
        out.push_str(&if named {
            edit(whole)
        } else {
            whole.to_string()
        });
        rest = &element[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(region: &str, service: &str) -> Option<(String, String)> {
        Some((region.into(), service.into()))
    }

    #[test]
    fn requests_are_named_as_the_model_names_them() {
        let c = classify(
            scope("us-east-1", "route53"),
            "POST",
            "/2013-04-01/hostedzone/Z1/rrset/",
            None,
            "",
        )
        .unwrap();
        assert_eq!(
            (
                c.service.as_str(),
                c.api.as_str(),
                c.region.as_str(),
                c.resource.as_str()
            ),
            ("route53", "ChangeResourceRecordSets", "global", "Z1")
        );
        let c = classify(
            scope("us-east-1", "rds"),
            "POST",
            "/",
            Some("PromoteReadReplica".into()),
            "Action=PromoteReadReplica&DBInstanceIdentifier=db-1&Version=2014-10-31",
        )
        .unwrap();
        assert_eq!(
            (c.api.as_str(), c.resource.as_str()),
            ("PromoteReadReplica", "db-1")
        );
        let c = classify(
            scope("us-east-1", "monitoring"),
            "POST",
            "/",
            Some("GetMetricData".into()),
            "",
        )
        .unwrap();
        assert_eq!(c.service, "cloudwatch");
        let c = classify(scope("us-east-1", "s3"), "PUT", "/bucket/key?x=1", None, "").unwrap();
        assert_eq!(
            (c.api.as_str(), c.resource.as_str()),
            ("PutObject", "/bucket/key")
        );
        assert!(classify(None, "GET", "/", None, "").is_none());
    }

    #[test]
    fn only_the_outermost_items_that_match_are_rewritten() {
        let xml = "<Groups><member><AutoScalingGroupName>a</AutoScalingGroupName><Instances>\
            <member><LifecycleState>InService</LifecycleState></member></Instances></member>\
            <member><AutoScalingGroupName>b</AutoScalingGroupName><Instances>\
            <member><LifecycleState>InService</LifecycleState></member></Instances></member></Groups>";
        let out = rewrite_items(
            xml,
            "member",
            "AutoScalingGroupName",
            |n| n == "b",
            |i| i.replace("InService", "Pending"),
        );
        assert_eq!(out.matches("InService").count(), 1);
        assert!(out.find("InService") < out.find("Pending"), "{out}");
        assert_eq!(out.len(), xml.len() - 2, "{out}");
        assert!(body_names_busy(xml, "AutoScalingGroupName", |n| n == "a"));
        assert!(!body_names_busy(xml, "AutoScalingGroupName", |n| n == "c"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_promotion_is_modifying_until_its_draw_has_passed_and_a_busy_zone_refuses() {
        let w = TimedWorld::new(1.0 / 60.0, 3);
        let promote = "Action=PromoteReadReplica&DBInstanceIdentifier=db-1";
        let Admitted::Pass(call) = w
            .admit(
                scope("us-east-1", "rds"),
                "POST",
                "/",
                Some("PromoteReadReplica".into()),
                promote,
            )
            .await
        else {
            panic!("refused")
        };
        let answer = "<PromoteReadReplicaResult><DBInstance><DBInstanceIdentifier>db-1</DBInstanceIdentifier>\
            <DBInstanceStatus>available</DBInstanceStatus></DBInstance></PromoteReadReplicaResult>";
        let held = w.after(&call, 200, answer, promote).unwrap();
        assert!(
            held.contains("<DBInstanceStatus>modifying</DBInstanceStatus>"),
            "{held}"
        );
        let describe_req = "Action=DescribeDBInstances&DBInstanceIdentifier=db-1";
        let describe = Call {
            api: "DescribeDBInstances".into(),
            ..call.clone()
        };
        let listing = format!(
            "<DBInstances>{}</DBInstances>",
            &answer[26..answer.len() - 27]
        );
        assert!(w.after(&describe, 200, &listing, describe_req).is_some());
        let (_, took) = w.tally().drawn[0].clone();
        // A promotion's median is five minutes: five seconds at 1/60.
        assert!(
            took > Duration::from_millis(500) && took < Duration::from_secs(60),
            "{took:?}"
        );
        tokio::time::sleep(took + Duration::from_millis(1)).await;
        assert_eq!(w.after(&describe, 200, &listing, describe_req), None);

        let change = "/2013-04-01/hostedzone/Z9/rrset";
        let Admitted::Pass(c) = w
            .admit(scope("us-east-1", "route53"), "POST", change, None, "")
            .await
        else {
            panic!("refused")
        };
        let pending = w
            .after(
                &c,
                200,
                "<ChangeInfo><Id>/change/C1</Id><Status>INSYNC</Status></ChangeInfo>",
                "",
            )
            .unwrap();
        assert!(pending.contains("PENDING"));
        let again = w
            .admit(scope("us-east-1", "route53"), "POST", change, None, "")
            .await;
        assert!(matches!(
            again,
            Admitted::Refuse {
                code: "PriorRequestNotComplete",
                ..
            }
        ));
        assert_eq!(w.tally().prior_not_complete, 1);
    }

    #[test]
    fn drctl_is_told_the_same_scale() {
        let w = TimedWorld::new(1.0 / 60.0, 1);
        let text = w.settings();
        assert!(text.contains("poll_first_ms = 3\n"), "{text}");
        assert!(text.contains("busy_max_ms = 133\n"), "{text}");
        // Route 53's account bucket: 50 at once, 10/s times 60.
        assert!(
            text.contains("service = \"route53\"\nburst = 50.000\nrate = 600.000\n"),
            "{text}"
        );
    }
}
