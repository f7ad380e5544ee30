//! Member records and pensions in SQL: one sealed match record per member, one row per pension
//! with its sealed view data.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::StoreError;

/// A member row, sealed parts already sealed.
pub(in crate::store) struct MemberRow {
    pub member_id: String,
    pub holdername: String,
    pub sealed: Vec<u8>,
    pub pensions: Vec<PensionRow>,
}

/// A pension row.
pub(in crate::store) struct PensionRow {
    pub asset_guid: String,
    pub scheme_name: String,
    pub sealed_view_data: Vec<u8>,
    pub statement_date: Option<chrono::NaiveDate>,
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// A pension row as read, view data still sealed.
pub(in crate::store) struct StoredPensionRow {
    pub member_id: String,
    pub holdername: String,
    pub scheme_name: String,
    pub sealed_view_data: Vec<u8>,
    pub statement_date: Option<chrono::NaiveDate>,
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// Upserts members and their pensions.
pub(in crate::store) fn upsert(conn: &Connection, batch: &[MemberRow]) -> Result<(), StoreError> {
    let mut member = conn.prepare_cached(
        "INSERT OR REPLACE INTO members (member_id, holdername, sealed) VALUES (?1, ?2, ?3)",
    )?;
    let mut pension = conn.prepare_cached(
        "INSERT OR REPLACE INTO pensions (asset_guid, member_id, holdername, scheme_name,
             view_data, statement_date, calculation_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for m in batch {
        member.execute(params![m.member_id, m.holdername, m.sealed])?;
        for p in &m.pensions {
            pension.execute(params![
                p.asset_guid,
                m.member_id,
                m.holdername,
                p.scheme_name,
                p.sealed_view_data,
                p.statement_date.map(|d| d.to_string()),
                p.calculation_date.map(|d| d.to_string()),
            ])?;
        }
    }
    Ok(())
}

/// Calls `f` with every member's sealed record, in batches.
pub(in crate::store) fn for_each_sealed(
    conn: &Connection,
    batch_size: usize,
    mut f: impl FnMut(Vec<(String, Vec<u8>)>),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT member_id, sealed FROM members")?;
    let mut rows = stmt.query([])?;
    let mut batch = Vec::with_capacity(batch_size);
    while let Some(r) = rows.next()? {
        batch.push((r.get(0)?, r.get(1)?));
        if batch.len() == batch_size {
            f(std::mem::replace(
                &mut batch,
                Vec::with_capacity(batch_size),
            ));
        }
    }
    if !batch.is_empty() {
        f(batch);
    }
    Ok(())
}

/// One pension by asset GUID.
pub(in crate::store) fn pension(
    conn: &Connection,
    asset_guid: &str,
) -> Result<Option<StoredPensionRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT member_id, holdername, scheme_name, view_data, statement_date, calculation_date
             FROM pensions WHERE asset_guid = ?1",
        )?
        .query_row([asset_guid], |r| {
            Ok(StoredPensionRow {
                member_id: r.get(0)?,
                holdername: r.get(1)?,
                scheme_name: r.get(2)?,
                sealed_view_data: r.get(3)?,
                statement_date: super::date(r.get(4)?),
                calculation_date: super::date(r.get(5)?),
            })
        })
        .optional()?)
}

/// Replaces a pension's view data and calculation date; false when no such pension.
pub(in crate::store) fn set_view_data(
    conn: &Connection,
    asset_guid: &str,
    sealed_view_data: &[u8],
    calculation_date: chrono::NaiveDate,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE pensions SET view_data = ?2, calculation_date = ?3 WHERE asset_guid = ?1",
        params![asset_guid, sealed_view_data, calculation_date.to_string()],
    )?;
    Ok(n == 1)
}

/// Members stored.
pub(in crate::store) fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM members", [], |r| r.get(0))?;
    Ok(n as u64)
}
