//! A step's context for unit tests ([`Cx::for_test`]): its defaults said
//! once, so that a field added to [`Cx`] is one edit here, not one in
//! every test that builds a context.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::graph::Step;
use super::{Cx, dns_setup};
use crate::cloud::Clouds;
use crate::plan::Plan;

impl<'a> Cx<'a> {
    /// A step's context for a unit test: `plan` failing over to `target`
    /// over `clouds`, with `outputs` and the compiled `graph`; a memory
    /// journal, a minute's deadline, millisecond polls, a 15-minute lag
    /// window, a first attempt, and nothing else. A test sets over it what
    /// it tries (`Cx { poll, ..Cx::for_test(..) }`), so a field added to
    /// the context is defaulted here once, not in every test.
    pub(crate) fn for_test(
        clouds: &'a Clouds,
        plan: &'a Plan,
        target: &'a str,
        outputs: &'a BTreeMap<String, Value>,
        graph: &'a [Step],
    ) -> Self {
        Cx {
            clouds,
            plan,
            target,
            run_id: "20261127T100000Z-test-ab01",
            outputs,
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(5)),
            journal: Arc::new(crate::journal::MemoryStore::new()),
            lag_window: Duration::from_secs(900),
            waiting: None,
            side: None,
            graph,
            rpo_readings: None,
            zones_read: None,
            attempt: 1,
            drill_expires: None,
            render_report: None,
            fence: None,
            zone_batches: None,
            temps: None,
            control_read_timeout: dns_setup::SETUP_TIMEOUT,
        }
    }
}
