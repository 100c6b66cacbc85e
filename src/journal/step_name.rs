//! The name a journal gives a step: `<plan>/<kind>` or `<plan>/<kind>:<subject>`.
//!
//! Step ids are defined by the step kinds (`crate::steps::StepId`), two
//! floors above the journal, so the journal cannot hold one. It holds a
//! [`StepName`] instead: the same text, checked for its shape when a record
//! is read, so that a malformed id on disk is an error naming its record
//! (the chain check reports the line) rather than a string parsed back later
//! and dropped when it does not parse. Which kinds exist is the steps'
//! knowledge: `StepId::try_from(&StepName)` says so with an error. The JSON
//! stays a plain string, so journals already on disk read unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A step's id as journaled: `<plan>/<kind>[:<subject>]`, with a non-empty
/// plan (no `/`) and a kind of lowercase letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepName {
    /// The whole id, as journaled.
    text: String,
    /// Where the `/` after the plan is.
    slash: usize,
    /// Where the `:` before the subject is, if there is one.
    colon: Option<usize>,
}

/// Why a text is not a step id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a step id ({why}; step ids look like `plan/kind` or `plan/kind:subject`)")]
pub struct BadStepName {
    /// The text.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl StepName {
    /// Checks `text`'s shape.
    pub fn parse(text: &str) -> Result<Self, BadStepName> {
        let bad = |why| BadStepName {
            text: text.to_string(),
            why,
        };
        let slash = text.find('/').ok_or_else(|| bad("no `/` after the plan"))?;
        if slash == 0 {
            return Err(bad("no plan"));
        }
        let colon = text[slash..].find(':').map(|c| slash + c);
        let kind = &text[slash + 1..colon.unwrap_or(text.len())];
        if kind.is_empty() {
            return Err(bad("no kind"));
        }
        if !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("the kind is not lowercase letters, digits and `-`"));
        }
        Ok(Self {
            text: text.to_string(),
            slash,
            colon,
        })
    }

    /// The id of step `kind` of `plan`, acting on `subject`; fails when the
    /// parts do not make a step id (an empty plan, a plan with a `/`).
    pub fn of(plan: &str, kind: &str, subject: Option<&str>) -> Result<Self, BadStepName> {
        match subject {
            Some(s) => Self::parse(&format!("{plan}/{kind}:{s}")),
            None => Self::parse(&format!("{plan}/{kind}")),
        }
        .and_then(|n| {
            if n.plan() == plan && n.kind() == kind {
                Ok(n)
            } else {
                Err(BadStepName {
                    text: n.text,
                    why: "the plan name has a `/`",
                })
            }
        })
    }

    /// The id of a compiled step, whose parts were checked where they were
    /// made (a validated plan name, a known kind): not checked again.
    pub(crate) fn from_parts(plan: &str, kind: &str, subject: Option<&str>) -> Self {
        let text = match subject {
            Some(s) => format!("{plan}/{kind}:{s}"),
            None => format!("{plan}/{kind}"),
        };
        Self {
            slash: plan.len(),
            colon: subject.map(|_| plan.len() + 1 + kind.len()),
            text,
        }
    }

    /// The id as journaled.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The plan.
    pub fn plan(&self) -> &str {
        &self.text[..self.slash]
    }

    /// The kind's name (whether such a kind exists is the steps' knowledge).
    pub fn kind(&self) -> &str {
        &self.text[self.slash + 1..self.colon.unwrap_or(self.text.len())]
    }

    /// What the step acts on, when its id names it.
    pub fn subject(&self) -> Option<&str> {
        self.colon.map(|c| &self.text[c + 1..])
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for StepName {
    type Err = BadStepName;
    fn from_str(s: &str) -> Result<Self, BadStepName> {
        Self::parse(s)
    }
}

impl AsRef<str> for StepName {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::borrow::Borrow<str> for StepName {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl PartialEq<str> for StepName {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for StepName {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

/// Test data names steps by literal: a malformed one is a bug in the test.
#[cfg(test)]
impl From<&str> for StepName {
    fn from(s: &str) -> Self {
        Self::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Serialize for StepName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StepName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_name_splits_into_plan_kind_and_subject() {
        let n = StepName::parse("payments/reprotect:payments-db@us-west-2").unwrap();
        assert_eq!(
            (n.plan(), n.kind(), n.subject()),
            ("payments", "reprotect", Some("payments-db@us-west-2"))
        );
        let n = StepName::parse("payments/evidence").unwrap();
        assert_eq!((n.kind(), n.subject()), ("evidence", None));
        assert_eq!(
            StepName::of("ledger", "switch-dns", Some("example.com.")).unwrap(),
            "ledger/switch-dns:example.com."
        );
        assert!(StepName::of("a/b", "scale", None).is_err());
    }

    #[test]
    fn a_malformed_step_name_is_refused_with_its_text() {
        for bad in ["promote-db", "/scale:x", "p/:x", "p/Scale", "p/sc ale:x"] {
            let e = StepName::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        let e = serde_json::from_str::<StepName>(r#""p/""#).unwrap_err();
        assert!(e.to_string().contains("no kind"), "{e}");
    }
}
