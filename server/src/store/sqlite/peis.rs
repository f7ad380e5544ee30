//! PeIs, PATs and calculations in SQL.
//!
//! Recording matches is idempotent: a PeI is keyed by its URN, and a repeat keeps its state and
//! PAT (only a still-pending PeI moves to the newer find). A PeI's PAT is set once, by the
//! registration that used it, because the CAS answers `401` to any other PAT for that PeI.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::model::{
    Calculation, MatchStatus, NewPei, PeiMatch, PeiState, ReviewState, StoredPei,
};
use super::super::StoreError;
use crate::store::backend::{PatRefresh, PeiMove};

/// Inserts the PeIs a find produced (idempotent).
pub(in crate::store) fn record(
    conn: &Connection,
    request_id: &str,
    peis: &[NewPei],
    now: i64,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO peis (pei, asset_guid, holdername, pension_asset_guid, member_id,
             scheme_name, match_status, reason, rules_version, request_id, state, review,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12)
         ON CONFLICT (pei) DO UPDATE SET request_id = excluded.request_id
             WHERE peis.state = 'pending'",
    )?;
    for p in peis {
        let review =
            (p.matched.match_status == MatchStatus::Possible).then_some(ReviewState::Pending);
        stmt.execute(params![
            p.matched.pei,
            p.matched.asset_guid.hyphenated().to_string(),
            p.matched.holdername.hyphenated().to_string(),
            p.matched.pension_asset_guid.hyphenated().to_string(),
            p.matched.member_id,
            p.matched.scheme_name,
            p.matched.match_status,
            p.matched.reason,
            p.rules_version,
            request_id,
            review,
            now
        ])?;
    }
    Ok(())
}

const PEI_COLUMNS: &str = "pei, asset_guid, holdername, pension_asset_guid, member_id, scheme_name,
    match_status, reason, request_id, pat_id, resource_id, state, review, registered_at,
    deletion_reason";

fn row_to_pei(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPei> {
    Ok(StoredPei {
        matched: PeiMatch {
            pei: r.get(0)?,
            asset_guid: super::guid(&r.get::<_, String>(1)?)?,
            holdername: super::guid(&r.get::<_, String>(2)?)?,
            pension_asset_guid: super::guid(&r.get::<_, String>(3)?)?,
            member_id: r.get(4)?,
            scheme_name: r.get(5)?,
            match_status: r.get(6)?,
            reason: r.get(7)?,
        },
        request_id: r.get(8)?,
        pat_id: r.get(9)?,
        resource_id: r.get(10)?,
        state: r.get(11)?,
        review: r.get(12)?,
        registered_at: r.get(13)?,
        deletion_reason: r.get(14)?,
    })
}

/// PeIs matching `condition` (a fixed SQL fragment), ordered by `order`.
fn select(
    conn: &Connection,
    condition: &str,
    order: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredPei>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PEI_COLUMNS} FROM peis WHERE {condition} ORDER BY {order}"
    ))?;
    let rows = stmt.query_map(params, row_to_pei)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// PeIs a find produced.
pub(in crate::store) fn for_request(
    conn: &Connection,
    request_id: &str,
) -> Result<Vec<StoredPei>, StoreError> {
    select(conn, "request_id = ?1", "pei", [request_id])
}

/// PeIs of one pension.
pub(in crate::store) fn for_pension(
    conn: &Connection,
    pension_asset_guid: &str,
) -> Result<Vec<StoredPei>, StoreError> {
    select(conn, "pension_asset_guid = ?1", "pei", [pension_asset_guid])
}

/// PeIs of one holdername.
pub(in crate::store) fn for_holdername(
    conn: &Connection,
    holdername: &str,
) -> Result<Vec<StoredPei>, StoreError> {
    select(conn, "holdername = ?1", "pei", [holdername])
}

/// Every PeI.
pub(in crate::store) fn all(conn: &Connection) -> Result<Vec<StoredPei>, StoreError> {
    select(conn, "1", "pei", [])
}

/// PeIs in one state.
pub(in crate::store) fn in_state(
    conn: &Connection,
    state: PeiState,
) -> Result<Vec<StoredPei>, StoreError> {
    select(conn, "state = ?1", "pei", [state])
}

/// Registered possible matches still waiting for review, created before `before` (µs).
pub(in crate::store) fn unreviewed_before(
    conn: &Connection,
    before: i64,
) -> Result<Vec<StoredPei>, StoreError> {
    select(
        conn,
        "match_status = 'match-possible' AND review = 'pending'
         AND state IN ('registered', 'deregistering') AND created_at < ?1",
        "created_at",
        [before],
    )
}

/// One PeI by its asset GUID (the view endpoint's key).
pub(in crate::store) fn by_asset_guid(
    conn: &Connection,
    asset_guid: &str,
) -> Result<Option<StoredPei>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PEI_COLUMNS} FROM peis WHERE asset_guid = ?1"
        ))?
        .query_row([asset_guid], row_to_pei)
        .optional()?)
}

/// Marks a pending PeI registered (its PAT set only if it had none). A PeI de-registered while
/// its registration was under way (its pension removed, its scheme severed) now has a resource
/// at the CAS that must go: it becomes `deregistering`, with the resource, for the sweep.
pub(in crate::store) fn registered(
    conn: &Connection,
    pei: &str,
    resource_id: &str,
    pat_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE peis SET state = 'registered', resource_id = ?2,
                    pat_id = coalesce(pat_id, ?3), registered_at = coalesce(registered_at, ?4)
              WHERE pei = ?1 AND state = 'pending'",
        )?
        .execute(params![pei, resource_id, pat_id, now])?;
    if n == 0 {
        conn.prepare_cached(
            "UPDATE peis SET state = 'deregistering', resource_id = ?2,
                    pat_id = coalesce(pat_id, ?3)
              WHERE pei = ?1 AND state = 'deregistered' AND resource_id IS NULL",
        )?
        .execute(params![pei, resource_id, pat_id])?;
    }
    Ok(())
}

/// The PeIs of a pension that is gone (removed by an import, or its scheme severed): a pending
/// one is de-registered at once (nothing at the CAS yet), a registered one marked
/// `deregistering` with `reason`, so views stop now and the sweep tells the CAS.
pub(in crate::store) fn retire_pension(
    conn: &Connection,
    pension_asset_guid: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE peis SET state = CASE state WHEN 'pending' THEN 'deregistered'
                                                ELSE 'deregistering' END,
                    deletion_reason = ?2, deregistered_at = ?3
              WHERE pension_asset_guid = ?1 AND state IN ('pending', 'registered')",
        )?
        .execute(params![pension_asset_guid, reason, now])?;
    Ok(n as u64)
}

/// Moves a PeI to `to` if it is in one of `from`; with a deletion reason and time when given.
/// Returns whether it moved.
pub(in crate::store) fn set_state(conn: &Connection, change: &PeiMove) -> Result<bool, StoreError> {
    let PeiMove {
        pei,
        from,
        to,
        deletion,
    } = change;
    let deletion = deletion.as_ref();
    let mut n = 0;
    for f in *from {
        n += conn
            .prepare_cached(
                "UPDATE peis SET state = ?3,
                        deletion_reason = coalesce(?4, deletion_reason),
                        deregistered_at = coalesce(?5, deregistered_at)
                  WHERE pei = ?1 AND state = ?2",
            )?
            .execute(params![
                pei,
                f,
                to,
                deletion.map(|d| &d.0),
                deletion.map(|d| d.1)
            ])?;
    }
    Ok(n > 0)
}

/// Records a possible match's review and the match status it leaves.
pub(in crate::store) fn set_review(
    conn: &Connection,
    pei: &str,
    review: ReviewState,
    match_status: MatchStatus,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE peis SET review = ?2, match_status = ?3 WHERE pei = ?1",
        params![pei, review, match_status],
    )?;
    Ok(())
}

/// Stores a sealed PAT.
pub(in crate::store) fn insert_pat(
    conn: &Connection,
    pat_id: &str,
    sha256: &str,
    sealed: &[u8],
    expires_at: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pats (pat_id, pat_sha256, sealed, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![pat_id, sha256, sealed, expires_at, now])?;
    Ok(())
}

/// A sealed PAT.
pub(in crate::store) fn pat(conn: &Connection, pat_id: &str) -> Result<Vec<u8>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT sealed FROM pats WHERE pat_id = ?1")?
        .query_row([pat_id], |r| r.get(0))?)
}

/// IDs of the stored PATs with this SHA-256.
pub(in crate::store) fn pats_by_sha(
    conn: &Connection,
    sha256: &str,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT pat_id FROM pats WHERE pat_sha256 = ?1")?;
    let rows = stmt.query_map([sha256], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces a stored PAT (PAT refresh).
pub(in crate::store) fn replace_pat(
    conn: &Connection,
    pat_id: &str,
    refresh: &PatRefresh,
    sealed: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE pats SET pat_sha256 = ?2, sealed = ?3, expires_at = ?4 WHERE pat_id = ?1",
        params![pat_id, refresh.new_sha256, sealed, refresh.expires_at],
    )?;
    Ok(())
}

/// Whether a calculation is already recorded for a PeI.
pub(in crate::store) fn has_calculation(conn: &Connection, pei: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM calculations WHERE pei = ?1)")?
        .query_row([pei], |r| r.get(0))?)
}

/// Records a calculation owed (once; later calls keep the first).
pub(in crate::store) fn insert_calculation(
    conn: &Connection,
    c: &Calculation,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO calculations (pei, pension_asset_guid, kind, started_on, due_on)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        c.pei,
        c.pension_asset_guid.hyphenated().to_string(),
        c.kind,
        c.started_on.to_string(),
        c.due_on.to_string()
    ])?;
    Ok(())
}

/// Closes a pension's open calculations; returns how many.
pub(in crate::store) fn complete_calculations(
    conn: &Connection,
    pension_asset_guid: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let n = conn.execute(
        "UPDATE calculations SET completed_at = ?2
          WHERE pension_asset_guid = ?1 AND completed_at IS NULL",
        params![pension_asset_guid, now],
    )?;
    Ok(n as u64)
}

/// Calculations, open ones first by due date.
pub(in crate::store) fn calculations(conn: &Connection) -> Result<Vec<Calculation>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT pei, pension_asset_guid, kind, started_on, due_on, completed_at
           FROM calculations ORDER BY completed_at IS NOT NULL, due_on, pei",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Calculation {
            pei: r.get(0)?,
            pension_asset_guid: super::guid(&r.get::<_, String>(1)?)?,
            kind: r.get(2)?,
            started_on: super::date(r.get(3)?).unwrap_or_default(),
            due_on: super::date(r.get(4)?).unwrap_or_default(),
            completed_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
