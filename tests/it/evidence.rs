//! Evidence packs against the emulators: what a failover stores on S3
//! (LocalStack, Object Lock) and GCS (fake-gcs-server), `drctl audit verify
//! --evidence` proving every object, then naming the one that is wrong
//! (deleted from S3, altered on GCS, a forged manifest), and a scan of
//! everything a run leaves behind for credentials.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use drctl::cloud::{ObjectUrl, PutMode};
use serde_json::Value;

use crate::fixture::{Fixture, Ran};
use crate::world::{self, STANDBY};

/// The evidence prefixes of `run` (S3, GCS).
fn packs(fx: &Fixture, run: &str) -> [String; 2] {
    [
        format!("s3://{}/payments/{run}", fx.id("drctl-evidence-use1")),
        format!("gs://{}/payments/{run}", fx.id("drctl-evidence")),
    ]
}

async fn failover(fx: &Fixture) -> String {
    let ran = fx.failover_payments(&["--output", "json"]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    ran.json()["run_id"].as_str().expect("run id").to_string()
}

async fn verify(fx: &Fixture, run: &str) -> Ran {
    fx.drctl(&["audit", "verify", "--evidence", run]).await
}

/// The `evidence_verified` facts of `run`: recorded beside its journal
/// (late facts), as `runs show` merges them with its records.
async fn verifications(fx: &Fixture, run: &str) -> Vec<Value> {
    crate::fixture::records(&fx.show(run).await)
        .into_iter()
        .filter(|r| r["event"]["type"] == "evidence_verified")
        .map(|r| r["event"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_evidence_proves_every_object_then_names_a_deleted_s3_object_and_an_altered_gcs_one()
 {
    crate::needs_emulators!();
    let fx = Fixture::new("evid").await;
    let run = failover(&fx).await;
    let [s3, gcs] = packs(&fx, &run);

    // Whole: both destinations, every object (3 and the manifest) verified.
    let ok = verify(&fx, &run).await;
    assert_eq!(ok.code, Some(0), "{}", ok.all());
    for dest in [&s3, &gcs] {
        let dest = dest.trim_end_matches(&format!("/{run}"));
        assert!(
            ok.out
                .contains(&format!("evidence payments {dest}: 4 objects verified")),
            "{}",
            ok.all()
        );
    }
    // The result is journaled (reports read it), once: a second
    // verification that finds the same adds nothing.
    let recorded = verifications(&fx, &run).await;
    assert_eq!(recorded.len(), 1, "{}", ok.all());
    let whole = &recorded[0]["plans"][0]["destinations"];
    assert_eq!(whole.as_array().map(Vec::len), Some(2), "{recorded:#?}");
    assert!(
        whole
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["verified"] == 4 && d["problems"] == serde_json::json!([])),
        "{recorded:#?}"
    );
    assert_eq!(verify(&fx, &run).await.code, Some(0));
    assert_eq!(
        verifications(&fx, &run).await.len(),
        1,
        "not journaled twice"
    );

    // The pack: journal, state (before and after), the run's report, and a
    // manifest whose journal head is the run's at the same record.
    let clouds = world::clouds().await;
    let get = |url: String| {
        let clouds = clouds.clone();
        async move {
            let u = ObjectUrl::parse(&url).expect("url");
            let b = clouds.objects.get(STANDBY, &u).await.expect("read");
            serde_json::from_slice::<Value>(&b.unwrap_or_else(|| panic!("{url} is missing")))
                .unwrap_or_else(|e| panic!("{url}: {e}"))
        }
    };
    let manifest = get(format!("{s3}/manifest.json")).await;
    assert_eq!(manifest["schema"], "drctl.evidence/v1", "{manifest:#}");
    let names: Vec<&str> = manifest["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["journal.jsonl", "state.json", "report.json"]);
    let journal = fx.journal_text(&run).await;
    let n = manifest["journal"]["records"].as_u64().expect("records") as usize;
    let line = journal
        .lines()
        .nth(n - 1)
        .expect("the run's journal has it");
    assert_eq!(
        manifest["journal"]["head"],
        drctl::journal::chain::hash_line(line),
        "the pack's journal head is the run's journal at record {n}"
    );
    let state = get(format!("{s3}/state.json")).await;
    assert!(
        state["before"]["resources"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "before: what preflight read: {state:#}"
    );
    assert!(
        state["after"][fx.step("promote")]["instance"].is_string(),
        "after: what the promotion read back: {state:#}"
    );
    let report = get(format!("{s3}/report.json")).await;
    assert_eq!(report["schema"], "drctl.report/v1");
    let row = &report["plans"][0]["runs"][0];
    assert_eq!(row["run_id"], run.as_str());
    assert_eq!(row["verdict"]["verdict"], "PASS", "{row:#}");
    assert!(row["as_of"].is_string(), "{row:#}");

    // Object Lock on S3: GOVERNANCE for the tier's year, as the bucket can.
    assert_eq!(manifest["retention"]["mode"], "governance", "{manifest:#}");
    let sdk = world::sdk().await.s3("us-east-1");
    let bucket = fx.id("drctl-evidence-use1");
    let key = format!("payments/{run}/journal.jsonl");
    let head = sdk
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE")
    );
    let until = head
        .object_lock_retain_until_date()
        .expect("retain until")
        .secs();
    let days = (until - chrono::Utc::now().timestamp()) / 86_400;
    assert!((363..=365).contains(&days), "retained {days} days");

    // Deleted from S3 (a delete marker hides the locked version).
    sdk.delete_object()
        .bucket(&bucket)
        .key(format!("payments/{run}/report.json"))
        .send()
        .await
        .expect("delete");
    // Altered on GCS.
    let state_url = ObjectUrl::parse(&format!("{gcs}/state.json")).expect("url");
    clouds
        .objects
        .put(
            STANDBY,
            &state_url,
            Bytes::from_static(b"{\"before\": \"edited\"}"),
            PutMode::Overwrite,
        )
        .await
        .expect("overwrite");
    // Read-only: --no-record finds the same and writes nothing.
    let quiet = fx
        .drctl(&["audit", "verify", "--evidence", "--no-record", &run])
        .await;
    assert_eq!(quiet.code, Some(1), "{}", quiet.all());
    assert_eq!(verifications(&fx, &run).await.len(), 1, "--no-record");
    let bad = verify(&fx, &run).await;
    assert_eq!(bad.code, Some(1), "{}", bad.all());
    assert!(
        bad.out.contains(&format!("{s3}/report.json: missing")),
        "{}",
        bad.all()
    );
    assert!(
        bad.out.contains(&format!("{gcs}/state.json: altered")),
        "{}",
        bad.all()
    );
    // The chain itself is intact, and the JSON says the same per object.
    assert!(bad.out.contains(&format!("ok      {run}")), "{}", bad.all());
    let j = fx
        .drctl(&["audit", "verify", "--evidence", &run, "--output", "json"])
        .await;
    assert_eq!(j.code, Some(1));
    let problems: Vec<String> = j.json()[0]["evidence"][0]["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .flat_map(|d| d["problems"].as_array().cloned().unwrap_or_default())
        .map(|p| p["object"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        problems,
        [format!("{s3}/report.json"), format!("{gcs}/state.json")]
    );

    // Journaled, and so in the report (journals only): a high finding that
    // names both objects; the run's chain still verifies.
    assert_eq!(verifications(&fx, &run).await.len(), 2);
    let report = fx.drctl(&["report", "--format", "json"]).await;
    assert_eq!(report.code, Some(0), "{}", report.all());
    let doc = report.json();
    let mismatch: Vec<&Value> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "evidence_mismatch" && f["run"] == run.as_str())
        .collect();
    assert_eq!(mismatch.len(), 1, "{:#}", doc["findings"]);
    assert_eq!(mismatch[0]["severity"], "high");
    let message = mismatch[0]["message"].as_str().expect("message");
    for object in [format!("{s3}/report.json"), format!("{gcs}/state.json")] {
        assert!(message.contains(&object), "{message}");
    }
    let row = &doc["plans"][0]["runs"][0];
    assert_eq!(row["run_id"], run.as_str());
    assert_eq!(row["chain"]["ok"], true, "{row:#}");
    assert_eq!(row["verdict"]["verdict"], "PASS", "recovery itself passed");
    assert_eq!(
        row["evidence_check"]["problems"].as_array().map(Vec::len),
        Some(2),
        "{row:#}"
    );
    // The failover journaled its plan's definition; the report judges the
    // plan as of the run's start: no drill of it before, not verified.
    assert_eq!(row["verified_at_start"]["verified"], false, "{row:#}");
    assert_eq!(
        row["verified_at_start"]["reason"], "no passing drill on record",
        "{row:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_manifest_is_caught_by_the_digest_in_the_run_journal() {
    crate::needs_emulators!();
    let fx = Fixture::new("evforge").await;
    let run = failover(&fx).await;
    let [_, gcs] = packs(&fx, &run);
    let clouds = world::clouds().await;
    // Forge a consistent pack: an edited state and a manifest re-digested
    // to match it. Only the run's journal, which recorded the manifest's
    // digest, can tell.
    let murl = ObjectUrl::parse(&format!("{gcs}/manifest.json")).expect("url");
    let mut manifest: Value = serde_json::from_slice(
        &clouds
            .objects
            .get(STANDBY, &murl)
            .await
            .expect("read")
            .expect("manifest"),
    )
    .expect("json");
    let forged = b"{\"before\": \"nothing happened\"}";
    for o in manifest["objects"].as_array_mut().expect("objects") {
        if o["name"] == "state.json" {
            o["sha256"] = drctl::evidence::sha256(forged).into();
            o["bytes"] = forged.len().into();
        }
    }
    let surl = ObjectUrl::parse(&format!("{gcs}/state.json")).expect("url");
    for (url, body) in [
        (&surl, Bytes::from_static(forged)),
        (
            &murl,
            Bytes::from(serde_json::to_vec_pretty(&manifest).expect("json")),
        ),
    ] {
        clouds
            .objects
            .put(STANDBY, url, body, PutMode::Overwrite)
            .await
            .expect("overwrite");
    }
    let bad = verify(&fx, &run).await;
    assert_eq!(bad.code, Some(1), "{}", bad.all());
    assert!(
        bad.out.contains(&format!(
            "{gcs}/manifest.json: altered: the run's journal recorded SHA-256"
        )),
        "{}",
        bad.all()
    );
}

/// What looks like a credential: an access key id, a signature or a
/// presigned URL's parameters, a session token, or one of `canaries` (the
/// secret key and session token the run was given) verbatim.
fn credentials_in(text: &str, canaries: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for c in canaries {
        if text.contains(c) {
            found.push(format!("the credential {}…", &c[..8.min(c.len())]));
        }
    }
    for marker in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "x-amz-security-token",
        "AWS4-HMAC-SHA256",
        "Signature=",
        "aws_secret_access_key=",
        "X-Goog-Signature",
        "X-Goog-Credential",
        "GoogleAccessId",
        "Bearer ",
    ] {
        if text.contains(marker) {
            found.push(marker.to_string());
        }
    }
    // AKIA/ASIA followed by 16 upper-case letters or digits.
    let b = text.as_bytes();
    for i in 0..b.len().saturating_sub(19) {
        if (b[i..].starts_with(b"AKIA") || b[i..].starts_with(b"ASIA"))
            && b[i + 4..i + 20]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            found.push(format!("an access key id at byte {i}"));
        }
    }
    found
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credential_in_journals_logs_reports_or_evidence_after_a_run() {
    crate::needs_emulators!();
    let fx = Fixture::new("creds").await;
    // The world's endpoints with a recognisable secret key and session token
    // (temporary credentials): if either leaks, it is found verbatim.
    let secret = "drctlCanarySecretKey0123456789abcdefXYZW";
    let token = "drctlCanarySessionToken/IQoJb3JpZ2luX2VjEXAMPLE+token==";
    // Notification secrets too (docs/notify.md): a webhook URL with a token
    // in its path, a signing secret and a PagerDuty routing key, each from
    // the environment; the sinks do not answer, so every attempt fails and
    // is journaled, logged and reported.
    let hook_path = "drctlCanaryWebhookPathToken0123456789";
    let signing = "whsec_ZHJjdGxDYW5hcnlTaWduaW5nS2V5MDEyMzQ1Njc4OQ==";
    let routing = "drctlCanaryRoutingKey0123456789abcdef";
    // And the run key's secret half, which signs journals and manifests.
    let run_key = world::run_key().to_text();
    let run_seed = &run_key["ed25519-secret:".len()..];
    let canaries = [secret, token, hook_path, &signing[6..], routing, run_seed];
    let cfg_dir = tempfile::tempdir().expect("config dir");
    let cfg = cfg_dir.path().join("drctl.toml");
    std::fs::write(
        &cfg,
        "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl_env = \"DRCTL_CANARY_URL\"\nsecret_env = \"DRCTL_CANARY_SECRET\"\nretry = [\"1s\"]\ntimeout = \"1s\"\n\n[[notify]]\nname = \"pager\"\nkind = \"pagerduty\"\nurl = \"http://127.0.0.1:9/v2/enqueue\"\nsecret_env = \"DRCTL_CANARY_ROUTING\"\nretry = [\"1s\"]\ntimeout = \"1s\"\n",
    )
    .expect("write drctl.toml");
    let cfg = cfg.display().to_string();
    let hook_url = format!("http://127.0.0.1:9/hooks/{hook_path}");
    let env = [
        ("DRCTL_CANARY_URL", hook_url.as_str()),
        ("DRCTL_CANARY_SECRET", signing),
        ("DRCTL_CANARY_ROUTING", routing),
    ];
    let endpoints = std::fs::read_to_string(world::endpoints_file()).expect("endpoints");
    let endpoints = endpoints
        .lines()
        .filter(|l| !l.starts_with("AWS_SESSION_TOKEN="))
        .map(|l| {
            if l.starts_with("AWS_SECRET_ACCESS_KEY=") {
                format!("AWS_SECRET_ACCESS_KEY={secret}")
            } else {
                l.to_string()
            }
        })
        .chain([format!("AWS_SESSION_TOKEN={token}")])
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("endpoints.env");
    std::fs::write(&file, endpoints).expect("write");

    let mut texts: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, ran: &Ran| {
        texts.push((format!("{what} (stdout)"), ran.out.clone()));
        texts.push((format!("{what} (stderr)"), ran.err.clone()));
    };
    // Debug logging: the most a user can ask drctl to print. A drill first
    // (its own evidence pack and cleanup), then the failover.
    let drill = fx
        .drctl_with(
            &[
                "--config", &cfg, "-vv", "drill", "--plan", "payments", "--to", STANDBY,
                "--output", "json",
            ],
            &env,
            &file,
        )
        .await;
    assert_eq!(drill.code, Some(0), "{}", drill.all());
    let drill_run = drill.json()["run_id"]
        .as_str()
        .expect("drill run id")
        .to_string();
    keep("drill -vv", &drill);
    let ran = fx
        .drctl_with(
            &[
                "--config",
                &cfg,
                "-vv",
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "credential scan",
                "--output",
                "json",
            ],
            &env,
            &file,
        )
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let run = ran.json()["run_id"].as_str().expect("run id").to_string();
    keep("failover -vv", &ran);
    for args in [
        vec!["-vv", "runs", "show", &run, "--output", "json"],
        vec!["-vv", "report", "--format", "json"],
        vec!["-vv", "report", "--format", "md"],
        vec!["-vv", "report", "--format", "html"],
        vec!["-vv", "report", "--format", "junit"],
        vec!["-vv", "report", "--format", "csv"],
        vec!["-vv", "report", "--run", &run],
        vec!["-vv", "audit", "verify", "--evidence"],
        vec!["-vv", "runs", "show", &drill_run],
        vec!["-vv", "status", "--plan", "payments"],
        vec!["-vv", "notify", "pending"],
        vec!["-vv", "notify", "flush"],
        vec!["-vv", "notify", "test"],
    ] {
        let mut args = args;
        args.splice(0..0, ["--config", cfg.as_str()]);
        let r = fx.drctl_with(&args, &env, &file).await;
        keep(&args.join(" "), &r);
    }
    // Every file of the state (journals, heads, locks).
    let mut files = Vec::new();
    files_under(fx.state_dir(), &mut files);
    for f in files {
        texts.push((
            f.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(&f).expect("read")).into_owned(),
        ));
    }
    texts.push(("the journal".into(), fx.journal_text(&run).await));
    // Every evidence object, on both clouds.
    let clouds = world::clouds().await;
    let mut objects = 0;
    for pack in packs(&fx, &run).into_iter().chain(packs(&fx, &drill_run)) {
        let prefix = ObjectUrl::parse(&format!("{pack}/")).expect("url");
        let listing = clouds
            .objects
            .list(STANDBY, &prefix, false)
            .await
            .expect("list");
        for key in listing.keys {
            let url = ObjectUrl {
                key,
                ..prefix.clone()
            };
            let body = clouds
                .objects
                .get(STANDBY, &url)
                .await
                .expect("read")
                .expect("listed");
            texts.push((url.to_string(), String::from_utf8_lossy(&body).into_owned()));
            objects += 1;
        }
    }
    assert_eq!(objects, 16, "4 objects on each destination, for each run");
    // The drill's own report in its pack: PASS, its cleanup not run yet
    // (regression: every drill's pack said FAIL and cleanup incomplete).
    let [drill_s3, _] = packs(&fx, &drill_run);
    let url = ObjectUrl::parse(&format!("{drill_s3}/report.json")).expect("url");
    let report: Value = serde_json::from_slice(
        &clouds
            .objects
            .get(STANDBY, &url)
            .await
            .expect("read")
            .expect("the drill's report"),
    )
    .expect("json");
    let row = &report["plans"][0]["runs"][0];
    assert_eq!(row["verdict"]["verdict"], "PASS", "{row:#}");
    assert_eq!(row["cleanup"]["ran"], false, "{row:#}");
    assert!(
        report["findings"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["kind"] != "cleanup_incomplete")),
        "{report:#}"
    );
    let leaks: Vec<String> = texts
        .iter()
        .flat_map(|(what, text)| {
            credentials_in(text, &canaries)
                .into_iter()
                .map(move |c| format!("{what}: {c}"))
        })
        .collect();
    assert!(leaks.is_empty(), "credentials found:\n{}", leaks.join("\n"));
    // The notifications were journaled and failed: the scan saw them.
    assert!(
        texts
            .iter()
            .any(|(_, t)| t.contains("\"type\":\"delivery\"")),
        "no delivery was journaled"
    );
}

#[test]
fn the_credential_scan_finds_what_it_looks_for() {
    let canaries = ["s3cr3t-key", "t0ken-canary"];
    assert!(credentials_in("all clear", &canaries).is_empty());
    assert_eq!(credentials_in("key s3cr3t-key here", &canaries).len(), 1);
    assert_eq!(credentials_in("a t0ken-canary", &canaries).len(), 1);
    assert_eq!(
        credentials_in("id AKIAIOSFODNN7EXAMPLE.", &canaries),
        ["an access key id at byte 3"]
    );
    assert!(
        !credentials_in(
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=x",
            &canaries
        )
        .is_empty()
    );
}

/// Issue 39: a writer of the state puts back an earlier signed state of a
/// run's journal (its records and head, as the run key signed them then):
/// the chain and the signatures verify, and what the run did since, its
/// evidence step among it, is gone. `audit verify` alone cannot tell;
/// `audit verify --evidence` finds the packs the run wrote, write-once on
/// the evidence buckets, whose journal the state's does not begin with,
/// and fails, naming them.
#[tokio::test(flavor = "multi_thread")]
async fn a_journal_rolled_back_past_its_evidence_step_is_caught_against_the_evidence() {
    crate::needs_emulators!();
    let fx = Fixture::new("evroll").await;
    let before = fx.runs();
    let point = format!("before:{}", fx.step("verify-dns"));
    let crashed = fx.failover_payments(&["--inject-crash", &point]).await;
    assert_eq!(crashed.code, Some(1), "{}", crashed.all());
    let run = fx.new_run(&before);
    // The earlier signed state, as a writer of the state saw it.
    let journal = fx.journal_path(&run);
    let head = journal.with_extension("head");
    let earlier = (
        std::fs::read(&journal).unwrap(),
        std::fs::read(&head).unwrap(),
    );
    let resumed = fx.drctl(&["runs", "resume", &run]).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    let whole = fx
        .drctl(&["audit", "verify", "--evidence", "--no-record", &run])
        .await;
    assert_eq!(whole.code, Some(0), "{}", whole.all());
    // Put back.
    std::fs::write(&journal, &earlier.0).unwrap();
    std::fs::write(&head, &earlier.1).unwrap();
    let chain = fx.audit(&run).await;
    assert_eq!(
        chain.code,
        Some(0),
        "the chain alone cannot tell: {}",
        chain.all()
    );
    assert!(chain.out.contains("signed by key"), "{}", chain.all());
    let v = fx
        .drctl(&["audit", "verify", "--evidence", "--no-record", &run])
        .await;
    assert_eq!(v.code, Some(1), "{}", v.all());
    assert!(
        v.out.contains("its journal does not name") && v.out.contains("rolled back"),
        "{}",
        v.all()
    );
    assert!(
        v.out.contains(&format!("/{run}/manifest.json")),
        "{}",
        v.all()
    );
}

/// Regression (`an_unreadable_evidence_object_was_reported_like_an_altered_one`):
/// a cold run's `audit verify --evidence` said of two S3 objects only that
/// they "cannot be read", beside the "altered" of another failure, and the
/// evidence step had counted them stored without reading them back. Here
/// S3's answers for `state.json` carry bytes that are not those its
/// checksum says (what a store that tears an object gives every reader):
/// - written through that store, the evidence step reads each object back,
///   finds `state.json` does not come back whole and records the S3 pack
///   missing, never stored; the run still succeeds (evidence never blocks
///   a failover), and `audit verify` names the pack not stored;
/// - `runs resume` writes it again, and it verifies;
/// - read through that store again, the object is *unreadable* (its body
///   failed the store's checksum), never *altered*, and the output says
///   that is no sign of tampering.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_object_is_not_stored_as_evidence_nor_reported_as_altered() {
    crate::needs_emulators!();
    let fx = Fixture::new("evunread").await;
    let proxied = crate::fixture::Proxied::start(false).await;
    proxied.proxy_for("AWS_ENDPOINT_URL_S3").inject(
        crate::proxy::Match::MethodPath("GET", "/state.json".into()),
        crate::proxy::Fault::Rewrite {
            from: "\"before\"".into(),
            to: "\"BEFORE\"".into(),
        },
        usize::MAX,
    );
    let ran = fx
        .failover_payments_via(&proxied.endpoints(), &["--output", "json"])
        .await;
    assert_eq!(ran.code, Some(0), "evidence never blocks: {}", ran.all());
    let run = ran.json()["run_id"].as_str().expect("run id").to_string();
    let [s3, gcs] = packs(&fx, &run);
    let s3_dest = s3.trim_end_matches(&format!("/{run}")).to_string();
    assert!(
        ran.all().contains("does not read back"),
        "the S3 pack is said missing: {}",
        ran.all()
    );
    let unstored = verify(&fx, &run).await;
    assert_eq!(unstored.code, Some(1), "{}", unstored.all());
    assert!(
        unstored.out.contains(&format!(
            "FAILED evidence payments {s3_dest}: not stored by the run"
        )),
        "{}",
        unstored.all()
    );
    let gcs_dest = gcs.trim_end_matches(&format!("/{run}"));
    assert!(
        unstored
            .out
            .contains(&format!("evidence payments {gcs_dest}: 4 objects verified")),
        "{}",
        unstored.all()
    );

    let resumed = fx.drctl(&["runs", "resume", &run]).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    let whole = verify(&fx, &run).await;
    assert_eq!(whole.code, Some(0), "{}", whole.all());

    // Read through the tearing store: unreadable, not altered.
    let through = fx
        .drctl_with(
            &["audit", "verify", "--evidence", "--no-record", &run],
            &[],
            &proxied.endpoints(),
        )
        .await;
    assert_eq!(through.code, Some(1), "{}", through.all());
    let line = (through.out.lines())
        .find(|l| l.contains("FAILED evidence") && l.contains("/state.json"))
        .unwrap_or_else(|| panic!("state.json is named: {}", through.all()));
    assert!(
        line.contains("state.json: unreadable") && line.contains("checksum"),
        "{line}"
    );
    assert!(!through.out.contains(": altered"), "{}", through.all());
    assert!(
        through.out.contains("not evidence of tampering"),
        "{}",
        through.all()
    );
}
