//! Many plans failing over at once against the emulator world with AWS's
//! behaviour in time ([`crate::timed`]) at 1/60: minutes-long promotions,
//! instances that take minutes to come into service, Route 53 changes that
//! are PENDING and zones that refuse a second change in flight, AWS's rate
//! limits as buckets that throttle.
//!
//! The small case runs with the suite; fifty plans (the figures of
//! `docs/performance.md`, "Fifty plans on the emulators at 1/60") is opted
//! into: `DRCTL_IT=1 cargo test --test it -- --ignored --nocapture mass::`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::Value;

use crate::fixture::{Proxied, Ran};
use crate::proxy::Match;
use crate::timed::TimedWorld;
use crate::world::{self, HOME, STANDBY};

/// The time scale of the emulator world: one minute of AWS in a second.
const SCALE: f64 = 1.0 / 60.0;

/// One plan's resources, as seeded.
struct Seeded {
    plan: String,
    primary: String,
    replica: String,
    zone: String,
}

/// `n` plans shaped like payments (a replica to promote, a group to scale,
/// a CNAME after both and one that follows the database), spread over
/// `zones` hosted zones, seeded straight at the emulators (not through the
/// proxies). Returns the plans directory and what was seeded.
async fn seed(n: usize, zones: usize, suffix: &str) -> (tempfile::TempDir, Vec<Seeded>) {
    let sdk = world::sdk().await;
    let zone_names: Vec<String> = (0..zones)
        .map(|z| format!("z{z}.{suffix}.example.com."))
        .collect();
    for name in &zone_names {
        world::create_zone(name).await;
    }
    for region in [HOME, STANDBY] {
        sdk.autoscaling(region)
            .create_launch_configuration()
            .launch_configuration_name(format!("{suffix}-lc"))
            .image_id("ami-1e749f67")
            .instance_type("t3.micro")
            .send()
            .await
            .expect("create launch configuration");
    }
    let dir = tempfile::tempdir().expect("plans dir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/tiers.toml"),
        dir.path().join("tiers.toml"),
    )
    .expect("copy tiers");
    let seeded: Vec<Seeded> = futures::stream::iter(0..n)
        .map(|i| {
            let zone = zone_names[i % zones].clone();
            let sdk = sdk.clone();
            let suffix = suffix.to_string();
            async move { seed_one(&sdk, i, &suffix, zone).await }
        })
        .buffer_unordered(6)
        .collect()
        .await;
    for s in &seeded {
        std::fs::write(dir.path().join(format!("{}.toml", s.plan)), plan_text(s)).expect("plan");
    }
    (dir, seeded)
}

async fn seed_one(sdk: &drctl::cloud::aws::Sdk, i: usize, suffix: &str, zone: String) -> Seeded {
    let plan = format!("mass-{i}");
    let primary = format!("{suffix}-db-{i}");
    let replica = format!("{suffix}-db-{i}-use1");
    let arn = world::create_primary(HOME, &primary).await;
    let rds = sdk.rds(STANDBY);
    world::tried(&format!("replica {replica}"), || {
        rds.create_db_instance_read_replica()
            .db_instance_identifier(&replica)
            .source_db_instance_identifier(&arn)
            .send()
    })
    .await;
    for (region, name, desired) in [
        (HOME, format!("{suffix}-api-{i}-usw2"), 2),
        (STANDBY, format!("{suffix}-api-{i}-use1"), 0),
    ] {
        let asg = sdk.autoscaling(region);
        world::tried(&format!("group {name}"), || {
            asg.create_auto_scaling_group()
                .auto_scaling_group_name(&name)
                .launch_configuration_name(format!("{suffix}-lc"))
                .min_size(desired)
                .desired_capacity(desired)
                .max_size(4)
                .availability_zones(format!("{region}a"))
                .send()
        })
        .await;
    }
    Seeded {
        plan,
        primary,
        replica,
        zone,
    }
}

fn plan_text(s: &Seeded) -> String {
    let i = s.plan.trim_start_matches("mass-");
    let suffix = s.primary.trim_end_matches(&format!("-db-{i}"));
    let zone = &s.zone;
    format!(
        r#"[plan]
name = "{plan}"
description = "Payments-shaped plan {i} of a mass failover"
owner = "sre@example.com"
tier = "critical"
regions = ["{HOME}", "{STANDBY}"]

[[database]]
id = "db"
engine = "postgres"
strategy = "promote-replica"
regions = {{ {HOME} = "{primary}", {STANDBY} = "{replica}" }}

[[compute]]
id = "api"
active = {{ min = 1, desired = 2, max = 4 }}
standby = {{ min = 0, desired = 0, max = 4 }}
regions = {{ {HOME} = "{suffix}-api-{i}-usw2", {STANDBY} = "{suffix}-api-{i}-use1" }}

[[dns]]
id = "api-record"
zone = "{zone}"
name = "api-{i}.{zone}"
type = "CNAME"
ttl = 60
switch = "upsert"
targets = {{ {HOME} = "api-{i}-usw2.{zone}", {STANDBY} = "api-{i}-use1.{zone}" }}
after = ["api", "db"]

[[dns]]
id = "db-endpoint"
zone = "{zone}"
name = "db-{i}.{zone}"
type = "CNAME"
ttl = 60
switch = "upsert"
follows = "db"
"#,
        plan = s.plan,
        primary = s.primary,
        replica = s.replica,
    )
}

/// What one mass failover showed.
struct Figures {
    plans: usize,
    zones: usize,
    ran: Ran,
    wall: Duration,
    /// Each plan's achieved RTO (wall seconds, as drctl measured it).
    rto: Vec<f64>,
    /// `plan budget`'s forecast of the same plans on AWS (JSON).
    forecast: Value,
    /// Change batches that reached Route 53.
    batches: usize,
    world: crate::timed::Tally,
}

impl Figures {
    fn slowest(&self) -> f64 {
        self.rto.iter().copied().fold(0.0, f64::max)
    }

    /// Every promotion the world drew (scaled time).
    fn promotions(&self) -> Vec<Duration> {
        self.world
            .drawn
            .iter()
            .filter(|(k, _)| k.starts_with("db:"))
            .map(|(_, d)| *d)
            .collect()
    }

    /// The figures as docs/performance.md records them.
    fn table(&self) -> String {
        let model = |wall: f64| wall / SCALE;
        let throttled: u64 = self.world.throttled.values().sum();
        let longest = self.promotions().into_iter().max().unwrap_or_default();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "plans {} over {} zones at 1/{:.0}: exit {:?}, wall {:.1} s",
            self.plans,
            self.zones,
            1.0 / SCALE,
            self.ran.code,
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "slowest plan's RTO {:.2} s wall = {:.0} s at AWS's pace; median {:.0} s",
            self.slowest(),
            model(self.slowest()),
            model(median(&self.rto))
        );
        let _ = writeln!(
            o,
            "longest promotion drawn {:.0} s; forecast p50 {} s, p90 {} s, lower bound {} s; {}",
            model(longest.as_secs_f64()),
            self.forecast["run"]["p50_seconds"],
            self.forecast["run"]["p90_seconds"],
            self.forecast["lower_bound_seconds"],
            self.forecast["binding"]
        );
        let _ = writeln!(
            o,
            "Route 53 batches {}; PriorRequestNotComplete {}; answers held in a transitional state {}; \
             calls throttled by AWS's buckets {throttled} ({:?})",
            self.batches, self.world.prior_not_complete, self.world.held, self.world.throttled
        );
        o
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn drctl(args: &[&str]) -> Ran {
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("drctl runs");
    Ran::from_output(o)
}

/// Seeds `n` plans over `zones` zones, fails them over in one run through
/// the timed world at [`SCALE`], with drctl told the same scale.
async fn mass_failover(n: usize, zones: usize, draws: u64) -> (Figures, Vec<Seeded>) {
    let suffix = world::unique("mass");
    let (plans, seeded) = seed(n, zones, &suffix).await;
    let plans_dir = plans.path().to_str().expect("utf-8 path").to_string();
    let forecast = drctl(&[
        "--plans", &plans_dir, "plan", "budget", "--to", STANDBY, "--output", "json",
    ])
    .await;
    assert_eq!(forecast.code, Some(0), "{}", forecast.all());
    let forecast = forecast.json();

    let timed = TimedWorld::new(SCALE, draws);
    let proxied = Proxied::timed(timed.clone()).await;
    let config = proxied.dir.path().join("drctl.toml");
    std::fs::write(&config, timed.settings()).expect("write drctl.toml");
    let state = tempfile::tempdir().expect("state dir");
    let endpoints = proxied.endpoints();
    let started = Instant::now();
    let ran = drctl(&[
        "--plans",
        &plans_dir,
        "--endpoints",
        endpoints.to_str().expect("utf-8 path"),
        "--config",
        config.to_str().expect("utf-8 path"),
        "--state-dir",
        state.path().to_str().expect("utf-8 path"),
        "failover",
        "--to",
        STANDBY,
        "--approve",
        "mass failover at 1/60",
        "--accept-data-loss",
        "1h",
        "--output",
        "json",
    ])
    .await;
    let wall = started.elapsed();
    let batches = proxied
        .proxies
        .iter()
        .map(|p| p.forwarded(Match::MethodPath("POST", "/rrset".into())))
        .sum();
    let report = serde_json::from_str::<Value>(&ran.out).unwrap_or(Value::Null);
    let rto = report["measures"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m["rto"]["seconds"].as_f64())
                .collect()
        })
        .unwrap_or_default();
    let figures = Figures {
        plans: n,
        zones,
        ran,
        wall,
        rto,
        forecast,
        batches,
        world: timed.tally(),
    };
    (figures, seeded)
}

/// Every replica is a writable primary and every plan's CNAMEs point at
/// the standby, read straight from the emulators.
async fn assert_failed_over(seeded: &[Seeded]) {
    let clouds = world::clouds().await;
    for s in seeded {
        let db = clouds
            .database
            .describe_instance(STANDBY, &s.replica)
            .await
            .expect("describe")
            .expect("replica exists");
        assert_eq!(db.role, drctl::cloud::DbRole::Primary, "{}", s.replica);
        let i = s.plan.trim_start_matches("mass-");
        let zone = clouds
            .dns
            .find_zone(&s.zone)
            .await
            .expect("zone read")
            .expect("zone exists");
        let name = format!("api-{i}.{}", s.zone);
        let records = clouds
            .dns
            .read_records(&zone, &name, "CNAME")
            .await
            .expect("records");
        let api = records
            .first()
            .unwrap_or_else(|| panic!("no {name} in {}", s.zone));
        assert_eq!(
            api.values,
            vec![format!("api-{i}-use1.{}", s.zone)],
            "{}",
            s.plan
        );
    }
}

#[tokio::test]
async fn three_plans_in_one_zone_fail_over_through_aws_in_time_at_one_sixtieth() {
    crate::needs_emulators!();
    let (f, seeded) = mass_failover(3, 1, 7).await;
    eprintln!("{}", f.table());
    assert_eq!(f.ran.code, Some(0), "{}\n{}", f.table(), f.ran.all());
    assert_failed_over(&seeded).await;
    assert_eq!(f.rto.len(), 3, "{}", f.ran.out);
    // The world took its time: every promotion was drawn and held, and the
    // slowest plan took at least its promotion.
    let promotions = f.promotions();
    assert_eq!(promotions.len(), 3, "{:?}", f.world.drawn);
    assert!(f.world.held > 0, "{}", f.table());
    let longest = promotions.iter().max().copied().unwrap_or_default();
    assert!(
        f.slowest() >= longest.as_secs_f64(),
        "a plan finished before its promotion: {}",
        f.table()
    );
    // Six records in one zone, as few changes as the zone's turns allow.
    assert!((1..=6).contains(&f.batches), "{}", f.table());
}

/// The figures of docs/performance.md; opt in with `--ignored`.
#[tokio::test]
#[ignore = "fifty plans on the emulators take minutes; see docs/performance.md"]
async fn fifty_plans_over_five_zones_fail_over_through_aws_in_time_at_one_sixtieth() {
    crate::needs_emulators!();
    let (f, seeded) = mass_failover(50, 5, 11).await;
    println!("{}", f.table());
    assert_eq!(f.ran.code, Some(0), "{}\n{}", f.table(), f.ran.all());
    assert_failed_over(&seeded).await;
    assert_eq!(f.rto.len(), 50, "{}", f.ran.out);
}
