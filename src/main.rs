//! The `drctl` binary: parse → run → exit code.
//!
//! The only place that turns a command's outcome or error into an exit code
//! and the `error:` / `hint:` lines on stderr (see [`cli::CliError`]).

use std::process::ExitCode;

mod cli;

use clap::Parser;
use cli::{Cli, CliError, Exit};
use drctl::config::{LogFormat, Settings};

fn init_tracing(format: LogFormat, verbose: u8) {
    use tracing_subscriber::{EnvFilter, fmt};
    let default = match verbose {
        0 => "warn",
        1 => "info,aws=warn,hyper=warn",
        _ => "debug,aws=info,hyper=info,h2=info,rustls=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Logs quote what came from elsewhere (a check's answer under -v, a
    // cloud's error): written through the terminal's cleaner, without
    // colours of their own (which the cleaner would take out).
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| cli::error::CleanStderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).compact().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    let outcome = start(cli, verbose);
    // What `print!` left in stdout's buffer: a reader that went away is no
    // error here either.
    let flushed = std::io::Write::flush(&mut std::io::stdout()).map_err(CliError::from);
    let code = match outcome.and_then(|code| flushed.map(|()| code)) {
        Ok(code) => code,
        Err(e) => {
            cli::err!("{}", e.render());
            e.exit()
        }
    };
    ExitCode::from(code as u8)
}

/// Resolves the settings, starts logging and the runtime, and runs the
/// command: its outcome, or why it could not do its job.
fn start(cli: Cli, verbose: u8) -> Result<Exit, CliError> {
    let settings = Settings::resolve(&cli.flag_settings())?;
    init_tracing(settings.log_format, verbose);
    if let Some(h) = &settings.host {
        drctl::state::lock::set_hostname(h);
    }
    for w in &settings.warnings {
        cli::errln!("warning: {w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
    let flags = cli.flag_settings();
    let outcome = runtime.block_on(cli::run(cli, settings));
    // What the command's runs could not yet tell people is journaled and
    // handed to a background flush: never the command's outcome.
    runtime.block_on(cli::notify::settle(&flags));
    outcome
}
