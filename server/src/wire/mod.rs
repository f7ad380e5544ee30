//! Wire types of the wire contract (`docs/wire-contract.md`, cited as "wire contract §n"): the
//! only place that spells a field name of the ecosystem's APIs.
//!
//! - [`cas`]: bodies of the provider's calls to the CAS: token, rreguri, perm, introspect.
//! - [`find`]: the find request body and its validation (wire contract §3.1, reconstructed).
//! - [`jwt`]: a JWT's claims read without verifying it (a PAT's expiry, a UAT's subject).
//! - [`problem`]: RFC 9457 problem details and the ACK body.
//! - [`report`]: PDP's reporting API v2.1: the six daily submissions, its answers and the
//!   stub's scripted faults.
//! - [`view`]: the view data payload, its code lists, the view response and the UMA challenge;
//!   [`view::schema`], the data standard's own schema that decides what view data is valid.

pub mod cas;
pub mod find;
pub mod jwt;
pub mod problem;
pub mod report;
pub mod view;
