//! Verifying a journal's hash chain and head pointer.
//!
//! Every record names the SHA-256 of the previous record's exact line bytes,
//! so changing, deleting, inserting or reordering any line breaks the link of
//! the line after it. The last line has no successor to vouch for it; the
//! head pointer (record count + hash of the last line, kept beside the
//! journal) covers it. Verification reports the *first* broken line so an
//! auditor knows where to start comparing with the evidence copy.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::Record;

/// The `prev` of the first record: 64 zeros.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256 of one stored line (without its newline): a record's hash.
pub fn hash_line(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
}

/// The head pointer as stored: which run, how many records, the hash of the last.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    run_id: String,
    records: u64,
    last: String,
}

/// The text of a head pointer for a journal of `records` records whose last
/// line hashes to `last` ([`ZERO_HASH`] when empty).
pub(crate) fn head_text(run_id: &str, records: u64, last: &str) -> String {
    serde_json::to_string(&Head {
        run_id: run_id.to_string(),
        records,
        last: last.to_string(),
    })
    .expect("a head of strings and a number always serializes")
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

/// What the head pointer said about the end of the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadCheck {
    /// Not compared: the chain broke before the end.
    NotChecked,
    /// No head pointer: the last record is protected by nothing (an edit of it
    /// cannot be seen).
    Absent,
    /// The head names the last record.
    Matched,
    /// The head names the record before the last: a write was interrupted
    /// after the record was stored and before the head was updated. The last
    /// record is chained to the rest but not covered by the head.
    Behind,
    /// The head contradicts the journal (see `first_broken`).
    Mismatch,
}

/// Result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The run whose journal it is.
    pub run_id: String,
    /// Records that verified (all of them when `ok`; those before the break otherwise).
    pub records: usize,
    /// Whether the whole journal verified.
    pub ok: bool,
    /// The first problem, when not `ok`.
    pub first_broken: Option<Broken>,
    /// What the head pointer said.
    pub head: HeadCheck,
}

/// Verification plus what it found, for the journal's own use.
pub(crate) struct Checked {
    pub verification: Verification,
    /// Records that verified, in order.
    pub records: Vec<Record>,
    /// Hash of the last verified line ([`ZERO_HASH`] when none).
    pub last_hash: String,
}

/// Verifies a journal's text by its chain alone.
///
/// Detects any change to a record that has a successor, deleted, inserted and
/// reordered lines, invalid lines and a torn final line. It cannot see an edit
/// or deletion of the *last* record: use [`verify_with_head`] (or
/// [`crate::journal::verify_stored`]) for that.
pub fn verify(run_id: &str, text: &str) -> Verification {
    check(run_id, text, None).verification
}

/// Verifies a journal's text and checks its end against the head pointer
/// (the text of the `.head` file; `None` when there is none).
pub fn verify_with_head(run_id: &str, text: &str, head: Option<&str>) -> Verification {
    check(run_id, text, head).verification
}

pub(crate) fn check(run_id: &str, text: &str, head: Option<&str>) -> Checked {
    let mut records: Vec<Record> = Vec::new();
    let mut last_hash = ZERO_HASH.to_string();
    let mut tokens: std::collections::BTreeMap<String, u64> = Default::default();
    let broken = |line: usize, seq: Option<u64>, reason: String| Broken {
        run_id: run_id.to_string(),
        line,
        seq,
        reason,
    };
    let finish =
        |records: Vec<Record>, last_hash: String, first_broken: Option<Broken>, head| Checked {
            verification: Verification {
                run_id: run_id.to_string(),
                records: records.len(),
                ok: first_broken.is_none(),
                first_broken,
                head,
            },
            records,
            last_hash,
        };

    let (complete, torn) = match text.rfind('\n') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => ("", text),
    };
    let lines: Vec<&str> = if text.rfind('\n').is_some() {
        complete.split('\n').collect()
    } else {
        Vec::new()
    };

    for (i, line) in lines.iter().enumerate() {
        let record = match check_line(&lines, i, &last_hash, &tokens) {
            Ok(record) => record,
            Err((seq, reason)) => {
                let b = broken(i + 1, seq, reason);
                return finish(records, last_hash, Some(b), HeadCheck::NotChecked);
            }
        };
        tokens.extend(record.fence.iter().map(|(p, t)| (p.clone(), *t)));
        last_hash = hash_line(line);
        records.push(record);
    }

    let n = lines.len();
    let (head_check, head_broken) = match head {
        None => (HeadCheck::Absent, None),
        Some(head) => match check_head(run_id, head, &lines) {
            Ok(check) => (check, None),
            Err((line, seq, reason)) => (HeadCheck::Mismatch, Some(broken(line, seq, reason))),
        },
    };
    if let Some(b) = &head_broken {
        // Only the records before the line the head contradicts count as verified.
        records.truncate(b.line.saturating_sub(1));
        return finish(records, last_hash, head_broken, head_check);
    }
    if !torn.is_empty() {
        let seq = serde_json::from_str::<Record>(torn).ok().map(|r| r.seq);
        let reason = format!(
            "torn final line ({} bytes without a newline: an interrupted write)",
            torn.len()
        );
        return finish(
            records,
            last_hash,
            Some(broken(n + 1, seq, reason)),
            head_check,
        );
    }
    finish(records, last_hash, None, head_check)
}

/// Checks line `i` of `lines` against the chain so far (the hash of the
/// line before, the fencing tokens seen): the record, or (its seq when
/// known, why the chain breaks there).
fn check_line(
    lines: &[&str],
    i: usize,
    last_hash: &str,
    tokens: &std::collections::BTreeMap<String, u64>,
) -> Result<Record, (Option<u64>, String)> {
    let line = lines[i];
    if line.is_empty() {
        return Err((None, "empty line".into()));
    }
    let record: Record = serde_json::from_str(line).map_err(|e| {
        let reason = if serde_json::from_str::<serde_json::Value>(line).is_ok() {
            format!("not a journal record: {e}")
        } else {
            format!("not valid JSON: {e}")
        };
        (None, reason)
    })?;
    if record.late.is_some() {
        return Err((
            Some(record.seq),
            "a late fact inside the chain (late facts are stored beside the journal, never in it)"
                .into(),
        ));
    }
    let expected = i as u64;
    if record.seq != expected {
        return Err((Some(record.seq), seq_break(lines, i, record.seq)));
    }
    if record.prev != last_hash {
        let reason = if i == 0 {
            "the first record's prev is not the zero hash".to_string()
        } else {
            format!("prev hash does not match line {i} (that line or this one was changed)")
        };
        return Err((Some(record.seq), reason));
    }
    // Fencing: a plan's token never goes down along a run (a lower one was
    // written by a process that had lost its lease).
    if let Some((plan, token, before)) = record.fence.iter().find_map(|(plan, token)| {
        tokens
            .get(plan)
            .filter(|before| *before > token)
            .map(|before| (plan, token, *before))
    }) {
        let reason = format!(
            "fencing token {token} of plan {plan} is below the earlier {before}: written by a process that had lost its lease"
        );
        return Err((Some(record.seq), reason));
    }
    Ok(record)
}

/// Why line `i` holding a record of sequence number `seq` (not `i`) breaks
/// the chain: records deleted, moved, inserted or duplicated.
fn seq_break(lines: &[&str], i: usize, seq: u64) -> String {
    let expected = i as u64;
    if i == 0 {
        format!("the first record has seq {seq}, expected 0 (records were deleted or moved)")
    } else if seq > expected {
        let moved = lines[i + 1..].iter().any(|l| {
            serde_json::from_str::<Record>(l).is_ok_and(|r| (expected..seq).contains(&r.seq))
        });
        format!(
            "seq {seq} follows seq {} ({})",
            expected - 1,
            if moved {
                "records are out of order"
            } else {
                "a record was deleted"
            }
        )
    } else {
        format!(
            "seq {seq} follows seq {} (a record was inserted, duplicated or moved)",
            expected - 1
        )
    }
}

/// Compares the head pointer with the complete lines; on failure returns
/// (line, seq, reason).
fn check_head(
    run_id: &str,
    head: &str,
    lines: &[&str],
) -> Result<HeadCheck, (usize, Option<u64>, String)> {
    let n = lines.len();
    let last_line = n.max(1);
    let head: Head = serde_json::from_str(head.trim_end()).map_err(|e| {
        (
            last_line,
            None,
            format!("the head file is not valid ({e}), so the last record cannot be checked"),
        )
    })?;
    if head.run_id != run_id {
        return Err((
            last_line,
            None,
            format!("the head file belongs to run `{}`", head.run_id),
        ));
    }
    let k = usize::try_from(head.records).unwrap_or(usize::MAX);
    if k > n {
        return Err((
            n + 1,
            Some(n as u64),
            format!(
                "the journal ends after {n} records but its head records {}: the last {} record(s) were deleted",
                head.records,
                head.records - n as u64
            ),
        ));
    }
    let expected = if k == 0 {
        ZERO_HASH.to_string()
    } else {
        hash_line(lines[k - 1])
    };
    if head.last != expected {
        return Err((
            k.max(1),
            k.checked_sub(1).map(|s| s as u64),
            if k == n {
                "the last record differs from the head (it was changed after it was written)"
                    .to_string()
            } else {
                format!("line {k} differs from the head (it was changed after it was written)")
            },
        ));
    }
    match n - k {
        0 => Ok(HeadCheck::Matched),
        1 => Ok(HeadCheck::Behind),
        extra => Err((
            k + 2,
            Some(k as u64 + 1),
            format!(
                "{extra} records follow the one the head names; an interrupted write leaves at most one (records were appended by something other than drctl)"
            ),
        )),
    }
}
