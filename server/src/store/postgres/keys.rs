//! Sealed columns in PostgreSQL's SQL, for re-sealing them under a new data key.

use deadpool_postgres::GenericClient;

use super::super::{ResealCursor, StoreError};
use crate::store::backend::{ResealStep, SEALED};

/// Up to the step's limit of rows of the cursor's column after its ID not sealed with the key
/// of the step's prefix, oldest ID first, locked until the caller's transaction ends.
pub(super) async fn not_sealed_with(
    c: &impl GenericClient,
    at: &ResealCursor,
    step: &ResealStep,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let (t, id, col, narrow) = SEALED[at.table];
    let prefix = step.prefix.as_slice();
    let sql = format!(
        "SELECT {id}, {col} FROM {t}
          WHERE {narrow} AND {col} IS NOT NULL AND substr({col}, 1, $1) <> $2 AND {id} > $3
          ORDER BY {id} LIMIT $4 FOR UPDATE"
    );
    let rows = c
        .query(
            sql.as_str(),
            &[
                &(prefix.len() as i32),
                &prefix,
                &at.after,
                &(step.limit as i64),
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Replaces one row's sealed value.
pub(super) async fn replace(
    c: &impl GenericClient,
    table: usize,
    row_id: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let (t, id, col, _) = SEALED[table];
    let sql = format!("UPDATE {t} SET {col} = $2 WHERE {id} = $1");
    c.execute(sql.as_str(), &[&row_id, &sealed]).await?;
    Ok(())
}

/// Rows of every sealed column not sealed with the key of `prefix`.
pub(super) async fn count_not_sealed_with(
    c: &impl GenericClient,
    prefix: &[u8],
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for (t, _, col, narrow) in SEALED {
        let sql = format!(
            "SELECT count(*) FROM {t}
              WHERE {narrow} AND {col} IS NOT NULL AND substr({col}, 1, $1) <> $2"
        );
        let c: i64 = c
            .query_one(sql.as_str(), &[&(prefix.len() as i32), &prefix])
            .await?
            .try_get(0)?;
        n += c as u64;
    }
    Ok(n)
}
