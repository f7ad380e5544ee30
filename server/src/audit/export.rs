//! `audit export`: the audit trail for a forensic request (CoCo3.2.4), as JSON lines or CSV;
//! and the retention purge (CoCo2.1.6).

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::AuditRecord;
use crate::store::{Store, StoreError};

/// One exported audit record: timestamps as RFC 3339 and as µs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedRecord {
    /// Transaction ID.
    pub transaction_id: String,
    /// Related find request ID.
    pub request_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Client certificate subject, or `cas`.
    pub party: String,
    /// Method and path template.
    pub endpoint: String,
    /// Received or sent (RFC 3339).
    pub received: String,
    /// Answered (RFC 3339).
    pub responded: String,
    /// Received or sent, µs since the epoch.
    pub received_at: i64,
    /// Answered, µs since the epoch.
    pub responded_at: i64,
    /// HTTP status (0: no answer).
    pub status: u16,
    /// Latency, µs.
    pub latency_us: i64,
    /// Outcome.
    pub outcome: String,
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// From (µs, inclusive).
    pub from: i64,
    /// To (µs, exclusive).
    pub to: i64,
    /// Only this transaction or find request ID (a find's ACK, registrations and views).
    pub request_id: Option<String>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header.
    Csv,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output.
    #[error("writing: {0}")]
    Io(#[from] std::io::Error),
    /// Writing CSV.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// Reads the matching records, oldest first.
pub async fn records(store: &Store, f: &Filter) -> Result<Vec<ExportedRecord>, StoreError> {
    let rows = store
        .audit_records(f.from, f.to, f.request_id.clone())
        .await?;
    Ok(rows.into_iter().map(ExportedRecord::from).collect())
}

impl From<AuditRecord> for ExportedRecord {
    fn from(r: AuditRecord) -> Self {
        ExportedRecord {
            received: crate::datetimestamp(r.received_at),
            responded: crate::datetimestamp(r.responded_at),
            latency_us: r.latency_micros(),
            direction: r.direction.as_str().to_owned(),
            transaction_id: r.transaction_id,
            request_id: r.request_id,
            party: r.party,
            endpoint: r.endpoint,
            received_at: r.received_at,
            responded_at: r.responded_at,
            status: r.status,
            outcome: r.outcome,
        }
    }
}

/// Writes the matching records; returns how many.
pub async fn export(
    store: &Store,
    f: &Filter,
    format: Format,
    out: impl Write,
) -> Result<usize, ExportError> {
    let rows = records(store, f).await?;
    match format {
        Format::Jsonl => {
            let mut out = std::io::BufWriter::new(out);
            for r in &rows {
                serde_json::to_writer(&mut out, r).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for r in &rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
    }
    Ok(rows.len())
}

/// Deletes audit records older than `retention_days`; returns how many. The only way rows leave
/// the trail: the store refuses any other update or delete.
pub async fn purge(store: &Store, retention_days: u32, now_micros: i64) -> Result<u64, StoreError> {
    let cutoff = now_micros - i64::from(retention_days) * 86_400 * 1_000_000;
    store.purge_audit(cutoff).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditRecord, Direction};
    use crate::sealed::DataKey;
    use crate::store::StoreLimits;

    fn record(id: &str, request: &str, endpoint: &str, at: i64) -> AuditRecord {
        AuditRecord {
            transaction_id: id.into(),
            request_id: Some(request.into()),
            direction: Direction::Inbound,
            party: "CN=pfs, O=x".into(),
            endpoint: endpoint.into(),
            received_at: at,
            responded_at: at + 1500,
            status: 202,
            outcome: "ack".into(),
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let key = DataKey::from_hex(&"11".repeat(32)).unwrap();
        let s = Store::open(&dir.path().join("a.sqlite"), key, StoreLimits::default()).unwrap();
        let day = 86_400_000_000i64;
        for r in [
            record("t1", "find-1", "POST /find-requests", 10 * day),
            record("t2", "find-1", "POST /rreguri", 10 * day + 5),
            record("t3", "find-1", "GET /view-data", 11 * day),
            record("t4", "find-2", "POST /find-requests", 12 * day),
        ] {
            s.audit(r);
        }
        s.flush().await;
        (dir, s)
    }

    #[tokio::test]
    async fn jsonl_and_csv_round_trip_and_join_a_find_with_its_calls() {
        let (_d, s) = store().await;
        let f = Filter {
            from: 0,
            to: i64::MAX,
            request_id: Some("find-1".into()),
        };
        let mut out = Vec::new();
        assert_eq!(export(&s, &f, Format::Jsonl, &mut out).await.unwrap(), 3);
        let back: Vec<ExportedRecord> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, records(&s, &f).await.unwrap());
        let endpoints: Vec<&str> = back.iter().map(|r| r.endpoint.as_str()).collect();
        assert_eq!(
            endpoints,
            ["POST /find-requests", "POST /rreguri", "GET /view-data"]
        );
        assert_eq!(back[0].latency_us, 1500);
        let mut out = Vec::new();
        export(&s, &f, Format::Csv, &mut out).await.unwrap();
        let mut rdr = csv::Reader::from_reader(out.as_slice());
        let csv_back: Vec<ExportedRecord> = rdr.deserialize().map(Result::unwrap).collect();
        assert_eq!(csv_back, back);
        // A time window.
        let day = 86_400_000_000i64;
        let w = Filter {
            from: 11 * day,
            to: 12 * day,
            request_id: None,
        };
        assert_eq!(records(&s, &w).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn records_are_purged_only_past_retention() {
        let (_d, s) = store().await;
        let day = 86_400_000_000i64;
        // Retention 2196 days, "now" 2196 + 11 days: the records of day 10 go, the rest stay.
        let purged = purge(&s, 2196, (2196 + 11) * day).await.unwrap();
        assert_eq!(purged, 2);
        let all = Filter {
            from: 0,
            to: i64::MAX,
            request_id: None,
        };
        assert_eq!(records(&s, &all).await.unwrap().len(), 2);
        // A shorter retention later cannot bring the cutoff back, and nothing newer goes.
        assert_eq!(purge(&s, 4000, (2196 + 11) * day).await.unwrap(), 0);
        assert_eq!(records(&s, &all).await.unwrap().len(), 2);
    }
}
