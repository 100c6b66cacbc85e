//! Journals and evidence that prove themselves, against the emulators
//! (docs/state.md and docs/evidence.md, "Who can forge what"): a journal on
//! the S3 state bucket rewritten by a writer of the bucket without the run
//! key (records and head recomputed) fails `audit verify` and is refused by
//! `runs resume`; a missing head fails `audit verify`; a manifest placed at
//! the run's evidence path before the run wrote it is not adopted; a
//! resume of a journal edited to name another endpoint acts on the cloud's;
//! and the S3 adapter reads back the Object Lock retention an object is
//! kept under (what `audit verify --evidence` compares with the manifest).

use bytes::Bytes;
use drctl::cloud::{ObjectUrl, PutMode};
use drctl::journal::{Event, Journal, JournalStore, MemoryStore, Record};
use std::sync::Arc;

use crate::fixture::{Fixture, IT_STATE_BUCKET};
use crate::world::{self, STANDBY};

/// The environment of a process without the run keys (the fixture gives
/// every command the suite's).
const UNKEYED: &[(&str, &str)] = &[("DRCTL_RUN_KEY", ""), ("DRCTL_RUN_PUBLIC", "")];

/// A failover of payments that stops at `point` (`after:STEP`), as a crash
/// would leave it; its run id.
async fn crashed(fx: &Fixture, point: &str, env: &[(&str, &str)]) -> String {
    let runs = fx.runs();
    let o = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "trust test",
                "--parallelism",
                "1",
                "--inject-crash",
                point,
            ],
            env,
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(o.err.contains("injected crash point"), "{}", o.all());
    fx.new_run(&runs)
}

/// The journal of `records` rewritten as a writer without the key does it:
/// each event through `edit`, the chain and the head recomputed, unsigned.
async fn rewritten(run: &str, records: Vec<Record>, edit: impl Fn(&mut Event)) -> Arc<MemoryStore> {
    let forged = Arc::new(MemoryStore::new());
    let mut j = Journal::create(forged.clone(), run).await.expect("journal");
    for mut r in records {
        edit(&mut r.event);
        j.append(r.event).await.expect("append");
    }
    forged
}

/// The promote step's endpoint edited to `to`.
fn endpoint_to(promote: &str, to: &'static str) -> impl Fn(&mut Event) {
    let promote = promote.to_string();
    move |e: &mut Event| {
        if let Event::StepSucceeded { step, outputs } = e
            && step.as_str() == promote
        {
            outputs["endpoint"] = to.into();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_a_journal_rewritten_without_the_run_key_fails_audit_and_resume_refuses_it() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("trust", Some("s3")).await;
    // A finished run (a crashed one is refused the same way, in the
    // engine's unit tests: LocalStack keeps the half-sent head a killed
    // process leaves, which real S3 never stores).
    let o = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = o.json()["run_id"].as_str().expect("run id").to_string();
    let v = fx
        .drctl(&["audit", "verify", &run, "--output", "json"])
        .await;
    let doc = v.json();
    assert_eq!(doc[0]["ok"], true, "{}", v.all());
    assert_eq!(doc[0]["authenticated"], true, "signed: {}", v.all());
    assert_eq!(
        doc[0]["signer"],
        world::run_key().public().id(),
        "{}",
        v.all()
    );

    // A writer of the bucket, without the key, points the database's
    // endpoint elsewhere and recomputes every hash and the head.
    let text = fx.journal_text(&run).await;
    let records: Vec<Record> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let forged = rewritten(
        &run,
        records,
        endpoint_to(&fx.step("promote"), "attacker.example.net"),
    )
    .await;
    let clouds = world::clouds().await;
    let base = format!("s3://{IT_STATE_BUCKET}/{}/runs/{run}", fx.suffix);
    let lines = forged.text(&run).expect("text");
    for (seq, line) in lines.lines().enumerate() {
        let url = ObjectUrl::parse(&format!("{base}/{seq:010}.json")).expect("url");
        clouds
            .objects
            .put(
                STANDBY,
                &url,
                Bytes::from(line.to_string()),
                PutMode::Overwrite,
            )
            .await
            .expect("overwrite a record");
    }
    let head = forged.read_head(&run).await.expect("head").expect("a head");
    let url = ObjectUrl::parse(&format!("{base}/head")).expect("url");
    clouds
        .objects
        .put(STANDBY, &url, Bytes::from(head), PutMode::Overwrite)
        .await
        .expect("overwrite the head");

    // The chain alone cannot tell: that is the attack.
    let chain = fx
        .drctl_with(
            &["audit", "verify", &run],
            UNKEYED,
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(chain.code, Some(0), "{}", chain.all());
    assert!(chain.out.contains("not authenticated"), "{}", chain.all());
    let strict = fx
        .drctl_with(
            &["audit", "verify", &run, "--require-signed"],
            UNKEYED,
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(strict.code, Some(2), "{}", strict.all());
    // The listed run key can.
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(
        v.out.contains(&format!("BROKEN  {run}: line 1:")) && v.out.contains("not signed"),
        "{}",
        v.all()
    );
    let o = fx.drctl(&["runs", "resume", &run]).await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(
        o.err.contains(&format!("refusing to resume run {run}")) && o.err.contains("not signed"),
        "{}",
        o.all()
    );
    // Nothing was acted on: no resumed record, no lock taken.
    assert!(
        !fx.journal_text(&run).await.contains("\"resumed\""),
        "the resume wrote nothing"
    );
    assert!(!fx.lock_taken("payments"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_whose_head_is_missing_fails_audit_verify() {
    crate::needs_emulators!();
    let fx = Fixture::with_state("nohead", Some("s3")).await;
    let o = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = o.json()["run_id"].as_str().expect("run id").to_string();
    let v = fx.audit(&run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());
    assert!(
        v.out
            .contains(&format!("signed by key {}", world::run_key().public().id())),
        "{}",
        v.all()
    );
    let url = ObjectUrl::parse(&format!(
        "s3://{IT_STATE_BUCKET}/{}/runs/{run}/head",
        fx.suffix
    ))
    .expect("url");
    world::clouds()
        .await
        .objects
        .delete(STANDBY, &url)
        .await
        .expect("delete the head");
    for env in [&[][..], UNKEYED] {
        let v = fx
            .drctl_with(&["audit", "verify", &run], env, &world::endpoints_file())
            .await;
        assert_eq!(v.code, Some(1), "{}", v.all());
        assert!(
            v.out.contains(&format!("BROKEN  {run}: no head pointer")),
            "{}",
            v.all()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_a_manifest_placed_at_the_runs_path_before_the_run_is_not_adopted() {
    crate::needs_emulators!();
    let fx = Fixture::new("preplaced").await;
    let run = crashed(&fx, "after:payments/preflight", &[]).await;
    // A writer of the evidence bucket puts a manifest of its own where the
    // run's will go, before the run writes it.
    let s3 = format!("s3://{}/payments", fx.id("drctl-evidence-use1"));
    let planted = format!("{s3}/{run}/manifest.json");
    let forged = format!(
        r#"{{"schema":"drctl.evidence/v1","run_id":"{run}","plan":"payments","objects":[]}}"#
    );
    let clouds = world::clouds().await;
    clouds
        .objects
        .put(
            STANDBY,
            &ObjectUrl::parse(&planted).expect("url"),
            Bytes::from(forged.clone()),
            PutMode::CreateOnly,
        )
        .await
        .expect("plant");

    let o = fx
        .drctl(&["runs", "resume", &run, "--output", "json"])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(o.json()["outcome"], "evidence_incomplete", "{}", o.all());
    assert!(
        o.all().contains(&format!("refusing to adopt {planted}")),
        "{}",
        o.all()
    );
    // The planted manifest is left as it was, and recorded nowhere as the
    // run's; the other destination holds the run's pack.
    let there = clouds
        .objects
        .get(STANDBY, &ObjectUrl::parse(&planted).expect("url"))
        .await
        .expect("read")
        .expect("still there");
    assert_eq!(there, forged.as_bytes());
    let v = fx
        .drctl(&["audit", "verify", "--evidence", "--no-record", &run])
        .await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(
        v.out.contains("not stored by the run (refusing to adopt"),
        "{}",
        v.all()
    );
    let gcs = format!("gs://{}/payments", fx.id("drctl-evidence"));
    assert!(
        v.out.contains(&format!(
            "evidence payments {gcs}: 4 objects verified, manifest signed by key"
        )),
        "{}",
        v.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_a_resume_points_the_database_record_at_the_endpoint_read_again() {
    crate::needs_emulators!();
    // No run keys here: the chain alone cannot tell the edit, which is the
    // case the cross-check is for.
    let fx = Fixture::with_state("endpoint", Some("dir")).await;
    let promote = fx.step("promote");
    let run = crashed(&fx, &format!("after:{promote}"), UNKEYED).await;
    let text = std::fs::read_to_string(fx.journal_path(&run)).expect("journal");
    let records: Vec<Record> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let forged = rewritten(&run, records, endpoint_to(&promote, "attacker.example.net")).await;
    std::fs::write(fx.journal_path(&run), forged.text(&run).expect("text")).expect("write");
    let head = forged.read_head(&run).await.expect("head").expect("a head");
    let head_path = fx.state_dir().join("runs").join(format!("{run}.head"));
    std::fs::write(&head_path, head).expect("write the head");

    let o = fx
        .drctl_with(&["runs", "resume", &run], UNKEYED, &world::endpoints_file())
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let real = fx.endpoint(STANDBY, &fx.id("payments-db-use1")).await;
    assert!(
        o.err.contains("the journal says the endpoint of")
            && o.err.contains("attacker.example.net")
            && o.err
                .contains(&format!("the cloud says {real}: acting on the cloud's")),
        "{}",
        o.all()
    );
    let snap = fx.snapshot().await;
    fx.assert_payments_failed_over(&snap)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", o.all()));
}

#[tokio::test(flavor = "multi_thread")]
async fn object_retention_reads_what_s3_object_lock_keeps() {
    crate::needs_emulators!();
    use drctl::cloud::{LockMode, Retention};
    let sdk = world::sdk().await.s3(STANDBY);
    let locked = world::unique("retained");
    let plain = world::unique("unretained");
    sdk.create_bucket()
        .bucket(&locked)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("a locked bucket");
    sdk.create_bucket()
        .bucket(&plain)
        .send()
        .await
        .expect("a bucket");
    let objects = world::clouds().await.objects;
    let url = |b: &str, k: &str| ObjectUrl::parse(&format!("s3://{b}/{k}")).expect("url");
    let until = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 86_400, 0)
        .expect("a time");
    let kept = Retention {
        mode: LockMode::Governance,
        until,
    };
    objects
        .put_retained(
            STANDBY,
            &url(&locked, "kept"),
            Bytes::from_static(b"x"),
            Some(kept),
        )
        .await
        .expect("put retained");
    objects
        .put_retained(
            STANDBY,
            &url(&locked, "bare"),
            Bytes::from_static(b"x"),
            None,
        )
        .await
        .expect("put");
    objects
        .put(
            STANDBY,
            &url(&plain, "bare"),
            Bytes::from_static(b"x"),
            PutMode::CreateOnly,
        )
        .await
        .expect("put");
    assert_eq!(
        objects
            .object_retention(STANDBY, &url(&locked, "kept"))
            .await
            .expect("asked"),
        Some(kept)
    );
    for (b, k) in [(&locked, "bare"), (&plain, "bare"), (&locked, "absent")] {
        assert_eq!(
            objects
                .object_retention(STANDBY, &url(b, k))
                .await
                .unwrap_or_else(|e| panic!("s3://{b}/{k}: {e}")),
            None,
            "s3://{b}/{k}"
        );
    }
    // GCS keeps by the bucket's policy: nothing per object.
    assert_eq!(
        objects
            .object_retention(
                STANDBY,
                &ObjectUrl::parse("gs://any-bucket/k").expect("url")
            )
            .await
            .expect("asked"),
        None
    );
}

/// Regression (issue 39: readers believed journals written without the
/// run key). A run by a process without the keys (as a writer of the
/// state bucket would write one: its chain correct, unsigned) is, with
/// the suite's keys listed, left out of `runs list` and named on stderr,
/// refused by `runs show`, given no figure and named in a finding by
/// `report`, and left out of `notify pending` and `notify flush`.
#[tokio::test(flavor = "multi_thread")]
async fn regression_every_reader_leaves_out_a_journal_written_without_the_run_key() {
    crate::needs_emulators!();
    let fx = Fixture::new("trustread").await;
    let forged = crashed(&fx, "after:payments/preflight", UNKEYED).await;
    let list = fx.drctl(&["runs", "list", "--output", "json"]).await;
    assert_eq!(list.code, Some(0), "{}", list.all());
    assert!(!list.out.contains(&forged), "{}", list.out);
    assert!(
        list.err.contains(&forged) && list.err.contains("left out"),
        "{}",
        list.err
    );
    let show = fx.drctl(&["runs", "show", &forged]).await;
    assert_ne!(show.code, Some(0), "{}", show.all());
    assert!(show.all().contains("not signed"), "{}", show.all());
    let rep = fx.drctl(&["report", "--format", "json"]).await;
    assert_eq!(rep.code, Some(0), "{}", rep.all());
    let findings = rep.json()["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "broken_chain" && f["run"] == forged.as_str()),
        "{findings:#?}"
    );
    let pending = fx.drctl(&["notify", "pending", "--output", "json"]).await;
    assert!(!pending.out.contains(&forged), "{}", pending.out);
    assert!(pending.err.contains(&forged), "{}", pending.all());
    // `notify flush` sends nothing of it (nor signs a delivery fact beside
    // it): it is left out, and named.
    let flush = fx.drctl(&["notify", "flush"]).await;
    assert!(
        flush.err.contains(&forged) && flush.err.contains("left out"),
        "{}",
        flush.all()
    );
    assert!(!flush.out.contains(&forged), "{}", flush.out);
}

/// Regression (issue 39): a journal one deployment signed (staging) and
/// copied into another's state bucket (production), both listing the same
/// run key, verified there as production's own run. A signature now names
/// the deployment it was written for (`[keys] domain`, else the state's
/// URL): the copy fails `audit verify`, naming why, where it was written
/// it still verifies.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_staging_journal_copied_into_productions_bucket_verified() {
    crate::needs_emulators!();
    let staging = Fixture::with_state("staging", Some("s3")).await;
    let production = Fixture::with_state("production", Some("s3")).await;
    let o = staging.failover_payments(&["--output", "json"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = o.json()["run_id"].as_str().expect("run id").to_string();
    let v = staging.audit(&run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());

    let objects = world::clouds().await.objects.clone();
    let under = |fx: &Fixture| format!("s3://{IT_STATE_BUCKET}/{}/runs/{run}/", fx.suffix);
    let from = ObjectUrl::parse(&under(&staging)).expect("url");
    let listed = objects.list(STANDBY, &from, false).await.expect("list");
    assert!(listed.keys.len() >= 2, "a journal and its head: {listed:?}");
    for key in &listed.keys {
        let at = ObjectUrl::parse(&format!("s3://{IT_STATE_BUCKET}/{key}")).expect("url");
        let body = objects
            .get(STANDBY, &at)
            .await
            .expect("get")
            .expect("there");
        let rest = key
            .rsplit_once(&format!("/runs/{run}/"))
            .expect("under the run")
            .1;
        let to = ObjectUrl::parse(&format!("{}{rest}", under(&production))).expect("url");
        objects
            .put(STANDBY, &to, body, PutMode::Overwrite)
            .await
            .expect("copy");
    }
    let v = production.audit(&run).await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(v.out.contains(&format!("BROKEN  {run}")), "{}", v.all());
    assert!(v.out.contains("another deployment"), "{}", v.all());
    // Named for what it is where it was written: staging's own.
    let v = staging.audit(&run).await;
    assert_eq!(v.code, Some(0), "{}", v.all());
}
