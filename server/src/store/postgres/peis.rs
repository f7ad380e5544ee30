//! PeIs, PATs and calculations in PostgreSQL's SQL (see the SQLite backend's `peis.rs`).

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::model::{Calculation, MatchStatus, NewPei, PeiMatch, ReviewState, StoredPei};
use super::super::StoreError;
use crate::store::backend::{PatRefresh, PatRow, PeiMove, PeiQuery};

/// Inserts the PeIs a find produced (idempotent: a repeat keeps its state and PAT; only a
/// still-pending PeI moves to the newer find).
pub(super) async fn record(
    c: &impl GenericClient,
    request_id: &str,
    peis: &[NewPei],
    now: i64,
) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO peis (pei, asset_guid, holdername, pension_asset_guid, member_id,
                 scheme_name, match_status, reason, rules_version, request_id, state, review,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)
             ON CONFLICT (pei) DO UPDATE SET request_id = excluded.request_id
                 WHERE peis.state = 'pending'",
        )
        .await?;
    for p in peis {
        let review =
            (p.matched.match_status == MatchStatus::Possible).then_some(ReviewState::Pending);
        c.execute(
            &stmt,
            &[
                &p.matched.pei,
                &p.matched.asset_guid.hyphenated().to_string(),
                &p.matched.holdername.hyphenated().to_string(),
                &p.matched.pension_asset_guid.hyphenated().to_string(),
                &p.matched.member_id,
                &p.matched.scheme_name,
                &p.matched.match_status,
                &p.matched.reason,
                &p.rules_version,
                &request_id,
                &review,
                &now,
            ],
        )
        .await?;
    }
    Ok(())
}

const PEI_COLUMNS: &str = "pei, asset_guid, holdername, pension_asset_guid, member_id, scheme_name,
    match_status, reason, request_id, pat_id, resource_id, state, review, registered_at,
    deletion_reason";

fn row_to_pei(r: &Row) -> Result<StoredPei, StoreError> {
    Ok(StoredPei {
        matched: PeiMatch {
            pei: r.try_get(0)?,
            asset_guid: super::guid(r.try_get(1)?)?,
            holdername: super::guid(r.try_get(2)?)?,
            pension_asset_guid: super::guid(r.try_get(3)?)?,
            member_id: r.try_get(4)?,
            scheme_name: r.try_get(5)?,
            match_status: r.try_get(6)?,
            reason: r.try_get(7)?,
        },
        request_id: r.try_get(8)?,
        pat_id: r.try_get(9)?,
        resource_id: r.try_get(10)?,
        state: r.try_get(11)?,
        review: r.try_get(12)?,
        registered_at: r.try_get(13)?,
        deletion_reason: r.try_get(14)?,
    })
}

/// PeIs by `query`.
pub(super) async fn select(
    c: &impl GenericClient,
    query: &PeiQuery,
) -> Result<Vec<StoredPei>, StoreError> {
    let (condition, order, param): (&str, &str, Option<&(dyn ToSql + Sync)>) = match query {
        PeiQuery::All => ("TRUE", "pei", None),
        PeiQuery::Request(id) => ("request_id = $1", "pei", Some(id)),
        PeiQuery::Pension(g) => ("pension_asset_guid = $1", "pei", Some(g)),
        PeiQuery::Holdername(h) => ("holdername = $1", "pei", Some(h)),
        PeiQuery::State(s) => ("state = $1", "pei", Some(s)),
        PeiQuery::UnreviewedBefore(t) => (
            "match_status = 'match-possible' AND review = 'pending'
             AND state IN ('registered', 'deregistering') AND created_at < $1",
            "created_at",
            Some(t),
        ),
    };
    let sql = format!("SELECT {PEI_COLUMNS} FROM peis WHERE {condition} ORDER BY {order}");
    let stmt = c.prepare_cached(&sql).await?;
    let params: Vec<&(dyn ToSql + Sync)> = param.into_iter().collect();
    c.query(&stmt, &params)
        .await?
        .iter()
        .map(row_to_pei)
        .collect()
}

/// One PeI by its asset GUID (the view endpoint's key).
pub(super) async fn by_asset_guid(
    c: &impl GenericClient,
    asset_guid: &str,
) -> Result<Option<StoredPei>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {PEI_COLUMNS} FROM peis WHERE asset_guid = $1"
        ))
        .await?;
    c.query_opt(&stmt, &[&asset_guid])
        .await?
        .as_ref()
        .map(row_to_pei)
        .transpose()
}

/// Marks a pending PeI registered (see the SQLite backend's `registered`).
pub(super) async fn registered(
    c: &impl GenericClient,
    pei: &str,
    resource_id: &str,
    pat_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "UPDATE peis SET state = 'registered', resource_id = $2,
                    pat_id = coalesce(pat_id, $3), registered_at = coalesce(registered_at, $4)
              WHERE pei = $1 AND state = 'pending'",
        )
        .await?;
    if c.execute(&stmt, &[&pei, &resource_id, &pat_id, &now])
        .await?
        == 0
    {
        let stmt = c
            .prepare_cached(
                "UPDATE peis SET state = 'deregistering', resource_id = $2,
                        pat_id = coalesce(pat_id, $3)
                  WHERE pei = $1 AND state = 'deregistered' AND resource_id IS NULL",
            )
            .await?;
        c.execute(&stmt, &[&pei, &resource_id, &pat_id]).await?;
    }
    Ok(())
}

/// The PeIs of a pension that is gone (see the SQLite backend's `retire_pension`).
pub(super) async fn retire_pension(
    c: &impl GenericClient,
    pension_asset_guid: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let stmt = c
        .prepare_cached(
            "UPDATE peis SET state = CASE state WHEN 'pending' THEN 'deregistered'
                                                ELSE 'deregistering' END,
                    deletion_reason = $2, deregistered_at = $3
              WHERE pension_asset_guid = $1 AND state IN ('pending', 'registered')",
        )
        .await?;
    Ok(c.execute(&stmt, &[&pension_asset_guid, &reason, &now])
        .await?)
}

/// Moves a PeI to `to` if it is in one of `from`; whether it moved.
pub(super) async fn set_state(
    c: &impl GenericClient,
    change: &PeiMove,
) -> Result<bool, StoreError> {
    let from: Vec<&str> = change.from.iter().map(|s| s.as_str()).collect();
    let deletion = change.deletion.as_ref();
    let stmt = c
        .prepare_cached(
            "UPDATE peis SET state = $3,
                    deletion_reason = coalesce($4, deletion_reason),
                    deregistered_at = coalesce($5, deregistered_at)
              WHERE pei = $1 AND state = ANY($2)",
        )
        .await?;
    let n = c
        .execute(
            &stmt,
            &[
                &change.pei,
                &from,
                &change.to,
                &deletion.map(|d| d.0.as_str()),
                &deletion.map(|d| d.1),
            ],
        )
        .await?;
    Ok(n > 0)
}

/// Records a possible match's review and the match status it leaves.
pub(super) async fn set_review(
    c: &impl GenericClient,
    pei: &str,
    review: ReviewState,
    match_status: MatchStatus,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE peis SET review = $2, match_status = $3 WHERE pei = $1",
        &[&pei, &review, &match_status],
    )
    .await?;
    Ok(())
}

/// Stores a sealed PAT.
pub(super) async fn insert_pat(
    c: &impl GenericClient,
    p: &PatRow,
    now: i64,
) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO pats (pat_id, pat_sha256, sealed, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    c.execute(
        &stmt,
        &[&p.pat_id, &p.sha256, &p.sealed, &p.expires_at, &now],
    )
    .await?;
    Ok(())
}

/// A sealed PAT.
pub(super) async fn pat(c: &impl GenericClient, pat_id: &str) -> Result<Vec<u8>, StoreError> {
    let stmt = c
        .prepare_cached("SELECT sealed FROM pats WHERE pat_id = $1")
        .await?;
    Ok(c.query_one(&stmt, &[&pat_id]).await?.try_get(0)?)
}

/// IDs of the stored PATs with this SHA-256, locked until the caller's transaction ends.
pub(super) async fn pats_by_sha(
    c: &impl GenericClient,
    sha256: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = c
        .query(
            "SELECT pat_id FROM pats WHERE pat_sha256 = $1 FOR UPDATE",
            &[&sha256],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Replaces a stored PAT (PAT refresh).
pub(super) async fn replace_pat(
    c: &impl GenericClient,
    pat_id: &str,
    refresh: &PatRefresh,
    sealed: &[u8],
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE pats SET pat_sha256 = $2, sealed = $3, expires_at = $4 WHERE pat_id = $1",
        &[&pat_id, &refresh.new_sha256, &sealed, &refresh.expires_at],
    )
    .await?;
    Ok(())
}

/// Whether a calculation is already recorded for a PeI.
pub(super) async fn has_calculation(c: &impl GenericClient, pei: &str) -> Result<bool, StoreError> {
    let stmt = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM calculations WHERE pei = $1)")
        .await?;
    Ok(c.query_one(&stmt, &[&pei]).await?.try_get(0)?)
}

/// Records a calculation owed (once; later calls keep the first).
pub(super) async fn insert_calculation(
    c: &impl GenericClient,
    calc: &Calculation,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO calculations (pei, pension_asset_guid, kind, started_on, due_on)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pei) DO NOTHING",
        &[
            &calc.pei,
            &calc.pension_asset_guid.hyphenated().to_string(),
            &calc.kind,
            &calc.started_on.to_string(),
            &calc.due_on.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// Closes a pension's open calculations; returns how many.
pub(super) async fn complete_calculations(
    c: &impl GenericClient,
    pension_asset_guid: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(c.execute(
        "UPDATE calculations SET completed_at = $2
          WHERE pension_asset_guid = $1 AND completed_at IS NULL",
        &[&pension_asset_guid, &now],
    )
    .await?)
}

/// Calculations, open ones first by due date.
pub(super) async fn calculations(c: &impl GenericClient) -> Result<Vec<Calculation>, StoreError> {
    let rows = c
        .query(
            "SELECT pei, pension_asset_guid, kind, started_on, due_on, completed_at
               FROM calculations ORDER BY completed_at IS NOT NULL, due_on, pei",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Calculation {
                pei: r.try_get(0)?,
                pension_asset_guid: super::guid(r.try_get(1)?)?,
                kind: r.try_get(2)?,
                started_on: super::date(r.try_get(3)?).unwrap_or_default(),
                due_on: super::date(r.try_get(4)?).unwrap_or_default(),
                completed_at: r.try_get(5)?,
            })
        })
        .collect()
}
