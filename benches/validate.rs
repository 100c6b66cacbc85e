//! Plan loading and validation benchmark (not a timed test).
//!
//! For each size N it generates one plan of N resources (a quarter databases,
//! a quarter compute groups, a quarter DNS records, half of them following a
//! database, an eighth checks, an eighth buckets; every resource after the
//! one before it of its kind), writes it as TOML and as YAML, and measures:
//!
//! - `load`: `drctl::plan::load` on the file, as `drctl plan validate` runs
//!   it (read, size and nesting checks, position tree, serde, validation);
//! - `check`: `validate::check_plan` alone on the parsed plan.
//!
//! It prints the median of the repetitions, per plan and per resource, as a
//! markdown table. Validation must grow about linearly with N: the per
//! resource column should stay flat.
//!
//! ```text
//! cargo bench --profile dev --bench validate
//! cargo bench --profile dev --bench validate -- --sizes 100,1000 --reps 3
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use drctl::plan::source::{Format, SourceFile};
use drctl::plan::{PlanSpec, load, tiers, validate};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One plan of `n` resources, as TOML.
fn plan_toml(n: usize) -> String {
    let mut t = String::from(
        "[plan]\nname = \"big\"\ntier = \"critical\"\nregions = [\"us-west-2\", \"us-east-1\"]\n\n",
    );
    let (db, compute, dns) = (n / 4, n / 4, n / 4);
    let check = (n - db - compute - dns) / 2;
    let bucket = n - db - compute - dns - check;
    let after = |kind: &str, i: usize| {
        if i == 0 {
            String::new()
        } else {
            format!("after = [\"{kind}-{}\"]\n", i - 1)
        }
    };
    for i in 0..db {
        let _ = write!(
            t,
            "[[database]]\nid = \"db-{i}\"\nstrategy = \"promote-replica\"\nregions = {{ us-west-2 = \"db-{i}\", us-east-1 = \"db-{i}-replica\" }}\n{}\n",
            after("db", i)
        );
    }
    for i in 0..compute {
        let _ = write!(
            t,
            "[[compute]]\nid = \"app-{i}\"\nactive = {{ min = 2, desired = 4, max = 8 }}\nstandby = {{ min = 0, desired = 0, max = 8 }}\nregions = {{ us-west-2 = \"app-{i}-usw2\", us-east-1 = \"app-{i}-use1\" }}\n{}\n",
            after("app", i)
        );
    }
    for i in 0..dns {
        let value = if i % 2 == 0 && db > 0 {
            format!("follows = \"db-{}\"\n", i % db)
        } else {
            format!(
                "targets = {{ us-west-2 = \"r{i}-usw2.example.com.\", us-east-1 = \"r{i}-use1.example.com.\" }}\n"
            )
        };
        let _ = write!(
            t,
            "[[dns]]\nid = \"rec-{i}\"\nzone = \"example.com.\"\nname = \"r{i}.example.com.\"\ntype = \"CNAME\"\n{value}{}\n",
            after("rec", i)
        );
    }
    for i in 0..check {
        let _ = write!(
            t,
            "[[check]]\nid = \"probe-{i}\"\nregions = {{ us-west-2 = \"https://p{i}-usw2.example.com/healthz\", us-east-1 = \"https://p{i}-use1.example.com/healthz\" }}\n{}\n",
            after("probe", i)
        );
    }
    for i in 0..bucket {
        let _ = write!(
            t,
            "[[bucket]]\nid = \"data-{i}\"\nregions = {{ us-west-2 = \"s3://data-{i}-usw2\", us-east-1 = \"s3://data-{i}-use1\" }}\n{}\n",
            after("data", i)
        );
    }
    t
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `v` as block YAML, the shape people write: `key: value` lines,
/// sequences as `- ` items, every string double-quoted (a JSON string is a
/// YAML double-quoted scalar), empty collections in flow style.
fn to_yaml(v: &serde_json::Value) -> String {
    use serde_json::Value;
    fn inline(v: &Value) -> Option<String> {
        match v {
            Value::Object(m) if m.is_empty() => Some("{}".into()),
            Value::Array(a) if a.is_empty() => Some("[]".into()),
            Value::Object(_) | Value::Array(_) => None,
            // serde_json writes a string as JSON: a valid double-quoted scalar.
            other => Some(other.to_string()),
        }
    }
    fn block(out: &mut String, v: &Value, indent: usize) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match inline(x) {
                        Some(s) => {
                            let _ = writeln!(out, "{pad}{k}: {s}");
                        }
                        None => {
                            let _ = writeln!(out, "{pad}{k}:");
                            block(out, x, indent + 2);
                        }
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    match inline(x) {
                        Some(s) => {
                            let _ = writeln!(out, "{pad}- {s}");
                        }
                        None => {
                            let _ = writeln!(out, "{pad}-");
                            block(out, x, indent + 2);
                        }
                    }
                }
            }
            other => {
                let _ = writeln!(out, "{pad}{}", inline(other).unwrap_or_default());
            }
        }
    }
    let mut out = String::new();
    block(&mut out, v, 0);
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn us_per(d: Duration, n: usize) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6 / n.max(1) as f64)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or_else(|| "100,1000,5000".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let reps: usize = arg(&args, "--reps").map_or(Ok(5), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let builtin = tiers::builtin();

    println!(
        "| resources | format | file KiB | load ms | load µs/resource | check ms | check µs/resource |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let toml_text = plan_toml(n);
        let spec: PlanSpec = toml::from_str(&toml_text)?;
        let yaml_text = to_yaml(&serde_json::to_value(&spec)?);
        for (format, text) in [(Format::Toml, &toml_text), (Format::Yaml, &yaml_text)] {
            let ext = if format == Format::Toml {
                "toml"
            } else {
                "yaml"
            };
            let path = dir.path().join(format!("big-{n}.{ext}"));
            std::fs::write(&path, text)?;
            let (mut load_t, mut check_t) = (Vec::new(), Vec::new());
            for _ in 0..reps {
                eprint!(".");
                let start = Instant::now();
                let loaded = load(std::slice::from_ref(&path));
                load_t.push(start.elapsed());
                if !loaded.diagnostics.is_empty() || loaded.plans.len() != 1 {
                    let shown: Vec<String> = loaded
                        .diagnostics
                        .iter()
                        .take(3)
                        .map(|d| d.render(false))
                        .collect();
                    return Err(format!("generated plan is not valid:\n{}", shown.join("")).into());
                }
                check_t.push(check_only(&path, text, format, &spec, &builtin));
            }
            println!(
                "| {n} | {ext} | {} | {} | {} | {} | {} |",
                text.len() / 1024,
                ms(median(load_t.clone())),
                us_per(median(load_t), n),
                ms(median(check_t.clone())),
                us_per(median(check_t), n),
            );
        }
    }
    eprintln!();
    Ok(())
}

/// `check_plan` alone (the file is parsed first, outside the measurement).
fn check_only(
    path: &Path,
    text: &str,
    format: Format,
    spec: &PlanSpec,
    tiers: &BTreeMap<String, tiers::Tier>,
) -> Duration {
    let file = SourceFile::new(path.to_path_buf(), text.to_string(), format);
    let mut checker = validate::Checker::new(&file);
    let start = Instant::now();
    let tier = validate::check_plan(&mut checker, spec, tiers);
    let took = start.elapsed();
    assert!(tier.is_some() && checker.diagnostics.is_empty());
    took
}
