//! Member records at rest: sealed JSON per member, and one row per pension for view look-ups.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::sealed::DataKey;
use super::StoreError;
use crate::members::record::{scheme_name, MatchRecord, MemberRecord};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS members (
    member_id   TEXT PRIMARY KEY,
    holdername  TEXT NOT NULL,
    sealed      BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS pensions (
    asset_guid   TEXT PRIMARY KEY,
    member_id    TEXT NOT NULL,
    holdername   TEXT NOT NULL,
    scheme_name  TEXT NOT NULL,
    view_data    BLOB NOT NULL,              -- sealed view data JSON
    statement_date   TEXT,                   -- YYYY-MM-DD: values from a statement
    calculation_date TEXT                    -- YYYY-MM-DD: values from a calculation
) STRICT;
CREATE INDEX IF NOT EXISTS pensions_member ON pensions (member_id);
";

/// A pension's stored row.
#[derive(Debug, Clone)]
pub struct StoredPension {
    /// The pension's asset GUID.
    pub asset_guid: Uuid,
    /// Its member.
    pub member_id: String,
    /// Its holdername.
    pub holdername: Uuid,
    /// The scheme name.
    pub scheme_name: String,
    /// The view data (opened).
    pub view_data: serde_json::Value,
    /// Date of the statement the values come from.
    pub statement_date: Option<chrono::NaiveDate>,
    /// Date of the calculation the values come from.
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// Upserts a batch of validated members in one transaction.
pub fn upsert(
    conn: &mut Connection,
    key: &DataKey,
    batch: &[MemberRecord],
) -> Result<(), StoreError> {
    let _write = super::write_lock();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut member = tx.prepare_cached(
            "INSERT OR REPLACE INTO members (member_id, holdername, sealed) VALUES (?1, ?2, ?3)",
        )?;
        let mut pension = tx.prepare_cached(
            "INSERT OR REPLACE INTO pensions (asset_guid, member_id, holdername, scheme_name,
                 view_data, statement_date, calculation_date)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for m in batch {
            let json = serde_json::to_vec(&m.match_record()).expect("match record serialises");
            let holdername = m.holdername.hyphenated().to_string();
            member.execute(params![
                m.member_id,
                holdername,
                key.seal(m.member_id.as_bytes(), &json)
            ])?;
            for p in &m.pensions {
                let guid = p.asset_guid.hyphenated().to_string();
                let vd = serde_json::to_vec(&p.view_data).expect("view data serialises");
                pension.execute(params![
                    guid,
                    m.member_id,
                    holdername,
                    scheme_name(&p.view_data),
                    key.seal(guid.as_bytes(), &vd),
                    p.statement_date.map(|d| d.to_string()),
                    p.calculation_date.map(|d| d.to_string()),
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Calls `f` with every stored member's sealed match record, in batches (for index building).
pub fn for_each_sealed(
    conn: &Connection,
    mut f: impl FnMut(Vec<(String, Vec<u8>)>),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT member_id, sealed FROM members")?;
    let mut rows = stmt.query([])?;
    let mut batch = Vec::with_capacity(4096);
    while let Some(r) = rows.next()? {
        batch.push((r.get(0)?, r.get(1)?));
        if batch.len() == 4096 {
            f(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        f(batch);
    }
    Ok(())
}

/// Opens a sealed member row (its match record; view data lives in `pensions`).
pub fn open_member(
    key: &DataKey,
    member_id: &str,
    sealed: &[u8],
) -> Result<MatchRecord, StoreError> {
    let json = key.open(member_id.as_bytes(), sealed)?;
    serde_json::from_slice(&json).map_err(|_| StoreError::Corrupt("member record"))
}

/// One pension by asset GUID.
pub fn pension(
    conn: &Connection,
    key: &DataKey,
    asset_guid: Uuid,
) -> Result<Option<StoredPension>, StoreError> {
    let guid = asset_guid.hyphenated().to_string();
    type Row = (
        String,
        String,
        String,
        Vec<u8>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT member_id, holdername, scheme_name, view_data, statement_date, calculation_date
             FROM pensions WHERE asset_guid = ?1",
        )?
        .query_row([&guid], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((member_id, holdername, scheme_name, sealed, statement, calculation)) = row else {
        return Ok(None);
    };
    let date = |d: Option<String>| d.and_then(|d| crate::matching::normalise::date(&d));
    let vd = key.open(guid.as_bytes(), &sealed)?;
    Ok(Some(StoredPension {
        asset_guid,
        member_id,
        holdername: Uuid::parse_str(&holdername).map_err(|_| StoreError::Corrupt("holdername"))?,
        scheme_name,
        view_data: serde_json::from_slice(&vd).map_err(|_| StoreError::Corrupt("view data"))?,
        statement_date: date(statement),
        calculation_date: date(calculation),
    }))
}

/// Members stored.
pub fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM members", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// Replaces a pension's values with a completed calculation's (`values import`): its benefit
/// illustrations and calculation date. Returns false when no such pension is stored. The caller
/// holds the write lock (`Queue::with_write`).
pub fn set_calculated_values(
    conn: &Connection,
    key: &DataKey,
    asset_guid: Uuid,
    calculation_date: chrono::NaiveDate,
    benefit_illustrations: &serde_json::Value,
) -> Result<bool, StoreError> {
    let Some(mut p) = pension(conn, key, asset_guid)? else {
        return Ok(false);
    };
    p.view_data["benefitIllustrations"] = benefit_illustrations.clone();
    let guid = asset_guid.hyphenated().to_string();
    let vd = serde_json::to_vec(&p.view_data).expect("view data serialises");
    conn.execute(
        "UPDATE pensions SET view_data = ?2, calculation_date = ?3 WHERE asset_guid = ?1",
        params![
            guid,
            key.seal(guid.as_bytes(), &vd),
            calculation_date.to_string()
        ],
    )?;
    Ok(true)
}
