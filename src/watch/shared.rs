//! What observers share on the state's board: each observer's latest
//! report per plan, each outage episode's proposal, veto, start claim and
//! markers, each created at most once, and the velocity cap's slots.
//!
//! # Who may write what
//!
//! Anyone who can write to the state's bucket can write any bytes on the
//! board, so every object carries its writer's signature: each observer
//! signs with its own Ed25519 key ([`crate::sign`]), a person's veto with
//! the operators' run key (or an observer's key). The signature covers the
//! object's board key and its bytes, for a purpose per kind of object
//! (`watch-report`, `watch-proposal`, ...): a signed object copied to
//! another key (another observer's report, another episode's proposal,
//! another window's velocity slot) does not verify. The operators list the
//! observers, with their places and public keys (`[[watch.observers]]`),
//! and the people's keys (`[keys] run_public`): [`Trust`]. An observer
//! counts only under its listed name, signed by one of its own keys, once.
//!
//! What a reader does with an object that does not verify depends on what
//! the object could do:
//! - what could start a failover or count towards one (a report, a
//!   proposal, a start claim, a velocity slot naming the episode, a
//!   closing marker, which would help open a fresh episode without its
//!   veto) is ignored;
//! - what only stops watch (a veto, a released claim, `capped`) is honoured
//!   all the same: forging one keeps watch from acting, which a bucket
//!   writer can do anyway (deleting reports leaves watch blind).
//!
//! Either way it is named, with why, in the episode's `unverified` list
//! and the reports' rejections (`drctl watch status`). An object that does
//! not verify still holds its create-once slot: watch then starts nothing
//! more in that episode and says so (a person decides).
//!
//! One key must not be enough to end an episode: ending it drops the
//! episode's veto and spent proposal. So each observer that sees the
//! region recover signs a closing marker of its own (`closed-<observer>`,
//! the one object it may write over), and the episode ends only when
//! observers in `quorum` distinct places have, as a region is only judged
//! down by observers in `quorum` places.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::decide::{self, Episode, Proposal, Report};
use super::seal::by_observer;
pub use super::seal::{Listed, Opened, Signer, Trust, open, seal};
use crate::plan::Plan;
use crate::sign::SecretKey;
use crate::state::board::{Board, BoardError};

/// What the shared state says of one plan: everyone's reports and the
/// current episode's board (read by a watcher's round and by `watch status`).
#[derive(Debug, Clone)]
pub struct Shared {
    /// Every listed observer's latest report that verifies.
    pub reports: Vec<Report>,
    /// What was left out or questioned, with why: reports, and the
    /// episode's objects that do not verify (`<board key>: <why>`).
    pub rejected: Vec<String>,
    /// Each listed observer's place.
    pub places: BTreeMap<String, String>,
    /// The current episode.
    pub episode: String,
    /// What its board holds.
    pub board: decide::Episode,
}

/// Reads what the shared state says of `plan` (`base`: its episode by the
/// journals, before the board numbers it), trusting `trust`'s keys.
pub async fn read_shared(
    board: &dyn Board,
    trust: &Trust,
    plan: &Plan,
    base: &str,
    now: DateTime<Utc>,
) -> Result<Shared, BoardError> {
    let (reports, mut rejected) = reports(board, trust, plan.name()).await?;
    let quorum = plan.watch_rules().quorum as usize;
    let (episode, mut ep) = current(board, trust, (base, quorum), now).await?;
    // A proposal signed by its observer may still be one no failover may
    // start from (made with its deadline past): named here too.
    if let Some(p) = &ep.proposal
        && let Some(why) = decide::proposal_problem(p, &plan.watch_rules(), now, None)
    {
        let key = episode_key(&episode, "proposal");
        ep.unverified.push(format!(
            "{key}: {why}; ignored, so watch starts nothing in this episode (a person decides)"
        ));
    }
    // When the proposal may start, as a reader that does not start it
    // judges (`watch status`, an observer in observe mode): no earlier
    // than the window after the earliest first sight an observer that may
    // start kept (none kept yet: that will be no earlier than now). An
    // observer that starts puts its own first sight here
    // (`Watcher::exchange`).
    if ep.proposal.is_some() {
        let kept = (ep.seen.iter())
            .filter(|(o, _)| trust.may_start(o))
            .map(|(_, at)| *at)
            .min();
        ep.proposal_seen = Some(kept.unwrap_or(now));
    }
    rejected.extend(ep.unverified.iter().cloned());
    Ok(Shared {
        reports,
        rejected,
        places: trust.places(),
        episode,
        board: ep,
    })
}

/// The board key of `observer`'s report on `plan`.
pub fn report_key(plan: &str, observer: &str) -> String {
    format!("reports/{plan}/{observer}.json")
}

/// The board key of a file of `episode`.
pub fn episode_key(episode: &str, name: &str) -> String {
    format!("episodes/{episode}/{name}.json")
}

/// Writes this observer's report, signed with its key.
pub async fn put_report(board: &dyn Board, key: &SecretKey, r: &Report) -> Result<(), BoardError> {
    let at = report_key(&r.plan, &r.observer);
    board.put(&at, seal(Some(key), &at, r)).await
}

/// The report stored at board key `key` on `plan`, when it counts: its file
/// names a listed observer, the report names the same one and the plan,
/// and it is signed by one of that observer's keys. Otherwise why not.
pub fn admit_report(trust: &Trust, plan: &str, key: &str, body: &[u8]) -> Result<Report, String> {
    let name = key
        .rsplit('/')
        .next()
        .unwrap_or(key)
        .trim_end_matches(".json");
    let opened: Opened<Report> = open(trust, key, body);
    let Some(r) = opened.value else {
        return Err("unreadable: not a report".into());
    };
    let signed = match &opened.signer {
        Ok(s) => format!("signed by {s}"),
        Err(why) => why.clone(),
    };
    if r.observer != name {
        return Err(format!(
            "names {0}: a copy of {0}'s report under another observer's name ({signed})",
            r.observer
        ));
    }
    if r.plan != plan {
        return Err(format!("is about the plan {}, not {plan}", r.plan));
    }
    if trust.listed(name).is_none() {
        return Err(format!("{name} is not a listed observer ({signed})"));
    }
    by_observer(&opened.signer, name)?;
    if trust.is_starter(name) {
        return Err(format!(
            "{name} is a starter ([watch] starters), and a starter does not vote ({signed})"
        ));
    }
    Ok(r)
}

/// Every listed observer's report on `plan` that verifies, and the others
/// (`<board key>: <why>`).
pub async fn reports(
    board: &dyn Board,
    trust: &Trust,
    plan: &str,
) -> Result<(Vec<Report>, Vec<String>), BoardError> {
    let keys = board.list(&format!("reports/{plan}/")).await?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for k in keys {
        let Some(body) = board.get(&k).await? else {
            continue;
        };
        match admit_report(trust, plan, &k, &body) {
            Ok(r) => good.push(r),
            Err(why) => bad.push(format!("{k}: {why}")),
        }
    }
    Ok((good, bad))
}

/// The current episode of `base` (a plan's active region since the run
/// that made it active), and what the board holds for it: `base/N`, where
/// N counts the episodes closed because the region recovered. An episode
/// is closed by observers in `quorum` distinct places, each with its own
/// signed `closed-<observer>` marker ([`close_episode`]): one observer
/// (one stolen key) cannot close it, and with it drop a person's veto. A
/// veto or a spent proposal belongs to its episode, so the next outage of
/// the same region is judged afresh; a closing marker that does not verify
/// is ignored, and so is anything written under an episode that is not
/// open yet.
pub async fn current(
    board: &dyn Board,
    trust: &Trust,
    (base, quorum): (&str, usize),
    now: DateTime<Utc>,
) -> Result<(String, Episode), BoardError> {
    let prefix = format!("episodes/{base}/");
    let keys = board.list(&prefix).await?;
    let mut n: u64 = 0;
    loop {
        let episode = format!("{base}/{n}");
        let closing = format!("episodes/{episode}/{CLOSED}");
        let markers: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with(&closing))
            .cloned()
            .collect();
        if markers.is_empty() {
            break;
        }
        let (bodies, _) = read_bodies(board, &episode, &markers).await?;
        // What does not verify is noted by `episode_in` when the episode
        // is the current one.
        let (_, closed) = closers((trust, &episode, &bodies), quorum, &mut Vec::new());
        if !closed {
            break;
        }
        n += 1;
    }
    let episode = format!("{base}/{n}");
    let mine = format!("episodes/{episode}/");
    let (held, later): (Vec<String>, Vec<String>) =
        keys.into_iter().partition(|k| k.starts_with(&mine));
    let mut ep = episode_in(board, trust, (&episode, quorum), &held, now).await?;
    for k in later {
        let number = k
            .strip_prefix(&prefix)
            .and_then(|r| r.split('/').next())
            .and_then(|n| n.parse::<u64>().ok());
        if number.is_none_or(|x| x > n) {
            ep.unverified.push(format!(
                "{k}: under an episode that is not open (the one before it is not closed); ignored"
            ));
        }
    }
    Ok((episode, ep))
}

/// The prefix of an observer's closing marker: `closed-<observer>`.
const CLOSED: &str = "closed-";

/// The prefix of an observer's first-sight marker, `seen-<observer>`: when
/// it first saw the episode's proposal, by its own clock, signed. Kept on
/// the board, not in the observer's memory, so that a restarted observer,
/// or one run from cron (`watch --once`), keeps its first sight: a
/// proposal starts no earlier than the veto window after it
/// ([`super::decide::Episode::due`]), however its maker dated it.
pub const SEEN: &str = "seen-";

/// Says, for the observer `by`, that `episode`'s region recovered: its own
/// `closed-<by>` marker, signed. The episode ends when observers in
/// `quorum` distinct places have said so ([`current`]); the next outage
/// then opens another. The marker is written over whatever holds its
/// place: only `by` writes it, and one a bucket writer or another observer
/// put there first (which does not verify as `by`'s) must not keep `by`
/// from ever closing an episode.
pub async fn close_episode(
    board: &dyn Board,
    key: &SecretKey,
    episode: &str,
    by: &str,
) -> Result<(), BoardError> {
    let at = episode_key(episode, &format!("{CLOSED}{by}"));
    board
        .put(&at, seal(Some(key), &at, &Marker::new(by, Utc::now())))
        .await
}

/// The body of a marker (`closed-…`, `capped`, `told-…`): who wrote it and
/// when. Naming the writer makes the bytes its own, which is how a
/// create-only write whose answer was lost recognizes itself
/// ([`create_once`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// The observer (or person) that wrote it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The proposal it is about ([`proposal_digest`]), for a first sight:
    /// one seen of another proposal (one a writer of the board put in the
    /// place of the first) says nothing of this one. For a told-once
    /// marker, the notice journal that holds the notice
    /// (`crate::notify::Told::journal`); none: the notice's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
}

impl Marker {
    /// `by`'s marker at `at`.
    pub fn new(by: &str, at: DateTime<Utc>) -> Self {
        Self {
            by: by.to_string(),
            at,
            about: None,
        }
    }

    /// `by`'s marker at `at`, about the proposal whose digest is `about`.
    pub fn about(by: &str, at: DateTime<Utc>, about: &str) -> Self {
        Self {
            about: Some(about.to_string()),
            ..Self::new(by, at)
        }
    }
}

/// What names a proposal as stored (its sealed bytes: the proposal and
/// its signature): the first 16 hex digits of their SHA-256. A first sight
/// and the proposal's notice name it, so that a proposal put in the place
/// of another is seen, and told, anew.
pub fn proposal_digest(stored: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(stored))[..16].to_string()
}

/// One slot of the velocity cap: the episode that holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Slot {
    episode: String,
    at: DateTime<Utc>,
}

/// Claims one of the `max` failover slots of the velocity window that
/// holds `now` (windows are fixed: `velocity/<window number>/<slot>.json`,
/// each created once, naming the episode, signed). `true` when the episode
/// holds a slot (claimed now, or by another listed observer before):
/// observers racing on one episode share its slot, and two episodes can
/// never both take the last one. A slot that does not verify counts as
/// taken, never as the episode's.
#[allow(clippy::too_many_arguments)]
pub async fn claim_slot(
    board: &dyn Board,
    key: &SecretKey,
    trust: &Trust,
    window: std::time::Duration,
    max: usize,
    episode: &str,
    now: DateTime<Utc>,
) -> Result<bool, BoardError> {
    let secs = window.as_secs().max(1) as i64;
    let bucket = now.timestamp().div_euclid(secs);
    for i in 0..max {
        let at = format!("velocity/{bucket}/{i}.json");
        let mine = Slot {
            episode: episode.to_string(),
            at: now,
        };
        if board.create(&at, seal(Some(key), &at, &mine)).await? {
            return Ok(true);
        }
        let Some(body) = board.get(&at).await? else {
            continue;
        };
        let held: Opened<Slot> = open(trust, &at, &body);
        match (held.value, held.signer) {
            (Some(h), Ok(Signer::Observer(_))) if h.episode == episode => return Ok(true),
            (_, Ok(_)) => {}
            (_, Err(why)) => {
                tracing::warn!("watch: velocity slot {at}: {why}; counted as taken")
            }
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

/// Creates `name` on the episode once, signed with `key`: `true` when this
/// call created it.
///
/// A create-only write whose answer was lost (the connection dropped after
/// the store took it) either fails (a watcher's calls are tried once) or,
/// sent again, finds the object: the store says "already exists" of our
/// own write. So, as the journal's append does, the object is then read
/// back and compared with our bytes: the same bytes are ours ([`is_ours`]);
/// other bytes are another writer's. Every body written here names its
/// writer and a time, and signatures are deterministic, so another
/// writer's never has the same bytes. A failed write whose object cannot
/// be read, or is absent, stays failed.
pub async fn create_once<T: Serialize>(
    board: &dyn Board,
    key: &SecretKey,
    episode: &str,
    name: &str,
    value: &T,
) -> Result<bool, BoardError> {
    let at = episode_key(episode, name);
    create_sealed(board, &at, seal(Some(key), &at, value)).await
}

/// Whether the marker `name` of `episode` on the board is a listed
/// observer's, signed under its own name (`Ok(Err(why))` when not): what
/// a marker found where a create-only write was refused must be before
/// the writer takes it for the one it meant to make. A bucket writer's
/// pre-made `told-*` marker is not, and people are told all the same.
/// The marker is returned with the answer, whatever it is (what it names:
/// a told-once marker's notice journal).
pub async fn marker_signed(
    board: &dyn Board,
    trust: &Trust,
    episode: &str,
    name: &str,
) -> Result<(Option<Marker>, Result<(), String>), BoardError> {
    let at = episode_key(episode, name);
    let Some(body) = board.get(&at).await? else {
        return Ok((None, Err("gone from the board".into())));
    };
    let o: Opened<Marker> = open(trust, &at, &body);
    Ok(match o.value {
        Some(m) => {
            let signed = by_observer(&o.signer, &m.by);
            (Some(m), signed)
        }
        None => (None, Err("unreadable: not a marker".to_string())),
    })
}

/// Writes the marker `name` of `episode` over what holds its place,
/// signed with `key`: what an observer does to a marker no listed observer
/// signed (a bucket writer's), so that the next observer finds a signed one
/// and people are told once.
pub async fn replace_marker<T: Serialize>(
    board: &dyn Board,
    key: &SecretKey,
    episode: &str,
    name: &str,
    value: &T,
) -> Result<(), BoardError> {
    let at = episode_key(episode, name);
    board.put(&at, seal(Some(key), &at, value)).await
}

/// Creates the episode's veto once, signed with `key` (a person's run key
/// or an observer's), or unsigned without one: `true` when this call
/// created it.
pub async fn create_veto(
    board: &dyn Board,
    key: Option<&SecretKey>,
    episode: &str,
    veto: &Veto,
) -> Result<bool, BoardError> {
    let at = episode_key(episode, "veto");
    create_sealed(board, &at, seal(key, &at, veto)).await
}

async fn create_sealed(board: &dyn Board, key: &str, body: Bytes) -> Result<bool, BoardError> {
    match board.create(key, body.clone()).await {
        Ok(true) => Ok(true),
        Ok(false) => {
            let there = board.get(key).await?;
            Ok(is_ours(&body, there.as_deref()))
        }
        // It may have reached the store before its answer was lost.
        Err(e) => match board.get(key).await {
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

/// What the board holds for `episode` at `now` (a veto past its `until`
/// no longer counts).
pub async fn episode(
    board: &dyn Board,
    trust: &Trust,
    (episode, quorum): (&str, usize),
    now: DateTime<Utc>,
) -> Result<Episode, BoardError> {
    let keys = board.list(&format!("episodes/{episode}/")).await?;
    episode_in(board, trust, (episode, quorum), &keys, now).await
}

/// The files an episode may hold (besides `told-…`, `closed-…` and
/// `seen-…` markers). `closed` is an older drctl's one-observer closing marker,
/// read only to say that it no longer closes anything.
const EPISODE_FILES: &[&str] = &[
    "proposal",
    "veto",
    "start",
    "start-failed",
    "capped",
    "closed",
];

/// [`episode`] from its listing (`keys`): each object read only when
/// listed, and judged by who signed it (the module's rules).
async fn episode_in(
    board: &dyn Board,
    trust: &Trust,
    (episode, quorum): (&str, usize),
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Episode, BoardError> {
    let (bodies, unverified) = read_bodies(board, episode, keys).await?;
    Ok(judge_episode(
        trust,
        (episode, quorum),
        &bodies,
        now,
        unverified,
    ))
}

/// The objects of `episode` among `keys`, by name, and what is not an
/// object of the board (named, not read).
async fn read_bodies(
    board: &dyn Board,
    episode: &str,
    keys: &[String],
) -> Result<(BTreeMap<String, Bytes>, Vec<String>), BoardError> {
    let mut bodies: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut unverified = Vec::new();
    for k in keys {
        let name = k
            .strip_prefix(&format!("episodes/{episode}/"))
            .and_then(|n| n.strip_suffix(".json"))
            .unwrap_or("");
        let marker = ["told-", CLOSED, SEEN].iter().any(|p| name.starts_with(p));
        if !EPISODE_FILES.contains(&name) && !marker {
            unverified.push(format!("{k}: not an object of the board; ignored"));
            continue;
        }
        if let Some(body) = board.get(k).await? {
            bodies.insert(name.to_string(), body);
        }
    }
    Ok((bodies, unverified))
}

/// Names `episode`'s object `name` in `list`: why it does not verify, and
/// what was done with it.
fn note(list: &mut Vec<String>, episode: &str, name: &str, why: &str, done: &str) {
    list.push(format!("{}: {why}; {done}", episode_key(episode, name)));
}

/// Whether the episode's marker `name` was signed by a listed observer
/// under its own name (noted in `list` when it is there and was not).
fn signed_marker(
    trust: &Trust,
    episode: &str,
    bodies: &BTreeMap<String, Bytes>,
    name: &str,
    done: &str,
    list: &mut Vec<String>,
) -> bool {
    let Some(body) = bodies.get(name) else {
        return false;
    };
    let o: Opened<Marker> = open(trust, &episode_key(episode, name), body);
    let verdict = match o.value {
        Some(m) => by_observer(&o.signer, &m.by),
        None => Err("unreadable: not a marker".to_string()),
    };
    match verdict {
        Ok(()) => true,
        Err(why) => {
            note(list, episode, name, &why, done);
            false
        }
    }
}

/// The episode's objects (`bodies`, by name), read under the trust
/// listed: what the readers below share.
type Held<'a> = (&'a Trust, &'a str, &'a BTreeMap<String, Bytes>);

/// The object `name` an observer signs under its own name (the proposal,
/// the start claim; `what` it is, `observer` the name it gives): `None`
/// when there is none; else it, or why it is not believed (noted in
/// `list` with `ignored`: an object in its place holds the episode).
fn by_its_observer<T: DeserializeOwned>(
    (trust, episode, bodies): Held<'_>,
    (name, what, ignored): (&str, &str, &str),
    observer: impl Fn(&T) -> &str,
    list: &mut Vec<String>,
) -> Option<Result<T, String>> {
    let body = bodies.get(name)?;
    let o: Opened<T> = open(trust, &episode_key(episode, name), body);
    let verdict = match o.value {
        Some(v) => by_observer(&o.signer, observer(&v)).and_then(|()| {
            if trust.may_start(observer(&v)) {
                Ok(v)
            } else {
                Err(format!(
                    "made by observer {}, which may not propose or start a failover: only a starter ({}) may",
                    observer(&v),
                    trust.starters.join(", ")
                ))
            }
        }),
        None => Err(format!("unreadable: not a {what}")),
    };
    if let Err(why) = &verdict {
        note(list, episode, name, why, ignored);
    }
    Some(verdict)
}

/// The episode's veto, in a sentence, unless it expired: honoured signed
/// or not (a veto only stops), an unverified one noted in `list`.
fn veto_of(
    (trust, episode, bodies): Held<'_>,
    now: DateTime<Utc>,
    list: &mut Vec<String>,
) -> Option<String> {
    let body = bodies.get("veto")?;
    let o: Opened<Veto> = open(trust, &episode_key(episode, "veto"), body);
    let honoured = "honoured all the same: a veto only stops";
    match (o.value, o.signer) {
        (Some(v), _) if v.until.is_some_and(|u| now >= u) => None,
        (Some(v), Ok(s)) => Some(format!("by {}: {} (signed by {s})", v.by, v.reason)),
        (Some(v), Err(why)) => {
            note(list, episode, "veto", &why, honoured);
            Some(format!("by {}: {} (unverified: {why})", v.by, v.reason))
        }
        (None, _) => {
            note(list, episode, "veto", "unreadable: not a veto", honoured);
            Some("an unreadable object in the veto's place".into())
        }
    }
}

/// The episode's start-failed marker (honoured signed or not: it only
/// stops), and whether an observer signed it.
fn start_failed_of(
    (trust, episode, bodies): Held<'_>,
    list: &mut Vec<String>,
) -> Option<(String, bool)> {
    let body = bodies.get("start-failed")?;
    let o: Opened<String> = open(trust, &episode_key(episode, "start-failed"), body);
    let why = match (&o.value, &o.signer) {
        (Some(_), Ok(Signer::Observer(_))) => None,
        (Some(_), Ok(s)) => Some(format!("signed by {s}, not an observer")),
        (Some(_), Err(why)) => Some(why.clone()),
        (None, _) => Some("unreadable".to_string()),
    };
    if let Some(why) = &why {
        note(
            list,
            episode,
            "start-failed",
            why,
            "honoured all the same: it only stops",
        );
    }
    let text = (o.value).unwrap_or_else(|| "an unreadable start-failed marker".into());
    Some((text, why.is_none()))
}

/// The episode from the objects it holds (`bodies`, by name; `unverified`:
/// what was noted already): pure.
fn judge_episode(
    trust: &Trust,
    (episode, quorum): (&str, usize),
    bodies: &BTreeMap<String, Bytes>,
    now: DateTime<Utc>,
    mut unverified: Vec<String>,
) -> Episode {
    let list = &mut unverified;
    let held = (trust, episode, bodies);
    let proposal = by_its_observer(
        held,
        (
            "proposal",
            "proposal",
            "ignored; it holds the episode's proposal, so watch starts nothing in this episode (a person decides)",
        ),
        |p: &Proposal| &p.observer,
        list,
    );
    let veto = veto_of(held, now, list);
    let claim = by_its_observer(
        held,
        (
            "start",
            "start claim",
            "ignored; it holds the episode's start claim, so watch starts nothing in this episode (a person decides)",
        ),
        |c: &Claim| &c.observer,
        list,
    );
    let start_failed = start_failed_of(held, list);
    // A marker counts for closing an episode (`active`, `closed`) only
    // when a listed observer signed it under its own name.
    let capped_signed = signed_marker(
        trust,
        episode,
        bodies,
        "capped",
        "honoured all the same: it only stops",
        list,
    );
    let (closed_by, closed) = closers(held, quorum, list);
    let proposal_digest = matches!(proposal, Some(Ok(_)))
        .then(|| bodies.get("proposal").map(|b| self::proposal_digest(b)))
        .flatten();
    let seen = sightings(held, proposal_digest.as_deref(), list);
    let told = told_of(held, list);
    // Something was proposed, started or told for it, signed by a listed
    // observer: what closing on recovery ends. A veto alone (made before
    // any outage) is not, nor what does not verify.
    let active = matches!(proposal, Some(Ok(_)))
        || matches!(claim, Some(Ok(_)))
        || matches!(start_failed, Some((_, true)))
        || capped_signed
        || !told.is_empty();
    let (claim, false_claim) = split(claim);
    let (proposal, false_proposal) = split(proposal);
    Episode {
        proposal,
        false_proposal,
        veto,
        claimed_at: claim.as_ref().map(|c| c.at),
        claimed_by: claim.map(|c| c.observer),
        false_claim,
        start_failed: start_failed.map(|(text, _)| text),
        // Told only when an observer signed it: a marker a bucket writer
        // made first would silence the failback's notice.
        failback_proposed: told.contains(&"told-failback_proposed"),
        capped: bodies.contains_key("capped"),
        closed,
        closed_by,
        active,
        seen,
        proposal_digest,
        // This observer's own, picked from `seen` by the watcher
        // (`Watcher::first_sight`).
        proposal_seen: None,
        unverified,
    }
}

/// The episode's `told-*` markers that a listed observer signed under its
/// own name (those that do not verify noted in `list`, and ignored).
fn told_of<'a>((trust, episode, bodies): Held<'a>, list: &mut Vec<String>) -> Vec<&'a str> {
    let mut told = Vec::new();
    for name in bodies.keys().filter(|n| n.starts_with("told-")) {
        if signed_marker(
            trust,
            episode,
            bodies,
            name,
            "ignored (people may not have been told of this decision)",
            list,
        ) {
            told.push(name.as_str());
        }
    }
    told
}

/// The listed observers that signed their own `closed-<observer>` marker
/// in the episode (those that do not verify noted in `list`), and whether
/// their places make `quorum`: what closes an episode.
fn closers(held: Held<'_>, quorum: usize, list: &mut Vec<String>) -> (Vec<String>, bool) {
    let (trust, episode, bodies) = held;
    if bodies.contains_key("closed") {
        note(
            list,
            episode,
            "closed",
            "one observer's closing marker (an older drctl's): an episode closes only when observers in `quorum` distinct places each sign their own `closed-<observer>`",
            "ignored: the episode stays open, with its veto, until they do",
        );
    }
    let ignored =
        "ignored: closing takes observers in `quorum` distinct places, each signing its own";
    let starter = |m: &Marker| {
        trust
            .is_starter(&m.by)
            .then(|| format!("{} is a starter, and a starter does not vote", m.by))
    };
    let by: Vec<String> = own_markers(held, (CLOSED, ignored), starter, list)
        .into_iter()
        .map(|m| m.by)
        .collect();
    let places = trust.places();
    let distinct: std::collections::BTreeSet<&String> =
        by.iter().filter_map(|o| places.get(o)).collect();
    let closed = !distinct.is_empty() && distinct.len() >= quorum;
    (by, closed)
}

/// When each listed observer first saw the episode's proposal (`digest`:
/// the one there now), by its own signed `seen-<observer>` marker
/// ([`SEEN`]) about that proposal; those that do not verify, or are about
/// another, are noted in `list` and ignored (one forged under an honest
/// observer's name, dated early, or kept from a proposal since replaced,
/// would shorten the window that observer keeps).
fn sightings(
    held: Held<'_>,
    digest: Option<&str>,
    list: &mut Vec<String>,
) -> BTreeMap<String, DateTime<Utc>> {
    let ignored = "ignored: it is not when that observer first saw the proposal";
    let other = |m: &Marker| {
        (m.about.as_deref() != digest).then(|| {
            format!(
                "about another proposal ({}) than the one there ({})",
                m.about.as_deref().unwrap_or("none named"),
                digest.unwrap_or("none")
            )
        })
    };
    own_markers(held, (SEEN, ignored), other, list)
        .into_iter()
        .map(|m| (m.by, m.at))
        .collect()
}

/// The episode's markers named `<prefix><observer>` that the listed
/// observer they name signed as its own, and that `refuse` does not turn
/// down (why); the others are noted in `list` with `ignored`.
fn own_markers(
    (trust, episode, bodies): Held<'_>,
    (prefix, ignored): (&str, &str),
    refuse: impl Fn(&Marker) -> Option<String>,
    list: &mut Vec<String>,
) -> Vec<Marker> {
    let mut own = Vec::new();
    for (name, body) in bodies.range(prefix.to_string()..) {
        let Some(named) = name.strip_prefix(prefix) else {
            break;
        };
        let o: Opened<Marker> = open(trust, &episode_key(episode, name), body);
        let verdict = match o.value {
            Some(m) if m.by != named => Err(format!("says it is {}'s, under {named}'s name", m.by)),
            Some(m) => match refuse(&m) {
                Some(why) => Err(why),
                None => by_observer(&o.signer, &m.by).map(|()| m),
            },
            None => Err("unreadable: not a marker".to_string()),
        };
        match verdict {
            Ok(m) => own.push(m),
            Err(why) => note(list, episode, name, &why, ignored),
        }
    }
    own
}

/// An object read and believed, or why it is not (either may be absent).
fn split<T>(read: Option<Result<T, String>>) -> (Option<T>, Option<String>) {
    match read {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(why)) => (None, Some(why)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::PublicKey;
    use crate::state::board::{DirBoard, MemoryBoard};

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

    /// Observers `names`, each with a key of its own; the trust listing them.
    fn team(names: &[&str]) -> (Vec<SecretKey>, Trust) {
        let keys: Vec<SecretKey> = names.iter().map(|_| SecretKey::generate()).collect();
        let trust = Trust {
            observers: names
                .iter()
                .zip(&keys)
                .map(|(n, k)| Listed {
                    name: n.to_string(),
                    place: None,
                    keys: vec![k.public()],
                })
                .collect(),
            people: Vec::new(),
            starters: Vec::new(),
        };
        (keys, trust)
    }

    fn veto(by: &str) -> Veto {
        Veto {
            by: by.into(),
            reason: "maintenance".into(),
            at: Utc::now(),
            until: None,
        }
    }

    #[tokio::test]
    async fn a_report_copied_under_another_observers_name_is_ignored_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let b = DirBoard::new(dir.path().to_path_buf());
        let (keys, trust) = team(&["a", "c"]);
        put_report(&b, &keys[0], &report("a")).await.unwrap();
        let body = b.get(&report_key("payments", "a")).await.unwrap().unwrap();
        b.put(&report_key("payments", "c"), body).await.unwrap();
        let (good, bad) = reports(&b, &trust, "payments").await.unwrap();
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].observer, "a");
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].starts_with("reports/payments/c.json: names a: a copy of a's report"),
            "{bad:?}"
        );
    }

    /// Issue 39: the operators' run key signs vetoes, not votes: a report
    /// under a listed observer's name signed with it does not count, and is
    /// named (the run key's holder cannot make a quorum).
    #[tokio::test]
    async fn a_report_signed_with_the_run_key_is_no_vote() {
        let b = MemoryBoard::default();
        let (keys, mut trust) = team(&["a", "b"]);
        let run_key = SecretKey::generate();
        trust.people = vec![run_key.public()];
        put_report(&b, &keys[0], &report("a")).await.unwrap();
        put_report(&b, &run_key, &report("b")).await.unwrap();
        let (good, bad) = reports(&b, &trust, "payments").await.unwrap();
        assert_eq!(good.iter().map(|r| &r.observer).collect::<Vec<_>>(), ["a"]);
        assert!(
            bad.iter()
                .any(|x| x.starts_with("reports/payments/b.json:")),
            "{bad:?}"
        );
    }

    #[tokio::test]
    async fn a_report_signed_by_an_unlisted_key_is_ignored_and_named() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a", "b"]);
        put_report(&b, &keys[0], &report("a")).await.unwrap();
        // Under a listed name, and under a name of its own.
        let stranger = SecretKey::generate();
        put_report(&b, &stranger, &report("b")).await.unwrap();
        put_report(&b, &stranger, &report("ghost")).await.unwrap();
        let (good, bad) = reports(&b, &trust, "payments").await.unwrap();
        assert_eq!(good.iter().map(|r| &r.observer).collect::<Vec<_>>(), ["a"]);
        let id = stranger.public().id();
        assert!(
            bad.contains(&format!(
                "reports/payments/b.json: signed by key {id}, which is not listed"
            )),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|b| b
                .starts_with("reports/payments/ghost.json: ghost is not a listed observer")
                && b.contains(&id)),
            "{bad:?}"
        );
    }

    #[tokio::test]
    async fn one_observer_writing_reports_under_new_names_counts_once() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a", "b", "c"]);
        put_report(&b, &keys[2], &report("c")).await.unwrap();
        for name in ["c2", "c3", "c4", "b"] {
            put_report(&b, &keys[2], &report(name)).await.unwrap();
        }
        let (good, bad) = reports(&b, &trust, "payments").await.unwrap();
        assert_eq!(good.iter().map(|r| &r.observer).collect::<Vec<_>>(), ["c"]);
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(
            bad.contains(
                &"reports/payments/b.json: signed by c's key over another name (b)".to_string()
            ),
            "{bad:?}"
        );
        assert!(
            bad.iter()
                .filter(|b| b.contains("is not a listed observer (signed by observer c)"))
                .count()
                == 3,
            "{bad:?}"
        );
    }

    #[tokio::test]
    async fn rotation_old_and_new_keys_both_count_while_both_listed() {
        let b = MemoryBoard::default();
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let listed = |keys: Vec<PublicKey>| Trust {
            observers: vec![Listed {
                name: "a".into(),
                place: None,
                keys,
            }],
            people: Vec::new(),
            starters: Vec::new(),
        };
        let both = listed(vec![old.public(), new.public()]);
        for k in [&old, &new] {
            put_report(&b, k, &report("a")).await.unwrap();
            let (good, bad) = reports(&b, &both, "payments").await.unwrap();
            assert_eq!((good.len(), bad.len()), (1, 0), "{bad:?}");
        }
        // The rotation is over: the old key is no longer listed.
        let only_new = listed(vec![new.public()]);
        put_report(&b, &old, &report("a")).await.unwrap();
        let (good, bad) = reports(&b, &only_new, "payments").await.unwrap();
        assert!(good.is_empty());
        assert!(bad[0].contains(&old.public().id()), "{bad:?}");
    }

    #[tokio::test]
    async fn an_episode_closed_on_recovery_opens_the_next() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a"]);
        let base = "payments/us-west-2/start";
        let now = Utc::now();
        assert_eq!(
            current(&b, &trust, (base, 1), now).await.unwrap().0,
            format!("{base}/0")
        );
        create_veto(&b, Some(&keys[0]), &format!("{base}/0"), &veto("me"))
            .await
            .unwrap();
        assert_eq!(
            current(&b, &trust, (base, 1), now).await.unwrap().0,
            format!("{base}/0")
        );
        let ep0 = format!("{base}/0");
        close_episode(&b, &keys[0], &ep0, "a").await.unwrap();
        let (next, ep) = current(&b, &trust, (base, 1), now).await.unwrap();
        assert_eq!(next, format!("{base}/1"));
        assert!(ep.veto.is_none());
        assert!(ep.unverified.is_empty(), "{:?}", ep.unverified);
    }

    /// Regression (issue 39): a `told-failback_proposed` marker a bucket
    /// writer made first silenced the failback's notice. Only one a listed
    /// observer signed says people were told.
    #[tokio::test]
    async fn regression_a_forged_told_marker_silenced_the_failback_notice() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a"]);
        let base = "payments/us-west-2/start";
        let ep0 = format!("{base}/0");
        let stranger = SecretKey::generate();
        create_once(
            &b,
            &stranger,
            &ep0,
            "told-failback_proposed",
            &Marker::new("a", Utc::now()),
        )
        .await
        .unwrap();
        let (_, ep) = current(&b, &trust, (base, 1), Utc::now()).await.unwrap();
        assert!(!ep.failback_proposed, "{ep:?}");
        assert!(
            ep.unverified.join("\n").contains("told-failback_proposed"),
            "named: {:?}",
            ep.unverified
        );
        let b = MemoryBoard::default();
        create_once(
            &b,
            &keys[0],
            &ep0,
            "told-failback_proposed",
            &Marker::new("a", Utc::now()),
        )
        .await
        .unwrap();
        let (_, ep) = current(&b, &trust, (base, 1), Utc::now()).await.unwrap();
        assert!(ep.failback_proposed, "{ep:?}");
    }

    /// A bucket writer cannot drop a veto by closing its episode, nor by
    /// writing under a later one.
    #[tokio::test]
    async fn a_forged_closed_marker_does_not_open_a_new_episode_without_the_veto() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a"]);
        let base = "payments/us-west-2/start";
        let ep0 = format!("{base}/0");
        create_veto(&b, Some(&keys[0]), &ep0, &veto("oncall"))
            .await
            .unwrap();
        let stranger = SecretKey::generate();
        create_once(
            &b,
            &stranger,
            &ep0,
            "closed-a",
            &Marker::new("a", Utc::now()),
        )
        .await
        .unwrap();
        b.put(
            &episode_key(&format!("{base}/7"), "proposal"),
            Bytes::from("{}"),
        )
        .await
        .unwrap();
        let (episode, ep) = current(&b, &trust, (base, 1), Utc::now()).await.unwrap();
        assert_eq!(episode, ep0);
        assert!(
            ep.veto
                .as_deref()
                .is_some_and(|v| v.contains("signed by observer a")),
            "{ep:?}"
        );
        assert!(!ep.closed);
        let shown = ep.unverified.join("\n");
        assert!(
            shown.contains(&format!("{ep0}/closed-a.json: signed by key")),
            "{shown}"
        );
        assert!(
            shown.contains(&format!(
                "{base}/7/proposal.json: under an episode that is not open"
            )),
            "{shown}"
        );
    }

    /// Issue 39: an observer's first sight of a proposal is kept on the
    /// board under its own signature. One forged under another's name, or
    /// signed by a key not listed, does not count (it would shorten the
    /// window that observer keeps), and is named.
    #[tokio::test]
    async fn first_sight_markers_count_only_under_their_own_observers_key() {
        let (keys, trust) = team(&["a", "b", "c"]);
        let b = MemoryBoard::default();
        let ep = "payments/us-west-2/start/0";
        let early = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let a_seen = format!("{SEEN}a");
        create_once(&b, &keys[0], ep, &a_seen, &Marker::new("a", early))
            .await
            .unwrap();
        // `c`'s key writes `b`'s first sight, and a stranger writes `c`'s.
        let b_seen = format!("{SEEN}b");
        create_once(&b, &keys[2], ep, &b_seen, &Marker::new("b", early))
            .await
            .unwrap();
        let c_seen = format!("{SEEN}c");
        let stranger = SecretKey::generate();
        create_once(&b, &stranger, ep, &c_seen, &Marker::new("c", early))
            .await
            .unwrap();
        let got = super::episode(&b, &trust, (ep, 2), Utc::now())
            .await
            .unwrap();
        assert_eq!(got.seen.keys().collect::<Vec<_>>(), vec!["a"], "{got:?}");
        assert_eq!(got.seen["a"], early);
        let shown = got.unverified.join("\n");
        assert!(shown.contains(&format!("{ep}/seen-b.json")), "{shown}");
        assert!(shown.contains(&format!("{ep}/seen-c.json")), "{shown}");
        assert!(
            !got.active,
            "a first sight alone makes nothing active: {got:?}"
        );
    }

    /// Regression (issue 39): one observer's signed `closed` marker closed
    /// the episode, and a person's veto was dropped with it: one stolen
    /// observer key could open a fresh episode, without the veto, in the
    /// middle of an outage. Closing now takes observers in `quorum`
    /// distinct places, each signing its own marker.
    #[tokio::test]
    async fn regression_one_observers_closed_marker_dropped_a_persons_veto() {
        let b = MemoryBoard::default();
        let (keys, mut trust) = team(&["a", "b", "c"]);
        trust.observers[0].place = Some("eu".into());
        trust.observers[1].place = Some("eu".into());
        trust.observers[2].place = Some("us".into());
        let base = "payments/us-west-2/start";
        let ep0 = format!("{base}/0");
        let person = SecretKey::generate();
        trust.people.push(person.public());
        create_veto(&b, Some(&person), &ep0, &veto("oncall"))
            .await
            .unwrap();
        // The compromised observer `a` closes, signed with its own key, and
        // writes a marker in `c`'s name too; then an older drctl's single
        // `closed`, also signed by `a`.
        close_episode(&b, &keys[0], &ep0, "a").await.unwrap();
        create_once(
            &b,
            &keys[0],
            &ep0,
            "closed-c",
            &Marker::new("a", Utc::now()),
        )
        .await
        .unwrap();
        create_once(&b, &keys[0], &ep0, "closed", &Marker::new("a", Utc::now()))
            .await
            .unwrap();
        let (episode, ep) = current(&b, &trust, (base, 2), Utc::now()).await.unwrap();
        assert_eq!(episode, ep0, "one observer closed it: {ep:?}");
        assert!(ep.veto.is_some(), "the veto stays: {ep:?}");
        assert_eq!(ep.closed_by, vec!["a".to_string()]);
        let shown = ep.unverified.join("\n");
        assert!(
            shown.contains("closed-c.json: says it is a's, under c's name"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("{ep0}/closed.json: one observer's")),
            "{shown}"
        );
        // `b` agrees, but `a` and `b` are one place: still open.
        close_episode(&b, &keys[1], &ep0, "b").await.unwrap();
        let (episode, ep) = current(&b, &trust, (base, 2), Utc::now()).await.unwrap();
        assert_eq!(episode, ep0);
        assert!(ep.veto.is_some() && !ep.closed, "{ep:?}");
        // A second place closes it (`c`'s marker takes the place of the
        // one `a` put there); the next outage is judged afresh.
        close_episode(&b, &keys[2], &ep0, "c").await.unwrap();
        let (episode, ep) = current(&b, &trust, (base, 2), Utc::now()).await.unwrap();
        assert_eq!(episode, format!("{base}/1"));
        assert!(ep.veto.is_none(), "{ep:?}");
        let closed = super::episode(&b, &trust, (&ep0, 2), Utc::now())
            .await
            .unwrap();
        assert!(closed.closed, "{closed:?}");
    }

    /// Review (issue 39): a first sight counts only for the proposal it
    /// names. A proposal put in the place of the first (by a writer of the
    /// board, or an observer's key) is seen anew: the first sights kept of
    /// the one it replaced are ignored, and named.
    #[tokio::test]
    async fn a_first_sight_of_a_replaced_proposal_does_not_count_for_the_new_one() {
        let (keys, trust) = team(&["a", "b"]);
        let b = MemoryBoard::default();
        let ep = "payments/us-west-2/start/0";
        let now = Utc::now();
        let proposal = |target: &str| Proposal {
            observer: "a".into(),
            created: now,
            region: "us-west-2".into(),
            target: target.into(),
            deadline: now,
            detected_at: now,
            quorum_at: now,
            votes: vec!["a".into(), "b".into()],
        };
        create_once(&b, &keys[0], ep, "proposal", &proposal("us-east-1"))
            .await
            .unwrap();
        let first = super::episode(&b, &trust, (ep, 2), now).await.unwrap();
        let digest = first.proposal_digest.clone().expect("a digest");
        let early = now - chrono::Duration::seconds(600);
        let seen_b = format!("{SEEN}b");
        create_once(
            &b,
            &keys[1],
            ep,
            &seen_b,
            &Marker::about("b", early, &digest),
        )
        .await
        .unwrap();
        let got = super::episode(&b, &trust, (ep, 2), now).await.unwrap();
        assert_eq!(got.seen.get("b"), Some(&early), "{got:?}");
        // Replaced: another target, the same place.
        let at = episode_key(ep, "proposal");
        b.put(&at, seal(Some(&keys[0]), &at, &proposal("eu-west-1")))
            .await
            .unwrap();
        let got = super::episode(&b, &trust, (ep, 2), now).await.unwrap();
        assert_ne!(got.proposal_digest.as_deref(), Some(digest.as_str()));
        assert!(got.seen.is_empty(), "{got:?}");
        let shown = got.unverified.join("\n");
        assert!(
            shown.contains("seen-b.json: about another proposal"),
            "{shown}"
        );
    }

    /// Issue 39: a `start-failed` marker only stops, so it is honoured
    /// whoever wrote it (a bucket writer could stop watch anyway), but one
    /// no listed observer signed is named, and does not make the episode
    /// active (it would help close an episode that nothing happened in).
    #[tokio::test]
    async fn an_unsigned_start_failed_marker_is_honoured_named_and_makes_nothing_active() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a", "b"]);
        let ep = "payments/us-west-2/start/0";
        let stranger = SecretKey::generate();
        let why = "the engine refused: lock held".to_string();
        create_once(&b, &stranger, ep, "start-failed", &why)
            .await
            .unwrap();
        let got = super::episode(&b, &trust, (ep, 2), Utc::now())
            .await
            .unwrap();
        assert_eq!(got.start_failed.as_deref(), Some(why.as_str()), "{got:?}");
        assert!(!got.active, "{got:?}");
        let shown = got.unverified.join("\n");
        assert!(
            shown.contains(&format!("{ep}/start-failed.json"))
                && shown.contains("honoured all the same: it only stops"),
            "{shown}"
        );
        // The same marker signed by a listed observer: honoured, active,
        // not named.
        let ep1 = "payments/us-west-2/start/1";
        create_once(&b, &keys[0], ep1, "start-failed", &why)
            .await
            .unwrap();
        let got = super::episode(&b, &trust, (ep1, 2), Utc::now())
            .await
            .unwrap();
        assert!(got.start_failed.is_some() && got.active, "{got:?}");
        assert!(got.unverified.is_empty(), "{got:?}");
    }

    /// Issue 39: a starter does not vote, so its closing marker, signed
    /// with its own key under its own name, does not count towards closing
    /// an episode (which would drop the episode's veto), and is named.
    #[tokio::test]
    async fn a_starters_closing_marker_does_not_count() {
        let b = MemoryBoard::default();
        let (keys, mut trust) = team(&["a", "b", "starter"]);
        trust.starters = vec!["starter".into()];
        let base = "payments/us-west-2/start";
        let ep0 = format!("{base}/0");
        create_veto(&b, Some(&keys[0]), &ep0, &veto("oncall"))
            .await
            .unwrap();
        close_episode(&b, &keys[0], &ep0, "a").await.unwrap();
        close_episode(&b, &keys[2], &ep0, "starter").await.unwrap();
        let ep = super::episode(&b, &trust, (&ep0, 2), Utc::now())
            .await
            .unwrap();
        assert_eq!(ep.closed_by, vec!["a".to_string()], "{ep:?}");
        assert!(!ep.closed && ep.veto.is_some(), "{ep:?}");
        let shown = ep.unverified.join("\n");
        assert!(
            shown
                .contains("closed-starter.json: starter is a starter, and a starter does not vote"),
            "{shown}"
        );
        close_episode(&b, &keys[1], &ep0, "b").await.unwrap();
        let ep = super::episode(&b, &trust, (&ep0, 2), Utc::now())
            .await
            .unwrap();
        assert!(ep.closed, "two voting observers close it: {ep:?}");
    }

    /// Issue 39: with a starter named, a proposal or start claim counts
    /// only when the starter made it: one observer's key (its host
    /// compromised) cannot propose or claim a failover, and a starter's
    /// report is no vote.
    #[tokio::test]
    async fn with_a_starter_named_an_observer_cannot_propose_or_vote_as_it() {
        let b = MemoryBoard::default();
        let (keys, mut trust) = team(&["a", "starter"]);
        trust.starters = vec!["starter".into()];
        let now = Utc::now();
        let proposal = |by: &str| Proposal {
            observer: by.into(),
            created: now,
            region: "us-west-2".into(),
            target: "us-east-1".into(),
            deadline: now,
            detected_at: now,
            quorum_at: now,
            votes: vec!["a".into()],
        };
        create_once(&b, &keys[0], "p/r/start/0", "proposal", &proposal("a"))
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/0", 1), now).await.unwrap();
        assert!(ep.proposal.is_none(), "{ep:?}");
        assert!(
            (ep.false_proposal.as_deref())
                .is_some_and(|w| w.contains("may not propose or start a failover")),
            "{ep:?}"
        );
        assert!(!ep.active);
        let p = proposal("starter");
        create_once(&b, &keys[1], "p/r/start/1", "proposal", &p)
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/1", 1), now).await.unwrap();
        assert_eq!(ep.proposal.as_ref(), Some(&p));
        // The starter's own report does not count as a vote.
        put_report(&b, &keys[1], &report("starter")).await.unwrap();
        put_report(&b, &keys[0], &report("a")).await.unwrap();
        let (counted, rejected) = reports(&b, &trust, "payments").await.unwrap();
        let names: Vec<&str> = counted.iter().map(|r| r.observer.as_str()).collect();
        assert_eq!(names, ["a"]);
        assert!(
            rejected.join("\n").contains("does not vote"),
            "{rejected:?}"
        );
    }

    #[tokio::test]
    async fn a_signed_proposal_copied_to_another_episode_does_not_verify() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a"]);
        let now = Utc::now();
        let p = Proposal {
            observer: "a".into(),
            created: now,
            region: "us-west-2".into(),
            target: "us-east-1".into(),
            deadline: now,
            detected_at: now,
            quorum_at: now,
            votes: vec!["a".into()],
        };
        create_once(&b, &keys[0], "p/r/start/0", "proposal", &p)
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/0", 1), now).await.unwrap();
        assert_eq!(ep.proposal.as_ref(), Some(&p));
        let body = b
            .get(&episode_key("p/r/start/0", "proposal"))
            .await
            .unwrap()
            .unwrap();
        b.put(&episode_key("p/r/start/1", "proposal"), body)
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/1", 1), now).await.unwrap();
        assert!(ep.proposal.is_none());
        assert!(
            ep.false_proposal
                .as_deref()
                .is_some_and(|w| w.starts_with("bad signature: a's key")),
            "{ep:?}"
        );
        assert!(
            !ep.active,
            "what does not verify does not make an episode to close"
        );
    }

    #[tokio::test]
    async fn a_veto_counts_signed_or_not_and_says_which() {
        let b = MemoryBoard::default();
        let (_, mut trust) = team(&["a"]);
        let run_key = SecretKey::generate();
        trust.people = vec![run_key.public()];
        let now = Utc::now();
        create_veto(&b, Some(&run_key), "p/r/start/0", &veto("alice@ops"))
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/0", 1), now).await.unwrap();
        let v = ep.veto.unwrap();
        assert!(
            v.contains(&format!("signed by the run key {}", run_key.public().id())),
            "{v}"
        );
        assert!(ep.unverified.is_empty());
        // Unsigned (a person with no key): honoured, and shown unverified.
        create_veto(&b, None, "p/r/start/1", &veto("bob@laptop"))
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/1", 1), now).await.unwrap();
        assert!(ep.veto.unwrap().contains("unverified: not signed"));
        assert_eq!(
            ep.unverified,
            [
                "episodes/p/r/start/1/veto.json: not signed; honoured all the same: a veto only stops"
            ]
        );
        // The run key signs vetoes only.
        let claim = Claim {
            observer: "a".into(),
            at: now,
            target: "us-east-1".into(),
        };
        create_once(&b, &run_key, "p/r/start/2", "start", &claim)
            .await
            .unwrap();
        let ep = episode(&b, &trust, ("p/r/start/2", 1), now).await.unwrap();
        assert!(ep.claimed_by.is_none());
        assert!(ep.false_claim.unwrap().contains("may sign vetoes only"));
    }

    #[tokio::test]
    async fn velocity_slots_are_shared_by_an_episode_and_run_out() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a", "b"]);
        let w = std::time::Duration::from_secs(3600);
        let now = Utc::now();
        let claim =
            |k: usize, max, ep: &'static str| claim_slot(&b, &keys[k], &trust, w, max, ep, now);
        assert!(claim(0, 1, "p/a/start/0").await.unwrap());
        assert!(
            claim(1, 1, "p/a/start/0").await.unwrap(),
            "the same episode shares its slot"
        );
        assert!(
            !claim(1, 1, "q/a/start/0").await.unwrap(),
            "the cap is reached"
        );
        assert!(!claim(0, 0, "r/a/start/0").await.unwrap());
    }

    #[tokio::test]
    async fn a_forged_velocity_slot_naming_the_episode_is_not_its_slot() {
        let b = MemoryBoard::default();
        let (keys, trust) = team(&["a"]);
        let w = std::time::Duration::from_secs(3600);
        let now = Utc::now();
        let bucket = now.timestamp().div_euclid(3600);
        let at = format!("velocity/{bucket}/0.json");
        let forged = Slot {
            episode: "p/a/start/0".into(),
            at: now,
        };
        b.put(&at, seal(Some(&SecretKey::generate()), &at, &forged))
            .await
            .unwrap();
        assert!(
            !claim_slot(&b, &keys[0], &trust, w, 1, "p/a/start/0", now)
                .await
                .unwrap(),
            "the forged slot is taken, and not the episode's"
        );
    }
}
