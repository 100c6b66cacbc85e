//! `drctl dns prepare`: on a calm day, make the setup a data-plane switch
//! needs (control objects, health checks, failover records). It uses Route
//! 53's API (control plane, us-east-1), which is why it is a separate
//! command and never part of a failover. For a `[[cloud_dns]]` with
//! `switch = "health-check"`: the control objects in Cloud Storage and the
//! record set's `primaryBackup` routing policy (Cloud DNS's API).

use clap::{Args, Subcommand};

use super::{CliError, Exit, Output, load_plans, outln, select};
use drctl::config::Settings;
use drctl::plan::kinds::traffic::resolving;

/// `dns`.
#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Create the control objects, health checks and failover records of
    /// every `switch = "health-check"` record, and for a `[[cloud_dns]]`
    /// one its controls and `primaryBackup` routing policy (idempotent;
    /// control plane: for calm days, never on the recovery path).
    Prepare(PrepareArgs),
}

/// `dns prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Only this plan.
    #[arg(long)]
    pub plan: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Runs `dns`.
pub async fn run(cmd: DnsCommand, settings: &Settings) -> Result<Exit, CliError> {
    let DnsCommand::Prepare(args) = cmd;
    let loaded = load_plans(settings, &[])?;
    let plans: Vec<_> = select(&loaded, args.plan.as_deref())?
        .into_iter()
        .filter(|p| resolving(p).next().is_some())
        .cloned()
        .collect();
    if plans.is_empty() {
        return Err(
            CliError::invalid("no selected plan has a `switch = \"health-check\"` record").hint(
                "a data-plane switch is set per [[dns]] or [[cloud_dns]] record (docs/plans.md)",
            ),
        );
    }
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let s3_endpoint = settings.cloud.s3_endpoint.as_deref();
    let mut all = Vec::new();
    for p in &plans {
        let mut done = Vec::new();
        for d in resolving(p) {
            let made = d.prepare(&clouds, p, s3_endpoint).await.map_err(|e| {
                CliError::from(e).hint(format!(
                    "`dns prepare` uses the DNS provider's API and writes the controls: run it on a calm day, when they answer (what was made before is kept; run it again). Record: {}",
                    d.id()
                ))
            })?;
            done.extend(made);
        }
        all.push((p.name().to_string(), done));
    }
    match args.output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&all)?),
        Output::Text => {
            for (plan, done) in &all {
                outln!("plan {plan}:");
                for d in done {
                    outln!("  {:<10} {:<12} {}", d.action, d.region, d.resource);
                }
            }
        }
    }
    Ok(Exit::Ok)
}
