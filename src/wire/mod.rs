//! Wire types of SPEC.md: the only place that spells a field name of the ecosystem's APIs.
//!
//! - [`find`]: the find request body and its validation (SPEC §3.1, reconstructed).
//! - [`problem`]: RFC 9457 problem details and the ACK body.

pub mod find;
pub mod problem;
