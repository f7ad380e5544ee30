//! PeIs, the PATs that registered them, and the value calculations owed for them.
//!
//! Recording matches is idempotent: a PeI is keyed by its URN, and a repeat keeps its state and
//! PAT (only a still-pending PeI moves to the newer find). A PeI's PAT is set once, by the
//! registration that used it, because the CAS answers `401` to any other PAT for that PeI. A
//! PeI moves between states only from the states a move names, so a de-registered PeI is never
//! served again.

use strum::VariantArray;
use uuid::Uuid;

use super::members::open_json;
use super::sql::{params, Access, Row, Tx, Value};
use super::{sha256_hex, Result, Store, StoreError};
use crate::model::{Calculation, MatchStatus, NewPei, PeiMatch, PeiState, ReviewState, StoredPei};

// === impl Store ===

impl Store {
    // --- PeIs ---

    /// PeIs a find request produced.
    pub async fn peis_for_request(&self, request_id: &str) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where("request_id = $1", "pei", params![request_id])
            .await
    }

    /// Every PeI.
    pub async fn peis(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where("TRUE", "pei", []).await
    }

    /// One PeI by its asset GUID (the view endpoint's key).
    pub async fn pei_by_asset_guid(
        &self,
        asset_guid: Uuid,
    ) -> Result<Option<StoredPei>, StoreError> {
        let sql = format!("SELECT {PEI_COLUMNS} FROM peis WHERE asset_guid = $1");
        self.read(move |tx| {
            Box::pin(async move {
                let row = tx.query_opt(&sql, &params![asset_guid]).await?;
                row.as_ref().map(pei_from).transpose()
            })
        })
        .await
    }

    /// PeIs flagged for de-registration (CoCo2.2.4).
    pub async fn flagged(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where("state = $1", "pei", params![PeiState::Flagged])
            .await
    }

    /// Registered possible matches still waiting for review, created before `before` (µs).
    pub async fn possible_unreviewed_before(
        &self,
        before: i64,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where(
            "match_status = 'match-possible' AND review = 'pending'
             AND state IN ('registered', 'deregistering') AND created_at < $1",
            "created_at",
            params![before],
        )
        .await
    }

    /// PeIs of one pension.
    pub async fn peis_for_pension(&self, pension: Uuid) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where("pension_asset_guid = $1", "pei", params![pension])
            .await
    }

    /// PeIs of one holdername.
    pub async fn peis_for_holdername(
        &self,
        holdername: Uuid,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where("holdername = $1", "pei", params![holdername])
            .await
    }

    /// PeIs matching `condition` (a fixed SQL fragment over `params`), ordered by `order`.
    async fn peis_where<const N: usize>(
        &self,
        condition: &'static str,
        order: &'static str,
        params: [Value; N],
    ) -> Result<Vec<StoredPei>, StoreError> {
        let sql = format!("SELECT {PEI_COLUMNS} FROM peis WHERE {condition} ORDER BY {order}");
        self.read(move |tx| {
            Box::pin(async move {
                tx.query(&sql, &params)
                    .await?
                    .iter()
                    .map(pei_from)
                    .collect()
            })
        })
        .await
    }

    /// Stops serving a registered PeI before its de-registration is sent (views answer `404`),
    /// keeping the reason for a sweep that finishes it if the CAS cannot be told now.
    pub async fn mark_deregistering(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.move_pei(
            pei,
            &[PeiState::Registered],
            PeiState::Deregistering,
            Some(reason),
        )
        .await
    }

    /// PeIs whose de-registration is still to be sent to the CAS.
    pub async fn deregistering(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.peis_where("state = $1", "pei", params![PeiState::Deregistering])
            .await
    }

    /// Marks a PeI de-registered (or gone at the CAS) with its deletion reason.
    pub async fn deregistered(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.move_pei(
            pei,
            PeiState::VARIANTS,
            PeiState::Deregistered,
            Some(reason),
        )
        .await
    }

    /// Flags a PeI "de-registration pending: notify PDP" (its PAT was refused): never served
    /// again.
    pub async fn flag_for_deregistration(&self, pei: &str, reason: &str) -> Result<(), StoreError> {
        self.move_pei(pei, PeiState::VARIANTS, PeiState::Flagged, Some(reason))
            .await
    }

    /// Moves a PeI to `to` if it is in one of `from`, with a deletion reason and time when
    /// given.
    async fn move_pei(
        &self,
        pei: &str,
        from: &'static [PeiState],
        to: PeiState,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        // The states are the enum's own spellings, never data.
        let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let sql = format!(
            "UPDATE peis SET state = $2,
                    deletion_reason = coalesce($3, deletion_reason),
                    deregistered_at = coalesce($4, deregistered_at)
              WHERE pei = $1 AND state IN ({})",
            from.join(", ")
        );
        let now = reason.map(|_| crate::now_micros());
        let params = params![pei, to, reason, now];
        self.run(Access::Single, move |tx| {
            Box::pin(async move { tx.execute(&sql, &params).await.map(|_| ()) })
        })
        .await
    }

    /// Records a possible match's review and the match status it leaves.
    pub async fn set_review(
        &self,
        pei: &str,
        review: ReviewState,
        match_status: MatchStatus,
    ) -> Result<(), StoreError> {
        let params = params![pei, review, match_status];
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE peis SET review = $2, match_status = $3 WHERE pei = $1",
                    &params,
                )
                .await
                .map(|_| ())
            })
        })
        .await
    }

    /// PAT refresh (wire contract §3.3): replaces the stored PAT whose SHA-256 is
    /// `previous_sha256` for every PeI it covered. Returns how many stored PATs were replaced (0: unknown).
    pub async fn refresh_pat(
        &self,
        previous_sha256: &str,
        new_pat: &str,
        expires_at: Option<i64>,
    ) -> Result<u64, StoreError> {
        let key = self.inner.key.clone();
        let previous = previous_sha256.to_owned();
        let (new_sha256, new_pat) = (sha256_hex(new_pat), new_pat.as_bytes().to_vec());
        self.write(move |tx| {
            Box::pin(async move {
                let ids: Vec<String> = tx
                    .column(
                        "SELECT pat_id FROM pats WHERE pat_sha256 = $1 {for_update}",
                        &params![previous],
                    )
                    .await?;
                for id in &ids {
                    let sealed = key.seal(id.as_bytes(), &new_pat);
                    tx.execute(
                        "UPDATE pats SET pat_sha256 = $2, sealed = $3, expires_at = $4
                          WHERE pat_id = $1",
                        &params![id, &new_sha256, sealed, expires_at],
                    )
                    .await?;
                }
                Ok(ids.len() as u64)
            })
        })
        .await
    }

    // --- calculations ---

    /// Records a value calculation owed for a PeI (once; later calls keep the first): whether
    /// this call recorded it.
    pub async fn record_calculation(&self, calc: Calculation) -> Result<bool, StoreError> {
        // Every view of stale values lands here: a read answers the common case without a write.
        let pei = calc.pei.clone();
        let recorded: bool = self
            .read(move |tx| {
                Box::pin(async move {
                    tx.value(
                        "SELECT EXISTS (SELECT 1 FROM calculations WHERE pei = $1)",
                        &params![pei],
                    )
                    .await
                })
            })
            .await?;
        if recorded {
            return Ok(false);
        }
        let params = params![
            calc.pei,
            calc.pension_asset_guid,
            calc.kind,
            calc.started_on,
            calc.due_on
        ];
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO calculations (pei, pension_asset_guid, kind, started_on, due_on)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pei) DO NOTHING",
                    &params,
                )
                .await
            })
        })
        .await
        .map(|_| true)
    }

    /// Calculations, open ones first by due date.
    pub async fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                tx.query(
                    "SELECT pei, pension_asset_guid, kind, started_on, due_on, completed_at
                       FROM calculations ORDER BY completed_at IS NOT NULL, due_on, pei",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(Calculation {
                        pei: r.get(0)?,
                        pension_asset_guid: r.get(1)?,
                        kind: r.get(2)?,
                        started_on: r.get::<Option<_>>(3)?.unwrap_or_default(),
                        due_on: r.get::<Option<_>>(4)?.unwrap_or_default(),
                        completed_at: r.get(5)?,
                    })
                })
                .collect()
            })
        })
        .await
    }

    /// Replaces a pension's benefit illustrations with a completed calculation's (`values
    /// import`), sets its calculation date, and closes its open calculations. Returns how many
    /// calculations it closed, or `None` when no such pension is stored.
    pub async fn set_calculated_values(
        &self,
        asset_guid: Uuid,
        calculation_date: chrono::NaiveDate,
        benefit_illustrations: serde_json::Value,
    ) -> Result<Option<u64>, StoreError> {
        let key = self.inner.key.clone();
        let guid = asset_guid.hyphenated().to_string();
        self.write(move |tx| {
            Box::pin(async move {
                // Locked until the commit: two imports of the same pension apply one by one.
                let Some(row) = tx
                    .query_opt(
                        "SELECT view_data FROM pensions WHERE asset_guid = $1 {for_update}",
                        &params![asset_guid.as_bytes().as_slice()],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let mut view_data = open_json(&key, &guid, &row.get::<Vec<u8>>(0)?)?;
                view_data["benefitIllustrations"] = benefit_illustrations;
                let json =
                    serde_json::to_vec(&view_data).map_err(|_| StoreError::Corrupt("view data"))?;
                let sealed = super::packed::seal(&key, guid.as_bytes(), &json);
                tx.execute(
                    "UPDATE pensions SET view_data = $2, calculation_date = $3
                      WHERE asset_guid = $1",
                    &params![asset_guid.as_bytes().as_slice(), sealed, calculation_date],
                )
                .await?;
                tx.execute(
                    "UPDATE calculations SET completed_at = $2
                      WHERE pension_asset_guid = $1 AND completed_at IS NULL",
                    &params![&guid, crate::now_micros()],
                )
                .await
                .map(Some)
            })
        })
        .await
    }
}

/// A PAT as stored: its ID, its SHA-256 (to find it again on refresh), the PAT sealed.
pub(super) struct PatRow {
    pub(super) pat_id: String,
    pub(super) sha256: String,
    pub(super) sealed: Vec<u8>,
    pub(super) expires_at: Option<i64>,
}

/// Inserts the PeIs a find produced (idempotent: a repeat keeps its state and PAT; only a
/// still-pending PeI moves to the newer find).
pub(super) async fn record(
    tx: &mut dyn Tx,
    request_id: &str,
    peis: &[NewPei],
    now: i64,
) -> Result<()> {
    for p in peis {
        let m = &p.matched;
        let review = (m.match_status == MatchStatus::Possible).then_some(ReviewState::Pending);
        tx.execute(
            "INSERT INTO peis (pei, asset_guid, holdername, pension_asset_guid, member_id,
                 scheme_name, match_status, reason, rules_version, request_id, state, review,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12)
             ON CONFLICT (pei) DO UPDATE SET request_id = excluded.request_id
                 WHERE peis.state = 'pending'",
            &params![
                &m.pei,
                m.asset_guid,
                m.holdername,
                m.pension_asset_guid,
                &m.member_id,
                &m.scheme_name,
                m.match_status,
                &m.reason,
                &p.rules_version,
                request_id,
                review,
                now
            ],
        )
        .await?;
    }
    Ok(())
}

/// Stores a sealed PAT.
pub(super) async fn insert_pat(tx: &mut dyn Tx, pat: &PatRow, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO pats (pat_id, pat_sha256, sealed, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        &params![&pat.pat_id, &pat.sha256, &pat.sealed, pat.expires_at, now],
    )
    .await?;
    Ok(())
}

/// PeIs a find produced.
pub(super) async fn for_request(tx: &mut dyn Tx, request_id: &str) -> Result<Vec<StoredPei>> {
    let sql = format!("SELECT {PEI_COLUMNS} FROM peis WHERE request_id = $1 ORDER BY pei");
    tx.query(&sql, &params![request_id])
        .await?
        .iter()
        .map(pei_from)
        .collect()
}

/// Marks a pending PeI registered (its PAT set only if it had none). A PeI de-registered while
/// its registration was under way (its pension removed, its scheme severed) now has a resource
/// at the CAS that must go: it becomes `deregistering`, with the resource, for the sweep.
pub(super) async fn registered(
    tx: &mut dyn Tx,
    pei: &str,
    resource_id: &str,
    pat_id: &str,
    now: i64,
) -> Result<()> {
    let n = tx
        .execute(
            "UPDATE peis SET state = 'registered', resource_id = $2,
                    pat_id = coalesce(pat_id, $3), registered_at = coalesce(registered_at, $4)
              WHERE pei = $1 AND state = 'pending'",
            &params![pei, resource_id, pat_id, now],
        )
        .await?;
    if n == 0 {
        tx.execute(
            "UPDATE peis SET state = 'deregistering', resource_id = $2,
                    pat_id = coalesce(pat_id, $3)
              WHERE pei = $1 AND state = 'deregistered' AND resource_id IS NULL",
            &params![pei, resource_id, pat_id],
        )
        .await?;
    }
    Ok(())
}

const PEI_COLUMNS: &str = "pei, asset_guid, holdername, pension_asset_guid, member_id, scheme_name,
    match_status, reason, request_id, pat_id, resource_id, state, review, registered_at,
    deletion_reason";

fn pei_from(r: &Row) -> Result<StoredPei> {
    Ok(StoredPei {
        matched: PeiMatch {
            pei: r.get(0)?,
            asset_guid: r.get(1)?,
            holdername: r.get(2)?,
            pension_asset_guid: r.get(3)?,
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
