//! The audit record: one per inbound and outbound call (CoCo2.1.6), kept 6 years; requests
//! refused over their client identity's rate are counted in one record per summary window.
//!
//! It holds transaction IDs, the related find request ID, the party, endpoint, timestamps,
//! status and latency. Never personal data: no find items, no tokens, no response bodies.
//! The trail is append-only in the store (triggers refuse updates and early deletes).
//!
//! - [`aggregate`]: one record for many rate-limited requests of one client identity.
//! - [`export`]: forensic export (JSON lines, CSV) and the retention purge.

pub mod aggregate;
pub mod export;

pub use crate::model::{AuditRecord, Direction};
