//! The `drctl` binary: parse → run → exit code. The only place for `anyhow`.

use std::process::ExitCode;

mod cli;

use clap::Parser;
use cli::{Cli, Exit};
use drctl::config::{LogFormat, Settings};

fn init_tracing(format: LogFormat, verbose: u8) {
    use tracing_subscriber::{EnvFilter, fmt};
    let default = match verbose {
        0 => "warn",
        1 => "info,aws=warn,hyper=warn",
        _ => "debug,aws=info,hyper=info,h2=info,rustls=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).compact().init(),
    }
}

/// A closed pipe on stdout (`drctl runs show RUN | head -1`) means the
/// reader has what it wanted: end quietly with success, as ripgrep does.
/// `print!` reports a failed write by panicking with the I/O error's text;
/// this hook turns exactly that panic into a silent exit 0 and leaves every
/// other panic to the default hook.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli.flag_settings()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(Exit::Invalid as u8);
        }
    };
    init_tracing(settings.log_format, cli.verbose);
    if let Some(h) = &settings.host {
        drctl::state::lock::set_hostname(h);
    }
    for w in &settings.warnings {
        eprintln!("warning: {w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Failed as u8);
        }
    };
    match runtime.block_on(cli::run(cli, settings)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error_exit(&e) as u8)
        }
    }
}

/// The exit code of an error that ended a command before it could report
/// one itself: a state location or store that cannot be used safely is
/// invalid input (2); anything else is a failure (1).
fn error_exit(e: &anyhow::Error) -> Exit {
    use drctl::state::StateError;
    match e.downcast_ref::<StateError>() {
        Some(StateError::Location { .. } | StateError::Unsafe { .. }) => Exit::Invalid,
        _ => Exit::Failed,
    }
}
