//! The emulator fixture shared by the end-to-end test modules: one isolated
//! seeded world per test ([`Fixture`]: resources with a unique suffix, plans
//! renamed for them, its own state), the drctl binary run against it
//! ([`Ran`]), the world read back independently ([`Snapshot`]), and every
//! emulator behind a counting proxy ([`Proxied`]).
//!
//! It lives apart from any one test module so that `failover`, `recovery`,
//! `drill`, `state` and the others share one definition instead of reaching
//! into each other.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use drctl::cloud::{DbRole, ObjectUrl};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::proxy::{FaultProxy, Match};
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
    /// What a finished process said.
    pub(crate) fn from_output(o: std::process::Output) -> Self {
        Self {
            code: o.status.code(),
            signal: o.status.signal(),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

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
        // (`world::seed` tries again while the emulators refuse a seed.)
        let seeded = tokio::task::spawn_blocking({
            let s = suffix.clone();
            move || world::seed(&s)
        })
        .await
        .unwrap_or_else(|e| panic!("seeding {suffix}: {e}"));
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
    pub(crate) fn state_args(&self) -> Vec<std::ffi::OsString> {
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
            .envs(world::run_key_env())
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
        self.drctl_in(self.plans.path(), args, env, endpoints).await
    }

    /// `drctl drill sweep --plan PLAN --all --output json` from another
    /// machine: this fixture's plans and `endpoints`, a state of its own
    /// (no journal of any drill this fixture ran), the suite's run key.
    pub(crate) async fn sweep_elsewhere(&self, plan: &str, endpoints: &Path) -> Ran {
        let elsewhere = tempfile::tempdir().expect("state dir");
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
            .args(["--color", "never", "--plans"])
            .arg(self.plans.path())
            .arg("--endpoints")
            .arg(endpoints)
            .arg("--state-dir")
            .arg(elsewhere.path())
            .args([
                "drill", "sweep", "--plan", plan, "--all", "--output", "json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .envs(world::run_key_env())
            .output()
            .await
            .expect("drctl runs");
        Ran::from_output(o)
    }

    /// [`Self::drctl_with`] on the plans in `plans` (the plans on GCP,
    /// kept apart from the reference plans).
    pub(crate) async fn drctl_in(
        &self,
        plans: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        endpoints: &Path,
    ) -> Ran {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
        cmd.args(["--color", "never", "--plans"])
            .arg(plans)
            .arg("--endpoints")
            .arg(endpoints)
            .args(self.state_args())
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            // Every fixture command holds the suite's run key (the test's
            // own `env` may take it away).
            .envs(world::run_key_env());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ran::from_output(cmd.output().await.expect("drctl runs"))
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

    /// The manifest of `run` at `dest` as the run's journal records it (its
    /// evidence step's last success): `<dest>/<run>/manifest.json`, or under
    /// `attempt-<n>/` when the step ran again.
    pub(crate) async fn manifest_url(&self, dest: &str, run: &str) -> Result<String, String> {
        self.plan_manifest_url("payments", dest, run).await
    }

    /// [`Self::manifest_url`] of plan `plan`'s evidence.
    pub(crate) async fn plan_manifest_url(
        &self,
        plan: &str,
        dest: &str,
        run: &str,
    ) -> Result<String, String> {
        let show = self.show(run).await;
        let step = format!("{plan}/evidence");
        let url = records(&show)
            .iter()
            .rev()
            .filter(|r| {
                r["event"]["type"] == "step_succeeded" && r["event"]["step"] == step.as_str()
            })
            .find_map(|r| {
                r["event"]["outputs"]["stored"]
                    .as_array()?
                    .iter()
                    .find(|p| p["destination"] == dest)?["manifest"]
                    .as_str()
                    .map(str::to_string)
            })
            .ok_or_else(|| format!("the journal of {run} records no pack on {dest}"))?;
        if !url.starts_with(&format!("{dest}/{run}/")) {
            return Err(format!("{url} is not under {dest}/{run}/"));
        }
        Ok(url)
    }

    /// Reads the manifest of `run` at `dest` (`s3://b/payments`), where its
    /// journal says it is, and checks the digest of the journal copy it lists.
    pub(crate) async fn assert_evidence(&self, dest: &str, run: &str) -> Result<Value, String> {
        self.assert_plan_evidence("payments", dest, run).await
    }

    /// [`Self::assert_evidence`] of plan `plan`'s run.
    pub(crate) async fn assert_plan_evidence(
        &self,
        plan: &str,
        dest: &str,
        run: &str,
    ) -> Result<Value, String> {
        let clouds = world::clouds().await;
        let url = ObjectUrl::parse(&self.plan_manifest_url(plan, dest, run).await?).expect("url");
        let body = clouds
            .objects
            .get(STANDBY, &url)
            .await
            .map_err(|e| format!("reading {url}: {e}"))?
            .ok_or_else(|| format!("{url} does not exist"))?;
        let manifest: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))?;
        if manifest["run_id"] != run || manifest["plan"] != plan {
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
            (world::THIRD, self.id("payments-db-euw1")),
            (STANDBY, self.id("ledger-db-use1")),
            (HOME, self.id("checkout-db-usw2")),
            (world::THIRD, self.id("checkout-db-euw1")),
            (STANDBY, self.id("storefront-db-use1")),
            (HOME, self.id("payments-db")),
            (HOME, self.id("storefront-db")),
            (HOME, self.id("ledger-db")),
            (STANDBY, self.id("checkout-db")),
        ];
        let suffix = self.suffix.clone();
        world::run_cleanup(async move {
            let sdk = world::sdk().await;
            delete_health_checks_of(&sdk.route53(), &suffix).await;
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

/// Deletes the Route 53 health checks that read one of this fixture's
/// controls (`dns prepare` made them). The world's health checkers keep
/// polling a check's endpoint until it is deleted: left behind, a check
/// made through a test's proxy polls that proxy's port after the test,
/// and a later test whose proxy is given the same port sees the polls as
/// its own requests (the regression this pins:
/// `outage::failover_does_not_call_the_default_region_when_it_is_the_dead_one`
/// counted another fixture's control read as a call to the dead region).
async fn delete_health_checks_of(route53: &aws_sdk_route53::Client, suffix: &str) {
    let needle = format!("-{suffix}/");
    let mut marker = None;
    loop {
        let page = match route53
            .list_health_checks()
            .set_marker(marker.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => {
                eprintln!("cleanup: cannot list health checks: {e}");
                return;
            }
        };
        for check in page.health_checks() {
            let ours = (check.health_check_config())
                .and_then(|c| c.resource_path())
                .is_some_and(|path| path.contains(&needle));
            if !ours {
                continue;
            }
            let id = check.id();
            if let Err(e) = route53
                .delete_health_check()
                .health_check_id(id)
                .send()
                .await
            {
                eprintln!("cleanup: cannot delete health check {id}: {e}");
            }
        }
        if !page.is_truncated() {
            return;
        }
        marker = page.next_marker().map(str::to_string);
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

/// Every emulator (Google Cloud's gcp_emu.py included; with `gcs`,
/// fake-gcs-server too) behind a counting
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
        Self::start_with(gcs, None).await
    }

    /// Every AWS emulator behind a proxy carrying `world`: AWS's behaviour
    /// in time at its scale ([`crate::timed`]).
    pub(crate) async fn timed(world: std::sync::Arc<crate::timed::TimedWorld>) -> Self {
        Self::start_with(false, Some(world)).await
    }

    async fn start_with(
        gcs: bool,
        world: Option<std::sync::Arc<crate::timed::TimedWorld>>,
    ) -> Self {
        let vars = world::vars();
        let upstreams: BTreeSet<&String> = vars
            .iter()
            .filter(|(k, _)| {
                k.starts_with("AWS_ENDPOINT_URL")
                    || k.as_str() == "DRCTL_GCP_ENDPOINT"
                    || (gcs && k.as_str() == "DRCTL_GCS_ENDPOINT")
            })
            .map(|(_, v)| v)
            .collect();
        let mut by_upstream: BTreeMap<String, String> = BTreeMap::new();
        let mut proxies = Vec::new();
        for up in &upstreams {
            let proxy = match &world {
                Some(w) => FaultProxy::start_timed(up, w.clone()).await,
                None => FaultProxy::start(up).await,
            };
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
