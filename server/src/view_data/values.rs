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

/// What `values import` did with a file: one outcome a non-empty line, by 1-based line number.
#[derive(Debug, Default)]
pub struct FileImport {
    /// Lines imported, with the calculations each closed.
    pub imported: Vec<(usize, u64)>,
    /// Lines refused, with why.
    pub refused: Vec<(usize, ValuesError)>,
}

/// `values import FILE`: imports every non-empty line of `text`, each on its own.
pub async fn import_text(store: &Store, text: &str) -> FileImport {
    let mut out = FileImport::default();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match import_line(store, line).await {
            Ok(closed) => out.imported.push((i + 1, closed)),
            Err(e) => out.refused.push((i + 1, e)),
        }
    }
    out
}

/// `values report`: the calculations owed, as a table (all of them when `all`, else those still
/// open), and how many are overdue on `today`.
pub fn report_table(
    calculations: &[crate::store::Calculation],
    today: chrono::NaiveDate,
    all: bool,
) -> (String, usize) {
    let overdue = calculations
        .iter()
        .filter(|c| c.completed_at.is_none() && c.due_on < today)
        .count();
    let row = |c: &crate::store::Calculation| {
        let status = match c.completed_at {
            Some(t) => format!("completed {}", crate::datetimestamp(t)),
            None if c.due_on < today => "OVERDUE".into(),
            None => "due".into(),
        };
        format!(
            "{:<86}  {:<4}  {:<10}  {:<10}  {status}",
            c.pei, c.kind, c.started_on, c.due_on
        )
    };
    let rows = calculations
        .iter()
        .filter(|c| all || c.completed_at.is_none())
        .map(row);
    let header = format!(
        "{:<86}  {:<4}  {:<10}  {:<10}  status",
        "pei", "kind", "started", "due"
    );
    (crate::table(header, rows, String::new()), overdue)
}
