//! Members, their pensions' view data, schemes, and the data changes running endpoints apply.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use uuid::Uuid;

use super::backend::{MemberChanges, MemberRow, PeiQuery, PensionRow, SealedChange};
use super::model::*;
use super::sealed::{self, DataKey};
use super::{blocking, Result, Store, StoreError};

// === impl Store ===

impl Store {
    // --- members ---

    /// Applies a batch of member changes in one commit: adds, replaces (a pension absent from
    /// the new record is removed) or removes members; a record exactly as imported before
    /// changes nothing. Records and view data are sealed here, off the runtime. Every change is
    /// noted for the running endpoints' match indexes. With `dry_run`, the same answers and
    /// nothing kept.
    pub async fn apply_members(
        &self,
        batch: Vec<MemberChange>,
        dry_run: bool,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        let key = self.inner.key.clone();
        let rows: Vec<SealedChange> =
            blocking(move || Ok(batch.into_iter().map(|c| seal_change(&key, c)).collect())).await?;
        self.db()
            .apply_members(MemberChanges {
                changes: rows,
                dry_run,
                now: crate::now_micros(),
            })
            .await
    }

    /// Every member ID, or those of one holdername.
    pub async fn member_ids(&self, holdername: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        self.db()
            .member_ids(holdername.map(|h| h.hyphenated().to_string()))
            .await
    }

    /// One member's match record (opened JSON), `None` when not stored.
    pub async fn member_record(&self, member_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.member_records(vec![member_id.to_owned()])
            .await?
            .pop()
            .and_then(|(_, r)| r)
            .transpose()
            .map_err(StoreError::from)
    }

    /// Several members' match records (opened JSON): `None` for those not stored, an error for
    /// those no configured key opens (each on its own: one bad record spoils no other).
    pub async fn member_records(
        &self,
        member_ids: Vec<String>,
    ) -> Result<Vec<(String, Option<Result<Vec<u8>, sealed::SealError>>)>, StoreError> {
        let rows = self.db().members_sealed(member_ids).await?;
        let key = &self.inner.key;
        Ok(rows
            .into_iter()
            .map(|(id, sealed)| {
                let json = sealed.map(|s| key.open(id.as_bytes(), &s));
                (id, json)
            })
            .collect())
    }

    /// The newest data change's version: an endpoint whose index has applied it is current.
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        self.db().data_version().await
    }

    /// Data changes after `version`, oldest first (at most `limit`), with their versions.
    pub async fn data_changes_since(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DataChange)>, StoreError> {
        self.db()
            .data_changes_since(version, limit)
            .await?
            .into_iter()
            .map(|(v, kind, key)| {
                let change = match kind.as_str() {
                    "member" => DataChange::Member(key),
                    "scheme" => DataChange::Scheme(
                        Uuid::try_parse(&key).map_err(|_| StoreError::Corrupt("holdername"))?,
                    ),
                    _ => return Err(StoreError::Corrupt("data change kind")),
                };
                Ok((v, change))
            })
            .collect()
    }

    /// Forgets data changes noted before `before` (µs): every running endpoint applied them long
    /// ago (they poll every second; one that starts builds its index from the members
    /// themselves). The newest change is kept, so versions never go back.
    pub async fn purge_data_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.db().purge_data_changes(before).await
    }

    /// Sets a scheme's state, noted for the running endpoints.
    pub async fn set_scheme_state(
        &self,
        holdername: Uuid,
        state: SchemeState,
    ) -> Result<(), StoreError> {
        self.db()
            .set_scheme(
                holdername.hyphenated().to_string(),
                state,
                crate::now_micros(),
            )
            .await
    }

    /// Schemes not active.
    pub async fn inactive_schemes(&self) -> Result<Vec<(Uuid, SchemeState)>, StoreError> {
        self.db()
            .inactive_schemes()
            .await?
            .into_iter()
            .map(|(h, s)| {
                Ok((
                    Uuid::try_parse(&h).map_err(|_| StoreError::Corrupt("holdername"))?,
                    s,
                ))
            })
            .collect()
    }

    /// One scheme's state (active unless set otherwise).
    pub async fn scheme_state(&self, holdername: Uuid) -> Result<SchemeState, StoreError> {
        self.db().scheme(holdername.hyphenated().to_string()).await
    }

    /// PeIs of one pension.
    pub async fn peis_for_pension(&self, pension: Uuid) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::Pension(pension.hyphenated().to_string()))
            .await
    }

    /// PeIs of one holdername.
    pub async fn peis_for_holdername(
        &self,
        holdername: Uuid,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.db()
            .peis(PeiQuery::Holdername(holdername.hyphenated().to_string()))
            .await
    }

    /// Members stored.
    pub async fn member_count(&self) -> Result<u64, StoreError> {
        self.db().member_count().await
    }

    /// Calls `f` with every stored member's match record (opened JSON), on every core. Returns
    /// how many records could not be opened (they are skipped, never half-read).
    pub async fn for_each_member<F>(&self, f: F) -> Result<u64, StoreError>
    where
        F: Fn(&[u8]) + Send + Sync + 'static,
    {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<(String, Vec<u8>)>>(threads * 2);
        let key = self.inner.key.clone();
        let opening = blocking(move || {
            let rx = Mutex::new(rx);
            let failed = AtomicU64::new(0);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let (rx, failed, f, key) = (&rx, &failed, &f, &key);
                    s.spawn(move || loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
                        let Some(batch) = next else { break };
                        for (id, sealed) in batch {
                            match key.open(id.as_bytes(), &sealed) {
                                Ok(json) => f(&json),
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    });
                }
            });
            Ok(failed.into_inner())
        });
        let (read, failed) = tokio::join!(self.db().member_batches(4096, tx), opening);
        read?;
        failed
    }

    /// One pension by asset GUID, its view data opened.
    pub async fn pension(&self, asset_guid: Uuid) -> Result<Option<StoredPension>, StoreError> {
        let guid = asset_guid.hyphenated().to_string();
        let Some(row) = self.db().pension(guid.clone()).await? else {
            return Ok(None);
        };
        let view_data = open_json(&self.inner.key, &guid, &row.sealed_view_data)?;
        Ok(Some(StoredPension {
            asset_guid,
            view_data,
            member_id: row.member_id,
            holdername: Uuid::try_parse(&row.holdername)
                .map_err(|_| StoreError::Corrupt("holdername"))?,
            scheme_name: row.scheme_name,
            statement_date: row.statement_date,
            calculation_date: row.calculation_date,
        }))
    }
}

/// Seals a member change: its match record and view data, and the hash of what was imported.
fn seal_change(key: &DataKey, change: MemberChange) -> SealedChange {
    let m = match change {
        MemberChange::Remove(id) => return SealedChange::Remove(id),
        MemberChange::Upsert(m) => m,
    };
    let mut hash = <sha2::Sha256 as sha2::Digest>::new();
    let mut feed = |b: &[u8]| {
        sha2::Digest::update(&mut hash, (b.len() as u64).to_be_bytes());
        sha2::Digest::update(&mut hash, b);
    };
    feed(m.holdername.as_bytes());
    feed(&m.match_record);
    for p in &m.pensions {
        feed(p.asset_guid.as_bytes());
        feed(p.scheme_name.as_bytes());
        feed(&p.view_data);
        feed(format!("{:?}{:?}", p.statement_date, p.calculation_date).as_bytes());
    }
    let content_sha256 = hex::encode(sha2::Digest::finalize(hash));
    SealedChange::Upsert(MemberRow {
        sealed: key.seal(m.member_id.as_bytes(), &m.match_record),
        holdername: m.holdername.hyphenated().to_string(),
        content_sha256,
        pensions: m
            .pensions
            .into_iter()
            .map(|p| {
                let guid = p.asset_guid.hyphenated().to_string();
                PensionRow {
                    sealed_view_data: key.seal(guid.as_bytes(), &p.view_data),
                    asset_guid: guid,
                    scheme_name: p.scheme_name,
                    statement_date: p.statement_date,
                    calculation_date: p.calculation_date,
                }
            })
            .collect(),
        member_id: m.member_id,
    })
}

pub(super) fn open_json(
    key: &DataKey,
    aad: &str,
    sealed: &[u8],
) -> Result<serde_json::Value, StoreError> {
    let bytes = key.open(aad.as_bytes(), sealed)?;
    serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("view data"))
}
