//! Member records, pensions, schemes and data changes in PostgreSQL's SQL (see the SQLite
//! backend's `members.rs`).

use deadpool_postgres::GenericClient;

use super::super::model::SchemeState;
use super::super::StoreError;
use crate::store::backend::{MemberRow, StoredPensionRow};

/// The content hash of a stored member: `None` when no such member, `Some(None)` when stored
/// before hashes were kept.
pub(super) async fn content_hash(
    c: &impl GenericClient,
    member_id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    let stmt = c
        .prepare_cached("SELECT content_sha256 FROM members WHERE member_id = $1")
        .await?;
    Ok(c.query_opt(&stmt, &[&member_id]).await?.map(|r| r.get(0)))
}

/// The asset GUIDs of a member's pensions.
pub(super) async fn pension_guids(
    c: &impl GenericClient,
    member_id: &str,
) -> Result<Vec<String>, StoreError> {
    let stmt = c
        .prepare_cached("SELECT asset_guid FROM pensions WHERE member_id = $1 ORDER BY 1")
        .await?;
    Ok(c.query(&stmt, &[&member_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Writes a member and its pensions (replacing what was there).
pub(super) async fn upsert(c: &impl GenericClient, m: &MemberRow) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO members (member_id, holdername, sealed, content_sha256)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (member_id) DO UPDATE SET holdername = excluded.holdername,
                 sealed = excluded.sealed, content_sha256 = excluded.content_sha256",
        )
        .await?;
    c.execute(
        &stmt,
        &[&m.member_id, &m.holdername, &m.sealed, &m.content_sha256],
    )
    .await?;
    let pension = c
        .prepare_cached(
            "INSERT INTO pensions (asset_guid, member_id, holdername, scheme_name, view_data,
                 statement_date, calculation_date)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (asset_guid) DO UPDATE SET member_id = excluded.member_id,
                 holdername = excluded.holdername, scheme_name = excluded.scheme_name,
                 view_data = excluded.view_data, statement_date = excluded.statement_date,
                 calculation_date = excluded.calculation_date",
        )
        .await?;
    for p in &m.pensions {
        c.execute(
            &pension,
            &[
                &p.asset_guid,
                &m.member_id,
                &m.holdername,
                &p.scheme_name,
                &p.sealed_view_data,
                &p.statement_date.map(|d| d.to_string()),
                &p.calculation_date.map(|d| d.to_string()),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Deletes one pension.
pub(super) async fn delete_pension(
    c: &impl GenericClient,
    asset_guid: &str,
) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached("DELETE FROM pensions WHERE asset_guid = $1")
        .await?;
    c.execute(&stmt, &[&asset_guid]).await?;
    Ok(())
}

/// Deletes a member (its pensions first, with [`delete_pension`]).
pub(super) async fn delete(c: &impl GenericClient, member_id: &str) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached("DELETE FROM members WHERE member_id = $1")
        .await?;
    c.execute(&stmt, &[&member_id]).await?;
    Ok(())
}

/// Members' sealed match records.
pub(super) async fn sealed(
    c: &impl GenericClient,
    member_ids: &[String],
) -> Result<Vec<(String, Option<Vec<u8>>)>, StoreError> {
    let rows = c
        .query(
            "SELECT member_id, sealed FROM members WHERE member_id = ANY($1)",
            &[&member_ids],
        )
        .await?;
    let mut found: std::collections::HashMap<String, Vec<u8>> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(member_ids
        .iter()
        .map(|id| (id.clone(), found.remove(id)))
        .collect())
}

/// Every member ID, optionally of one holdername.
pub(super) async fn ids(
    c: &impl GenericClient,
    holdername: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .query(
            "SELECT member_id FROM members WHERE $1::TEXT IS NULL OR holdername = $1 ORDER BY 1",
            &[&holdername],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Notes a change the running endpoints must apply to their match index. The table's lock is
/// taken first (it blocks other writers of changes, never readers), so that versions commit in
/// the order they are numbered.
pub(super) async fn record_change(
    c: &impl GenericClient,
    kind: &str,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute("LOCK TABLE data_changes IN SHARE ROW EXCLUSIVE MODE", &[])
        .await?;
    let stmt = c
        .prepare_cached("INSERT INTO data_changes (kind, key, at) VALUES ($1, $2, $3)")
        .await?;
    c.execute(&stmt, &[&kind, &key, &now]).await?;
    Ok(())
}

/// Deletes changes noted before `before` (µs), keeping the newest; returns how many.
pub(super) async fn purge_changes(c: &impl GenericClient, before: i64) -> Result<u64, StoreError> {
    Ok(c.execute(
        "DELETE FROM data_changes WHERE at < $1
            AND version < (SELECT max(version) FROM data_changes)",
        &[&before],
    )
    .await?)
}

/// The newest change's version (0 when none).
pub(super) async fn data_version(c: &impl GenericClient) -> Result<i64, StoreError> {
    Ok(
        c.query_one("SELECT coalesce(max(version), 0) FROM data_changes", &[])
            .await?
            .try_get(0)?,
    )
}

/// Changes after `version`, oldest first, at most `limit`: `(version, kind, key)`.
pub(super) async fn changes_since(
    c: &impl GenericClient,
    version: i64,
    limit: usize,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT version, kind, key FROM data_changes WHERE version > $1
              ORDER BY version LIMIT $2",
        )
        .await?;
    Ok(c.query(&stmt, &[&version, &(limit as i64)])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Sets a scheme's state.
pub(super) async fn set_scheme(
    c: &impl GenericClient,
    holdername: &str,
    state: SchemeState,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO schemes (holdername, state, changed_at) VALUES ($1, $2, $3)
         ON CONFLICT (holdername) DO UPDATE SET state = excluded.state,
             changed_at = excluded.changed_at",
        &[&holdername, &state, &now],
    )
    .await?;
    Ok(())
}

/// Schemes not active, with their states.
pub(super) async fn schemes(
    c: &impl GenericClient,
) -> Result<Vec<(String, SchemeState)>, StoreError> {
    c.query(
        "SELECT holdername, state FROM schemes WHERE state <> 'active'",
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

/// One scheme's state (active when never set).
pub(super) async fn scheme(
    c: &impl GenericClient,
    holdername: &str,
) -> Result<SchemeState, StoreError> {
    let stmt = c
        .prepare_cached("SELECT state FROM schemes WHERE holdername = $1")
        .await?;
    match c.query_opt(&stmt, &[&holdername]).await? {
        Some(r) => Ok(r.try_get(0)?),
        None => Ok(SchemeState::Active),
    }
}

/// One pension by asset GUID.
pub(super) async fn pension(
    c: &impl GenericClient,
    asset_guid: &str,
) -> Result<Option<StoredPensionRow>, StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT member_id, holdername, scheme_name, view_data, statement_date,
                    calculation_date
               FROM pensions WHERE asset_guid = $1",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&asset_guid])
        .await?
        .map(|r| StoredPensionRow {
            member_id: r.get(0),
            holdername: r.get(1),
            scheme_name: r.get(2),
            sealed_view_data: r.get(3),
            statement_date: super::date(r.get(4)),
            calculation_date: super::date(r.get(5)),
        }))
}

/// Replaces a pension's view data and calculation date.
pub(super) async fn set_view_data(
    c: &impl GenericClient,
    asset_guid: &str,
    sealed_view_data: &[u8],
    calculation_date: chrono::NaiveDate,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE pensions SET view_data = $2, calculation_date = $3 WHERE asset_guid = $1",
        &[
            &asset_guid,
            &sealed_view_data,
            &calculation_date.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// Members stored.
pub(super) async fn count(c: &impl GenericClient) -> Result<u64, StoreError> {
    let n: i64 = c
        .query_one("SELECT count(*) FROM members", &[])
        .await?
        .try_get(0)?;
    Ok(n as u64)
}
