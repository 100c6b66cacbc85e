//! Fencing at the wire: a mutating call is sent only while the lease of the
//! plan it is made for is still certainly ours.
//!
//! Why here and not (only) in the steps: a step that checks its lease and
//! then calls the cloud leaves a window between the check and the bytes on
//! the wire. A process paused in that window (SIGSTOP, a VM migration, a
//! long GC of the host) wakes up after another machine took its lease over
//! and still sends its stale call. The check therefore belongs immediately
//! before each *transmission attempt* of every mutating call, retries
//! included: the AWS adapters install [`check_before_transmit`] as an SDK
//! interceptor (`read_before_transmit`) on every client, and the GCS adapter
//! calls it right before each upload or delete.
//!
//! What a call is made for is a [`WireFence`] in scope: the engine's executor
//! runs each step inside its plan's fence ([`WireFence::guard`]), and the
//! Route 53 queue sends a batch of several plans inside the fence of all of
//! them ([`WireFence::all`]), after dropping any plan already fenced. The
//! check itself is local and synchronous (a monotonic deadline, and whether
//! a renewal found the lease taken): it costs nothing and cannot hang.
//!
//! Outside any fence (a command that holds no lease, a drill's cleanup of
//! its own temporary resources, notifications) calls go out unchecked.
//! Reads are never fenced; any operation not known to be a read is treated
//! as a write (fail closed).

use std::sync::Arc;

/// Why a call was not sent: the lease it was made under is not certainly
/// ours any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not sent: {detail}")]
pub struct Fenced {
    /// Why the lease is not ours (lost at a renewal, taken over, past the
    /// local deadline).
    pub detail: String,
}

/// One check of the leases a call is made under: `Err(why)` when any of
/// them is not certainly ours.
type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// How long the leases a call is made under are certainly ours (`None`:
/// no limit known).
type Left = Arc<dyn Fn() -> Option<std::time::Duration> + Send + Sync>;

/// The leases a task's mutating calls are made under.
#[derive(Clone)]
pub struct WireFence {
    checks: Vec<Check>,
    lefts: Vec<Left>,
}

impl std::fmt::Debug for WireFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireFence")
            .field("checks", &self.checks.len())
            .finish()
    }
}

tokio::task_local! {
    static FENCE: WireFence;
}

impl WireFence {
    /// A fence that asks `check` before each transmission.
    pub fn new(check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self {
            checks: vec![Arc::new(check)],
            lefts: Vec::new(),
        }
    }

    /// This fence, knowing how long its lease is certainly ours (`left`):
    /// an adapter that can bound a request by it ([`Self::time_left`])
    /// abandons a fenced write still under way when the lease may end.
    pub fn bounded(
        mut self,
        left: impl Fn() -> Option<std::time::Duration> + Send + Sync + 'static,
    ) -> Self {
        self.lefts.push(Arc::new(left));
        self
    }

    /// How long every lease of this fence is certainly ours, where known.
    pub fn time_left(&self) -> Option<std::time::Duration> {
        self.lefts.iter().filter_map(|l| l()).min()
    }

    /// A fence that holds when every one of `fences` holds (a batch carrying
    /// several plans' changes).
    pub fn all<'a>(fences: impl IntoIterator<Item = &'a WireFence>) -> Self {
        let fences: Vec<&WireFence> = fences.into_iter().collect();
        Self {
            checks: (fences.iter())
                .flat_map(|f| f.checks.iter().cloned())
                .collect(),
            lefts: (fences.iter())
                .flat_map(|f| f.lefts.iter().cloned())
                .collect(),
        }
    }

    /// The fence of the task this runs in, if any.
    pub fn current() -> Option<Self> {
        FENCE.try_with(Clone::clone).ok()
    }

    /// Checks it now.
    pub fn check(&self) -> Result<(), Fenced> {
        self.checks
            .iter()
            .try_for_each(|c| c())
            .map_err(|detail| Fenced { detail })
    }

    /// Runs `f` with its mutating calls fenced by this fence.
    pub async fn guard<F: std::future::Future>(self, f: F) -> F::Output {
        FENCE.scope(self, f).await
    }
}

/// Whether `operation` (the API's name, `DescribeDBInstances`) only reads.
/// Every name not known to read is a write: an unknown operation is fenced.
pub fn is_read(operation: &str) -> bool {
    // HTTP methods, as the in-memory fake labels its probes.
    if matches!(operation, "GET" | "HEAD") {
        return true;
    }
    const READS: [&str; 6] = ["Describe", "List", "Get", "Head", "Test", "Lookup"];
    let reads = |op: &str, prefixes: &[&str]| {
        prefixes.iter().any(|p| {
            op.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_uppercase()))
        })
    };
    // Google's REST methods, as labels name them: `instances.get`,
    // `operations.list`, `instances.getLatestRecoveryTime`.
    if let Some((_, method)) = operation.rsplit_once('.') {
        return reads(method, &["get", "list"]);
    }
    reads(operation, &READS)
}

/// The check made right before a transmission of `operation`: `Ok` for a
/// read or outside any fence; otherwise the fence in scope decides.
pub fn check_before_transmit(operation: &str) -> Result<(), Fenced> {
    if is_read(operation) {
        return Ok(());
    }
    match WireFence::current() {
        Some(fence) => fence.check(),
        None => Ok(()),
    }
}

/// How long the fence in scope is certainly ours, for a write
/// (`operation` not a read); `None` outside any fence, or with no bound.
pub fn time_left_for(operation: &str) -> Option<std::time::Duration> {
    if is_read(operation) {
        return None;
    }
    WireFence::current().and_then(|f| f.time_left())
}

/// Awaits `send`, a write of `operation` already past the fence, no longer
/// than the fence in scope is certainly ours ([`time_left_for`]): an answer
/// that would come after the lease could end is abandoned, as `fenced`
/// makes the error of it (what was sent may have landed; the next attempt
/// is refused at the fence). A read, or a call outside any fence, is
/// awaited as it is. For adapters whose client has no hook at the wire
/// (Google's crates, a raw HTTP client), so each of their writes is bounded
/// in one place. `send` is boxed: the crates' request futures are large,
/// and a wrapper holding one by value makes every caller's future larger
/// (a debug build's test thread overflowed its stack). The fence is read
/// when the returned future is first polled, inside the caller's scope.
pub fn within_lease<'a, T: 'a, E: 'a>(
    operation: &'a str,
    send: impl std::future::Future<Output = Result<T, E>> + 'a,
    fenced: impl FnOnce(String) -> E + 'a,
) -> impl std::future::Future<Output = Result<T, E>> + 'a {
    let send = Box::pin(send);
    async move {
        let Some(left) = time_left_for(operation) else {
            return send.await;
        };
        match tokio::time::timeout(left, send).await {
            Ok(answer) => answer,
            Err(_) => Err(fenced(format!(
                "abandoned when the lease it was made under could end ({} ms): it may have been applied",
                left.as_millis()
            ))),
        }
    }
}

/// A write of `operation` through such an adapter: the fence at the wire
/// asked right before `send` is handed on ([`check_before_transmit`]), then
/// the answer awaited [`within_lease`]; `fenced` makes the error of a
/// refusal or an abandoned answer.
pub fn send_fenced<'a, T: 'a, E: 'a>(
    operation: &'a str,
    send: impl std::future::Future<Output = Result<T, E>> + 'a,
    fenced: impl Fn(String) -> E + 'a,
) -> impl std::future::Future<Output = Result<T, E>> + 'a {
    let send = Box::pin(send);
    async move {
        check_before_transmit(operation).map_err(|f| fenced(f.detail))?;
        within_lease(operation, send, fenced).await
    }
}

/// Finds a [`Fenced`] refusal among the sources of `err` (the SDK wraps an
/// interceptor's error in its dispatch failure).
pub fn fenced_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Fenced> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(f) = e.downcast_ref::<Fenced>() {
            return Some(f);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn a_fence_knows_how_long_its_leases_are_ours() {
        use std::time::Duration;
        let a = WireFence::new(|| Ok(())).bounded(|| Some(Duration::from_secs(9)));
        let b = WireFence::new(|| Ok(())).bounded(|| Some(Duration::from_secs(4)));
        let unbounded = WireFence::new(|| Ok(()));
        assert_eq!(a.time_left(), Some(Duration::from_secs(9)));
        assert_eq!(unbounded.time_left(), None);
        // A batch of several plans: the soonest end.
        let both = WireFence::all([&a, &b, &unbounded]);
        assert_eq!(both.time_left(), Some(Duration::from_secs(4)));
        // Only writes are bounded, only inside a fence.
        assert_eq!(time_left_for("PutObject"), None);
        let seen = both
            .guard(async { (time_left_for("WriteObject"), time_left_for("GetObject")) })
            .await;
        assert_eq!(seen, (Some(Duration::from_secs(4)), None));
    }

    /// Regression (issue 39): the writes of Google's crates (a Cloud SQL
    /// promotion, a Cloud Run patch, a Cloud DNS change, a group's resize)
    /// were checked at the fence but waited on past the lease they were
    /// made under. Through `send_fenced`, a write is refused by a lost
    /// fence before it is sent, and its answer is abandoned when the lease
    /// may end; a read is neither.
    #[tokio::test(start_paused = true)]
    async fn regression_a_fenced_google_write_outlived_its_lease() {
        use std::time::Duration;
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, String>(1)
        };
        let bounded = WireFence::new(|| Ok(())).bounded(|| Some(Duration::from_secs(2)));
        let started = tokio::time::Instant::now();
        let e = (bounded.clone())
            .guard(send_fenced("instances.promoteReplica", slow(), |d| d))
            .await
            .unwrap_err();
        assert!(e.contains("may have been applied"), "{e}");
        assert!(started.elapsed() <= Duration::from_secs(3));
        let read = bounded.guard(send_fenced("instances.get", slow(), |d| d));
        assert_eq!(read.await, Ok(1), "a read waits as long as it takes");
        let sent = AtomicBool::new(false);
        let lost = WireFence::new(|| Err("the lease was taken".to_string()));
        let refused = lost
            .guard(send_fenced(
                "services.patch",
                async {
                    sent.store(true, Ordering::SeqCst);
                    Ok::<_, String>(1)
                },
                |d| d,
            ))
            .await;
        assert!(refused.is_err_and(|d| d.contains("taken")));
        assert!(!sent.load(Ordering::SeqCst), "never sent");
    }

    #[test]
    fn googles_methods_read_by_their_verb() {
        for read in [
            "instances.get",
            "operations.list",
            "timeSeries.list",
            "instances.getLatestRecoveryTime",
        ] {
            assert!(is_read(read), "{read}");
        }
        for write in [
            "instances.promoteReplica",
            "instances.switchover",
            "instances.clone",
            "instances.getaway",
        ] {
            assert!(!is_read(write), "{write}");
        }
    }

    #[test]
    fn reads_are_known_by_name_and_everything_else_is_a_write() {
        for read in [
            "DescribeDBInstances",
            "ListResourceRecordSets",
            "GetObject",
            "HeadObject",
            "GetMetricData",
            "TestDNSAnswer",
            "GET",
            "HEAD",
        ] {
            assert!(is_read(read), "{read}");
        }
        for write in [
            "PromoteReadReplica",
            "UpdateAutoScalingGroup",
            "ChangeResourceRecordSets",
            "PutObject",
            "AddTagsToResource",
            "CreateOrUpdateTags",
            "DeleteTags",
            "Listen", // not List + a word
            "Getaway",
            "",
        ] {
            assert!(!is_read(write), "{write}");
        }
    }

    #[tokio::test]
    async fn a_write_is_refused_once_the_fence_fails_and_reads_still_go() {
        let lost = Arc::new(AtomicBool::new(false));
        let l = lost.clone();
        let fence = WireFence::new(move || {
            if l.load(Ordering::SeqCst) {
                Err("taken over".into())
            } else {
                Ok(())
            }
        });
        fence
            .guard(async {
                assert!(check_before_transmit("PromoteReadReplica").is_ok());
                lost.store(true, Ordering::SeqCst);
                let e = check_before_transmit("PromoteReadReplica").unwrap_err();
                assert_eq!(e.detail, "taken over");
                assert!(check_before_transmit("DescribeDBInstances").is_ok());
            })
            .await;
        // Outside the fence nothing is checked.
        assert!(check_before_transmit("PromoteReadReplica").is_ok());
    }

    #[tokio::test]
    async fn a_batch_of_several_plans_holds_only_while_each_holds() {
        let ok = WireFence::new(|| Ok(()));
        let gone = WireFence::new(|| Err("plan b lost".into()));
        assert!(WireFence::all([&ok, &ok]).check().is_ok());
        assert_eq!(
            WireFence::all([&ok, &gone]).check().unwrap_err().detail,
            "plan b lost"
        );
        assert!(WireFence::all([]).check().is_ok());
    }

    #[test]
    fn a_refusal_is_found_under_the_sdks_wrapping() {
        #[derive(Debug, thiserror::Error)]
        #[error("dispatch failure")]
        struct Wrap(#[source] Fenced);
        let e = Wrap(Fenced { detail: "x".into() });
        assert_eq!(fenced_in(&e).map(|f| f.detail.as_str()), Some("x"));
        assert!(fenced_in(&std::io::Error::other("no")).is_none());
    }
}
