//! What observers share on the state's board: each observer's latest
//! report per plan, signed, and each outage episode's proposal, veto,
//! start claim and told-once markers, each created at most once.
//!
//! Reports are signed with HMAC-SHA256 under a key every observer of a
//! team holds (`DRCTL_WATCH_KEY`), over the exact bytes of the report, so
//! that someone who can write to the bucket but does not hold the key
//! cannot vote a region down. A report whose signature does not verify is
//! left out of the count and named in the quorum's `ignored` list.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use super::decide::{Episode, Proposal, Report};
use crate::state::board::{Board, BoardError};

/// A signed report as stored: the report's JSON text and its signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    /// The report, as JSON text (the exact bytes that were signed).
    payload: String,
    /// `v1,<base64 HMAC-SHA256 of payload>`.
    signature: String,
}

fn mac(key: &[u8], payload: &str) -> String {
    use base64::Engine as _;
    let Ok(mut m) = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(payload.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    )
}

/// The board key of `observer`'s report on `plan`.
pub fn report_key(plan: &str, observer: &str) -> String {
    format!("reports/{plan}/{observer}.json")
}

/// The board key of a file of `episode`.
pub fn episode_key(episode: &str, name: &str) -> String {
    format!("episodes/{episode}/{name}.json")
}

/// Writes this observer's report, signed.
pub async fn put_report(board: &dyn Board, key: &[u8], r: &Report) -> Result<(), BoardError> {
    let payload = serde_json::to_string(r).unwrap_or_default();
    let env = Envelope {
        signature: mac(key, &payload),
        payload,
    };
    let body = serde_json::to_vec(&env).unwrap_or_default();
    board
        .put(&report_key(&r.plan, &r.observer), Bytes::from(body))
        .await
}

/// Every observer's report on `plan`: those that verify, and the names
/// (with why) of those that do not.
pub async fn reports(
    board: &dyn Board,
    key: &[u8],
    plan: &str,
) -> Result<(Vec<Report>, Vec<String>), BoardError> {
    let keys = board.list(&format!("reports/{plan}/")).await?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for k in keys {
        let Some(body) = board.get(&k).await? else {
            continue;
        };
        let name = k
            .rsplit('/')
            .next()
            .unwrap_or(&k)
            .trim_end_matches(".json")
            .to_string();
        let Ok(env) = serde_json::from_slice::<Envelope>(&body) else {
            bad.push(format!("{name} (unreadable report)"));
            continue;
        };
        if mac(key, &env.payload) != env.signature {
            bad.push(format!("{name} (signature does not verify: another key?)"));
            continue;
        }
        match serde_json::from_str::<Report>(&env.payload) {
            Ok(r) if r.plan == plan && r.observer == name => good.push(r),
            _ => bad.push(format!("{name} (report does not match its key)")),
        }
    }
    Ok((good, bad))
}

/// The current episode of `base` (a plan's active region since the run
/// that made it active), and what the board holds for it, from one listing:
/// `base/N`, where N counts the episodes that were closed because the
/// region recovered. A veto or a spent proposal belongs to its episode, so
/// the next outage of the same region is judged afresh.
pub async fn current(
    board: &dyn Board,
    base: &str,
    now: DateTime<Utc>,
) -> Result<(String, Episode), BoardError> {
    let prefix = format!("episodes/{base}/");
    let keys = board.list(&prefix).await?;
    let mut highest: Option<u64> = None;
    let mut closed = std::collections::BTreeSet::new();
    for k in &keys {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let Some((n, file)) = rest.split_once('/') else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue;
        };
        highest = Some(highest.map_or(n, |h| h.max(n)));
        if file == "closed.json" {
            closed.insert(n);
        }
    }
    let n = match highest {
        None => 0,
        Some(h) if closed.contains(&h) => h + 1,
        Some(h) => h,
    };
    let episode = format!("{base}/{n}");
    let mine = format!("episodes/{episode}/");
    let keys: Vec<String> = keys.into_iter().filter(|k| k.starts_with(&mine)).collect();
    let held = episode_in(board, &episode, &keys, now).await?;
    Ok((episode, held))
}

/// Closes `episode` (its region recovered): the next outage opens another.
pub async fn close_episode(board: &dyn Board, episode: &str, by: &str) -> Result<bool, BoardError> {
    create_once(board, episode, "closed", &Marker::new(by, Utc::now())).await
}

/// The body of a marker (`closed`, `capped`, `told-…`): who wrote it and
/// when. Naming the writer makes the bytes its own, which is how a
/// create-only write whose answer was lost recognizes itself
/// ([`create_once`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// The observer (or person) that wrote it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl Marker {
    /// `by`'s marker at `at`.
    pub fn new(by: &str, at: DateTime<Utc>) -> Self {
        Self {
            by: by.to_string(),
            at,
        }
    }
}

/// Claims one of the `max` failover slots of the velocity window that
/// holds `now` (windows are fixed: `velocity/<window number>/<slot>.json`,
/// each created once, naming the episode). `true` when the episode holds a
/// slot (claimed now, or by another observer before): observers racing on
/// one episode share its slot, and two episodes can never both take the
/// last one.
pub async fn claim_slot(
    board: &dyn Board,
    window: std::time::Duration,
    max: usize,
    episode: &str,
    now: DateTime<Utc>,
) -> Result<bool, BoardError> {
    let secs = window.as_secs().max(1) as i64;
    let bucket = now.timestamp().div_euclid(secs);
    #[derive(Serialize, Deserialize)]
    struct Slot {
        episode: String,
        at: DateTime<Utc>,
    }
    for i in 0..max {
        let key = format!("velocity/{bucket}/{i}.json");
        let mine = Slot {
            episode: episode.to_string(),
            at: now,
        };
        let body = serde_json::to_vec(&mine).unwrap_or_default();
        if board.create(&key, Bytes::from(body)).await? {
            return Ok(true);
        }
        let held: Option<Slot> = board
            .get(&key)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok());
        if held.is_some_and(|h| h.episode == episode) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A veto (the board's `veto.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Veto {
    /// Who (STS identity or user@host).
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Until when it holds (a veto made before an outage, for maintenance,
    /// should not outlive it); absent: until the episode ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// Who claimed an episode's start (the board's `start.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claim {
    /// The observer.
    pub observer: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The target.
    pub target: String,
}

/// Creates `name` on the episode once: `true` when this call created it.
///
/// A create-only write whose answer was lost (the connection dropped after
/// the store took it) either fails (a watcher's calls are tried once) or,
/// sent again, finds the object: the store says "already exists" of our
/// own write. So, as the journal's append does, the object is then read
/// back and compared with our bytes: the same bytes are ours ([`is_ours`]);
/// other bytes are another writer's. Every body written here names its
/// writer and a time, so another writer's never has the same bytes. A
/// failed write whose object cannot be read, or is absent, stays failed.
pub async fn create_once<T: Serialize>(
    board: &dyn Board,
    episode: &str,
    name: &str,
    value: &T,
) -> Result<bool, BoardError> {
    let body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    let key = episode_key(episode, name);
    match board.create(&key, body.clone()).await {
        Ok(true) => Ok(true),
        Ok(false) => {
            let there = board.get(&key).await?;
            Ok(is_ours(&body, there.as_deref()))
        }
        // It may have reached the store before its answer was lost.
        Err(e) => match board.get(&key).await {
            Ok(Some(there)) => Ok(is_ours(&body, Some(&there))),
            _ => Err(e),
        },
    }
}

/// Whether the object found where a create-only write was refused is the
/// writer's own (its earlier attempt, whose answer was lost): the very
/// bytes it wrote.
pub fn is_ours(written: &[u8], found: Option<&[u8]>) -> bool {
    found == Some(written)
}

async fn read<T: for<'de> Deserialize<'de>>(
    board: &dyn Board,
    episode: &str,
    name: &str,
) -> Result<Option<T>, BoardError> {
    Ok(board
        .get(&episode_key(episode, name))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// What the board holds for `episode` at `now` (a veto past its `until`
/// no longer counts).
pub async fn episode(
    board: &dyn Board,
    episode: &str,
    now: DateTime<Utc>,
) -> Result<Episode, BoardError> {
    let keys = board.list(&format!("episodes/{episode}/")).await?;
    episode_in(board, episode, &keys, now).await
}

/// [`episode`] from its listing (`keys`).
async fn episode_in(
    board: &dyn Board,
    episode: &str,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Episode, BoardError> {
    let has = |name: &str| keys.contains(&episode_key(episode, name));
    let proposal: Option<Proposal> = read(board, episode, "proposal").await?;
    let veto: Option<Veto> = read(board, episode, "veto").await?;
    let claim: Option<Claim> = read(board, episode, "start").await?;
    let failed: Option<String> = read(board, episode, "start-failed").await?;
    Ok(Episode {
        proposal,
        veto: veto
            .filter(|v| v.until.is_none_or(|u| now < u))
            .map(|v| format!("by {}: {}", v.by, v.reason)),
        claimed_at: claim.as_ref().map(|c| c.at),
        claimed_by: claim.map(|c| c.observer),
        start_failed: failed,
        failback_proposed: has("told-failback_proposed"),
        capped: has("capped"),
        closed: has("closed"),
        // Something was proposed, started or told for it: what closing on
        // recovery ends. A veto alone (made before any outage) is not.
        active: keys
            .iter()
            .any(|k| !k.ends_with("/veto.json") && !k.ends_with("/closed.json")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::board::DirBoard;

    fn report(observer: &str) -> Report {
        Report {
            observer: observer.into(),
            plan: "payments".into(),
            at: Utc::now(),
            round: 1,
            impaired: None,
            regions: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_report_signed_with_another_key_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let b = DirBoard::new(dir.path().to_path_buf());
        put_report(&b, b"team-key", &report("a")).await.unwrap();
        put_report(&b, b"stolen-bucket-key", &report("b"))
            .await
            .unwrap();
        let (good, bad) = reports(&b, b"team-key", "payments").await.unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].observer, "a");
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("b (signature"), "{bad:?}");
    }

    #[tokio::test]
    async fn an_episode_closed_on_recovery_opens_the_next() {
        let b = crate::state::board::MemoryBoard::default();
        let base = "payments/us-west-2/start";
        assert_eq!(
            current(&b, base, Utc::now()).await.unwrap().0,
            format!("{base}/0")
        );
        let v = Veto {
            by: "me".into(),
            reason: "test".into(),
            at: Utc::now(),
            until: None,
        };
        create_once(&b, &format!("{base}/0"), "veto", &v)
            .await
            .unwrap();
        assert_eq!(
            current(&b, base, Utc::now()).await.unwrap().0,
            format!("{base}/0")
        );
        assert!(close_episode(&b, &format!("{base}/0"), "a").await.unwrap());
        assert_eq!(
            current(&b, base, Utc::now()).await.unwrap().0,
            format!("{base}/1")
        );
        assert!(
            episode(&b, &format!("{base}/1"), Utc::now())
                .await
                .unwrap()
                .veto
                .is_none()
        );
    }

    #[tokio::test]
    async fn velocity_slots_are_shared_by_an_episode_and_run_out() {
        let b = crate::state::board::MemoryBoard::default();
        let w = std::time::Duration::from_secs(3600);
        let now = Utc::now();
        assert!(claim_slot(&b, w, 1, "p/a/start/0", now).await.unwrap());
        assert!(
            claim_slot(&b, w, 1, "p/a/start/0", now).await.unwrap(),
            "the same episode shares its slot"
        );
        assert!(
            !claim_slot(&b, w, 1, "q/a/start/0", now).await.unwrap(),
            "the cap is reached"
        );
        assert!(!claim_slot(&b, w, 0, "r/a/start/0", now).await.unwrap());
    }

    #[tokio::test]
    async fn a_report_under_another_observers_name_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let b = DirBoard::new(dir.path().to_path_buf());
        put_report(&b, b"k", &report("a")).await.unwrap();
        let body = b.get(&report_key("payments", "a")).await.unwrap().unwrap();
        b.put(&report_key("payments", "c"), body).await.unwrap();
        let (good, bad) = reports(&b, b"k", "payments").await.unwrap();
        assert_eq!((good.len(), bad.len()), (1, 1), "{bad:?}");
    }
}
