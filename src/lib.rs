//! # Leasehold
//!
//! Leasehold lets many app instances (serverless functions, horizontally scaled web
//! servers, workers) share out work **without overlap**, over HTTP. All state lives in
//! Redis, every state change is one Lua script (atomic inside Redis), and the API
//! replicas hold no state, so they scale horizontally.
//!
//! ## The model
//!
//! - A **tenant** is an isolation boundary (a firm). It comes from the API key only.
//! - A **pool** is a named set of **items** to share out. Items have an `id`, a
//!   `priority` (higher first, first-in first-out within a priority), a `state`
//!   (`available` → `leased` → `done`; back to `available` on release or expiry;
//!   `delayed` while a release delay runs; `dead` after `max_attempts` grants), a
//!   `version` (+1 on every change; the `ETag`), and `data` (a JSON object ≤ 64 KiB).
//! - A **lease** grants an item to a **holder** until it expires (by Redis's clock),
//!   is released, or is completed. Each grant carries a **fencing token**, a per-pool
//!   number that strictly increases, so downstream systems can refuse a stale holder.
//! - Writes to an item can be made conditional: `If-Match` (412), `expected_version`
//!   (409), `Lease-Token` (409 `lease_lost`). Any write can carry an `Idempotency-Key`,
//!   whose answer is stored by the same script as the effect and replayed on retry.
//! - A **counter** hands out contiguous batches of sequence numbers per tenant,
//!   optionally starting again at 1 each day in a time zone, the day decided by Redis.
//! - Every change to an item is also an **event** in the pool's capped log, appended by
//!   the same script: the audit trail, paged or followed live (Server-Sent Events). A
//!   claim may **wait** for an item (long-poll): a script that makes items available
//!   announces it on the pool's pub/sub channel, which wakes waiters on every replica
//!   (`src/store/wakeups.rs`).
//!
//! ## Where things are
//!
//! Each operation has one name in three places: `lua/<op>.lua`, the [`store::Store`]
//! method that runs it, and the route in [`api`] that exposes it. [`store::keys`] is the
//! only place a Redis key is named; [`names`] validates every name before that;
//! [`error::ApiError`] is the only mapping from problems to HTTP answers. The API's
//! description, `GET /openapi.json`, is generated from those same handlers, types and
//! rules ([`api::openapi`]), so it cannot drift from what the server does.
//!
//! Callers in Rust use [`client`]: typed calls, retries that reuse their
//! `Idempotency-Key`, and lease guards that renew themselves.
//!
//! The proof lives beside it: [`contend`] runs many clients against any deployment and
//! records what they saw; [`check`] decides from that history whether any item was held
//! twice, any token or counter value handed out twice, or any acknowledged write lost.
//!
//! ## The module map
//!
//! Imports flow one way, down this table: a module uses only those it names (no cycle
//! among them; `python3 shared/tools/module_cycles.py src` checks). What travels over the
//! wire is the crate `leasehold-wire` ([`names`] is its names), and the Rust client is
//! the crate `leasehold-client` ([`client`]): neither knows of the server.
//!
//! | module | owns | may use |
//! |---|---|---|
//! | [`metrics`] | metric names, the recorder, the request middleware | — |
//! | [`dev`] | the embedded `redis-server` of `leasehold dev` | — |
//! | [`store`] | everything that speaks to Redis; `StoreError` | `metrics`, `names` |
//! | [`error`] | `ApiError` and its one mapping to problem answers | `store`, `metrics`, `names` |
//! | [`auth`] | API keys and their tenants | `error`, `names` |
//! | [`model`] | the JSON answers built from what the store read | `store`, `error`, `names` |
//! | [`state`] | `AppState`, what handlers share | `store`, `auth` |
//! | [`config`] | the settings, read once | `store`, `auth` |
//! | [`api`] | the routes, their typed input and answers, the API description | `state`, `store`, `model`, `auth`, `error`, `metrics`, `names` |
//! | [`ui`] | the dashboard's files | `state` |
//! | [`app`] | the router with its layers, serving and shutdown | `api`, `ui`, `state`, `config`, `store`, `metrics` |
//! | [`check`] | the history checkers | `store`, `client` |
//! | [`contend`] | `leasehold contend` | `check`, `store`, `client` |
//! | [`bench`] | `leasehold bench`: the benchmark's loading, key names and function names, the retention soak, the per-operation cost | `store`, `metrics`, `names`, `client` |
//! | [`cli`] | the command line | `config`, `store` |

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod check;
pub mod cli;
pub use leasehold_client as client;
pub mod config;
pub mod contend;
pub mod dev;
pub mod error;
pub mod metrics;
pub mod model;
pub use leasehold_wire::names;
pub mod state;
pub mod store;
pub mod ui;
