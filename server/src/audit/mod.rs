//! The audit record: one per inbound and outbound call (CoCo2.1.6), kept 6 years.
//!
//! It holds transaction IDs, the related find request ID, the party, endpoint, timestamps,
//! status and latency. Never personal data: no find items, no tokens, no response bodies.
//! The trail is append-only in the store (triggers refuse updates and early deletes).
//!
//! - [`export`]: forensic export (JSON lines, CSV) and the retention purge.

pub mod export;

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A call an ecosystem party made to us.
    Inbound,
    /// A call we made to the CAS.
    Outbound,
    /// An operator's action (scheme suspended, severed, ...).
    Operator,
}

impl Direction {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Operator => "operator",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            "operator" => Some(Direction::Operator),
            _ => None,
        }
    }
}

/// One audited call.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The call's transaction ID (its X-Request-ID, or ours when it had none).
    pub transaction_id: String,
    /// The find request this call belongs to, when there is one.
    pub request_id: Option<String>,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The other party: the client certificate's subject inbound, `cas` outbound.
    pub party: String,
    /// Method and path template, e.g. `POST /find-requests`.
    pub endpoint: String,
    /// When the call was received (inbound) or sent (outbound), µs since the epoch.
    pub received_at: i64,
    /// When it was answered, µs since the epoch. For a find ACK the journal fills this in at
    /// commit time, just before the `202` leaves.
    pub responded_at: i64,
    /// HTTP status (0 when no response came: a connection error or time-out).
    pub status: u16,
    /// A short machine-readable outcome (`ack`, `duplicate`, an error code, ...).
    pub outcome: String,
}

impl AuditRecord {
    /// Latency in microseconds.
    pub fn latency_micros(&self) -> i64 {
        self.responded_at - self.received_at
    }
}
