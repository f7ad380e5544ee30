//! `values import`: calculated values arrive, replace the stored ones, and close the
//! calculations that were owed for the pension (the 3/10 working-day rule).
//!
//! One JSON object per line: `{"assetGuid": "<the pension's asset GUID>",
//! "calculationDate": "YYYY-MM-DD", "benefitIllustrations": [ ...the data standard's... ]}`.
//! The new illustrations are checked against the data standard's schema, in the pension's
//! arrangement, before anything is stored.

use serde::Deserialize;

use crate::store::{Store, StoreError};

/// Why a line was refused.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// Not the documented shape.
    #[error("not {{\"assetGuid\", \"calculationDate\", \"benefitIllustrations\"}}")]
    Shape,
    /// The new values break the data standard.
    #[error("{0}")]
    ViewData(#[from] crate::wire::view::ViewDataError),
    /// No such pension.
    #[error("no pension has asset GUID {0}")]
    UnknownPension(uuid::Uuid),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Calculated {
    asset_guid: uuid::Uuid,
    calculation_date: chrono::NaiveDate,
    benefit_illustrations: serde_json::Value,
}

/// Imports one line; returns how many calculations it closed.
pub async fn import_line(store: &Store, line: &str) -> Result<u64, ValuesError> {
    let c: Calculated = serde_json::from_str(line).map_err(|_| ValuesError::Shape)?;
    let pension = store
        .pension(c.asset_guid)
        .await?
        .ok_or(ValuesError::UnknownPension(c.asset_guid))?;
    // The new values are checked in place, in the arrangement the view will embed them in
    // (normalised as an import would, so that a number stored before numbers were normalised
    // does not refuse them).
    let mut candidate = pension.view_data.clone();
    candidate["benefitIllustrations"] = c.benefit_illustrations.clone();
    crate::wire::view::normalise_definite(&mut candidate)?;
    crate::wire::view::check_definite(&candidate)?;
    store
        .set_calculated_values(c.asset_guid, c.calculation_date, c.benefit_illustrations)
        .await?
        .ok_or(ValuesError::UnknownPension(c.asset_guid))
}
