//! `drctl plan validate | show | graph` (and `budget`, in `budget.rs`).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{CliError, Exit, Output, load_plans, out, outln, print_diagnostics, select};
use drctl::config::Settings;
use drctl::plan::Plan;
use drctl::plan::duration::Human;
use drctl::steps::graph;

/// Plan commands.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check plans; every error with file:line:column and a hint; exit 2 when invalid.
    Validate(ValidateArgs),
    /// Show a plan as people read it: tier, regions, resources, what a failover would do.
    Show(ShowArgs),
    /// Print the step graph of a failover as DOT or Mermaid.
    Graph(GraphArgs),
    /// Forecast a failover's RTO per plan (p50, p90) under AWS's API limits,
    /// name the binding constraint, and give the lower bound.
    Budget(super::budget::BudgetArgs),
}

/// `plan validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Plan files or directories (default: the plan directory).
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// `plan show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Plan name.
    pub plan: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Graph formats.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum GraphFormat {
    /// Graphviz.
    #[default]
    Dot,
    /// Mermaid flowchart.
    Mermaid,
    /// JSON.
    Json,
}

/// `plan graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Plan name.
    pub plan: String,
    /// Target region of the failover.
    #[arg(long)]
    pub to: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: GraphFormat,
}

/// Runs a plan command.
pub fn run(cmd: PlanCommand, settings: &Settings) -> Result<Exit, CliError> {
    match cmd {
        PlanCommand::Validate(a) => validate(a, settings),
        PlanCommand::Budget(a) => super::budget::run(a, settings),
        PlanCommand::Show(a) => {
            let loaded = load_plans(settings, &[])?;
            let plan = select(&loaded, Some(&a.plan))?[0];
            match a.output {
                Output::Text => out!("{}", show(plan)),
                Output::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "plan": plan.spec,
                        "tier": plan.tier,
                        "path": plan.path,
                        "digest": plan.digest,
                    }))?
                ),
            }
            Ok(Exit::Ok)
        }
        PlanCommand::Graph(a) => {
            let loaded = load_plans(settings, &[])?;
            let plan = select(&loaded, Some(&a.plan))?[0];
            let to = plan.site(&a.to).unwrap_or(&a.to);
            let g = graph::compile(plan, to).map_err(CliError::invalid_input)?;
            match a.format {
                GraphFormat::Dot => out!("{}", g.to_dot()),
                GraphFormat::Mermaid => out!("{}", g.to_mermaid()),
                GraphFormat::Json => outln!("{}", serde_json::to_string_pretty(&g)?),
            }
            Ok(Exit::Ok)
        }
    }
}

fn validate(a: ValidateArgs, settings: &Settings) -> Result<Exit, CliError> {
    let paths = if a.paths.is_empty() {
        vec![super::plans_dir(settings)?]
    } else {
        a.paths
    };
    let loaded = drctl::plan::load_with(&paths, &settings.sink_rules);
    match a.output {
        Output::Json => {
            let doc = serde_json::json!({
                "valid": !loaded.has_errors(),
                "files": loaded.files,
                "plans": loaded.plans.iter().map(|p| p.name()).collect::<Vec<_>>(),
                "diagnostics": loaded.diagnostics,
            });
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => {
            print_diagnostics(settings, &loaded);
            if !loaded.has_errors() {
                for p in &loaded.plans {
                    outln!(
                        "ok: {} ({} tier, RTO {}, RPO {}; {} resources; {})",
                        p.name(),
                        p.tier.name,
                        Human(p.tier.rto),
                        Human(p.tier.rpo),
                        p.spec.resources().len(),
                        p.path.display()
                    );
                }
            }
        }
    }
    if loaded.has_errors() {
        // The diagnostics above are the answer; only the code is left.
        return Err(CliError::reported(Exit::Invalid));
    }
    Ok(Exit::Ok)
}

/// Renders a plan for people.
pub fn show(plan: &Plan) -> String {
    let s = &plan.spec;
    let t = &plan.tier;
    let mut o = String::new();
    let _ = writeln!(o, "plan {}: {}", s.plan.name, s.plan.description);
    let _ = writeln!(o, "  file:   {}", plan.path.display());
    let _ = writeln!(
        o,
        "  tier:   {} (RTO {}, RPO {}, approval {}, drill every {})",
        t.name,
        Human(t.rto),
        Human(t.rpo),
        match t.approval {
            drctl::plan::Approval::Required => "required",
            drctl::plan::Approval::None => "not required",
        },
        Human(t.drill_interval)
    );
    let _ = writeln!(
        o,
        "  regions: {} (home), standbys: {}",
        plan.home(),
        plan.regions()[1..].join(", ")
    );
    if let Some(d) = &s.drill {
        let _ = writeln!(o, "  drills: cron `{}` (UTC)", d.schedule);
    }
    if let Some(e) = &s.evidence {
        let _ = writeln!(o, "  evidence: {}", e.destinations.join(", "));
    }
    render_resources(&mut o, plan);
    render_failovers(&mut o, plan);
    o
}

/// Each region's resources, as the plan names them there.
fn render_resources(o: &mut String, plan: &Plan) {
    let s = &plan.spec;
    let _ = writeln!(o, "\nresources:");
    for region in plan.regions() {
        let _ = writeln!(o, "  {region}:");
        for r in drctl::plan::kinds::each(s) {
            let _ = writeln!(o, "    {}", r.show(plan, region));
        }
    }
}

/// What a failover to each standby would do, step by step.
fn render_failovers(o: &mut String, plan: &Plan) {
    for target in &plan.regions()[1..] {
        let _ = writeln!(o, "\nfailover to {target} would:");
        if let Ok(g) = graph::compile(plan, target) {
            for (i, step) in g.steps.iter().enumerate() {
                let deps: Vec<String> = step.deps.iter().map(|d| (d + 1).to_string()).collect();
                let after = if deps.is_empty() {
                    String::new()
                } else {
                    format!(" [after {}]", deps.join(", "))
                };
                let _ = writeln!(o, "  {:>2}. {}{after}", i + 1, step.description);
                if let Some(why) = step.kind.name().traits().irreversible {
                    let _ = writeln!(o, "      ! {why}");
                }
            }
        }
    }
}
