//! Route 53's data plane in the emulator world (`localstack/dnsplane.py`),
//! asked as any DNS client would: hickory's resolver over UDP and over TCP
//! at `DRCTL_DNS_SERVER`, never through drctl's code.
//!
//! Each test makes its own zone, S3 control objects (`state=serve` /
//! `state=drain`) and health checks in LocalStack with the AWS SDK, in the
//! shapes drctl's data-plane switch uses: an `HTTP_STR_MATCH` check on
//! `127.0.0.1:<S3 port>` with `FullyQualifiedDomainName=
//! s3.<region>.amazonaws.com` (sent as the `Host`), path-style
//! `/<bucket>/<key>`, `SearchString=state=serve`. It then flips controls and
//! polls the answer until a deadline: the service checks every second and
//! flips a check after `FailureThreshold` (1 here) results.
//!
//! Health checks are deleted at the end (the service probes every one that
//! exists, every second); zones are deleted with their records.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use aws_sdk_route53::types::{
    AlarmIdentifier, AliasTarget, Change, ChangeAction, ChangeBatch, CloudWatchRegion,
    HealthCheckConfig, HealthCheckType, InsufficientDataHealthStatus, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, RrType, Tag, TagResourceType,
};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;

use crate::proxy::{Fault, FaultProxy, Match};
use crate::world;

/// How long a change may take to show in the answers: refresh (1 s) +
/// check interval (1 s) + threshold on an idle machine; the service probes
/// every health check of every test running beside, so on a slow machine
/// under load a round takes several times as long. The test's patience,
/// not an expectation.
const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------- DNS client

/// `DRCTL_DNS_SERVER` of the endpoints file.
fn dns_server() -> SocketAddr {
    let value = world::vars().get("DRCTL_DNS_SERVER").unwrap_or_else(|| {
        panic!(
            "DRCTL_DNS_SERVER is not in {}: the world predates dnsplane; run localstack/up (it starts only what is missing)",
            world::endpoints_file().display()
        )
    });
    value
        .parse()
        .unwrap_or_else(|e| panic!("DRCTL_DNS_SERVER={value}: {e}"))
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Proto {
    Udp,
    Tcp,
}

/// A resolver that asks only the service, over one protocol, caching nothing.
pub(crate) fn resolver(proto: Proto) -> TokioResolver {
    let server = dns_server();
    let ip: IpAddr = server.ip();
    let mut ns = match proto {
        Proto::Udp => NameServerConfig::udp(ip),
        Proto::Tcp => NameServerConfig::tcp(ip),
    };
    for c in &mut ns.connections {
        c.port = server.port();
    }
    let config = ResolverConfig::from_name_servers(vec![ns]);
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.attempts = 2;
    opts.timeout = Duration::from_secs(3);
    opts.try_tcp_on_error = false;
    builder.build().expect("a resolver for DRCTL_DNS_SERVER")
}

/// What the service answered, in a form tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Answer records (data as text, in answer order), and the AA bit.
    Records(Vec<String>, bool),
    /// NXDOMAIN, with the SOA's MNAME if the authority section had one.
    NxDomain(Option<String>),
    /// NOERROR without records of the type, with the SOA's MNAME.
    NoData(Option<String>),
    /// Anything else (REFUSED, timeouts...).
    Failed(String),
}

pub(crate) async fn ask(r: &TokioResolver, name: &str, rtype: RecordType) -> Reply {
    match r.lookup(name, rtype).await {
        Ok(lookup) => Reply::Records(
            lookup
                .answers()
                .iter()
                .map(|rr| rr.data.to_string())
                .collect(),
            lookup.message().metadata.authoritative,
        ),
        Err(e) if e.is_no_records_found() => {
            let nx = e.is_nx_domain();
            let soa = e.into_soa().map(|soa| soa.data.mname.to_string());
            if nx {
                Reply::NxDomain(soa)
            } else {
                Reply::NoData(soa)
            }
        }
        Err(e) => Reply::Failed(e.to_string()),
    }
}

/// The A addresses of `name` asked once over UDP and once over TCP,
/// together; an answer that is not authoritative records, or a failure, is
/// one entry describing it (so it never equals a wanted set).
async fn addresses(name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for proto in [Proto::Udp, Proto::Tcp] {
        match ask(&resolver(proto), name, RecordType::A).await {
            Reply::Records(records, true) => seen.extend(records),
            other => {
                seen.insert(format!("{proto:?}: {other:?}"));
            }
        }
    }
    seen
}

/// Polls the A answer of `name` until it is `want`, or panics at the deadline.
async fn wait_for(name: &str, want: &[&str]) {
    wait_for_set(name, want, 1).await;
}

/// Polls until the answers of `queries` queries of `name`, together, are
/// exactly `want` (weighted answers are random: one query shows one record).
async fn wait_for_set(name: &str, want: &[&str], queries: usize) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    world::wait_for_every(
        &format!("{name} to answer {want:?} (see localstack/.run/dnsplane.log)"),
        DEADLINE,
        POLL,
        async || {
            let mut got = BTreeSet::new();
            for _ in 0..queries {
                got.extend(addresses(name).await);
            }
            if got == want {
                return Ok(());
            }
            Err(format!("answers {got:?}"))
        },
    )
    .await;
}

// ---------------------------------------------------------------- world fixture

/// A zone, its control bucket and its health checks; deleted when dropped.
struct DataPlane {
    zone_id: String,
    zone: String,
    bucket: String,
    checks: Vec<String>,
    route53: aws_sdk_route53::Client,
    s3: aws_sdk_s3::Client,
}

/// LocalStack's S3 port: the target of the health checks (as drctl sees S3).
fn s3_port() -> u16 {
    world::vars()
        .get("AWS_ENDPOINT_URL_S3")
        .and_then(|url| url.rsplit(':').next())
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("AWS_ENDPOINT_URL_S3 ends with a port")
}

impl DataPlane {
    async fn new(prefix: &str) -> DataPlane {
        crate::world::vars();
        let sdk = world::sdk().await;
        let route53 = sdk.route53();
        let s3 = sdk.s3(world::STANDBY);
        let zone = format!("{}.example.com.", world::unique(prefix));
        let created = route53
            .create_hosted_zone()
            .name(&zone)
            .caller_reference(world::unique("ref"))
            .send()
            .await
            .expect("create the zone");
        let zone_id = created
            .hosted_zone()
            .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
            .expect("a zone id");
        let bucket = world::unique("dnsplane");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create the control bucket");
        DataPlane {
            zone_id,
            zone,
            bucket,
            checks: Vec::new(),
            route53,
            s3,
        }
    }

    fn name(&self, label: &str) -> String {
        format!("{label}.{}", self.zone)
    }

    /// Writes the control object `ctl/<key>`: `state=<state>`.
    async fn control(&self, key: &str, state: &str) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(format!("ctl/{key}"))
            .body(format!("state={state}\n").into_bytes().into())
            .send()
            .await
            .expect("write the control");
    }

    /// An `HTTP_STR_MATCH` health check on `ctl/<key>` as drctl makes it:
    /// connect to 127.0.0.1:`port`, `Host: s3.<region>.amazonaws.com`.
    async fn control_check(&mut self, key: &str, region: &str, port: u16) -> String {
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::HttpStrMatch)
            .ip_address("127.0.0.1")
            .port(i32::from(port))
            .fully_qualified_domain_name(format!("s3.{region}.amazonaws.com"))
            .resource_path(format!("/{}/ctl/{key}", self.bucket))
            .search_string("state=serve")
            .failure_threshold(1)
            .request_interval(10)
            .build()
            .expect("a health check config");
        self.health_check(config).await
    }

    async fn health_check(&mut self, config: HealthCheckConfig) -> String {
        let out = self
            .route53
            .create_health_check()
            .caller_reference(world::unique("hc"))
            .health_check_config(config)
            .send()
            .await
            .expect("create the health check");
        let id = out
            .health_check()
            .map(|h| h.id().to_string())
            .expect("an id");
        self.checks.push(id.clone());
        id
    }

    async fn change(&self, sets: Vec<ResourceRecordSet>) {
        let changes = sets
            .into_iter()
            .map(|set| {
                Change::builder()
                    .action(ChangeAction::Create)
                    .resource_record_set(set)
                    .build()
                    .expect("a change")
            })
            .collect();
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .change_batch(
                ChangeBatch::builder()
                    .set_changes(Some(changes))
                    .build()
                    .expect("a batch"),
            )
            .send()
            .await
            .expect("create the records");
    }

    /// An alias record set of `name` to `target` in this zone.
    fn alias(
        &self,
        name: &str,
        id: &str,
        target: &str,
    ) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
        ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::A)
            .set_identifier(id)
            .alias_target(
                AliasTarget::builder()
                    .hosted_zone_id(&self.zone_id)
                    .dns_name(target)
                    .evaluate_target_health(true)
                    .build()
                    .expect("an alias target"),
            )
    }
}

/// An A record set of `name` with one address and a TTL of 5 s.
fn a_record(
    name: &str,
    id: &str,
    ip: &str,
) -> aws_sdk_route53::types::builders::ResourceRecordSetBuilder {
    ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .set_identifier(id)
        .ttl(5)
        .resource_records(
            ResourceRecord::builder()
                .value(ip)
                .build()
                .expect("a value"),
        )
}

fn failover(
    b: aws_sdk_route53::types::builders::ResourceRecordSetBuilder,
    primary: bool,
    check: Option<&str>,
) -> ResourceRecordSet {
    let role = if primary {
        ResourceRecordSetFailover::Primary
    } else {
        ResourceRecordSetFailover::Secondary
    };
    b.failover(role)
        .set_health_check_id(check.map(str::to_string))
        .build()
        .expect("a failover record set")
}

impl Drop for DataPlane {
    fn drop(&mut self) {
        let (route53, zone_id) = (self.route53.clone(), self.zone_id.clone());
        let checks = std::mem::take(&mut self.checks);
        world::run_cleanup(async move {
            if let Ok(out) = route53
                .list_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .send()
                .await
            {
                let changes: Vec<Change> = out
                    .resource_record_sets()
                    .iter()
                    .filter(|s| !matches!(s.r#type(), RrType::Ns | RrType::Soa))
                    .filter_map(|s| {
                        Change::builder()
                            .action(ChangeAction::Delete)
                            .resource_record_set(s.clone())
                            .build()
                            .ok()
                    })
                    .collect();
                if let Ok(batch) = ChangeBatch::builder().set_changes(Some(changes)).build() {
                    let _ = route53
                        .change_resource_record_sets()
                        .hosted_zone_id(&zone_id)
                        .change_batch(batch)
                        .send()
                        .await;
                }
            }
            let _ = route53.delete_hosted_zone().id(&zone_id).send().await;
            for id in checks {
                if let Err(e) = route53
                    .delete_health_check()
                    .health_check_id(&id)
                    .send()
                    .await
                {
                    eprintln!("cleanup: cannot delete health check {id}: {e}");
                }
            }
        });
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn failover_records_follow_their_controls_over_udp_and_tcp() {
    crate::needs_emulators!();
    let mut dp = DataPlane::new("dpfo").await;
    let port = s3_port();
    dp.control("us-west-2", "serve").await;
    dp.control("us-east-1", "drain").await;
    let west = dp.control_check("us-west-2", "us-west-2", port).await;
    let east = dp.control_check("us-east-1", "us-east-1", port).await;
    let app = dp.name("app");
    dp.change(vec![
        failover(a_record(&app, "us-west-2", "192.0.2.1"), true, Some(&west)),
        failover(a_record(&app, "us-east-1", "192.0.2.2"), false, Some(&east)),
    ])
    .await;
    wait_for(&app, &["192.0.2.1"]).await;

    // Fail over: drain the primary's control, serve the secondary's.
    dp.control("us-west-2", "drain").await;
    dp.control("us-east-1", "serve").await;
    wait_for(&app, &["192.0.2.2"]).await;

    // Both drained: "if no record is healthy, all are": the PRIMARY.
    dp.control("us-east-1", "drain").await;
    wait_for(&app, &["192.0.2.1"]).await;

    // Negative answers are authoritative, with the zone's SOA.
    for proto in [Proto::Udp, Proto::Tcp] {
        let r = resolver(proto);
        let missing = ask(&r, &dp.name("missing"), RecordType::A).await;
        assert!(
            matches!(missing, Reply::NxDomain(Some(_))),
            "{proto:?}: {missing:?}"
        );
        let nodata = ask(&r, &app, RecordType::AAAA).await;
        assert!(
            matches!(nodata, Reply::NoData(Some(_))),
            "{proto:?}: {nodata:?}"
        );
        // (not a special-use name such as `.invalid`: hickory answers those itself)
        let nowhere = format!("{}.org.", world::unique("nowhere"));
        let outside = ask(&r, &nowhere, RecordType::A).await;
        assert!(
            matches!(outside, Reply::Failed(_)),
            "{proto:?}: {outside:?}"
        );
    }
}

#[tokio::test]
async fn an_alias_chain_of_failover_records_spans_three_regions() {
    crate::needs_emulators!();
    let mut dp = DataPlane::new("dpchain").await;
    let port = s3_port();
    let regions = ["us-east-1", "us-west-2", "eu-west-1"];
    let mut checks = Vec::new();
    for region in regions {
        dp.control(
            region,
            if region == "us-east-1" {
                "serve"
            } else {
                "drain"
            },
        )
        .await;
        checks.push(dp.control_check(region, region, port).await);
    }
    // N: PRIMARY region 1, SECONDARY = alias to x.N;
    // x.N: PRIMARY region 2, SECONDARY region 3.
    let n = dp.name("checkout");
    let x = format!("x.{n}");
    dp.change(vec![
        failover(
            a_record(&n, "us-east-1", "192.0.2.1"),
            true,
            Some(&checks[0]),
        ),
        failover(dp.alias(&n, "next", &x), false, None),
        failover(
            a_record(&x, "us-west-2", "192.0.2.2"),
            true,
            Some(&checks[1]),
        ),
        failover(
            a_record(&x, "eu-west-1", "192.0.2.3"),
            false,
            Some(&checks[2]),
        ),
    ])
    .await;
    wait_for(&n, &["192.0.2.1"]).await;

    for (serve, want) in [(1, "192.0.2.2"), (2, "192.0.2.3")] {
        for (i, region) in regions.iter().enumerate() {
            dp.control(region, if i == serve { "serve" } else { "drain" })
                .await;
        }
        wait_for(&n, &[want]).await;
    }

    // Every region drained: the alias is unhealthy too, so N answers its PRIMARY.
    dp.control("eu-west-1", "drain").await;
    wait_for(&n, &["192.0.2.1"]).await;
}

#[tokio::test]
async fn weighted_records_skip_unhealthy_ones_and_fall_back_as_route53_does() {
    crate::needs_emulators!();
    let mut dp = DataPlane::new("dpw").await;
    let port = s3_port();
    let mut sets = Vec::new();
    let w = dp.name("w");
    for (key, ip, weight) in [
        ("a", "192.0.2.1", 1),
        ("b", "192.0.2.2", 1),
        ("z", "192.0.2.9", 0),
    ] {
        dp.control(key, "serve").await;
        let check = dp.control_check(key, "us-east-1", port).await;
        sets.push(
            a_record(&w, key, ip)
                .weight(weight)
                .health_check_id(check)
                .build()
                .expect("a weighted record set"),
        );
    }
    dp.change(sets).await;
    // All healthy: the non-zero weights share the answers; weight 0 never answers.
    wait_for_set(&w, &["192.0.2.1", "192.0.2.2"], 24).await;
    dp.control("a", "drain").await;
    wait_for_set(&w, &["192.0.2.2"], 24).await;
    // Every non-zero record unhealthy: the healthy weight-0 record answers.
    dp.control("b", "drain").await;
    wait_for_set(&w, &["192.0.2.9"], 24).await;
    // None healthy: all count as healthy, so the non-zero weights answer again.
    dp.control("z", "drain").await;
    wait_for_set(&w, &["192.0.2.1", "192.0.2.2"], 24).await;
}

#[tokio::test]
async fn an_alarm_health_check_follows_the_alarm_state() {
    crate::needs_emulators!();
    let mut dp = DataPlane::new("dpcw").await;
    let region = world::STANDBY;
    let alarm = world::unique("dnsplane-alarm");
    let cloudwatch = world::sdk().await.cloudwatch(region);
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("drctl/test")
        .metric_name("Control")
        .statistic(Statistic::Average)
        .period(3600) // LocalStack re-evaluates once a period: not during this test
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        // No data is breaching: the first evaluation moves the new alarm to ALARM.
        .treat_missing_data("breaching")
        .send()
        .await
        .expect("create the alarm");
    let read = async || {
        let out = (cloudwatch.describe_alarms())
            .alarm_names(&alarm)
            .send()
            .await
            .map_err(|e| format!("describe the alarm: {e:?}"))?;
        Ok::<_, String>(
            out.metric_alarms()
                .first()
                .and_then(|a| a.state_value().cloned()),
        )
    };
    // LocalStack evaluates a new alarm once, in the background, when it is
    // put (then once a period); an evaluation that lands after a state set
    // here overwrites it (regression: the CI run of issue 29 saw the health
    // check read INSUFFICIENT_DATA right after the test had set OK). With
    // missing data breaching, that evaluation leaves a mark: ALARM. The
    // states are set once it is there.
    world::wait_for(
        &format!("LocalStack's first evaluation of the alarm {alarm} (ALARM)"),
        DEADLINE,
        async || match read().await? {
            Some(StateValue::Alarm) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let set_state = async |state: StateValue| {
        (cloudwatch.set_alarm_state())
            .alarm_name(&alarm)
            .state_value(state.clone())
            .state_reason("dnsplane test")
            .send()
            .await
            .expect("set the alarm state");
        world::wait_for(
            &format!("the alarm {alarm} to read {state:?}"),
            DEADLINE,
            async || match read().await? {
                Some(s) if s == state => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
    };
    set_state(StateValue::Ok).await;
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::CloudwatchMetric)
        .alarm_identifier(
            AlarmIdentifier::builder()
                .region(CloudWatchRegion::UsEast1)
                .name(&alarm)
                .build()
                .expect("an alarm identifier"),
        )
        .insufficient_data_health_status(InsufficientDataHealthStatus::Unhealthy)
        .build()
        .expect("a health check config");
    let check = dp.health_check(config).await;
    // LocalStack drops AlarmIdentifier and InsufficientDataHealthStatus: the
    // service reads them from these tags (localstack/README.md).
    dp.route53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Healthcheck)
        .resource_id(&check)
        .add_tags(
            Tag::builder()
                .key("drctl:alarm-region")
                .value(region)
                .build(),
        )
        .add_tags(Tag::builder().key("drctl:alarm-name").value(&alarm).build())
        .add_tags(
            Tag::builder()
                .key("drctl:insufficient-data")
                .value("Unhealthy")
                .build(),
        )
        .send()
        .await
        .expect("tag the health check");
    let app = dp.name("app");
    dp.change(vec![
        failover(a_record(&app, "alarm", "192.0.2.1"), true, Some(&check)),
        failover(a_record(&app, "plain", "192.0.2.2"), false, None),
    ])
    .await;
    wait_for(&app, &["192.0.2.1"]).await;
    set_state(StateValue::Alarm).await;
    wait_for(&app, &["192.0.2.2"]).await;
    set_state(StateValue::Ok).await;
    wait_for(&app, &["192.0.2.1"]).await;
    set_state(StateValue::InsufficientData).await;
    wait_for(&app, &["192.0.2.2"]).await;
}

#[tokio::test]
async fn unreachable_health_check_targets_fail_closed() {
    crate::needs_emulators!();
    let mut dp = DataPlane::new("dpdown").await;
    // A closed port: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // A region taken down at a fault proxy in front of LocalStack's S3: the
    // health checker's GET is unsigned, so the proxy knows its region by the
    // Host header only.
    let s3 = world::vars()
        .get("AWS_ENDPOINT_URL_S3")
        .expect("AWS_ENDPOINT_URL_S3")
        .clone();
    let proxy = FaultProxy::start(&s3).await;
    let proxy_port: u16 = proxy
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the proxy's port");
    dp.control("us-east-1", "serve").await;
    let dead = dp.control_check("us-east-1", "us-east-1", closed).await;
    let proxied = dp.control_check("us-east-1", "us-east-1", proxy_port).await;
    let (a, b) = (dp.name("closed"), dp.name("proxied"));
    dp.change(vec![
        failover(a_record(&a, "p", "192.0.2.1"), true, Some(&dead)),
        failover(a_record(&a, "s", "192.0.2.2"), false, None),
        failover(a_record(&b, "p", "192.0.2.1"), true, Some(&proxied)),
        failover(a_record(&b, "s", "192.0.2.2"), false, None),
    ])
    .await;
    wait_for(&a, &["192.0.2.2"]).await;
    // The checker's GETs reach LocalStack through the proxy, seen as us-east-1.
    world::wait_for_every(
        "two of the health checker's GETs through the proxy, as us-east-1",
        DEADLINE,
        POLL,
        async || {
            if proxy.forwarded(Match::Region("us-east-1")) >= 2 {
                return Ok(());
            }
            Err(format!("{:?}", proxy.log()))
        },
    )
    .await;
    wait_for(&b, &["192.0.2.1"]).await;

    proxy.inject(Match::Region("us-east-1"), Fault::Drop, usize::MAX);
    wait_for(&b, &["192.0.2.2"]).await;
    proxy.clear();
    wait_for(&b, &["192.0.2.1"]).await;
}
