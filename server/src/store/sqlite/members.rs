//! Member records and pensions in SQL: one sealed match record per member, one row per pension
//! with its sealed view data.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::model::SchemeState;
use super::super::StoreError;
use crate::store::backend::{MemberRow, StoredPensionRow};

/// The content hash of a stored member: `None` when no such member, `Some(None)` when stored
/// before hashes were kept.
pub(in crate::store) fn content_hash(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT content_sha256 FROM members WHERE member_id = ?1")?
        .query_row([member_id], |r| r.get(0))
        .optional()?)
}

/// The asset GUIDs of a member's pensions.
pub(in crate::store) fn pension_guids(
    conn: &Connection,
    member_id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT asset_guid FROM pensions WHERE member_id = ?1 ORDER BY 1")?;
    let rows = stmt.query_map([member_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes a member and its pensions (replacing what was there).
pub(in crate::store) fn upsert(conn: &Connection, m: &MemberRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO members (member_id, holdername, sealed, content_sha256)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        m.member_id,
        m.holdername,
        m.sealed,
        m.content_sha256
    ])?;
    let mut pension = conn.prepare_cached(
        "INSERT OR REPLACE INTO pensions (asset_guid, member_id, holdername, scheme_name,
             view_data, statement_date, calculation_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
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
    Ok(())
}

/// Deletes one pension.
pub(in crate::store) fn delete_pension(
    conn: &Connection,
    asset_guid: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM pensions WHERE asset_guid = ?1")?
        .execute([asset_guid])?;
    Ok(())
}

/// Deletes a member (its pensions first, with [`delete_pension`]).
pub(in crate::store) fn delete(conn: &Connection, member_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM members WHERE member_id = ?1")?
        .execute([member_id])?;
    Ok(())
}

/// One member's sealed match record.
pub(in crate::store) fn sealed(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT sealed FROM members WHERE member_id = ?1")?
        .query_row([member_id], |r| r.get(0))
        .optional()?)
}

/// Every member ID (a full-snapshot import removes those it did not see), optionally of one
/// holdername.
pub(in crate::store) fn ids(
    conn: &Connection,
    holdername: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT member_id FROM members WHERE ?1 IS NULL OR holdername = ?1 ORDER BY 1")?;
    let rows = stmt.query_map([holdername], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notes a change the running endpoints must apply to their match index.
pub(in crate::store) fn record_change(
    conn: &Connection,
    kind: &str,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO data_changes (kind, key, at) VALUES (?1, ?2, ?3)")?
        .execute(params![kind, key, now])?;
    Ok(())
}

/// Deletes changes noted before `before` (µs), keeping the newest so the version never goes
/// back; returns how many.
pub(in crate::store) fn purge_changes(conn: &Connection, before: i64) -> Result<u64, StoreError> {
    let n = conn.execute(
        "DELETE FROM data_changes WHERE at < ?1
            AND version < (SELECT max(version) FROM data_changes)",
        [before],
    )?;
    Ok(n as u64)
}

/// The newest change's version (0 when none).
pub(in crate::store) fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT coalesce(max(version), 0) FROM data_changes",
        [],
        |r| r.get(0),
    )?)
}

/// Changes after `version`, oldest first, at most `limit`: `(version, kind, key)`.
pub(in crate::store) fn changes_since(
    conn: &Connection,
    version: i64,
    limit: usize,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, kind, key FROM data_changes WHERE version > ?1 ORDER BY version LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![version, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets a scheme's state.
pub(in crate::store) fn set_scheme(
    conn: &Connection,
    holdername: &str,
    state: SchemeState,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO schemes (holdername, state, changed_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (holdername) DO UPDATE SET state = excluded.state,
             changed_at = excluded.changed_at",
        params![holdername, state, now],
    )?;
    Ok(())
}

/// Schemes not active, with their states.
pub(in crate::store) fn schemes(
    conn: &Connection,
) -> Result<Vec<(String, SchemeState)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT holdername, state FROM schemes WHERE state <> 'active'")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One scheme's state (active when never set).
pub(in crate::store) fn scheme(
    conn: &Connection,
    holdername: &str,
) -> Result<SchemeState, StoreError> {
    Ok(conn
        .prepare_cached("SELECT state FROM schemes WHERE holdername = ?1")?
        .query_row([holdername], |r| r.get(0))
        .optional()?
        .unwrap_or(SchemeState::Active))
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
