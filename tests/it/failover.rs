//! `drctl failover` end to end against the emulators: the cloud state after a
//! run (read back independently with raw SDK clients), the RPO, approval and
//! lock gates, idempotence, crash and resume at every step, the journal's
//! tamper evidence, and a dry run that changes nothing.
//!
//! Every test seeds its own copy of the reference world (`world::seed`, ids
//! and zone carrying a unique suffix) and uses its own state directory, so the
//! tests run in parallel with each other and with the rest of the suite.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::{DateTime, Utc};
use drctl::cloud::{DbRole, ObjectUrl};
use drctl::state::{LockInfo, hostname};
use futures::stream::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::proxy::{Fault, FaultProxy, Match};
use crate::world::{self, HOME, STANDBY};

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Ran {
    /// Both streams, for assertion messages.
    pub(crate) fn all(&self) -> String {
        format!(
            "exit {:?} signal {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.signal, self.out, self.err
        )
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.all()))
    }
}

/// The independently read state of one suffix world: every record of its
/// zone, the role of every database, the capacity of every group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    /// `name type [set id]` → `values weight ttl`.
    pub(crate) records: BTreeMap<String, String>,
    /// instance id → `role status` (plus the replicas a primary lists).
    pub(crate) databases: BTreeMap<String, String>,
    /// group name → (min, desired, max).
    pub(crate) groups: BTreeMap<String, (i32, i32, i32)>,
}

/// One isolated world: seeded resources, plans renamed for them, a state dir.
pub(crate) struct Fixture {
    pub(crate) suffix: String,
    pub(crate) zone: String,
    pub(crate) zone_id: String,
    pub(crate) plans: tempfile::TempDir,
    pub(crate) state: tempfile::TempDir,
    /// Shared state (`s3://...` or `gs://...`) when `DRCTL_IT_STATE` is `s3`
    /// or `gs`: the suite's state-dependent tests then run against a bucket.
    pub(crate) shared: Option<String>,
}

/// The bucket of the shared-state runs of the suite.
pub(crate) const IT_STATE_BUCKET: &str = "drctl-it-state";

/// `DRCTL_IT_STATE=s3|gs` runs the fixtures' commands with `--state` on that
/// store (one prefix per fixture); unset, a local state directory.
pub(crate) async fn shared_state(suffix: &str, scheme: Option<&str>) -> Option<String> {
    static S3: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    static GCS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let chosen = match scheme {
        Some(s) => s.to_string(),
        None => std::env::var("DRCTL_IT_STATE").ok()?,
    };
    let scheme = match chosen.as_str() {
        "s3" => "s3",
        "gs" | "gcs" => "gs",
        "" | "dir" | "local" => return None,
        other => panic!("DRCTL_IT_STATE={other}: expected s3, gs or dir"),
    };
    let once = if scheme == "gs" { &GCS } else { &S3 };
    once.get_or_init(|| async {
        let url = ObjectUrl::parse(&format!("{scheme}://{IT_STATE_BUCKET}")).expect("url");
        let objects = world::clouds().await.objects;
        if objects.bucket_exists(STANDBY, &url).await.unwrap_or(false) {
            return;
        }
        if scheme == "gs" {
            world::create_gcs_bucket(IT_STATE_BUCKET).await;
        } else {
            let s3 = world::sdk().await.s3("us-east-1");
            let _ = s3.create_bucket().bucket(IT_STATE_BUCKET).send().await;
        }
    })
    .await;
    Some(format!("{scheme}://{IT_STATE_BUCKET}/{suffix}"))
}

impl Fixture {
    pub(crate) async fn new(prefix: &str) -> Self {
        Self::with_state(prefix, None).await
    }

    /// A fixture whose state is `scheme` (`s3` or `gs`): a prefix of the
    /// suite's state bucket; `None`: as `DRCTL_IT_STATE` says.
    pub(crate) async fn with_state(prefix: &str, scheme: Option<&str>) -> Self {
        world::settings();
        let suffix = world::unique(prefix);
        // moto now and then answers a burst of concurrent seeds with an
        // HTTP 500; seeding is idempotent, so try again.
        let mut attempt = 0;
        let seeded = loop {
            attempt += 1;
            let s = suffix.clone();
            match tokio::task::spawn_blocking(move || world::seed(&s)).await {
                Ok(seeded) => break seeded,
                Err(e) if attempt < 3 => {
                    eprintln!("seeding {suffix} failed (attempt {attempt}), retrying: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => panic!("seeding {suffix} failed {attempt} times: {e}"),
            }
        };
        let zone = seeded["zone"]["name"]
            .as_str()
            .expect("zone name")
            .to_string();
        assert_eq!(zone, format!("{suffix}.example.com."));
        let zone_id = seeded["zone"]["id"].as_str().expect("zone id").to_string();
        Self {
            plans: crate::cli::suffixed_plans(&suffix),
            state: tempfile::tempdir().expect("state dir"),
            shared: shared_state(&suffix, scheme).await,
            suffix,
            zone,
            zone_id,
        }
    }

    /// `base-SUFFIX`.
    pub(crate) fn id(&self, base: &str) -> String {
        format!("{base}-{}", self.suffix)
    }

    /// `host.SUFFIX.example.com.`.
    pub(crate) fn host(&self, host: &str) -> String {
        format!("{host}.{}", self.zone)
    }

    pub(crate) fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The `--state` / `--state-dir` arguments of this fixture.
    fn state_args(&self) -> Vec<std::ffi::OsString> {
        match &self.shared {
            Some(url) => vec!["--state".into(), url.into()],
            None => vec!["--state-dir".into(), self.state.path().into()],
        }
    }

    /// Whether the plan's lock is taken (held or left behind by a crash).
    pub(crate) fn lock_taken(&self, plan: &str) -> bool {
        if self.shared.is_none() {
            return self.state_dir().join(format!("locks/{plan}.lock")).exists();
        }
        let o = self.drctl_blocking(&["lock", "status", "--plan", plan, "--output", "json"]);
        let v: Value = serde_json::from_str(&o).unwrap_or_else(|e| panic!("lock status: {e}: {o}"));
        matches!(v[0]["state"].as_str(), Some("held" | "expired" | "dead"))
    }

    /// The text of a run's journal, from whichever store holds it.
    pub(crate) async fn journal_text(&self, run: &str) -> String {
        match &self.shared {
            None => std::fs::read_to_string(self.journal_path(run)).unwrap_or_default(),
            Some(url) => {
                use drctl::journal::JournalStore;
                let store = drctl::state::objects::ObjectJournalStore::new(
                    world::clouds().await.objects,
                    STANDBY,
                    ObjectUrl::parse(url).expect("state url"),
                );
                store.read(run).await.unwrap_or_default()
            }
        }
    }

    /// Runs drctl synchronously (for helpers called outside async code);
    /// returns stdout.
    fn drctl_blocking(&self, args: &[&str]) -> String {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
            .args(["--color", "never", "--plans"])
            .arg(self.plans.path())
            .arg("--endpoints")
            .arg(world::endpoints_file())
            .args(self.state_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("drctl runs");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A step id of the payments plan (`promote`, `switch-dns`... take the
    /// suffixed resource or zone).
    pub(crate) fn step(&self, local: &str) -> String {
        match local {
            "promote" => format!("payments/promote:{}", self.id("payments-db")),
            "switch-dns" | "verify-dns" => format!("payments/{local}:{}", self.zone),
            other => format!("payments/{other}"),
        }
    }

    pub(crate) async fn drctl(&self, args: &[&str]) -> Ran {
        self.drctl_with(args, &[], &world::endpoints_file()).await
    }

    pub(crate) async fn drctl_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        endpoints: &Path,
    ) -> Ran {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
        cmd.args(["--color", "never", "--plans"])
            .arg(self.plans.path())
            .arg("--endpoints")
            .arg(endpoints)
            .args(self.state_args())
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().await.expect("drctl runs");
        Ran {
            code: o.status.code(),
            signal: o.status.signal(),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `failover --plan payments --to us-east-1 --approve ... EXTRA`.
    pub(crate) async fn failover_payments(&self, extra: &[&str]) -> Ran {
        self.failover_payments_via(&world::endpoints_file(), extra)
            .await
    }

    /// [`Fixture::failover_payments`] with another endpoints file.
    pub(crate) async fn failover_payments_via(&self, endpoints: &Path, extra: &[&str]) -> Ran {
        let mut args = vec![
            "failover",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--approve",
            "integration test",
        ];
        args.extend_from_slice(extra);
        self.drctl_with(&args, &[], endpoints).await
    }

    /// Run ids with a journal in the state.
    pub(crate) fn runs(&self) -> BTreeSet<String> {
        if self.shared.is_some() {
            let o = self.drctl_blocking(&["runs", "list", "--output", "json"]);
            let v: Value =
                serde_json::from_str(&o).unwrap_or_else(|e| panic!("runs list: {e}: {o}"));
            return v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["run"].as_str().map(String::from))
                .collect();
        }
        let dir = self.state.path().join("runs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return BTreeSet::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".jsonl")
                    .map(String::from)
            })
            .collect()
    }

    /// The one run journaled since `before` was listed.
    pub(crate) fn new_run(&self, before: &BTreeSet<String>) -> String {
        let new: Vec<String> = self.runs().difference(before).cloned().collect();
        assert_eq!(new.len(), 1, "expected exactly one new run, got {new:?}");
        new[0].clone()
    }

    pub(crate) fn journal_path(&self, run: &str) -> PathBuf {
        self.state.path().join("runs").join(format!("{run}.jsonl"))
    }

    /// `runs show RUN --output json`.
    pub(crate) async fn show(&self, run: &str) -> Value {
        let o = self.drctl(&["runs", "show", run, "--output", "json"]).await;
        assert_eq!(o.code, Some(0), "{}", o.all());
        o.json()
    }

    pub(crate) async fn audit(&self, run: &str) -> Ran {
        self.drctl(&["audit", "verify", run]).await
    }

    /// Reads the world with raw SDK clients (roles through the adapter, which
    /// knows moto's promotion quirk, cross-checked with the primary's list of
    /// replicas).
    pub(crate) async fn snapshot(&self) -> Snapshot {
        let sdk = world::sdk().await;
        let clouds = world::clouds().await;

        let mut records = BTreeMap::new();
        let out = sdk
            .route53()
            .list_resource_record_sets()
            .hosted_zone_id(&self.zone_id)
            .send()
            .await
            .expect("ListResourceRecordSets");
        assert!(!out.is_truncated(), "the suffix zone fits one page");
        for set in out.resource_record_sets() {
            let rtype = set.r#type().as_str();
            if rtype == "SOA" || rtype == "NS" {
                continue;
            }
            let key = format!(
                "{} {rtype}{}",
                set.name().trim_end_matches('.').to_ascii_lowercase(),
                set.set_identifier()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default()
            );
            let mut values: Vec<String> = set
                .resource_records()
                .iter()
                .map(|r| r.value().trim_end_matches('.').to_ascii_lowercase())
                .collect();
            values.sort();
            let value = format!(
                "{} weight {:?} ttl {:?}",
                values.join(","),
                set.weight(),
                set.ttl()
            );
            records.insert(key, value);
        }

        let mut databases = BTreeMap::new();
        for (app, primary, replica) in [
            (
                "payments",
                self.id("payments-db"),
                self.id("payments-db-use1"),
            ),
            ("ledger", self.id("ledger-db"), self.id("ledger-db-use1")),
        ] {
            let raw = sdk
                .rds(HOME)
                .describe_db_instances()
                .db_instance_identifier(&primary)
                .send()
                .await
                .expect("DescribeDBInstances (home)");
            let listed: Vec<String> = raw.db_instances()[0]
                .read_replica_db_instance_identifiers()
                .to_vec();
            databases.insert(format!("{primary} lists replicas"), format!("{listed:?}"));
            for (region, id) in [(HOME, &primary), (STANDBY, &replica)] {
                let inst = clouds
                    .database
                    .describe_instance(region, id)
                    .await
                    .expect("describe_instance")
                    .unwrap_or_else(|| panic!("{app}: {id} exists in {region}"));
                let role = match &inst.role {
                    DbRole::Primary => "primary".to_string(),
                    DbRole::Replica(src) => format!("replica of {src}"),
                };
                databases.insert(id.clone(), format!("{role} ({})", inst.status));
            }
        }

        let mut groups = BTreeMap::new();
        for (region, tag) in [(HOME, "usw2"), (STANDBY, "use1")] {
            for base in ["payments-api", "ledger-workers"] {
                let name = self.id(&format!("{base}-{tag}"));
                let out = sdk
                    .autoscaling(region)
                    .describe_auto_scaling_groups()
                    .auto_scaling_group_names(&name)
                    .send()
                    .await
                    .expect("DescribeAutoScalingGroups");
                let g = out
                    .auto_scaling_groups()
                    .iter()
                    .find(|g| g.auto_scaling_group_name() == Some(name.as_str()))
                    .unwrap_or_else(|| panic!("group {name} exists in {region}"));
                groups.insert(
                    name,
                    (
                        g.min_size().unwrap_or(-1),
                        g.desired_capacity().unwrap_or(-1),
                        g.max_size().unwrap_or(-1),
                    ),
                );
            }
        }
        Snapshot {
            records,
            databases,
            groups,
        }
    }

    /// The value of record `host.ZONE TYPE`, as the snapshot shows it.
    pub(crate) fn record<'a>(&self, snap: &'a Snapshot, host: &str, rtype: &str) -> &'a str {
        let key = format!("{host}.{} {rtype}", self.zone.trim_end_matches('.'));
        snap.records
            .get(&key)
            .unwrap_or_else(|| panic!("no record {key} in {:#?}", snap.records))
    }

    /// The endpoint address of an instance, read with the raw SDK.
    pub(crate) async fn endpoint(&self, region: &str, id: &str) -> String {
        let out = world::sdk()
            .await
            .rds(region)
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .expect("DescribeDBInstances");
        out.db_instances()[0]
            .endpoint()
            .and_then(|e| e.address())
            .expect("the instance has an endpoint")
            .to_ascii_lowercase()
    }

    /// Asserts the world is the payments failover's end state (ledger untouched).
    pub(crate) async fn assert_payments_failed_over(&self, snap: &Snapshot) -> Result<(), String> {
        let mut problems = Vec::new();
        let api = self.record(snap, "api", "CNAME");
        let want_api = format!(
            "{} weight None ttl Some(60)",
            self.host("api-use1").trim_end_matches('.')
        );
        if api != want_api {
            problems.push(format!("api is {api}, expected {want_api}"));
        }
        let db_ep = self.endpoint(STANDBY, &self.id("payments-db-use1")).await;
        let want_db = format!("{db_ep} weight None ttl Some(60)");
        let db = self.record(snap, "payments-db", "CNAME");
        if db != want_db {
            problems.push(format!("payments-db is {db}, expected {want_db}"));
        }
        let role = &snap.databases[&self.id("payments-db-use1")];
        if role != "primary (available)" {
            problems.push(format!("payments-db-use1 is {role}, expected a primary"));
        }
        let cap = snap.groups[&self.id("payments-api-use1")];
        if cap != (2, 4, 8) {
            problems.push(format!("payments-api-use1 is {cap:?}, expected 2/4/8"));
        }
        let ledger_role = &snap.databases[&self.id("ledger-db-use1")];
        if !ledger_role.starts_with("replica") {
            problems.push(format!(
                "ledger-db-use1 is {ledger_role}, expected untouched"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{problems:#?}\nworld: {snap:#?}"))
        }
    }

    /// Reads the manifest of `run` at `dest` (`s3://b/payments`) and checks
    /// the digest of the journal copy it lists.
    pub(crate) async fn assert_evidence(&self, dest: &str, run: &str) -> Result<Value, String> {
        let clouds = world::clouds().await;
        let url = ObjectUrl::parse(&format!("{dest}/{run}/manifest.json")).expect("url");
        let body = clouds
            .objects
            .get(STANDBY, &url)
            .await
            .map_err(|e| format!("reading {url}: {e}"))?
            .ok_or_else(|| format!("{url} does not exist"))?;
        let manifest: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))?;
        if manifest["run_id"] != run || manifest["plan"] != "payments" {
            return Err(format!("{url} names another run: {manifest:#}"));
        }
        let objects = manifest["objects"].as_array().cloned().unwrap_or_default();
        let journal = objects
            .iter()
            .find(|o| {
                o["object"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/journal.jsonl"))
            })
            .ok_or_else(|| format!("{url} lists no journal: {manifest:#}"))?;
        let jurl = ObjectUrl::parse(journal["object"].as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let copy = clouds
            .objects
            .get(STANDBY, &jurl)
            .await
            .map_err(|e| format!("reading {jurl}: {e}"))?
            .ok_or_else(|| format!("{jurl} does not exist"))?;
        let digest = hex::encode(Sha256::digest(&copy));
        if journal["sha256"] != digest.as_str() {
            return Err(format!(
                "{jurl} hashes to {digest}, the manifest says {}",
                journal["sha256"]
            ));
        }
        Ok(manifest)
    }
}

/// Deletes the world's database instances (skipping final snapshots, with
/// their automated backups): moto keeps at most 1,000 snapshots per region
/// and every seeded primary holds one, so worlds left behind would
/// eventually make `CreateDBInstance` fail for every test sharing the
/// emulators. The rest of a world (zone, groups, buckets) costs nothing and
/// stays.
impl Drop for Fixture {
    fn drop(&mut self) {
        let ids = [
            (STANDBY, self.id("payments-db-use1")),
            (STANDBY, self.id("ledger-db-use1")),
            (HOME, self.id("payments-db")),
            (HOME, self.id("ledger-db")),
        ];
        world::run_cleanup(async move {
            let sdk = world::sdk().await;
            for (region, id) in ids {
                let deleted = sdk
                    .rds(region)
                    .delete_db_instance()
                    .db_instance_identifier(&id)
                    .skip_final_snapshot(true)
                    .delete_automated_backups(true)
                    .send()
                    .await;
                if let Err(e) = deleted {
                    eprintln!("cleanup: cannot delete {id} in {region}: {e}");
                }
            }
        });
    }
}

/// The journal records of a `runs show --output json` document.
pub(crate) fn records(show: &Value) -> Vec<Value> {
    show["records"].as_array().cloned().unwrap_or_default()
}

/// The outputs of step `step` in its last success.
pub(crate) fn outputs(show: &Value, step: &str) -> Value {
    records(show)
        .into_iter()
        .rev()
        .find(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == step)
        .map(|r| r["event"]["outputs"].clone())
        .unwrap_or_else(|| panic!("no success of {step} in {show:#}"))
}

/// Gate events (`{plan, gate, decision, detail}`) of a run.
pub(crate) fn gates(show: &Value, gate: &str) -> Vec<Value> {
    records(show)
        .into_iter()
        .filter(|r| r["event"]["type"] == "gate" && r["event"]["gate"] == gate)
        .map(|r| r["event"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_payments_switches_dns_database_and_capacity() {
    let fx = Fixture::new("fo").await;
    let before = fx.snapshot().await;
    assert_eq!(
        fx.record(&before, "api", "CNAME"),
        format!(
            "{} weight None ttl Some(60)",
            fx.host("api-usw2").trim_end_matches('.')
        )
    );
    assert!(before.databases[&fx.id("payments-db-use1")].starts_with("replica"));

    let proxied = Proxied::start(false).await;
    let o = fx
        .failover_payments_via(&proxied.endpoints(), &["--output", "json"])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let report = o.json();
    assert_eq!(report["outcome"], "succeeded", "{report:#}");
    let run = report["run_id"].as_str().expect("run id").to_string();
    assert_eq!(fx.runs(), BTreeSet::from([run.clone()]));

    // What reached the emulators: one promotion, one scaling, one change
    // batch for the zone (moto keeps no trace of a promotion in its API, so
    // the request itself is the independent evidence).
    let log = proxied.log();
    assert_eq!(proxied.forwarded("PromoteReadReplica"), 1, "{log:#?}");
    assert_eq!(proxied.forwarded("UpdateAutoScalingGroup"), 1, "{log:#?}");
    let batches = log
        .iter()
        .filter(|l| l.starts_with("POST ") && l.contains("/rrset"))
        .count();
    assert_eq!(batches, 1, "one atomic change batch: {log:#?}");

    // The world, read independently.
    let after = fx.snapshot().await;
    fx.assert_payments_failed_over(&after).await.unwrap();
    assert_eq!(
        after.databases[&fx.id("payments-db")],
        "primary (available)",
        "the old primary keeps its data"
    );
    assert_eq!(after.groups[&fx.id("payments-api-usw2")], (2, 4, 8));
    // Nothing of ledger moved.
    for region in [HOME, STANDBY] {
        let key = format!("ledger.{} CNAME [{region}]", fx.zone.trim_end_matches('.'));
        assert_eq!(after.records[&key], before.records[&key], "{key}");
    }
    assert_eq!(after.groups[&fx.id("ledger-workers-use1")], (0, 0, 4));

    // Measured RTO and RPO, honestly labelled.
    let m = report["measures"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["plan"] == "payments"))
        .unwrap_or_else(|| panic!("no payments measure: {report:#}"));
    let rto = m["rto"]["seconds"].as_f64().expect("RTO measured");
    assert!(rto > 0.0 && rto < 900.0, "{m:#}");
    assert_eq!(m["rto"]["met"], true, "{m:#}");
    assert_eq!(m["rto"]["target_seconds"], 900, "{m:#}");
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(3.0), "{m:#}");
    assert_eq!(m["rpo"]["met"], true, "{m:#}");
    assert_eq!(m["rpo"]["target_seconds"], 300, "{m:#}");
    assert!(
        m["rpo"]["basis"]
            .as_str()
            .unwrap_or_default()
            .contains("ReplicaLag"),
        "{m:#}"
    );

    // The journal verifies; the approval and the operator are in it.
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());
    assert!(v.out.contains(&format!("ok      {run}")), "{}", v.all());
    let show = fx.show(&run).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    let approval = &gates(&show, "approval")[0];
    assert_eq!(approval["decision"], "pass", "{approval:#}");
    assert_eq!(
        approval["detail"]["reason"], "integration test",
        "{approval:#}"
    );
    assert!(
        approval["detail"]["approved_by"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:")),
        "the operator identity (STS) is recorded: {approval:#}"
    );

    // Evidence on both destinations, the journal copy matching its digest.
    let s3 = fx
        .assert_evidence(
            &format!("s3://{}/payments", fx.id("drctl-evidence-use1")),
            &run,
        )
        .await
        .unwrap();
    let gcs = fx
        .assert_evidence(&format!("gs://{}/payments", fx.id("drctl-evidence")), &run)
        .await
        .unwrap();
    let digests = |m: &Value| -> Vec<String> {
        m["objects"]
            .as_array()
            .map(|a| a.iter().map(|o| o["sha256"].to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(digests(&s3).len(), 3, "{s3:#}");
    assert_eq!(
        digests(&s3),
        digests(&gcs),
        "both destinations hold the same objects"
    );
    // The lock is released.
    assert!(!fx.lock_taken("payments"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_is_refused_by_the_rpo_gate_then_accepted_with_data_loss() {
    let fx = Fixture::new("rpo").await;
    let weights = |snap: &Snapshot| {
        let zone = fx.zone.trim_end_matches('.').to_string();
        (
            snap.records[&format!("ledger.{zone} CNAME [us-west-2]")].clone(),
            snap.records[&format!("ledger.{zone} CNAME [us-east-1]")].clone(),
        )
    };
    let before = fx.snapshot().await;
    let (w2, e1) = weights(&before);
    assert!(
        w2.contains("weight Some(100)") && e1.contains("weight Some(0)"),
        "{w2} / {e1}"
    );

    let runs = fx.runs();
    let o = fx
        .drctl(&["failover", "--plan", "ledger", "--to", STANDBY])
        .await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(o.err.contains("is 20m"), "the lag is named: {}", o.all());
    assert!(o.err.contains("RPO of 15m"), "{}", o.all());
    assert!(o.err.contains("--accept-data-loss"), "{}", o.all());
    let refused = fx.new_run(&runs);
    assert!(
        o.err.contains(&refused),
        "the refusal names its run: {}",
        o.all()
    );

    let show = fx.show(&refused).await;
    let rpo = gates(&show, "rpo");
    assert_eq!(rpo.len(), 1, "{show:#}");
    assert_eq!(rpo[0]["decision"], "refuse", "{:#}", rpo[0]);
    assert_eq!(
        rpo[0]["detail"]["databases"][0]["lag_seconds"].as_f64(),
        Some(1200.0),
        "{:#}",
        rpo[0]
    );
    assert_eq!(
        rpo[0]["detail"]["databases"][0]["instance"],
        fx.id("ledger-db-use1")
    );
    assert_eq!(show["report"]["outcome"], "refused");
    assert!(
        !records(&show)
            .iter()
            .any(|r| r["event"]["type"] == "step_started"),
        "no step started after a refusal"
    );

    let refused_world = fx.snapshot().await;
    assert_eq!(refused_world, before, "a refused run changes nothing");
    assert!(refused_world.databases[&fx.id("ledger-db-use1")].starts_with("replica"));
    assert!(!fx.lock_taken("ledger"), "the lock is released");

    // Accepting too little is still refused.
    let o = fx
        .drctl(&[
            "failover",
            "--plan",
            "ledger",
            "--to",
            STANDBY,
            "--accept-data-loss",
            "10m",
        ])
        .await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(
        o.err.contains("above --accept-data-loss 10m"),
        "{}",
        o.all()
    );

    let o = fx
        .drctl(&[
            "failover",
            "--plan",
            "ledger",
            "--to",
            STANDBY,
            "--accept-data-loss",
            "30m",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let report = o.json();
    let after = fx.snapshot().await;
    let (w2, e1) = weights(&after);
    assert!(w2.contains("weight Some(0)"), "us-west-2 drained: {w2}");
    assert!(
        e1.contains("weight Some(100)"),
        "us-east-1 takes traffic: {e1}"
    );
    assert!(
        w2.starts_with(&fx.host("ledger-usw2").trim_end_matches('.').to_string()),
        "{w2}"
    );
    assert!(
        e1.starts_with(&fx.host("ledger-use1").trim_end_matches('.').to_string()),
        "{e1}"
    );
    assert_eq!(
        after.databases[&fx.id("ledger-db-use1")],
        "primary (available)"
    );
    assert_eq!(after.groups[&fx.id("ledger-workers-use1")], (1, 2, 4));
    // Payments was not part of it.
    assert!(after.databases[&fx.id("payments-db-use1")].starts_with("replica"));

    let m = &report["measures"][0];
    assert_eq!(m["plan"], "ledger");
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(1200.0), "{m:#}");
    assert_eq!(m["rpo"]["met"], false, "{m:#}");
    assert_eq!(m["rpo"]["target_seconds"], 900, "{m:#}");
    let run = report["run_id"].as_str().expect("run id");
    let show = fx.show(run).await;
    let rpo = gates(&show, "rpo");
    assert_eq!(rpo[0]["decision"], "override", "{:#}", rpo[0]);
    assert_eq!(rpo[0]["detail"]["accept_data_loss_seconds"], 1800);
    assert_eq!(
        rpo[0]["detail"]["databases"][0]["lag_seconds"].as_f64(),
        Some(1200.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn running_the_same_failover_twice_changes_nothing_the_second_time() {
    let fx = Fixture::new("twice").await;
    let first = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(first.code, Some(0), "{}", first.all());
    let first_run = first.json()["run_id"].as_str().expect("run id").to_string();
    let after_first = fx.snapshot().await;
    fx.assert_payments_failed_over(&after_first).await.unwrap();
    let show = fx.show(&first_run).await;
    assert_eq!(
        outputs(&show, &fx.step("scale:payments-api"))["changed"],
        true
    );
    assert_eq!(outputs(&show, &fx.step("switch-dns"))["changed"], 2);

    let proxied = Proxied::start(false).await;
    let second = fx
        .failover_payments_via(&proxied.endpoints(), &["--output", "json"])
        .await;
    assert_eq!(second.code, Some(0), "{}", second.all());
    // The only writes of the second run are its own evidence objects (and,
    // on shared state, its journal and lease in the state bucket).
    let writes = proxied.writes();
    assert!(
        writes
            .iter()
            .all(|w| (w.contains("/payments/") && w.contains("-payments-"))
                || w.contains(&format!("/{IT_STATE_BUCKET}/"))),
        "the second run wrote more than its evidence: {writes:#?}"
    );
    assert_eq!(proxied.forwarded("PromoteReadReplica"), 0);
    assert_eq!(proxied.forwarded("UpdateAutoScalingGroup"), 0);
    let report = second.json();
    let run = report["run_id"].as_str().expect("run id").to_string();
    assert_ne!(run, first_run);
    let show = fx.show(&run).await;
    assert_eq!(show["report"]["outcome"], "succeeded");

    let scale = outputs(&show, &fx.step("scale:payments-api"));
    assert_eq!(scale["changed"], false, "{scale:#}");
    assert_eq!(scale["before"], json!({"min": 2, "desired": 4, "max": 8}));
    let promote = outputs(&show, &fx.step("promote"));
    assert_eq!(promote["already_primary"], true, "{promote:#?}");
    assert!(
        promote.get("promoted_at").is_none(),
        "not promoted again: {promote:#?}"
    );
    let switch = outputs(&show, &fx.step("switch-dns"));
    assert_eq!(switch["changed"], 0, "{switch:#?}");
    assert_eq!(switch["change_ids"], json!([]), "{switch:#?}");
    assert_eq!(switch["before"], switch["after"], "{switch:#?}");

    // RPO of the second run: the gate's reading, labelled as such.
    let m = &report["measures"][0];
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(3.0), "{m:#}");

    let after_second = fx.snapshot().await;
    assert_eq!(
        after_second, after_first,
        "the second run changed the world"
    );
    let v = fx.drctl(&["audit", "verify"]).await;
    assert_eq!(v.code, Some(0), "{}", v.all());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_by_a_live_run_refuses_a_second_run() {
    let fx = Fixture::new("lock").await;
    if fx.shared.is_some() {
        // Writes lock files by hand; leases are tested in state.rs.
        return;
    }
    let locks = fx.state_dir().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = locks.join("payments.lock");
    let write_lock = |info: &LockInfo| {
        let mut bytes = serde_json::to_vec(info).unwrap();
        bytes.push(b'\n');
        std::fs::write(&lock, &bytes).unwrap();
        bytes
    };
    let before = fx.snapshot().await;

    // Held by this (live) test process.
    let live = LockInfo {
        run_id: "20260101T000000Z-payments-live".into(),
        host: hostname(),
        pid: std::process::id(),
        started: Utc::now(),
    };
    let bytes = write_lock(&live);
    let o = fx.failover_payments(&[]).await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(
        o.err.contains(&live.run_id),
        "names the holder's run: {}",
        o.all()
    );
    assert!(
        o.err.contains(&format!("host {}", live.host)),
        "names the host: {}",
        o.all()
    );
    assert!(
        o.err.contains(&format!("pid {}", live.pid)),
        "names the pid: {}",
        o.all()
    );
    assert!(
        !o.err.contains("--force-unlock"),
        "no takeover of a live lock is suggested: {}",
        o.all()
    );
    assert_eq!(
        std::fs::read(&lock).unwrap(),
        bytes,
        "the live lock is left alone"
    );
    assert!(fx.runs().is_empty(), "no run started");

    // --force-unlock never takes a live lock.
    let o = fx.failover_payments(&["--force-unlock"]).await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert_eq!(std::fs::read(&lock).unwrap(), bytes);
    assert_eq!(fx.snapshot().await, before, "nothing changed");

    // Held by a dead process.
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = LockInfo {
        run_id: "20260101T000000Z-payments-dead".into(),
        host: hostname(),
        pid: dead_pid,
        started: Utc::now(),
    };
    let bytes = write_lock(&dead);
    let o = fx.failover_payments(&[]).await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(o.err.contains(&dead.run_id), "{}", o.all());
    assert!(
        o.err.contains("--force-unlock"),
        "hints at --force-unlock: {}",
        o.all()
    );
    assert_eq!(std::fs::read(&lock).unwrap(), bytes);
    assert_eq!(fx.snapshot().await, before, "nothing changed");

    let runs = fx.runs();
    let o = fx.failover_payments(&["--force-unlock"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = fx.new_run(&runs);
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();
    assert!(!lock.exists(), "the lock is released after the run");
    let show = fx.show(&run).await;
    let taken = gates(&show, "lock");
    assert_eq!(taken.len(), 1, "{show:#}");
    assert_eq!(taken[0]["decision"], "override", "{:#}", taken[0]);
    assert_eq!(taken[0]["detail"]["force_unlock"], true);
    assert_eq!(taken[0]["detail"]["previous_holder"]["run_id"], dead.run_id);
    assert_eq!(taken[0]["detail"]["previous_holder"]["pid"], dead.pid);
}

/// One crash point in a world of its own: crash at `when:STEP` (`local` is
/// the step id with `payments-db` and `ZONE` for the suffixed parts), check
/// the journal, resume, check the journal, the world and the evidence.
async fn crash_and_resume(when: &str, local: &str) -> Result<(), String> {
    let fx = Fixture::new("crash").await;
    let step = local
        .replace(":payments-db", &format!(":{}", fx.id("payments-db")))
        .replace("ZONE", &fx.zone);
    let point = format!("{when}:{step}");
    let step = step.as_str();
    let fail = |what: &str, o: &Ran| Err(format!("{point}: {what}\n{}", o.all()));
    // Both processes reach the AWS emulators through counting proxies.
    let proxied = Proxied::start(false).await;

    let o = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "crash test",
                "--inject-crash",
                &point,
                // One step at a time: with steps in flight beside the crash
                // point, a promotion sent just before the stop is invisible
                // on moto (it never clears the replica's source; real RDS
                // does), so exactly-once could not be checked here. The
                // in-process fault loop covers concurrent crashes.
                "--parallelism",
                "1",
            ],
            &[],
            &proxied.endpoints(),
        )
        .await;
    if o.code != Some(1) || !o.err.contains("injected crash point") {
        return fail("expected the run to stop at the crash point (exit 1)", &o);
    }
    let runs = fx.runs();
    if runs.len() != 1 {
        return Err(format!("{point}: runs after the crash: {runs:?}"));
    }
    let run = runs.into_iter().next().unwrap_or_default();
    let before_resume = fx.journal_text(&run).await;
    let last = before_resume.lines().last().unwrap_or_default();
    let last: Value = serde_json::from_str(last).unwrap_or_default();
    let (kind, want) = if point.starts_with("before:") {
        ("step_started", step)
    } else {
        ("step_succeeded", step)
    };
    if last["event"]["type"] != kind || last["event"]["step"] != want {
        return Err(format!(
            "{point}: the journal does not end at the crash point: {last}"
        ));
    }
    if !fx.lock_taken("payments") {
        return Err(format!("{point}: the crashed run's lock is gone"));
    }
    let v = fx.audit(&run).await;
    if v.code != Some(0) {
        return fail("audit verify after the crash", &v);
    }

    let o = fx
        .drctl_with(
            &["runs", "resume", &run, "--output", "json"],
            &[],
            &proxied.endpoints(),
        )
        .await;
    if o.code != Some(0) {
        return fail("runs resume", &o);
    }
    let v = fx.audit(&run).await;
    if v.code != Some(0) {
        return fail("audit verify after the resume", &v);
    }
    let snap = fx.snapshot().await;
    fx.assert_payments_failed_over(&snap)
        .await
        .map_err(|e| format!("{point}: {e}"))?;
    let show = fx.show(&run).await;
    if show["report"]["outcome"] != "succeeded" {
        return Err(format!("{point}: outcome {}", show["report"]["outcome"]));
    }
    let recs = records(&show);
    if !recs.iter().any(|r| r["event"]["type"] == "resumed") {
        return Err(format!("{point}: no resumed record"));
    }
    // Every step succeeded, and those finished before the crash only once.
    let succeeded = |s: &str| {
        recs.iter()
            .filter(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == s)
            .count()
    };
    for s in show["report"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let id = s["step"].as_str().unwrap_or_default();
        if s["state"] != "succeeded" || succeeded(id) != 1 {
            return Err(format!(
                "{point}: step {id} is {} with {} successes",
                s["state"],
                succeeded(id)
            ));
        }
    }
    if show["report"]["steps"].as_array().map_or(0, Vec::len) != 6 {
        return Err(format!("{point}: steps {:#}", show["report"]["steps"]));
    }
    let m = &show["report"]["measures"][0];
    if m["rpo"]["seconds"].as_f64() != Some(3.0) {
        return Err(format!("{point}: RPO {m:#}"));
    }
    if fx.lock_taken("payments") {
        return Err(format!("{point}: the lock is still held after the resume"));
    }
    // Over the crash and the resume, every change was sent exactly once.
    let log = proxied.log();
    let batches = log
        .iter()
        .filter(|l| l.starts_with("POST ") && l.contains("/rrset"))
        .count();
    let sent = (
        proxied.forwarded("PromoteReadReplica"),
        proxied.forwarded("UpdateAutoScalingGroup"),
        batches,
    );
    if sent != (1, 1, 1) {
        return Err(format!(
            "{point}: (promotions, scalings, change batches) sent: {sent:?}\n{log:#?}"
        ));
    }
    fx.assert_evidence(
        &format!("s3://{}/payments", fx.id("drctl-evidence-use1")),
        &run,
    )
    .await
    .map_err(|e| format!("{point}: {e}"))?;
    fx.assert_evidence(&format!("gs://{}/payments", fx.id("drctl-evidence")), &run)
        .await
        .map_err(|e| format!("{point}: {e}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_each_step_then_resume_ends_in_the_correct_state() {
    // The step ids of the graph, as the binary compiles it for a suffix world
    // (compiling needs the plans only, not the world).
    let suffix = world::unique("graph");
    let plans = crate::cli::suffixed_plans(&suffix);
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--plans"])
        .arg(plans.path())
        .args([
            "plan", "graph", "payments", "--to", STANDBY, "--format", "json",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("drctl runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let graph: Value = serde_json::from_slice(&o.stdout).expect("graph JSON");
    let ids: Vec<String> = graph["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    // The ids for any world; every crash world has its own suffix.
    let locals: Vec<String> = ids
        .iter()
        .map(|id| {
            id.replace(&format!("payments-db-{suffix}"), "payments-db")
                .replace(&format!("{suffix}.example.com."), "ZONE")
        })
        .collect();
    assert_eq!(
        locals,
        [
            "payments/preflight",
            "payments/scale:payments-api",
            "payments/promote:payments-db",
            "payments/switch-dns:ZONE",
            "payments/verify-dns:ZONE",
            "payments/evidence",
        ],
        "the payments graph changed: update this test"
    );

    let points: Vec<(String, String)> = locals
        .iter()
        .flat_map(|l| [("before", l.clone()), ("after", l.clone())])
        .map(|(when, l)| (when.to_string(), l))
        .collect();
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(points)
        .map(|(when, local)| async move {
            let label = format!("{when}:{local}");
            let r = crash_and_resume(&when, &local).await;
            (label, r)
        })
        .buffer_unordered(6)
        .collect()
        .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(label, r)| r.as_ref().err().map(|e| format!("{label}: {e}")))
        .collect();
    assert_eq!(results.len(), 12);
    assert!(
        failures.is_empty(),
        "{} of 12 crash points failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_journal_fails_audit_verify() {
    let fx = Fixture::new("tamper").await;
    if fx.shared.is_some() {
        // Edits journal files in place; shared journals are checked in state.rs.
        return;
    }
    let o = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = o.json()["run_id"].as_str().expect("run id").to_string();
    let path = fx.journal_path(&run);
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() > 8, "{original}");
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());

    let verify_json = || async {
        let o = fx
            .drctl(&["audit", "verify", &run, "--output", "json"])
            .await;
        (o.code, o.json())
    };

    // One byte of a middle record: the step name of the scale step's start.
    let scale = fx.step("scale:payments-api");
    let k = lines
        .iter()
        .position(|l| l.contains("\"step_started\"") && l.contains(&scale))
        .expect("the scale step started")
        + 1;
    assert!(k > 1 && k < lines.len(), "line {k} is a middle line");
    let tampered: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == k {
                l.replacen("payments-api", "payments-apx", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        tampered.join("\n").len(),
        lines.join("\n").len(),
        "one byte changed"
    );
    std::fs::write(&path, tampered.join("\n") + "\n").unwrap();
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(
        v.out.contains(&format!("BROKEN  {run}: line {}:", k + 1)),
        "{}",
        v.all()
    );
    assert!(
        v.out.contains(&format!("does not match line {k}")),
        "{}",
        v.all()
    );
    let (code, json) = verify_json().await;
    assert_eq!(code, Some(1));
    assert_eq!(json[0]["ok"], false, "{json:#}");
    assert_eq!(json[0]["first_broken"]["line"], k + 1, "{json:#}");
    assert_eq!(
        json[0]["records"], k,
        "only the records before the break verify: {json:#}"
    );
    // `audit verify` of every run fails too.
    let all = fx.drctl(&["audit", "verify"]).await;
    assert_eq!(all.code, Some(1), "{}", all.all());

    // Restored, it verifies again (so the detection above was the edit).
    std::fs::write(&path, &original).unwrap();
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());

    // A deleted middle line.
    let without: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != k)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&path, without.join("\n") + "\n").unwrap();
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(
        v.out.contains(&format!("BROKEN  {run}: line {k}:")),
        "{}",
        v.all()
    );
    assert!(v.out.contains("deleted"), "{}", v.all());

    // The last record (no successor vouches for it: the head does).
    let mut last_changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let n = last_changed.len();
    assert!(
        last_changed[n - 1].contains("\"succeeded\""),
        "{}",
        last_changed[n - 1]
    );
    last_changed[n - 1] = last_changed[n - 1].replacen("\"succeeded\"", "\"succeedeD\"", 1);
    std::fs::write(&path, last_changed.join("\n") + "\n").unwrap();
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(
        v.out.contains(&format!("BROKEN  {run}: line {n}:")),
        "{}",
        v.all()
    );

    // The last record deleted.
    std::fs::write(&path, lines[..n - 1].join("\n") + "\n").unwrap();
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(v.out.contains("deleted"), "{}", v.all());
}

/// Whether a request the proxy logged (`METHOD TARGET [ACTION]`) only reads:
/// GET/HEAD, or a POST of a `Describe*`/`Get*`/`List*` operation (named by
/// `Action=`, or by `/operation/NAME` in the RPC-v2 protocols).
pub(crate) fn read_only(line: &str) -> bool {
    // `[region]` (the proxy's note of the signing region) is not a part.
    let mut parts = line.split_whitespace().filter(|p| !p.starts_with('['));
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let action = parts.next().unwrap_or_else(|| {
        target.split_once("/operation/").map_or("", |(_, op)| {
            op.split(['/', '?']).next().unwrap_or_default()
        })
    });
    match method {
        "GET" | "HEAD" => true,
        "POST" => ["Describe", "Get", "List"]
            .iter()
            .any(|p| action.starts_with(p)),
        _ => false,
    }
}

/// Every emulator (with `gcs`, fake-gcs-server too) behind a counting
/// [`FaultProxy`], and an endpoints file that points drctl at the proxies.
/// The proxy reads `Content-Length` bodies only, so runs that upload
/// evidence to GCS (chunked) leave GCS out.
pub(crate) struct Proxied {
    pub(crate) proxies: Vec<FaultProxy>,
    /// The upstream each of `proxies` forwards to.
    upstreams: Vec<String>,
    pub(crate) dir: tempfile::TempDir,
}

impl Proxied {
    pub(crate) async fn start(gcs: bool) -> Self {
        let vars = world::vars();
        let upstreams: BTreeSet<&String> = vars
            .iter()
            .filter(|(k, _)| {
                k.starts_with("AWS_ENDPOINT_URL") || (gcs && k.as_str() == "DRCTL_GCS_ENDPOINT")
            })
            .map(|(_, v)| v)
            .collect();
        let mut by_upstream: BTreeMap<String, String> = BTreeMap::new();
        let mut proxies = Vec::new();
        for up in &upstreams {
            let proxy = FaultProxy::start(up).await;
            by_upstream.insert(up.to_string(), proxy.url());
            proxies.push(proxy);
        }
        let upstreams = upstreams.into_iter().cloned().collect();
        let mut file = String::new();
        for (k, v) in vars {
            let v = by_upstream.get(v).unwrap_or(v);
            file.push_str(&format!("{k}={v}\n"));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("endpoints.env"), file).expect("write endpoints");
        Self {
            proxies,
            upstreams,
            dir,
        }
    }

    /// The proxy in front of the endpoint variable `var` (`AWS_ENDPOINT_URL_RDS`).
    pub(crate) fn proxy_for(&self, var: &str) -> &FaultProxy {
        let vars = world::vars();
        let upstream = vars
            .iter()
            .find(|(k, _)| k.as_str() == var)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{var} is not in the endpoints file"));
        let at = self
            .upstreams
            .iter()
            .position(|u| u == upstream)
            .unwrap_or_else(|| panic!("no proxy in front of {upstream}"));
        &self.proxies[at]
    }

    pub(crate) fn endpoints(&self) -> PathBuf {
        self.dir.path().join("endpoints.env")
    }

    /// Another endpoints file beside it: each `KEY=value` line of the
    /// proxied one passed through `edit` (`None` drops the line).
    pub(crate) fn endpoints_with(&self, edit: impl Fn(&str, &str) -> Option<String>) -> PathBuf {
        let text = std::fs::read_to_string(self.endpoints()).expect("endpoints file");
        let text: String = text
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                edit(k, v).map(|v| format!("{k}={v}\n"))
            })
            .collect();
        let path = self
            .dir
            .path()
            .join(format!("endpoints-{}.env", world::unique("variant")));
        std::fs::write(&path, text).expect("write endpoints file");
        path
    }

    /// Every request so far, over all proxies.
    pub(crate) fn log(&self) -> Vec<String> {
        self.proxies.iter().flat_map(FaultProxy::log).collect()
    }

    /// Requests that were not reads.
    pub(crate) fn writes(&self) -> Vec<String> {
        self.log().into_iter().filter(|l| !read_only(l)).collect()
    }

    /// Requests of an operation (`Action=`) that reached an emulator.
    pub(crate) fn forwarded(&self, action: &'static str) -> usize {
        self.proxies
            .iter()
            .map(|p| p.forwarded(Match::Action(action)))
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_changes_nothing() {
    let fx = Fixture::new("dry").await;
    let before = fx.snapshot().await;

    // Every emulator behind a counting proxy.
    let proxied = Proxied::start(true).await;
    let o = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--dry-run",
                "--output",
                "json",
            ],
            &[],
            &proxied.endpoints(),
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let preview = o.json();
    assert_eq!(preview["dry_run"], true);
    let steps = preview["steps"].as_array().expect("steps");
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        ids,
        [
            fx.step("preflight"),
            fx.step("scale:payments-api"),
            fx.step("promote"),
            fx.step("switch-dns"),
            fx.step("verify-dns"),
            fx.step("evidence"),
        ],
        "{preview:#}"
    );
    let calls = |step: &str| -> Vec<Value> {
        steps
            .iter()
            .find(|s| s["step"] == step)
            .and_then(|s| s["calls"]["Ok"].as_array().cloned())
            .unwrap_or_else(|| panic!("no calls for {step}: {preview:#}"))
    };
    let promote = calls(&fx.step("promote"));
    assert_eq!(promote.len(), 1, "{promote:#?}");
    assert_eq!(promote[0]["call"], "rds:PromoteReadReplica");
    assert_eq!(promote[0]["resource"], fx.id("payments-db-use1"));
    assert_eq!(promote[0]["region"], STANDBY);
    assert_eq!(promote[0]["change"], true);
    assert!(
        promote[0]["current"]
            .as_str()
            .unwrap_or_default()
            .starts_with("replica of"),
        "{promote:#?}"
    );
    let scale = calls(&fx.step("scale:payments-api"));
    assert_eq!(scale[0]["call"], "autoscaling:UpdateAutoScalingGroup");
    assert_eq!(scale[0]["resource"], fx.id("payments-api-use1"));
    assert_eq!(scale[0]["change"], true);
    let switch = calls(&fx.step("switch-dns"));
    assert_eq!(switch.len(), 2, "{switch:#?}");
    assert!(
        switch.iter().all(|c| c["change"] == true
            && c["call"]
                .as_str()
                .unwrap_or_default()
                .starts_with("route53:ChangeResourceRecordSets")),
        "{switch:#?}"
    );
    let db_switch = switch
        .iter()
        .find(|c| {
            c["resource"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&fx.host("payments-db"))
        })
        .expect("the database record");
    let replica_ep = fx.endpoint(STANDBY, &fx.id("payments-db-use1")).await;
    assert!(
        db_switch["desired"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&replica_ep),
        "{db_switch:#}"
    );
    assert_eq!(calls(&fx.step("evidence")).len(), 2);

    // Nothing was written: no request other than reads reached an emulator...
    let log = proxied.log();
    let writes = proxied.writes();
    assert!(
        writes.is_empty(),
        "a dry run sent writes: {writes:#?}\nall requests: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("DescribeDBInstances")),
        "the proxies saw the reads: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("DescribeAutoScalingGroups")),
        "{log:#?}"
    );
    assert!(log.iter().any(|l| l.contains("/rrset")), "{log:#?}");
    // ...no journal or lock was created...
    assert!(fx.runs().is_empty(), "a dry run journaled a run");
    let locks = fx.state_dir().join("locks");
    assert!(
        std::fs::read_dir(&locks).map_or(true, |mut d| d.next().is_none()),
        "a dry run left a lock"
    );
    // ...and the world reads the same.
    assert_eq!(fx.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_is_required_for_critical_without_a_terminal() {
    let fx = Fixture::new("appr").await;
    let before = fx.snapshot().await;
    let runs = fx.runs();
    let o = fx
        .drctl(&["failover", "--plan", "payments", "--to", STANDBY])
        .await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(o.err.contains("requires approval"), "{}", o.all());
    assert!(
        o.err.contains("--approve"),
        "hints at --approve: {}",
        o.all()
    );
    let refused = fx.new_run(&runs);
    let show = fx.show(&refused).await;
    assert_eq!(
        gates(&show, "approval")[0]["decision"],
        "refuse",
        "{show:#}"
    );
    assert_eq!(show["report"]["outcome"], "refused");
    assert_eq!(fx.snapshot().await, before, "a refused run changes nothing");
    // A script asking for JSON gets a document for a refusal too.
    let o = fx
        .drctl(&[
            "failover", "--plan", "payments", "--to", STANDBY, "--output", "json",
        ])
        .await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    let doc = o.json();
    assert_eq!(doc["outcome"], "refused", "{doc:#}");
    assert_eq!(doc["exit_code"], 3, "{doc:#}");
    assert!(
        doc["error"]
            .as_str()
            .unwrap_or_default()
            .contains("requires approval"),
        "{doc:#}"
    );

    let runs = fx.runs();
    let started = Utc::now();
    let o = fx
        .drctl(&[
            "failover",
            "--plan",
            "payments",
            "--to",
            STANDBY,
            "--emergency",
        ])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(o.out.contains("approve it retroactively by"), "{}", o.all());
    let run = fx.new_run(&runs);
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();

    let show = fx.show(&run).await;
    let gate = &gates(&show, "approval")[0];
    assert_eq!(gate["decision"], "override", "{gate:#}");
    assert_eq!(gate["detail"]["emergency"], true, "{gate:#}");
    let by: DateTime<Utc> = show["report"]["approve_by"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no approve_by: {show:#}"));
    let due = by - started;
    assert!(
        due > chrono::Duration::minutes(235) && due <= chrono::Duration::minutes(241),
        "approval due {due} after the run"
    );
    let text = fx.drctl(&["runs", "show", &run]).await;
    assert_eq!(text.code, Some(0), "{}", text.all());
    assert!(
        text.out
            .contains(&format!("approve it retroactively by {by}")),
        "{}",
        text.all()
    );
}

/// Makes the next `times` answers about `instance` say `modifying` (RDS's
/// status of an instance busy with a change) instead of `available`.
fn hold_modifying(rds: &FaultProxy, instance: &str, times: usize) {
    rds.inject(
        Match::BodyContains(instance.to_string()),
        Fault::Rewrite {
            from: "<DBInstanceStatus>available</DBInstanceStatus>".into(),
            to: "<DBInstanceStatus>modifying</DBInstanceStatus>".into(),
        },
        times,
    );
}

/// The step that waits: the replica reads `modifying` (as RDS shows an
/// instance busy with a change) for a few polls before it becomes available;
/// the promotion step waits, says on its progress line what for, and goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_held_in_a_transitional_state_is_waited_for() {
    let fx = Fixture::new("wait").await;
    let proxied = Proxied::start(false).await;
    let replica = fx.id("payments-db-use1");
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    hold_modifying(rds, &replica, 4);
    let o = fx.failover_payments_via(&proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(
        rds.unspent(),
        0,
        "every rewrite was served: {:#?}",
        rds.log()
    );
    assert!(
        o.err.contains(&format!(
            "waiting for replica {replica} ({STANDBY}) to be available before promotion"
        )),
        "the progress line says what the step waits for: {}",
        o.all()
    );
    assert_eq!(
        rds.forwarded(Match::Action("PromoteReadReplica")),
        1,
        "promoted once, after the wait: {:#?}",
        rds.log()
    );
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();
}

/// A step that runs out of time fails saying what it waited for; the run
/// halts with the exact resume command, and resuming once the resource is
/// ready finishes the failover.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_that_runs_out_of_time_fails_saying_what_it_waited_for() {
    let fx = Fixture::new("tmo").await;
    let proxied = Proxied::start(false).await;
    let replica = fx.id("payments-db-use1");
    let rds = proxied.proxy_for("AWS_ENDPOINT_URL_RDS");
    // Stuck for good (for this run).
    hold_modifying(rds, &replica, 100_000);
    let runs = fx.runs();
    let started = std::time::Instant::now();
    let o = fx
        .failover_payments_via(&proxied.endpoints(), &["--step-timeout", "2s"])
        .await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the timeout bounded the run"
    );
    let run = fx.new_run(&runs);
    let what =
        format!("waiting for replica {replica} ({STANDBY}) to be available before promotion");
    assert!(
        o.all().contains("timed out after") && o.all().contains(&what),
        "{}",
        o.all()
    );
    assert!(
        o.all().contains(&format!("drctl runs resume {run}")),
        "prints the resume command: {}",
        o.all()
    );
    assert_eq!(rds.forwarded(Match::Action("PromoteReadReplica")), 0);
    let show = fx.show(&run).await;
    let failed: Vec<Value> = records(&show)
        .into_iter()
        .filter(|r| r["event"]["type"] == "step_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{show:#}");
    assert_eq!(failed[0]["event"]["step"], fx.step("promote"), "{show:#}");
    assert_eq!(failed[0]["event"]["error"]["kind"], "timeout", "{show:#}");
    assert!(
        fx.snapshot().await.databases[&replica].starts_with("replica"),
        "not promoted"
    );

    // The replica is ready now (no proxy in the way): resume finishes the run.
    let o = fx.drctl(&["runs", "resume", &run]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    fx.assert_payments_failed_over(&fx.snapshot().await)
        .await
        .unwrap();
    assert_eq!(fx.audit(&run).await.code, Some(0));
}
