//! How a command fails: one error type that carries its exit code and its
//! hint, so that `main` alone decides what is printed and how the process
//! ends.
//!
//! Commands return `Result<Exit, CliError>`: `Ok` is an outcome (success,
//! or "a run failed / not ready", exit 1, which is a result and not an
//! error); `Err` says why the command could not do its job. The library's
//! errors convert with `?` and are classified here, once: a gate's refusal
//! is exit 3, invalid input exit 2, anything else exit 1. A write to a
//! closed stdout (`drctl ... | head -1`) is no error at all: the reader has
//! what it wanted, and the program ends with 0, as ripgrep does.

use std::fmt;

use drctl::engine::EngineError;
use drctl::journal::JournalError;
use drctl::state::StateError;

use super::Exit;

/// Why a command did not do its job, with the exit code it ends with.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: Exit,
    /// What happened, one sentence (empty when it was already reported,
    /// e.g. a plan's diagnostics).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Stdout was closed by its reader: end quietly with success.
    pub closed_pipe: bool,
}

impl CliError {
    /// An error with this code and message.
    pub fn new(code: Exit, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
            closed_pipe: false,
        }
    }

    /// Invalid input (exit 2).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Exit::Invalid, message)
    }

    /// A library error that is invalid input here (an unknown run id, a
    /// step graph that does not compile): its text, its hint apart.
    pub fn invalid_input(e: impl fmt::Display) -> Self {
        Self::from_text(Exit::Invalid, e.to_string())
    }

    /// A failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Exit::Failed, message)
    }

    /// An error whose text is already on stderr (a plan's diagnostics):
    /// only its code is left to give.
    pub fn reported(code: Exit) -> Self {
        Self::new(code, "")
    }

    /// Adds what to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An error with its hint apart, as the library's typed errors give it.
    fn said(code: Exit, message: String, hint: Option<String>) -> Self {
        Self {
            hint,
            ..Self::new(code, message)
        }
    }

    /// An error from its full text, whose hint (if any) follows the
    /// message as `\n  hint: ...`: the errors whose text still carries it
    /// (lock errors, the engine's refusals, a cloud error's Display).
    fn from_text(code: Exit, text: String) -> Self {
        match text.split_once("\n  hint: ") {
            Some((message, hint)) => Self::new(code, message).hint(hint),
            None => Self::new(code, text),
        }
    }

    /// What the user sees on stderr (nothing for a closed pipe or an error
    /// already reported).
    pub fn render(&self) -> String {
        if self.closed_pipe || self.message.is_empty() {
            return String::new();
        }
        match &self.hint {
            Some(h) => format!("error: {}\n  hint: {h}\n", self.message),
            None => format!("error: {}\n", self.message),
        }
    }

    /// The process's exit code: 0 for a closed pipe, else the error's.
    pub fn exit(&self) -> Exit {
        if self.closed_pipe {
            Exit::Ok
        } else {
            self.code
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// The exit code of an engine error: a gate's refusal is 3, an invalid
/// request (or an unknown run id, as for `runs show`) 2, else 1.
pub fn engine_code(e: &EngineError) -> Exit {
    match e {
        EngineError::Refused(_) => Exit::Refused,
        EngineError::Invalid(_)
        | EngineError::Journal(JournalError::NotFound { .. })
        | EngineError::Lock(drctl::state::lock::LockError::BadName { .. }) => Exit::Invalid,
        _ => Exit::Failed,
    }
}

/// The exit code of a state error: a location or store that cannot be
/// used safely is invalid input (2); anything else is a failure (1).
fn state_code(e: &StateError) -> Exit {
    match e {
        StateError::Location { .. } | StateError::Unsafe { .. } => Exit::Invalid,
        _ => Exit::Failed,
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        let closed = e.kind() == std::io::ErrorKind::BrokenPipe;
        Self {
            closed_pipe: closed,
            ..Self::from_text(Exit::Failed, e.to_string())
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        let code = engine_code(&e);
        match e {
            EngineError::Journal(j) => Self::said(code, j.to_string(), j.hint()),
            EngineError::Refused(r) | EngineError::Invalid(r) => {
                Self::said(code, r.message, r.hint)
            }
            e => Self::from_text(code, e.to_string()),
        }
    }
}

impl From<StateError> for CliError {
    fn from(e: StateError) -> Self {
        Self::said(state_code(&e), e.to_string(), Some(e.hint()))
    }
}

impl From<JournalError> for CliError {
    /// A writer refused for want of the run key is a usage error (exit 2:
    /// nothing was tried); any other journal error a failure (exit 1).
    fn from(e: JournalError) -> Self {
        let code = match e {
            JournalError::Unkeyed { .. } => Exit::Invalid,
            _ => Exit::Failed,
        };
        Self::said(code, e.to_string(), e.hint())
    }
}

/// The hint of the first error in `e`'s chain that carries one as a field.
fn typed_hint(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        if let Some(j) = c.downcast_ref::<JournalError>() {
            return j.hint();
        }
        if let Some(s) = c.downcast_ref::<StateError>() {
            return Some(s.hint());
        }
        if let Some(s) = c.downcast_ref::<drctl::config::ConfigError>() {
            return Some(s.hint().to_string());
        }
        if let Some(EngineError::Journal(j)) = c.downcast_ref::<EngineError>() {
            return j.hint();
        }
        c.downcast_ref::<drctl::steps::StepFailure>()
            .map(|f| f.hint().to_string())
    })
}

impl From<drctl::cloud::CloudError> for CliError {
    fn from(e: drctl::cloud::CloudError) -> Self {
        let mut out = Self::failed(e.summary());
        out.hint = Some(e.hint().to_string());
        out
    }
}

impl From<drctl::config::ConfigError> for CliError {
    fn from(e: drctl::config::ConfigError) -> Self {
        Self::said(Exit::Invalid, e.to_string(), Some(e.hint().to_string()))
    }
}

/// Errors that are failures (exit 1) whatever they say.
macro_rules! failures {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                Self::from_text(Exit::Failed, e.to_string())
            }
        }
    )*};
}
failures!(serde_json::Error);

impl From<drctl::state::lock::LockError> for CliError {
    /// A name that is no plan's is invalid input (exit 2); any other lock
    /// error is a failure (a held lock is refused by the engine, exit 3).
    fn from(e: drctl::state::lock::LockError) -> Self {
        let code = match e {
            drctl::state::lock::LockError::BadName { .. } => Exit::Invalid,
            _ => Exit::Failed,
        };
        Self::from_text(code, e.to_string())
    }
}

impl From<anyhow::Error> for CliError {
    /// Classified by the typed error it carries (the first one in its
    /// chain that decides a code); its text is the whole chain, as `{:#}`.
    fn from(e: anyhow::Error) -> Self {
        let code = e
            .chain()
            .find_map(|c| {
                if let Some(s) = c.downcast_ref::<StateError>() {
                    return Some(state_code(s));
                }
                c.downcast_ref::<EngineError>().map(engine_code)
            })
            .unwrap_or(Exit::Failed);
        let closed = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        let mut out = Self::from_text(code, format!("{e:#}"));
        if out.hint.is_none() {
            out.hint = typed_hint(&e);
        }
        Self {
            closed_pipe: closed,
            ..out
        }
    }
}

// Every line drctl prints reaches the terminal through the macros below
// (and `write_styled`, the log writer and the progress view, which clean
// the same way): the one place where text that came from elsewhere (a
// cloud's error message, a plan's names, a journal's text) is stripped of
// escape sequences and control characters (`drctl::escape::terminal`)
// before a terminal can act on them. `src/cli/error.rs`'s test checks that
// no other printing macro is used in the binary.

/// Writes a line to stdout, cleaned for the terminal; a failed write (a
/// closed pipe among them) ends the command through `?`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        writeln!(std::io::stdout().lock(), "{}", drctl::escape::terminal(&text))?
    }};
}

/// Writes to stdout, cleaned for the terminal; a failed write (a closed
/// pipe among them) ends the command through `?`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        write!(std::io::stdout().lock(), "{}", drctl::escape::terminal(&text))?
    }};
}

/// Writes a line to stderr, cleaned for the terminal (a failed write to
/// stderr has nowhere to be told, and is not an error of the command).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = writeln!(std::io::stderr().lock(), "{}", drctl::escape::terminal(&text));
    }};
}

/// Writes to stderr, cleaned for the terminal.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = write!(std::io::stderr().lock(), "{}", drctl::escape::terminal(&text));
        let _ = std::io::stderr().flush();
    }};
}

/// Writes text that carries drctl's own colours to stderr: only text whose
/// renderer cleaned every part that came from elsewhere
/// (`drctl::plan::source::Diagnostic::render`), so that its colour
/// sequences are the only ones in it.
pub(crate) fn write_styled(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A writer for the logs on stderr: each write cleaned for the terminal
/// (the log formatter writes one event per write).
pub(crate) struct CleanStderr;

impl std::io::Write for CleanStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(drctl::escape::terminal(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

pub(crate) use {err, errln, out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_is_a_field_rendered_once() {
        let e = CliError::invalid("no plan named `x`").hint("plans in plans: a, b");
        assert_eq!(
            e.render(),
            "error: no plan named `x`\n  hint: plans in plans: a, b\n"
        );
        let e = CliError::from(EngineError::Invalid("bad\n  hint: do this".into()));
        assert_eq!(
            (e.code, e.hint.as_deref()),
            (Exit::Invalid, Some("do this"))
        );
        assert_eq!(e.message, "bad");
    }

    #[test]
    fn a_refusals_hint_is_a_field_and_its_journal_text_is_unchanged() {
        use drctl::engine::Refusal;
        let r = Refusal::new("plan p: replica lag of 20m is above the RPO")
            .hint("re-run with --accept-data-loss DUR");
        assert_eq!(
            r.to_string(),
            "plan p: replica lag of 20m is above the RPO\n  hint: re-run with --accept-data-loss DUR",
            "the text journals have always held"
        );
        assert_eq!(r.summary(), "plan p: replica lag of 20m is above the RPO");
        let e = CliError::from(EngineError::Refused(r.clone()));
        assert_eq!(e.code, Exit::Refused);
        assert_eq!(
            e.render(),
            "error: plan p: replica lag of 20m is above the RPO\n  hint: re-run with --accept-data-loss DUR\n"
        );
        assert_eq!(
            Refusal::from(r.to_string().as_str()),
            r,
            "read back from a journal"
        );
    }

    #[test]
    fn codes_follow_the_error() {
        assert_eq!(
            CliError::from(EngineError::Refused("rpo".into())).exit(),
            Exit::Refused
        );
        let state = StateError::Location {
            location: "x:".into(),
            detail: "no".into(),
        };
        assert_eq!(
            CliError::from(anyhow::Error::from(state)).exit(),
            Exit::Invalid
        );
    }

    #[test]
    fn closed_pipe_ends_quietly_with_success() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = CliError::from(anyhow::Error::from(io).context("printing"));
        assert_eq!((e.exit(), e.render()), (Exit::Ok, String::new()));
        let e = CliError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!((e.exit(), e.render()), (Exit::Ok, String::new()));
    }

    /// Every printing in the binary goes through the cleaning macros: no
    /// `print!`, `println!`, `eprint!` or `eprintln!` of its own.
    #[test]
    fn every_line_to_the_terminal_is_cleaned() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.join("main.rs")];
        for e in std::fs::read_dir(root.join("cli")).unwrap() {
            files.push(e.unwrap().path());
        }
        let banned = ["println", "print", "eprintln", "eprint"].map(|m| format!("{m}!("));
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for b in &banned {
                    let raw = code.match_indices(b.as_str()).any(|(at, _)| {
                        !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    assert!(!raw, "{}:{}: {b} prints uncleaned text", f.display(), i + 1);
                }
            }
        }
    }
}
