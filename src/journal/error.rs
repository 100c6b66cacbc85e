//! Journal errors: each says what failed, on which run or file, and what to do.
//!
//! A journal problem usually surfaces in the middle of an incident, so the
//! message must be enough on its own: no "see logs", always the next command.
//! The message is one line; what to do is [`JournalError::hint`], apart, so
//! that the CLI renders it once (`hint: ...`) and one-line contexts (a
//! warning, a report row) show the message without cutting text.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Something went wrong reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`append to`, `read`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `create` found a journal with this id already.
    #[error("a journal for run `{run_id}` already exists")]
    Exists {
        /// The run id.
        run_id: String,
    },
    /// No journal with this id.
    #[error("no journal for run `{run_id}`: `drctl runs list` shows the runs")]
    NotFound {
        /// The run id.
        run_id: String,
    },
    /// The id cannot name a journal (it would escape the runs directory, or is empty).
    #[error("`{run_id}` is not a valid run id")]
    InvalidRunId {
        /// The rejected id.
        run_id: String,
    },
    /// The hash chain does not verify.
    #[error(
        "the journal of run `{}` is broken at line {}: {}",
        .0.run_id, .0.line, .0.reason
    )]
    Broken(Broken),
    /// The journal is damaged in a way that prevents the operation.
    #[error("the journal of run `{run_id}` is damaged: {detail}")]
    Corrupt {
        /// The run id.
        run_id: String,
        /// What is wrong.
        detail: String,
    },
    /// An earlier append through this handle failed, so its view of the
    /// journal's end can no longer be trusted.
    #[error(
        "an earlier write to the journal of run `{run_id}` failed, so this process stops writing to it"
    )]
    Poisoned {
        /// The run id.
        run_id: String,
    },
    /// Another writer already wrote record `seq` of this run (shared state):
    /// this process no longer owns the run.
    #[error(
        "record {seq} of run `{run_id}` was already written by another process: this process no longer owns the run and stops writing to it"
    )]
    Conflict {
        /// The run id.
        run_id: String,
        /// The record number both wrote.
        seq: u64,
    },
    /// The run's lease is lost or could not be renewed (fencing): the append
    /// was refused so that a process that lost its lock cannot write.
    #[error("refusing to write to the journal of run `{run_id}`: {detail}")]
    Fenced {
        /// The run id.
        run_id: String,
        /// Why the lease is not ours (taken over, expired, unreadable).
        detail: String,
    },
    /// This process may not write the journal: it would leave it
    /// unverifiable (public run keys are listed, or the journal is signed,
    /// and this process does not hold the run key).
    #[error("refusing to write the journal of run `{run_id}`: {detail}")]
    Unkeyed {
        /// The run id.
        run_id: String,
        /// Why.
        detail: String,
    },
    /// The shared state (object store) failed.
    #[error("{}", source.summary())]
    Cloud {
        /// Why.
        #[source]
        source: Box<crate::cloud::CloudError>,
    },
    /// A record could not be turned into JSON (a bug: report it).
    #[error("cannot encode a journal record of run `{run_id}`: {source}")]
    Encode {
        /// The run id.
        run_id: String,
        /// Why.
        source: serde_json::Error,
    },
}

impl JournalError {
    /// What to do about it, when the message does not say it already.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Io { .. } => "check that the state directory exists, is writable and its disk is not full (--state-dir / DRCTL_STATE_DIR)".into(),
            Self::Exists { run_id } => format!("to continue that run use `drctl runs resume {run_id}`; a new run gets a new id"),
            Self::NotFound { .. } => return None,
            Self::InvalidRunId { .. } => "run ids look like 20261122T041530Z-payments-3f9a; `drctl runs list` shows the runs".into(),
            Self::Broken(b) => format!("do not resume a run whose journal was altered; `drctl audit verify {}` shows the details, and the evidence copy of the journal shows the original", b.run_id),
            Self::Corrupt { run_id, .. } => format!("`drctl audit verify {run_id}` shows where; `drctl runs resume {run_id}` repairs a torn final line"),
            Self::Poisoned { run_id } => format!("fix the cause above, then `drctl runs resume {run_id}` re-opens and checks the journal"),
            Self::Conflict { run_id, .. } => format!("`drctl runs show {run_id}` shows who continued it; `drctl lock status` shows who holds the plan"),
            Self::Fenced { run_id, .. } => format!("no new step was started; `drctl lock status` shows who holds the plan, and `drctl runs resume {run_id}` continues the run once the lock is free"),
            Self::Unkeyed { .. } => "give this process the run key (DRCTL_RUN_KEY, or [keys] run_key_file in drctl.toml; docs/state.md, \"Who can forge what\")".into(),
            Self::Cloud { source } => format!("{}; check the state location (--state / DRCTL_STATE) and its permissions", source.hint()),
            Self::Encode { .. } => "this is a bug in drctl; please report it".into(),
        })
    }
}

/// Where a chain first fails to verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broken {
    /// The run whose journal it is.
    pub run_id: String,
    /// Line number, from 1 (one past the last line when records are missing at the end).
    pub line: usize,
    /// The seq the line claims (or, for missing records, the first missing seq), when known.
    pub seq: Option<u64>,
    /// What is wrong, e.g. "prev hash does not match line 3".
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}
