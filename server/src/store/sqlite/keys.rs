//! Sealed columns in SQL, for re-sealing them under a new data key.

use rusqlite::{params, Connection};

use super::super::{ResealCursor, StoreError};
use crate::store::backend::{ResealStep, SEALED};

/// Up to the step's limit of rows of the cursor's column after its ID whose value does not
/// begin with the step's prefix (the active key's), oldest ID first.
pub(in crate::store) fn not_sealed_with(
    conn: &Connection,
    at: &ResealCursor,
    step: &ResealStep,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let (t, id, col, narrow) = SEALED[at.table];
    let prefix = &step.prefix;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {id}, {col} FROM {t}
          WHERE {narrow} AND {col} IS NOT NULL AND substr({col}, 1, ?1) <> ?2 AND {id} > ?3
          ORDER BY {id} LIMIT ?4"
    ))?;
    let rows = stmt.query_map(
        params![prefix.len() as i64, prefix, at.after, step.limit as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces one row's sealed value.
pub(in crate::store) fn replace(
    conn: &Connection,
    table: usize,
    row_id: &str,
    sealed: &[u8],
) -> Result<(), StoreError> {
    let (t, id, col, _) = SEALED[table];
    conn.prepare_cached(&format!("UPDATE {t} SET {col} = ?2 WHERE {id} = ?1"))?
        .execute(params![row_id, sealed])?;
    Ok(())
}

/// Rows of every sealed column not sealed with the key of `prefix`.
pub(in crate::store) fn count_not_sealed_with(
    conn: &Connection,
    prefix: &[u8],
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for (t, _, col, narrow) in SEALED {
        let c: i64 = conn.query_row(
            &format!(
                "SELECT count(*) FROM {t}
                  WHERE {narrow} AND {col} IS NOT NULL AND substr({col}, 1, ?1) <> ?2"
            ),
            params![prefix.len() as i64, prefix],
            |r| r.get(0),
        )?;
        n += c as u64;
    }
    Ok(n)
}
