//! `drctl completions SHELL` and `drctl man`: shell completions and man
//! pages generated from the clap definitions (`clap_complete`,
//! `clap_mangen`), so they can never drift from the real flags.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, CliError, Exit};

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to write completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (`drctl.1`, `drctl-failover.1`, ...) into
    /// this directory instead of printing `drctl.1` on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Prints the completion script for a shell.
///
/// Generated into memory first: `clap_complete` panics on a failed write,
/// and a closed stdout (`drctl completions bash | head -1`) is no failure.
pub fn completions(a: CompletionsArgs) -> Result<Exit, CliError> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "drctl", &mut buf);
    std::io::stdout().write_all(&buf)?;
    Ok(Exit::Ok)
}

/// Prints (or writes) the man pages.
pub fn man(a: ManArgs) -> Result<Exit, CliError> {
    let cmd = Cli::command();
    match a.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(cmd, &dir)?;
            super::errln!("man pages written to {}", dir.display());
        }
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            std::io::stdout().write_all(&buf)?;
        }
    }
    Ok(Exit::Ok)
}
