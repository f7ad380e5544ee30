//! Simulators of the ecosystem around the provider, for tests, the demo and load tests.
//!
//! - [`cas`]: the consent and authorisation service, speaking the wire contract's CAS side
//!   (`docs/wire-contract.md` §4) over mTLS, with
//!   a control listener to read what it received and to inject faults.
//! - [`dashboard`]: a dashboard that performs the UMA flow and verifies view data tokens as
//!   MaPS' does.
//! - [`pfs`]: a pension finder service that sends find requests derived from member records.
//! - [`report`]: PDP's reporting API inside the CAS simulator, validating as MaPS' stub does,
//!   with its scripted faults (`POST /configuration`).
//! - [`magic`]: MaPS' stub's magic values (UATs, PATs, RPTs that script the CAS's answers).
//! - [`selftest`]: PDP's system test scenarios played against an endpoint, with the evidence.
//! - [`demo`]: the endpoint with all three around it, and a summary of what happened.
//! - [`tls`]: the dev certificates every simulator serves.

// The simulators' functions stay short enough to read whole (clippy.toml: 100 lines).
#![warn(clippy::too_many_lines)]

pub mod bare;
pub mod cas;
pub mod dashboard;
pub mod demo;
pub mod magic;
pub mod pfs;
pub mod report;
pub mod selftest;
pub mod tls;
