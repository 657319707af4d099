//! The integration tests: one binary (linking many costs minutes), one module a feature.
//! Everything runs against a real redis-server and the real router over real HTTP.

mod fixtures;
mod helpers;

mod acl;
mod chaos;
mod client;
mod connections;
mod contention;
mod counters;
mod durability;
mod errors;
mod events;
mod hostile;
mod idempotency;
mod items;
mod leases;
mod limits;
mod long_poll;
mod observe;
mod openapi;
mod pools;
mod processes;
mod proxy;
mod quotas;
mod retention;
mod scripts;
mod tenants;
mod tls;
mod topology;
mod ui;
