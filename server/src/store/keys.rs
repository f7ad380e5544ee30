//! The sealed columns under a new data key: counting what another key sealed, and re-sealing.
//!
//! A value sealed with the active key begins with that key's prefix ([`crate::sealed`]), so what
//! another key sealed is found without opening anything. A re-seal goes through [`SEALED`] column
//! by column, row ID by row ID, a bounded step per commit: resumable anywhere, and what the
//! active key sealed is never read again.

use super::sql::{params, Access, Row, Tx, Value};
use super::{Result, Store, StoreError};

/// The sealed columns, in the order a re-seal goes through them: the table, its row ID (the
/// seal's associated data, as text), the column, a condition that narrows the rows with a value
/// to an index (only open finds keep find data), and how the row ID is stored.
pub(super) const SEALED: [(&str, &str, &str, &str, RowId); 7] = [
    (
        "find_requests",
        "request_id",
        "find_data",
        "state IN ('queued', 'working')",
        RowId::Text,
    ),
    ("pats", "pat_id", "sealed", "TRUE", RowId::Text),
    ("members", "member_id", "sealed", "TRUE", RowId::Text),
    ("pensions", "asset_guid", "view_data", "TRUE", RowId::Guid),
    (
        "possible_match_searches",
        "pei",
        "sealed",
        "TRUE",
        RowId::Text,
    ),
    ("secrets", "name", "sealed", "TRUE", RowId::Text),
    (
        "console_users",
        "username",
        "totp_sealed",
        "TRUE",
        RowId::Text,
    ),
];

/// How a sealed column's row ID is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowId {
    /// As its text, the seal's associated data.
    Text,
    /// As a GUID's 16 bytes; the seal's associated data is its hyphenated text (byte order and
    /// text order are the same).
    Guid,
}

impl RowId {
    /// The stored value of a row ID given as text.
    fn stored(self, text: &str) -> Result<Value> {
        match self {
            Self::Text => Ok(Value::from(text)),
            Self::Guid => uuid::Uuid::try_parse(text)
                .map(|g| Value::from(g.as_bytes().to_vec()))
                .map_err(|_| StoreError::Corrupt("row ID")),
        }
    }

    /// A row ID as text, from column `i` of a row.
    fn text(self, row: &Row, i: usize) -> Result<String> {
        match self {
            Self::Text => row.get(i),
            Self::Guid => Self::guid_text(&row.get::<Vec<u8>>(i)?),
        }
    }

    /// A GUID's hyphenated text, from its 16 bytes.
    pub(super) fn guid_text(bytes: &[u8]) -> Result<String> {
        uuid::Uuid::from_slice(bytes)
            .map(|g| g.hyphenated().to_string())
            .map_err(|_| StoreError::Corrupt("row ID"))
    }
}

/// Opens a value with whichever configured key sealed it and seals it with the active one;
/// `None` when no configured key opens it.
type Reseal<'a> = dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + 'a;

// === impl Store ===

impl Store {
    /// The store's secret `name` as stored (sealed with a data key, `name` the associated data):
    /// `fresh` (already sealed) is stored first when there is none, so every instance and
    /// command gets the one the first asker made.
    pub(super) async fn stored_secret(
        &self,
        name: &'static str,
        fresh: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO secrets (name, sealed) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    &params![name, fresh],
                )
                .await?;
                tx.value("SELECT sealed FROM secrets WHERE name = $1", &params![name])
                    .await
            })
        })
        .await
    }

    /// Replaces the store's secret `name` with `sealed`.
    pub(super) async fn replace_secret(
        &self,
        name: &'static str,
        sealed: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE secrets SET sealed = $2 WHERE name = $1",
                    &params![name, sealed],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Stored values not yet sealed with the active data key.
    pub async fn sealed_with_other_keys(&self) -> Result<u64, StoreError> {
        let prefix = self.inner.key.active_prefix().to_vec();
        self.read(move |tx| {
            Box::pin(async move {
                let mut n = 0;
                for (t, _, col, narrow, _) in SEALED {
                    let sql = format!(
                        "SELECT count(*) FROM {t}
                          WHERE {narrow} AND {col} IS NOT NULL AND substr({col}, 1, $1) <> $2"
                    );
                    n += tx
                        .value::<u64>(&sql, &params![prefix.len(), &prefix])
                        .await?;
                }
                Ok(n)
            })
        })
        .await
    }

    /// Re-seals, with the active data key, up to `limit` stored values sealed with another key
    /// (find data, PATs, member records, view data), in one commit. Returns what it did; call
    /// it until `resealed` and `unreadable` are both 0. Resumable at any point: what is done is
    /// committed, and what is sealed with the active key is never read again.
    pub async fn reseal(&self, cursor: ResealCursor, limit: usize) -> Result<Resealed, StoreError> {
        let key = self.inner.key.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let prefix = key.active_prefix().to_vec();
                let reseal = |id: &str, sealed: &[u8]| {
                    let plain = key.open(id.as_bytes(), sealed).ok()?;
                    Some(key.seal(id.as_bytes(), &plain))
                };
                let mut out = Resealed::from(cursor);
                while out.cursor.table < SEALED.len() {
                    let rows = not_sealed_with(tx, &out.cursor, &prefix, limit).await?;
                    let (t, id, col, narrow, form) = SEALED[out.cursor.table];
                    if let Some(new) = out.take(rows, &reseal) {
                        let sql = format!("UPDATE {t} SET {col} = $2 WHERE {id} = $1 AND {narrow}");
                        for (row_id, sealed) in new {
                            let row_id = form.stored(&row_id)?;
                            tx.execute(&sql, &[row_id, Value::from(sealed)]).await?;
                        }
                        break;
                    }
                }
                Ok(out)
            })
        })
        .await
    }
}

/// Up to `limit` rows of the cursor's column after its ID whose value does not begin with
/// `prefix` (the active key's), oldest ID first, locked until the transaction ends.
async fn not_sealed_with(
    tx: &mut dyn Tx,
    at: &ResealCursor,
    prefix: &[u8],
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>> {
    let (t, id, col, narrow, form) = SEALED[at.table];
    let mut bound = vec![
        Value::from(prefix.len()),
        Value::from(prefix),
        Value::from(limit),
    ];
    // From the first row ID, or after the last one done.
    let after = if at.after.is_empty() {
        String::new()
    } else {
        bound.push(form.stored(&at.after)?);
        format!("AND {id} > $4")
    };
    let sql = format!(
        "SELECT {id}, {col} FROM {t}
          WHERE {narrow} AND {col} IS NOT NULL AND substr({col}, 1, $1) <> $2 {after}
          ORDER BY {id} LIMIT $3 {{for_update}}"
    );
    tx.query(&sql, &bound)
        .await?
        .iter()
        .map(|r| Ok((form.text(r, 0)?, r.get(1)?)))
        .collect()
}

/// Where a re-seal has got to: the sealed column (an index into the store's list) and the last
/// row ID done in it. Start from `ResealCursor::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealCursor {
    pub(super) table: usize,
    pub(super) after: String,
}

impl ResealCursor {
    /// Whether every sealed column has been gone through.
    pub fn finished(&self) -> bool {
        self.table >= SEALED.len()
    }
}

/// One step of a re-seal.
#[derive(Debug, Clone)]
pub struct Resealed {
    /// Where to go on from.
    pub cursor: ResealCursor,
    /// Values re-sealed in this step.
    pub resealed: u64,
    /// Values no configured key opens (skipped, counted: keep the key that sealed them).
    pub unreadable: u64,
}

impl From<ResealCursor> for Resealed {
    fn from(cursor: ResealCursor) -> Self {
        Self {
            cursor,
            resealed: 0,
            unreadable: 0,
        }
    }
}

impl Resealed {
    /// Takes the rows a step read at the cursor (`(id, sealed)`, by id): none moves the cursor
    /// to the next sealed column (`None`: read again there); otherwise the cursor moves past
    /// them and the re-sealed values to write are returned, those no key opens counted.
    pub(super) fn take(
        &mut self,
        rows: Vec<(String, Vec<u8>)>,
        reseal: &Reseal<'_>,
    ) -> Option<Vec<(String, Vec<u8>)>> {
        let Some((last, _)) = rows.last() else {
            self.cursor = ResealCursor {
                table: self.cursor.table + 1,
                after: String::new(),
            };
            return None;
        };
        self.cursor.after = last.clone();
        let mut new = Vec::with_capacity(rows.len());
        for (id, sealed) in rows {
            match reseal(&id, &sealed) {
                Some(s) => new.push((id, s)),
                None => self.unreadable += 1,
            }
        }
        self.resealed += new.len() as u64;
        Some(new)
    }
}
