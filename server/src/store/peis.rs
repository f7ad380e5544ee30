//! PeIs, the PATs that registered them, and the value calculations owed for them.

use strum::VariantArray;
use uuid::Uuid;

use super::backend::{CalculatedValues, PatRefresh, PeiMove, PeiQuery};
use super::members::open_json;
use super::model::*;
use super::{sha256_hex, Result, Store, StoreError};

// === impl Store ===

impl Store {
    // --- PeIs ---

    /// PeIs a find request produced.
    pub async fn peis_for_request(&self, request_id: &str) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::Request(request_id.to_owned()))
            .await
    }

    /// Every PeI.
    pub async fn peis(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.db().peis(PeiQuery::All).await
    }

    /// One PeI by its asset GUID (the view endpoint's key).
    pub async fn pei_by_asset_guid(
        &self,
        asset_guid: Uuid,
    ) -> Result<Option<StoredPei>, StoreError> {
        self.db()
            .pei_by_asset_guid(asset_guid.hyphenated().to_string())
            .await
    }

    /// PeIs flagged for de-registration (CoCo2.2.4).
    pub async fn flagged(&self) -> Result<Vec<StoredPei>, StoreError> {
        self.db().peis(PeiQuery::State(PeiState::Flagged)).await
    }

    /// Registered possible matches still waiting for review, created before `before` (µs).
    pub async fn possible_unreviewed_before(
        &self,
        before: i64,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.db().peis(PeiQuery::UnreviewedBefore(before)).await
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
        self.db()
            .peis(PeiQuery::State(PeiState::Deregistering))
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

    async fn move_pei(
        &self,
        pei: &str,
        from: &'static [PeiState],
        to: PeiState,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let change = PeiMove {
            pei: pei.to_owned(),
            from,
            to,
            deletion: reason.map(|r| (r.to_owned(), crate::now_micros())),
        };
        self.db().move_pei(change).await.map(|_| ())
    }

    /// Records a possible match's review and the match status it leaves.
    pub async fn set_review(
        &self,
        pei: &str,
        review: ReviewState,
        match_status: MatchStatus,
    ) -> Result<(), StoreError> {
        self.db()
            .set_review(pei.to_owned(), review, match_status)
            .await
    }

    /// PAT refresh (SPEC §3.3): replaces the stored PAT whose SHA-256 is `previous_sha256` for
    /// every PeI it covered. Returns how many stored PATs were replaced (0: unknown).
    pub async fn refresh_pat(
        &self,
        previous_sha256: &str,
        new_pat: &str,
        expires_at: Option<i64>,
    ) -> Result<u64, StoreError> {
        let key = self.inner.key.clone();
        let refresh = PatRefresh {
            previous_sha256: previous_sha256.to_owned(),
            new_sha256: sha256_hex(new_pat),
            new_pat: new_pat.as_bytes().to_vec(),
            expires_at,
        };
        self.db()
            .refresh_pat(
                refresh,
                Box::new(move |id, pat| key.seal(id.as_bytes(), pat)),
            )
            .await
    }

    // --- calculations ---

    /// Records a value calculation owed for a PeI (once; later calls keep the first): whether
    /// this call recorded it.
    pub async fn record_calculation(&self, calc: Calculation) -> Result<bool, StoreError> {
        // Every view of stale values lands here: a read answers the common case without a write.
        if self.db().has_calculation(calc.pei.clone()).await? {
            return Ok(false);
        }
        self.db().insert_calculation(calc).await.map(|()| true)
    }

    /// Calculations, open ones first by due date.
    pub async fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        self.db().calculations().await
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
        let aad = guid.clone();
        let values = CalculatedValues {
            asset_guid: guid,
            calculation_date,
            update: Box::new(move |sealed| {
                let mut view_data = open_json(&key, &aad, sealed)?;
                view_data["benefitIllustrations"] = benefit_illustrations;
                let json =
                    serde_json::to_vec(&view_data).map_err(|_| StoreError::Corrupt("view data"))?;
                Ok(key.seal(aad.as_bytes(), &json))
            }),
        };
        self.db().set_calculated_values(values).await
    }
}
