//! drctl's one integration-test binary (one binary keeps link time of the large
//! AWS SDK crates down). Modules that need the emulators start them through
//! `localstack/up` (or reuse a running world) via [`world`].

mod adapters;
mod buckets;
mod calls;
mod cli;
mod drill;
mod evidence;
mod failover;
mod faults;
mod html;
mod layers;
mod outage;
mod probes;
mod proxy;
mod recovery;
mod report;
mod schema;
mod state;
mod terraform;
mod world;
