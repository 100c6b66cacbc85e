//! drctl's one integration-test binary (one binary keeps link time of the large
//! AWS SDK crates down). Modules that need the emulators start them through
//! `localstack/up` (or reuse a running world) via [`world`], and only when
//! `DRCTL_IT=1` opts in (`scripts/test` sets it); without it those tests
//! return early and plain `cargo test` stays fast. Their shared fixture (one
//! seeded world per test) is [`fixture`].

mod adapters;
mod aurora;
mod aurora_drill;
mod backups;
mod buckets;
mod calls;
mod chaos;
mod cli;
mod demo;
mod dnsplane;
mod drill;
mod ecs;
mod evidence;
mod failover;
mod faults;
mod fencing;
mod fixture;
mod gcp_dns;
mod gcp_drill;
mod gcp_mig;
mod gcp_run;
mod gcp_sql;
mod html;
mod iam;
mod iam_trust;
mod kubernetes;
mod layers;
mod mass;
mod mixed;
mod nodes;
mod notify;
mod outage;
mod probes;
mod protections;
mod proxy;
mod recovery;
mod regions;
mod report;
mod schema;
mod seeder;
mod state;
mod targets;
mod terraform;
mod timed;
mod trust;
mod watch;
mod world;
