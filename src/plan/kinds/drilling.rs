//! The data role's drill copy: what the one generic drill step
//! (`steps::drill_copy`) asks of a data kind a shadow drill rehearses on a
//! copy of its data (a temporary RDS replica, promoted; a clone of an
//! Aurora global database's secondary, with a writer added; a Cloud SQL
//! clone of the primary at its latest recovery time).
//!
//! # Why a role
//!
//! Each kind's drill was a step kind of its own, and each kept only part
//! of the promise a drill makes: what it finds that is not its drill's is
//! refused by name, a copy found made already (a re-run) is not made
//! again, every call is fenced, the measured RPO says what it was read
//! from or that it is unknown, the copy is removed only when it is the
//! drill's, and a sweep finds it without the journal. Those are the
//! step's, written once; a kind answers only how its copy is read, made,
//! made writable, listed and deleted (every method is the kind's to
//! answer: none has a default).
//!
//! A copy is addressed as the kind addresses its copies (`project/instance`
//! for Cloud SQL) in the region [`Drilling::place`] gives; its name comes
//! from the drill's run (`steps::drill_names`), its marks are the drill's
//! tags, both passed in: the role never makes up a drill's name.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::cloud::{CloudError, Clouds, LagReading};

/// Whose lag is a drill's measured RPO, and when it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagOf {
    /// The copy's own, once it is made and before it is made writable
    /// (a temporary replica's lag behind the primary it replicates).
    Copy,
    /// The copied standby's, right before the copy is made (the copy holds
    /// what the standby had).
    Source,
    /// None: the copy is made at a point in time, and the RPO is the gap
    /// from that point to the request ([`Made::point`]).
    Point,
}

/// What a data kind's drill copies are, in words and calls: the same for
/// every copy of the kind, so one value ([`Drilling::about`]).
#[derive(Debug, Clone, Copy)]
pub struct DrillAbout {
    /// What the copy is called (`temporary replica`, `drill copy`).
    pub noun: &'static str,
    /// What the step does, for its description: `{source}`,
    /// `{source_region}`, `{region}` and `{standby}` stand for the copied
    /// resource, its region, the drill's target and the target's standby.
    pub describe: &'static str,
    /// The call that makes the copy, as fences and previews name it.
    pub make_call: &'static str,
    /// What the made copy is, for the preview.
    pub made: &'static str,
    /// The call that makes the copy writable (`None`: made writable).
    pub finish_call: Option<&'static str>,
    /// What the finished copy is, for the preview.
    pub finished: &'static str,
    /// What the kind creates to make the copy writable, when it creates
    /// anything (an Aurora copy's `writer` instance).
    pub makes: Option<&'static str>,
    /// The call that deletes it.
    pub delete_call: &'static str,
    /// The call that reads it, as a removal's sentences name it
    /// (`DescribeDBInstances`).
    pub read_call: &'static str,
    /// What a delete does (`deleted with its instances`).
    pub deleted: &'static str,
    /// The command that deletes a copy by hand, for when cleanup cannot:
    /// `{region}`, `{address}`, `{project}` and `{name}` stand for its
    /// region, its address and the address's parts (`project/name`).
    pub manual: &'static str,
    /// Whose lag the RPO is.
    pub lag_of: LagOf,
    /// The call that reads that lag (empty for [`LagOf::Point`]).
    pub lag_call: &'static str,
    /// Whether the copy is made from the target's standby (else from the
    /// home copy).
    pub from_standby: bool,
    /// What the RPO was measured from, in words: `{copy}`, `{source}`,
    /// `{region}` and `{point}` stand for the drill's copy, what it was
    /// made from, its region and the point it was made at.
    pub measured: &'static str,
    /// Whether the copy carries the drill's tags (Cloud SQL keeps none a
    /// drill writes: its copy is the drill's by its name alone).
    pub tagged: bool,
    /// The calls a drill copy makes once.
    pub calls: &'static [&'static str],
    /// The model's slow operations it waits through.
    pub waits: &'static [&'static str],
    /// The call its waits poll.
    pub polls: &'static str,
}

/// One resource's drill, as its step records it: its copy in the home
/// region and in the drill's target, each addressed as the kind addresses
/// them.
#[derive(Debug, Clone, Copy)]
pub struct Shadow<'a> {
    /// The home region.
    pub home_region: &'a str,
    /// The home copy (the primary, or the home member).
    pub home: &'a str,
    /// The drill's target region.
    pub region: &'a str,
    /// The standby copy in the target (only read).
    pub standby: &'a str,
    /// Where a copy made in the target is placed, as the plan says (a
    /// backup standby's subnet group and class; empty: as the kind makes
    /// it).
    pub placement: &'a super::restoring::Placement,
}

/// Where a drill copy stands, as the kind reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyStage {
    /// Being made (`operation`: the provider's, when the kind's calls
    /// answer one).
    Making {
        /// The operation making it.
        operation: Option<String>,
    },
    /// Made, not writable yet: the kind's finishing call is due.
    Made,
    /// Being made writable.
    Finishing,
    /// Writable: the drill's copy serves writes.
    Writable {
        /// Its endpoint, when it has one.
        endpoint: Option<String>,
        /// Its port, when the provider says it.
        port: Option<i32>,
    },
    /// It can never serve as made, in words (a clone the provider joined
    /// to its source's global cluster).
    Broken(String),
}

/// A drill copy as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySeen {
    /// Its tags (a drill's name its run; none for a kind whose copies
    /// carry no tags: [`DrillAbout::tagged`]).
    pub tags: BTreeMap<String, String>,
    /// Its provider status.
    pub status: String,
    /// Where it stands.
    pub stage: CopyStage,
}

/// A source as read: what a preflight says of it, or why it cannot be
/// copied and what to do.
pub type Refusable = Result<String, (String, String)>;

/// What making a copy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// When the provider was asked, stamped right before the call (after
    /// any read the kind makes first: a point read then is never later
    /// than the request, so a gap measured to it is never too small).
    pub asked: DateTime<Utc>,
    /// The point in time it holds, when made at one ([`LagOf::Point`]).
    pub point: Option<DateTime<Utc>>,
    /// The provider's operation making it, when the call answers one.
    pub operation: Option<String>,
    /// What it was restored from, when it was restored from backups (a
    /// backup standby's: `copied snapshot ...`): a drill that made one is
    /// a restore test.
    pub from: Option<String>,
}

/// A copy a listing found, with the tags a drill's finder reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its region.
    pub region: String,
    /// Its address, as the kind addresses copies.
    pub address: String,
    /// Its name alone (what a drill named it).
    pub name: String,
    /// Its tags (none for a kind whose copies carry none).
    pub tags: BTreeMap<String, String>,
}

/// What one listing found, and where it could not look.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The copies listed.
    pub copies: Vec<Listed>,
    /// The places the provider could not list (a region Cloud SQL could
    /// not reach), never taken for "none there".
    pub unreachable: Vec<CloudError>,
}

impl Listing {
    /// The copies of a listing that reached everywhere, in `region`, by
    /// their names (which are their addresses) and tags.
    pub fn tagged(
        region: &str,
        listed: impl IntoIterator<Item = (String, BTreeMap<String, String>)>,
    ) -> Self {
        let copies = (listed.into_iter())
            .map(|(name, tags)| Listed {
                region: region.to_string(),
                address: name.clone(),
                name,
                tags,
            })
            .collect();
        Self {
            copies,
            unreachable: Vec::new(),
        }
    }
}

/// Whether `theirs` carries the drill's run tag that `ours` carries (the
/// tag whose key ends in `drill-run`, as `steps::drill_names` writes it):
/// a resource another drill, or no drill, made is never taken for ours.
pub fn same_drill(ours: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> bool {
    let mut runs = ours
        .iter()
        .filter(|(k, _)| k.ends_with("drill-run"))
        .peekable();
    runs.peek().is_some() && runs.all(|(k, v)| theirs.get(k) == Some(v))
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// Asked for; the caller reads until it is gone.
    Asked,
    /// Gone before the delete took it, in words.
    Gone(String),
    /// Not done, in words (an operation that did not end in time).
    Failed(String),
}

/// The data role's drill copy on one kind: each method is the kind's to
/// answer.
#[async_trait]
pub trait Drilling: Sync {
    /// What the kind's drill copies are, in words and calls.
    fn about(&self) -> &'static DrillAbout;
    /// The name a drill's copy takes after (the standby's name alone).
    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str;
    /// Where the copy named `name` lives and its address: the region and
    /// the address as the kind addresses copies.
    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String);
    /// Reads what the copy is made from: `Ok(Ok(said))` when it can be
    /// copied, `Ok(Err((why, hint)))` when it cannot, and what to do.
    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError>;
    /// Reads the copy at `address` (`Ok(None)`: it does not exist, nor is
    /// it being made).
    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError>;
    /// The lag [`DrillAbout::lag_of`] names, over `window` (never asked
    /// of a kind whose RPO is a point: [`LagOf::Point`]).
    async fn lag(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        copy: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError>;
    /// Makes the copy `(region, address)`, tagged `tags` where the kind
    /// tags, stamping the request right before the provider's call.
    async fn make(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        (region, address): (&str, &str),
        tags: &BTreeMap<String, String>,
    ) -> Result<Made, CloudError>;
    /// Makes the made copy writable; `instance` names what the kind
    /// creates for it, when it creates anything (an Aurora copy's writer).
    async fn finish(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        instance: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError>;
    /// How its writes are answered: at once, or with a provider
    /// operation the step follows until it is done ([`super::Answers`]).
    fn answers(&self) -> super::Answers<'_>;
    /// The listing a drill's copies of `s` are in, as a key (a sweep
    /// lists each once for every step that asks).
    fn listing(&self, s: &Shadow<'_>) -> String;
    /// Lists the listing [`Drilling::listing`] names.
    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError>;
    /// Deletes the copy (with what it holds), waiting first for what the
    /// provider will not delete under (`deadline`, polling by `poll`).
    async fn delete(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        poll: (Duration, Duration),
        deadline: Instant,
    ) -> Result<Deleted, CloudError>;
}
