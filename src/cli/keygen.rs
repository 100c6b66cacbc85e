//! `drctl keygen run|observer`: a new Ed25519 key pair, in the words of
//! what the key is for. The run key signs every journal head and evidence
//! manifest and belongs to those who start, resume and record runs; an
//! observer key signs one observer's reports and belongs to that observer
//! alone (docs/security.md, "The keys"). One command for both,
//! so the words a newcomer reads say who gets the secret.

use clap::{Args, ValueEnum};

use super::{CliError, Exit, outln};
use drctl::sign::SecretKey;

/// `keygen`'s flags.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// What the key is for: `run` (the operators' run key, which signs
    /// journals and evidence) or `observer` (one watch observer's own).
    #[arg(value_enum)]
    pub key: KeyFor,
    /// Write the secret to this file (created, never replaced; mode 0600)
    /// instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// What a key is for, and so who holds its secret and where its public
/// half is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFor {
    /// The run key: signs every journal head and evidence manifest.
    Run,
    /// An observer's key: signs that observer's reports to `drctl watch`.
    Observer,
}

impl KeyFor {
    /// Who holds the secret and where it is set.
    fn secret_holder(self) -> &'static str {
        match self {
            Self::Run => {
                "the people and machines that start, resume and record runs: on-call engineers, the scheduler, and an observer only where it may start a failover (propose or auto); never an observer that only observes ([keys] run_key_file, or the variable [keys] run_key_env names, default DRCTL_RUN_KEY)"
            }
            Self::Observer => {
                "that observer only ([watch] key_file, or the variable [watch] key_env names, default DRCTL_OBSERVER_KEY)"
            }
        }
    }

    /// Where its public half is listed, and the line to list.
    fn listed(self, public: &str) -> (&'static str, String) {
        match self {
            Self::Run => (
                "everywhere runs are verified: [keys] in the operators' drctl.toml (or DRCTL_RUN_PUBLIC)",
                format!("run_public = [\"{public}\"]"),
            ),
            Self::Observer => (
                "under the observer's name in [[watch.observers]] of the operators' drctl.toml",
                format!("keys = [\"{public}\"]"),
            ),
        }
    }
}

/// Runs `keygen`.
pub fn run(a: KeygenArgs) -> Result<Exit, CliError> {
    keygen(a.key, a.out.as_deref())
}

/// Makes a key pair for `key`: the secret to `out` (or printed), the
/// public half printed as the line to list.
pub fn keygen(key: KeyFor, out: Option<&std::path::Path>) -> Result<Exit, CliError> {
    let secret = SecretKey::generate();
    let public = secret.public();
    match out {
        Some(path) => {
            write_secret(path, &secret.to_text()).map_err(|e| {
                CliError::invalid(format!(
                    "cannot write the secret to {}: {e}",
                    path.display()
                ))
                .hint("name a file that does not exist yet (keygen never replaces one)")
            })?;
            super::errln!(
                "wrote the secret to {} (mode 0600): for {}",
                path.display(),
                key.secret_holder()
            );
        }
        None => {
            outln!("# the secret: for {}", key.secret_holder());
            outln!("{}", secret.to_text());
        }
    }
    let (where_, line) = key.listed(&public.to_string());
    outln!(
        "# its public half (key id {}), to list {where_}:",
        public.id()
    );
    outln!("{line}");
    Ok(Exit::Ok)
}

/// Creates `path` with `text`, readable by its owner only; never replaces
/// a file (or follows a link planted there).
fn write_secret(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}
