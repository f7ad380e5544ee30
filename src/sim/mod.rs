//! Simulators of the ecosystem around the provider, for tests, the demo and load tests.
//!
//! - [`cas`]: the consent and authorisation service, speaking SPEC.md's CAS side over mTLS, with
//!   a control listener to read what it received and to inject faults.
//! - [`pfs`]: a pension finder service that sends find requests derived from member records.

pub mod cas;
pub mod pfs;
