//! The sealed columns under a new data key: counting what another key sealed, and re-sealing.

use super::backend::{self, ResealStep};
use super::{Result, Store, StoreError};

// === impl Store ===

impl Store {
    // --- data keys ---

    /// Stored values not yet sealed with the active data key.
    pub async fn sealed_with_other_keys(&self) -> Result<u64, StoreError> {
        self.db()
            .count_not_sealed_with(self.inner.key.active_prefix().to_vec())
            .await
    }

    /// Re-seals, with the active data key, up to `limit` stored values sealed with another key
    /// (find data, PATs, member records, view data), in one commit. Returns what it did; call
    /// it until `resealed` and `unreadable` are both 0. Resumable at any point: what is done is
    /// committed, and what is sealed with the active key is never read again.
    pub async fn reseal(&self, cursor: ResealCursor, limit: usize) -> Result<Resealed, StoreError> {
        let key = self.inner.key.clone();
        let step = ResealStep {
            cursor,
            prefix: key.active_prefix().to_vec(),
            limit,
        };
        self.db()
            .reseal(
                step,
                Box::new(move |id, sealed| {
                    let plain = key.open(id.as_bytes(), sealed).ok()?;
                    Some(key.seal(id.as_bytes(), &plain))
                }),
            )
            .await
    }
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
        self.table >= backend::SEALED.len()
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
        reseal: &backend::Resealer,
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
