//! What a watcher does once it has judged a round: tell people, start a
//! failover when its mode and the quorum allow, or stop at the cap. Apart
//! from the round's reading and judging (`mod.rs`), so that the one place
//! that acts on a verdict is small enough to read whole.

use super::*;

impl Watcher {
    /// When this observer first saw the episode's proposal: its own signed
    /// `seen-<observer>` marker on the board ([`shared::SEEN`]), written
    /// with `now` when there is none (or none that verifies as its own).
    /// A marker it cannot write leaves its first sight at `now`, which only
    /// moves its start later.
    pub(super) async fn first_sight(&self, seen: &Shared, now: DateTime<Utc>) -> DateTime<Utc> {
        if let Some(at) = seen.board.seen.get(&self.cfg.observer) {
            return *at;
        }
        if let Some(digest) = &seen.board.proposal_digest {
            self.keep_first_sight(&seen.episode, digest, now).await;
        }
        now
    }

    /// Writes this observer's first sight of `episode`'s proposal (`digest`
    /// names it), `at`: created once, or written over what holds its place
    /// and is not its own first sight of this proposal (a bucket writer's,
    /// or its own of a proposal since replaced).
    async fn keep_first_sight(&self, episode: &str, digest: &str, at: DateTime<Utc>) {
        let board = self.state.board.clone();
        let (me, key) = (&self.cfg.observer, &self.cfg.key);
        let name = format!("{}{me}", shared::SEEN);
        let mark = shared::Marker::about(me, at, digest);
        let written = match shared::create_once(board.as_ref(), key, episode, &name, &mark).await {
            Ok(false) => shared::replace_marker(board.as_ref(), key, episode, &name, &mark).await,
            other => other.map(|_| ()),
        };
        if let Err(e) = written {
            tracing::warn!(
                "watch: {e}: this observer's first sight of {episode}'s proposal is not kept on the board; it counts from this round"
            );
        }
    }

    /// Tells people once, from a notice journal of the episode and decision
    /// (and `observer`: the suspect observer, or the proposal's digest).
    ///
    /// Told once per episode (and suspect observer): the marker goes first,
    /// so that the observers reaching the same decision every round do not
    /// each send it again; the notice journal then keeps it until delivered
    /// (`drctl notify flush`). The marker names that journal. A marker
    /// found in its place counts only when a listed observer signed it and
    /// the journal it names is authentic and holds this notification
    /// ([`crate::notify::holding`]); otherwise people are told all the
    /// same, once, and this observer's marker takes its place, naming
    /// where the notice was journaled (a journal squatted at the notice's
    /// id by a writer of the state is passed over: `tell_once`).
    async fn tell(&self, plan: &Plan, episode: &str, v: &Verdict, observer: Option<&str>) {
        let marker = match observer {
            Some(o) => format!("told-{}-{o}", v.decision),
            None => format!("told-{}", v.decision),
        };
        let id = tell::journal_id(episode, v.decision, observer);
        let board = self.state.board.as_ref();
        let key = &self.cfg.key;
        let mark = shared::Marker::about(&self.cfg.observer, self.now, &id);
        // Without a notifier nothing is journaled, and the marker alone
        // says people were told.
        let event = (self.hub.as_ref()).and_then(|_| tell::event(plan, v, episode, &id, self.now));
        let created = match shared::create_once(board, key, episode, &marker, &mark).await {
            Ok(created) => created,
            Err(e) => {
                tracing::warn!("watch: {e}");
                return;
            }
        };
        if !created
            && self
                .told_before(episode, &marker, &id, event.as_ref())
                .await
        {
            return;
        }
        let (Some(hub), Some(event)) = (&self.hub, event) else {
            // No notice to journal: our marker in the place of one no
            // listed observer signed.
            if !created
                && let Err(e) = shared::replace_marker(board, key, episode, &marker, &mark).await
            {
                tracing::warn!("watch: cannot replace the marker {marker}: {e}");
            }
            return;
        };
        let region = v
            .target
            .clone()
            .or_else(|| {
                plan.regions()
                    .iter()
                    .find(|r| Some(*r) != v.region.as_ref())
                    .cloned()
            })
            .unwrap_or_else(|| plan.home().to_string());
        let plans = std::slice::from_ref(plan);
        let told = crate::notify::tell_once(hub, &self.state.notices, &id, plans, &region, event);
        match told.await {
            Ok(Some(told)) if !created || told.journal != id => {
                let mark = shared::Marker::about(&self.cfg.observer, self.now, &told.journal);
                if let Err(e) = shared::replace_marker(board, key, episode, &marker, &mark).await {
                    tracing::warn!("watch: cannot replace the marker {marker}: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("watch: cannot journal the notification {id}: {e}"),
        }
    }

    /// What a notice of decision `what` is about besides its episode: the
    /// suspect observers, or the proposal (its digest: one put in the place
    /// of another is told anew).
    fn told_of(&self, plan: &Plan, what: &str, v: &Verdict) -> Option<String> {
        match what {
            "suspect" => Some(v.tally.down.join("+")),
            "proposed" => self.proposal_digests.get(plan.name()).cloned(),
            _ => None,
        }
    }

    /// Whether the marker `marker` found in this episode's place says
    /// people were told of `event` (the notice `id`): a listed observer's
    /// (with observers listed; any marker without), naming a notice journal
    /// (its own id when it names none) that is authentic and holds the
    /// notification. Without a notifier, the marker alone says it. Each
    /// "no" is said, and people are told all the same: a marker made ahead
    /// by a bucket writer, one whose journal was never written, or one
    /// pointing at a journal a bucket writer squatted.
    async fn told_before(
        &self,
        episode: &str,
        marker: &str,
        id: &str,
        event: Option<&crate::journal::notice::CloudEvent>,
    ) -> bool {
        let board = self.state.board.as_ref();
        let found = match shared::marker_signed(board, &self.cfg.trust, episode, marker).await {
            Ok(found) => found,
            // Unread: tell (the notice is sent once whoever tells).
            Err(e) => {
                tracing::warn!(
                    episode,
                    marker,
                    "watch: the marker cannot be read ({e}): telling people all the same"
                );
                return false;
            }
        };
        let (read, signed) = found;
        if let Err(why) = signed.as_ref()
            && !self.cfg.trust.observers.is_empty()
        {
            tracing::warn!(
                episode,
                marker,
                "watch: the marker that would hold this notice is not a listed observer's ({why}): telling people all the same"
            );
            return false;
        }
        let Some(event) = event else {
            return true;
        };
        let journal = read.and_then(|m| m.about).unwrap_or_else(|| id.to_string());
        match crate::notify::holding(self.state.notices.as_ref(), &journal, &event.id).await {
            Ok(_) => true,
            Err(why) => {
                tracing::warn!(
                    episode,
                    marker,
                    "watch: a marker holds this notice, but notice journal {journal} does not ({why}): telling people"
                );
                false
            }
        }
    }

    /// Acts on a decision: what it did, in a line.
    pub(super) async fn act(
        &mut self,
        plan: &Plan,
        hist: &PlanHistory,
        episode: &str,
        v: &Verdict,
    ) -> (Option<String>, Option<Verdict>) {
        let board = self.state.board.clone();
        match &v.next {
            Next::Nothing => (None, None),
            Next::Tell(what) => {
                if *what == "capped" {
                    let mark = shared::Marker::new(&self.cfg.observer, self.now);
                    let key = &self.cfg.key;
                    let _ =
                        shared::create_once(board.as_ref(), key, episode, "capped", &mark).await;
                }
                let about = self.told_of(plan, what, v);
                self.tell(plan, episode, v, about.as_deref()).await;
                (Some(format!("told: {}", v.decision)), None)
            }
            Next::Propose(p) => {
                let p = Proposal {
                    observer: self.cfg.observer.clone(),
                    ..p.clone()
                };
                match shared::create_once(board.as_ref(), &self.cfg.key, episode, "proposal", &p)
                    .await
                {
                    Ok(true) => {
                        let at = shared::episode_key(episode, "proposal");
                        let stored = shared::seal(Some(&self.cfg.key), &at, &p);
                        let digest = shared::proposal_digest(&stored);
                        self.keep_first_sight(episode, &digest, p.created).await;
                        self.tell(plan, episode, v, Some(&digest)).await;
                        let did = format!(
                            "proposed the failover to {} (starts at {})",
                            p.target, p.deadline
                        );
                        (Some(did), None)
                    }
                    Ok(false) => (None, None),
                    Err(e) => {
                        tracing::warn!("watch: {e}");
                        (None, None)
                    }
                }
            }
            Next::Start(p) => self.start(plan, hist, episode, v, p).await,
            Next::Release(why) => {
                // Every observer that finds the claim orphaned writes its
                // reason: the first write stands, and the told-once marker
                // keeps the notification single.
                // Named and stamped, so that two observers releasing it at
                // once never both read the marker back as their own.
                let mark = format!(
                    "{why} (released by observer {} at {})",
                    self.cfg.observer,
                    self.now.to_rfc3339()
                );
                let key = &self.cfg.key;
                match shared::create_once(board.as_ref(), key, episode, "start-failed", &mark).await
                {
                    Ok(released) => {
                        self.tell(plan, episode, v, None).await;
                        let did = format!("released the start claim: {why}");
                        (released.then_some(did), None)
                    }
                    Err(e) => {
                        tracing::warn!("watch: cannot release the start claim of {episode}: {e}");
                        (None, None)
                    }
                }
            }
        }
    }

    /// Starts the failover of a proposal whose time has come: claims the
    /// start on the board ([`Self::claim_start`]), runs the failover, and
    /// journals what came of it.
    async fn start(
        &mut self,
        plan: &Plan,
        hist: &PlanHistory,
        episode: &str,
        v: &Verdict,
        p: &Proposal,
    ) -> (Option<String>, Option<Verdict>) {
        if let Some(stopped) = self.claim_start(plan, episode, v, p).await {
            return stopped;
        }
        let origin = self.origin(plan, hist, episode, p);
        self.tell(plan, episode, v, None).await;
        let result = self.starter.start(plan, &p.target, origin).await;
        if let Err(e) = &result {
            // Recorded on the board: every observer then says so (and tells
            // people once) instead of showing the episode as started.
            let board = self.state.board.clone();
            let key = &self.cfg.key;
            let _ = shared::create_once(board.as_ref(), key, episode, "start-failed", e).await;
        }
        let (run_id, why) = match &result {
            Ok(run) => (
                Some(run.clone()),
                format!("started the failover to {}: {run}", p.target),
            ),
            Err(e) => (
                None,
                format!("could not start the failover to {}: {e}", p.target),
            ),
        };
        let started = Verdict {
            decision: WatchDecision::Started,
            why: why.clone(),
            region: Some(hist.active.clone()),
            target: Some(p.target.clone()),
            deadline: None,
            ..v.clone()
        };
        let fact = decided(episode, &started, Some(p.detected_at), run_id);
        self.journal(plan.name(), fact).await;
        (Some(why), None)
    }

    /// Settles on the board that this observer starts `episode`'s failover:
    /// the proposal kept as the episode's record, a slot under the velocity
    /// cap, the start claim, and no veto since the round's read. `Some`:
    /// what the round says instead, when it must not start.
    async fn claim_start(
        &mut self,
        plan: &Plan,
        episode: &str,
        v: &Verdict,
        p: &Proposal,
    ) -> Option<(Option<String>, Option<Verdict>)> {
        let board = self.state.board.clone();
        let now = self.now;
        // The proposal stays the episode's record of the decision (auto
        // mode writes one with a deadline of now).
        let proposal = Proposal {
            observer: self.cfg.observer.clone(),
            ..p.clone()
        };
        let key = &self.cfg.key.clone();
        let _ = shared::create_once(board.as_ref(), key, episode, "proposal", &proposal).await;
        // The velocity cap, settled on the board: the journals' count (in
        // `decide`) may not yet show a start another observer (or this one,
        // for another plan, this round) just made.
        let cfg = &self.cfg;
        let (window, max) = (cfg.velocity_window, cfg.max_failovers);
        match shared::claim_slot(board.as_ref(), key, &cfg.trust, window, max, episode, now).await {
            Ok(true) => {}
            Ok(false) => {
                let capped = self.capped(plan, episode, v, p).await;
                return Some((Some(capped.why.clone()), Some(capped)));
            }
            Err(e) => {
                tracing::warn!("watch: cannot claim a velocity slot for {episode}: {e}");
                return Some((None, None));
            }
        }
        let claim = shared::Claim {
            observer: self.cfg.observer.clone(),
            at: now,
            target: p.target.clone(),
        };
        match shared::create_once(board.as_ref(), key, episode, "start", &claim).await {
            Ok(true) => {}
            Ok(false) => return Some((None, None)),
            Err(e) => {
                tracing::warn!("watch: cannot claim the start of {episode}: {e}");
                return Some((None, None));
            }
        }
        // A veto that came in between this round's read and the claim
        // still wins: the claim stays, marked as not started.
        let quorum = plan.watch_rules().quorum as usize;
        if let Ok(ep) =
            shared::episode(board.as_ref(), &self.cfg.trust, (episode, quorum), now).await
            && let Some(veto) = ep.veto
        {
            let why = format!("vetoed just before it started ({veto})");
            let _ = shared::create_once(board.as_ref(), key, episode, "start-failed", &why).await;
            return Some((Some(why), None));
        }
        None
    }

    /// Where a failover this observer starts came from, for its journal
    /// and its report's waterfall.
    fn origin(&self, plan: &Plan, hist: &PlanHistory, episode: &str, p: &Proposal) -> WatchOrigin {
        WatchOrigin {
            observer: self.cfg.observer.clone(),
            journal: self.journal_id().unwrap_or_default().to_string(),
            episode: episode.to_string(),
            region: hist.active.clone(),
            mode: plan.watch_rules().mode.as_str().to_string(),
            detected_at: p.detected_at,
            quorum_at: p.quorum_at,
            // The round's time was taken before the reports were read: the
            // last vote of the quorum may be stamped after it (another
            // observer wrote it meanwhile). A decision never precedes its
            // quorum (the waterfall's "decide" phase would be negative).
            decided_at: self.now.max(p.quorum_at),
            votes: p.votes.clone(),
        }
    }

    /// The velocity cap's slots are taken: the start becomes a proposal
    /// nobody starts by itself (journaled, told once).
    async fn capped(&mut self, plan: &Plan, episode: &str, v: &Verdict, p: &Proposal) -> Verdict {
        let capped = Verdict {
            decision: WatchDecision::Capped,
            why: format!(
                "{}; but the velocity cap ({} failover(s) per {}) is reached: proposed, not started",
                v.why,
                self.cfg.max_failovers,
                crate::plan::duration::format_duration(self.cfg.velocity_window)
            ),
            next: Next::Nothing,
            ..v.clone()
        };
        self.journal(
            plan.name(),
            decided(
                episode,
                &Verdict {
                    deadline: None,
                    ..capped.clone()
                },
                Some(p.detected_at),
                None,
            ),
        )
        .await;
        self.said.insert(
            plan.name().to_string(),
            (WatchDecision::Capped, episode.to_string()),
        );
        let board = self.state.board.clone();
        let mark = shared::Marker::new(&self.cfg.observer, self.now);
        let key = &self.cfg.key;
        let _ = shared::create_once(board.as_ref(), key, episode, "capped", &mark).await;
        self.tell(plan, episode, &capped, None).await;
        capped
    }
}
