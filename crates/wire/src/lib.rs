//! What travels between Leasehold and its callers, shared by the server and the Rust
//! client so that neither keeps a copy of the other's types: the bodies of answers and
//! events ([`answers`]), validated names ([`names`]), items' states and what happens to
//! them ([`items`]),
//! numbers that hold only values in their range ([`numbers`]), and problem codes with their
//! statuses ([`problem`]).
//!
//! It depends on serde and serde_json alone (and on utoipa with the `utoipa` feature, for the server's
//! API description): nothing of HTTP servers, Redis or async runtimes.

pub mod answers;
pub mod items;
pub mod names;
pub mod numbers;
pub mod problem;
