//! Members, their pensions' view data, schemes, and the data changes running endpoints apply.
//!
//! A member is one row: its sealed match record and the hash of what was imported (so that the
//! same record imported again writes nothing). A pension is one row with its sealed view data,
//! keyed by its asset GUID's 16 bytes; its holdername is its member's.
//! Every change to a member or a scheme is noted in `data_changes` under a rising version: a
//! running endpoint applies the changes after the version its match index holds. Each
//! holdername's pensions are counted by scheme name in `pension_schemes`, kept by the schema's
//! triggers on `pensions` (the console's schemes page reads it).

use std::collections::HashMap;

use uuid::Uuid;

use super::sql::{insert_rows, params, Access, Dialect, Row, Tx, Value};
use super::{blocking, packed, stored_date, Result, Store, StoreError};
use crate::model::*;
use crate::sealed::{self, DataKey, Header, IndexKey};

/// Member IDs looked up in one query.
const LOOKUP: usize = 256;

// === impl Store ===

impl Store {
    // --- members ---

    /// Applies a batch of member changes in one commit: adds, replaces (a pension absent from
    /// the new record is removed) or removes members; a record exactly as imported before
    /// changes nothing. Records and view data are sealed here, off the runtime. Every change is
    /// noted for the running endpoints' match indexes. With `dry_run`, the same answers and
    /// nothing kept.
    ///
    /// An asset GUID belongs to one member. A record with a pension another member holds is
    /// refused ([`Applied::PensionHeld`], nothing written for it), unless it is a
    /// [`MemberChange::UpsertMoving`]: then the pension is first taken from the other member
    /// (out of its match record, its PeIs retired as `asset-removed`), in the same transaction.
    pub async fn apply_members(
        &self,
        batch: Vec<MemberChange>,
        dry_run: bool,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        let sealed = self.seal_members(batch).await?;
        self.write_members(sealed, dry_run).await
    }

    /// [`Self::apply_members`]'s first half: the batch's records and view data sealed (off the
    /// runtime), nothing written. An import seals a batch while the one before it is written.
    pub async fn seal_members(
        &self,
        batch: Vec<MemberChange>,
    ) -> Result<SealedMembers, StoreError> {
        let key = self.inner.key.clone();
        blocking(move || {
            Ok(SealedMembers(
                batch.into_iter().map(|c| seal_change(&key, c)).collect(),
            ))
        })
        .await
    }

    /// [`Self::apply_members`]'s second half: a sealed batch written in one commit (with
    /// `dry_run`, the same answers and nothing kept).
    pub async fn write_members(
        &self,
        sealed: SealedMembers,
        dry_run: bool,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        let key = self.inner.key.clone();
        let changes = sealed.0;
        let now = crate::now_micros();
        let access = if dry_run {
            Access::Trial
        } else {
            Access::Write
        };
        self.run(access, move |tx| {
            Box::pin(async move { apply_batch(tx, &key, &changes, now).await })
        })
        .await
    }

    /// Opens a sample of what is stored with the configured keys: the first `limit` members'
    /// records and the first `limit` pensions' view data (in ID order). Run before writing
    /// anything sealed: a wrong key would otherwise seal new records no other instance opens.
    pub async fn key_sample(&self, limit: usize) -> Result<KeySample, StoreError> {
        let (members, pensions) = self
            .read(move |tx| {
                Box::pin(async move {
                    let members = member_page(tx, "", limit).await?;
                    let pensions = pension_page(tx, limit).await?;
                    Ok((members, pensions))
                })
            })
            .await?;
        let key = self.inner.key.clone();
        blocking(move || {
            let all = members.iter().chain(&pensions);
            let failed = all
                .filter(|(aad, sealed)| key.open(aad.as_bytes(), sealed).is_err())
                .count();
            Ok(KeySample {
                checked: (members.len() + pensions.len()) as u64,
                failed: failed as u64,
            })
        })
        .await
    }

    /// Every member ID, or those of one holdername.
    pub async fn member_ids(&self, holdername: Option<Uuid>) -> Result<Vec<String>, StoreError> {
        let holdername = holdername.map(|h| h.hyphenated().to_string());
        self.read(move |tx| {
            Box::pin(async move {
                tx.column(
                    "SELECT member_id FROM members
                      WHERE CAST($1 AS TEXT) IS NULL OR holdername = $1 ORDER BY 1",
                    &params![holdername],
                )
                .await
            })
        })
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
        let rows = self
            .read(move |tx| Box::pin(async move { members_sealed(tx, member_ids).await }))
            .await?;
        let key = &self.inner.key;
        Ok(rows
            .into_iter()
            .map(|(id, sealed)| {
                let json = sealed.map(|s| packed::open(key, id.as_bytes(), &s));
                (id, json)
            })
            .collect())
    }

    /// The newest data change's version: an endpoint whose index has applied it is current.
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                tx.value("SELECT coalesce(max(version), 0) FROM data_changes", &[])
                    .await
            })
        })
        .await
    }

    /// Data changes after `version`, oldest first (at most `limit`), with their versions.
    pub async fn data_changes_since(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<(i64, DataChange)>, StoreError> {
        self.read(move |tx| {
            Box::pin(async move {
                tx.query(
                    "SELECT version, kind, key FROM data_changes WHERE version > $1
                      ORDER BY version LIMIT $2",
                    &params![version, limit],
                )
                .await?
                .iter()
                .map(data_change_from)
                .collect()
            })
        })
        .await
    }

    /// Forgets data changes noted before `before` (µs): every running endpoint applied them long
    /// ago (they poll every second; one that starts builds its index from the members
    /// themselves). The newest change is kept, so versions never go back.
    pub async fn purge_data_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.run(Access::Single, move |tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM data_changes WHERE at < $1
                        AND version < (SELECT max(version) FROM data_changes)",
                    &params![before],
                )
                .await
            })
        })
        .await
    }

    /// Sets a scheme's state, noted for the running endpoints.
    pub async fn set_scheme_state(
        &self,
        holdername: Uuid,
        state: SchemeState,
    ) -> Result<(), StoreError> {
        let holdername = holdername.hyphenated().to_string();
        let now = crate::now_micros();
        self.write(move |tx| {
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO schemes (holdername, state, changed_at) VALUES ($1, $2, $3)
                     ON CONFLICT (holdername) DO UPDATE SET state = excluded.state,
                         changed_at = excluded.changed_at",
                    &params![&holdername, state, now],
                )
                .await?;
                note_change(tx, "scheme", &holdername, now).await
            })
        })
        .await
    }

    /// Schemes not active.
    pub async fn inactive_schemes(&self) -> Result<Vec<(Uuid, SchemeState)>, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                tx.query(
                    "SELECT holdername, state FROM schemes WHERE state <> 'active'",
                    &[],
                )
                .await?
                .iter()
                .map(|r| Ok((holdername_from(r, 0)?, r.get(1)?)))
                .collect()
            })
        })
        .await
    }

    /// One scheme's state (active unless set otherwise).
    pub async fn scheme_state(&self, holdername: Uuid) -> Result<SchemeState, StoreError> {
        let holdername = holdername.hyphenated().to_string();
        self.read(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT state FROM schemes WHERE holdername = $1",
                        &params![holdername],
                    )
                    .await?;
                row.map_or(Ok(SchemeState::Active), |r| r.get(0))
            })
        })
        .await
    }

    /// Members stored.
    pub async fn member_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| Box::pin(async move { tx.value("SELECT count(*) FROM members", &[]).await }))
            .await
    }

    // --- the match index ---

    /// The index key the match index's look-up keys are hashed with: made and stored (sealed)
    /// by the first to ask, the same for every instance and import after.
    pub async fn index_key(&self) -> Result<IndexKey, StoreError> {
        let fresh = self
            .inner
            .key
            .seal(INDEX_KEY.as_bytes(), &IndexKey::generate());
        let sealed = self.stored_secret(INDEX_KEY, fresh).await?;
        let bytes = zeroize::Zeroizing::new(self.inner.key.open(INDEX_KEY.as_bytes(), &sealed)?);
        Ok(IndexKey::from_bytes(&bytes)?)
    }

    /// Up to `limit` members after slot `after`, in slot order, as the match index is built
    /// from them: slot, look-up keys (`None` when not yet computed) and whether the configured
    /// keys open the record (from its header: nothing is opened).
    pub async fn index_page(&self, after: i64, limit: usize) -> Result<Vec<IndexRow>, StoreError> {
        let rows = self
            .read(move |tx| {
                Box::pin(async move {
                    tx.query(
                        "SELECT slot, match_keys, substr(sealed, 1, 5) FROM members
                          WHERE slot > $1 ORDER BY slot LIMIT $2",
                        &params![after, limit],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get::<Vec<u8>>(2)?)))
                    .collect::<Result<Vec<(i64, Option<Vec<u8>>, Vec<u8>)>>>()
                })
            })
            .await?;
        let key = &self.inner.key;
        Ok(rows
            .into_iter()
            .map(|(slot, keys, head)| IndexRow {
                slot,
                keys,
                header: key.header(&head),
            })
            .collect())
    }

    /// Up to `limit` members after slot `after` whose look-up keys are not yet computed
    /// (stored before the index had keys), with their match records opened.
    pub async fn members_without_keys(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<SlotRecord>, StoreError> {
        let rows = self
            .read(move |tx| {
                Box::pin(async move {
                    slot_rows(
                        tx,
                        "SELECT slot, member_id, sealed FROM members
                          WHERE match_keys IS NULL AND slot > $1 ORDER BY slot LIMIT $2",
                        &params![after, limit],
                    )
                    .await
                })
            })
            .await?;
        Ok(self.open_slots(rows))
    }

    /// Writes members' look-up keys, by slot.
    pub async fn set_match_keys(&self, keys: Vec<(i64, MatchKeys)>) -> Result<(), StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                for (slot, k) in &keys {
                    tx.execute(
                        "UPDATE members SET match_keys = $1 WHERE slot = $2",
                        &params![k.to_bytes(), *slot],
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The members in `slots` (those still stored), their match records opened: a find's
    /// candidates.
    pub async fn members_by_slot(&self, slots: Vec<i64>) -> Result<Vec<SlotRecord>, StoreError> {
        let rows = self
            .read(move |tx| {
                Box::pin(async move {
                    let mut out = Vec::with_capacity(slots.len());
                    for chunk in slots.chunks(LOOKUP) {
                        let (marks, bound) = in_list(chunk);
                        let sql = format!(
                            "SELECT slot, member_id, sealed FROM members WHERE slot IN ({marks})"
                        );
                        out.extend(slot_rows(tx, &sql, &bound).await?);
                    }
                    out.sort_unstable_by_key(|r| r.0);
                    out.dedup_by_key(|r| r.0);
                    Ok(out)
                })
            })
            .await?;
        Ok(self.open_slots(rows))
    }

    /// Members by ID as a running endpoint's index takes their changes: slot, look-up keys and
    /// match record opened; `None` for an ID the store does not hold.
    pub async fn members_for_index(
        &self,
        member_ids: Vec<String>,
    ) -> Result<Vec<(String, Option<IndexEntry>)>, StoreError> {
        let found = self
            .read(move |tx| {
                Box::pin(async move {
                    let mut found = HashMap::with_capacity(member_ids.len());
                    for chunk in member_ids.chunks(LOOKUP) {
                        let (marks, bound) = in_list(chunk);
                        let sql = format!("{INDEX_SELECT} WHERE member_id IN ({marks})");
                        for row in index_rows(tx, &sql, &bound).await? {
                            found.insert(row.1.clone(), row);
                        }
                    }
                    Ok(member_ids
                        .into_iter()
                        .map(|id| {
                            let row = found.remove(&id);
                            (id, row)
                        })
                        .collect::<Vec<_>>())
                })
            })
            .await?;
        Ok(found
            .into_iter()
            .map(|(id, row)| (id, row.map(|r| self.index_entry(r))))
            .collect())
    }

    /// The members stored under slots `first..=last` (added together), as
    /// [`Store::members_for_index`] gives them, in slot order.
    pub async fn members_in_slots(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let rows = self
            .read(move |tx| {
                Box::pin(async move {
                    let sql =
                        format!("{INDEX_SELECT} WHERE slot >= $1 AND slot <= $2 ORDER BY slot");
                    index_rows(tx, &sql, &params![first, last]).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(|r| self.index_entry(r)).collect())
    }

    fn index_entry(&self, (slot, member_id, sealed, keys): EntryRow) -> IndexEntry {
        (self.open_slot(slot, member_id, &sealed), keys)
    }

    /// A member's slot, ID and match record, opened.
    fn open_slot(&self, slot: i64, member_id: String, sealed: &[u8]) -> SlotRecord {
        let record = packed::open(&self.inner.key, member_id.as_bytes(), sealed);
        SlotRecord {
            slot,
            member_id,
            record,
        }
    }

    fn open_slots(&self, rows: Vec<(i64, String, Vec<u8>)>) -> Vec<SlotRecord> {
        rows.into_iter()
            .map(|(slot, member_id, sealed)| self.open_slot(slot, member_id, &sealed))
            .collect()
    }

    /// One pension by asset GUID, its view data opened.
    pub async fn pension(&self, asset_guid: Uuid) -> Result<Option<StoredPension>, StoreError> {
        let guid = asset_guid.hyphenated().to_string();
        let row = self
            .read(move |tx| Box::pin(async move { pension_row(tx, &asset_guid).await }))
            .await?;
        let Some(row) = row else {
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

/// What [`Store::key_sample`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySample {
    /// Sealed values tried (members' records and pensions' view data).
    pub checked: u64,
    /// Of those, the ones no configured key opens.
    pub failed: u64,
}

/// The index key's name among the store's secrets (and its seal's associated data).
const INDEX_KEY: &str = "index-key";

/// A member as the match index is built from it ([`Store::index_page`]).
#[derive(Debug, Clone)]
pub struct IndexRow {
    /// Its slot.
    pub slot: i64,
    /// Its look-up keys as stored; `None` when not yet computed.
    pub keys: Option<Vec<u8>>,
    /// Whether the configured keys open its record, from the record's header.
    pub header: Header,
}

/// A member's slot, ID and opened match record (JSON), or why it did not open.
#[derive(Debug)]
pub struct SlotRecord {
    /// Its slot.
    pub slot: i64,
    /// The member ID.
    pub member_id: String,
    /// The match record, opened.
    pub record: std::result::Result<Vec<u8>, sealed::SealError>,
}

/// `$1, …, $n` for as many placeholders as the next power of two above `ids.len()` (the last
/// repeated), so that a few statements serve every batch; and the values.
fn in_list<T: Clone>(ids: &[T]) -> (String, Vec<Value>)
where
    Value: From<T>,
{
    let n = ids.len().next_power_of_two();
    let marks: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    let bound = (0..n)
        .map(|i| Value::from(ids[i.min(ids.len() - 1)].clone()))
        .collect();
    (marks.join(", "), bound)
}

/// Rows of (slot, member ID, sealed record).
async fn slot_rows(
    tx: &mut dyn Tx,
    sql: &str,
    params: &[Value],
) -> Result<Vec<(i64, String, Vec<u8>)>> {
    tx.query(sql, params)
        .await?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .collect()
}

// === Rows ===

/// A batch of member changes sealed, to be written ([`Store::seal_members`]).
pub struct SealedMembers(Vec<SealedChange>);

/// A member change with its secrets sealed.
enum SealedChange {
    /// A member added or replaced; `true` when it may take pensions other members hold.
    Upsert(MemberRow, bool),
    Remove(String),
}

/// A member as it is written, its match record and view data already sealed.
struct MemberRow {
    member_id: String,
    holdername: String,
    sealed: Vec<u8>,
    /// Its look-up keys as stored ([`MatchKeys::to_bytes`]).
    match_keys: Vec<u8>,
    /// SHA-256 of what was imported (match record and pensions, in the clear), to tell an
    /// update from a repeat without opening anything: its first [`CONTENT_HASH_BYTES`] in hex,
    /// as stored.
    content_sha256: String,
    /// The whole SHA-256 in hex, as rows stored before the hash was cut short hold it.
    content_sha256_whole: String,
    pensions: Vec<PensionRow>,
}

impl MemberRow {
    /// What writing this row does to the member as stored (`before`: its content hash, `None`
    /// when not stored): `None` when it is stored exactly so, and nothing is to be written.
    fn applied_over(&self, before: Option<Option<String>>) -> Option<Applied> {
        match before {
            None => Some(Applied::Added),
            Some(Some(h)) if h == self.content_sha256 || h == self.content_sha256_whole => None,
            Some(_) => Some(Applied::Updated),
        }
    }

    /// Of the member's stored pensions (asset GUIDs), those this row no longer has.
    fn dropped(&self, stored: &[Uuid]) -> Vec<Uuid> {
        let kept: std::collections::HashSet<Uuid> =
            self.pensions.iter().map(|p| p.asset_guid).collect();
        stored
            .iter()
            .filter(|g| !kept.contains(g))
            .copied()
            .collect()
    }
}

/// Bytes of a member's content hash stored: 128 bits tell a changed record from a repeat.
const CONTENT_HASH_BYTES: usize = 16;

/// A pension as it is written.
struct PensionRow {
    asset_guid: Uuid,
    scheme_name: String,
    sealed_view_data: Vec<u8>,
    statement_date: Option<chrono::NaiveDate>,
    calculation_date: Option<chrono::NaiveDate>,
}

/// A pension as read, its view data still sealed.
struct StoredPensionRow {
    member_id: String,
    holdername: String,
    scheme_name: String,
    sealed_view_data: Vec<u8>,
    statement_date: Option<chrono::NaiveDate>,
    calculation_date: Option<chrono::NaiveDate>,
}

/// A member as a running endpoint's index takes it: its slot and opened record, and its stored
/// look-up keys (`None` from before they were stored).
pub type IndexEntry = (SlotRecord, Option<Vec<u8>>);

/// A member's row as the index reads it: slot, member ID, sealed record, look-up keys.
type EntryRow = (i64, String, Vec<u8>, Option<Vec<u8>>);

/// The members' columns the index reads ([`EntryRow`]).
const INDEX_SELECT: &str = "SELECT slot, member_id, sealed, match_keys FROM members";

/// The rows of an [`INDEX_SELECT`].
async fn index_rows(tx: &mut dyn Tx, sql: &str, bound: &[Value]) -> Result<Vec<EntryRow>> {
    tx.query(sql, bound)
        .await?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .collect()
}

fn data_change_from(r: &Row) -> Result<(i64, DataChange)> {
    let key: String = r.get(2)?;
    let change = match r.get::<String>(1)?.as_str() {
        "member" => DataChange::Member(key),
        "added" => {
            let (first, last) = key
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .ok_or(StoreError::Corrupt("added slots"))?;
            DataChange::Added { first, last }
        }
        "slot" => DataChange::SlotFreed(
            key.parse()
                .map_err(|_| StoreError::Corrupt("member slot"))?,
        ),
        "scheme" => DataChange::Scheme(
            Uuid::try_parse(&key).map_err(|_| StoreError::Corrupt("holdername"))?,
        ),
        _ => return Err(StoreError::Corrupt("data change kind")),
    };
    Ok((r.get(0)?, change))
}

fn holdername_from(r: &Row, i: usize) -> Result<Uuid> {
    Uuid::try_parse(&r.get::<String>(i)?).map_err(|_| StoreError::Corrupt("holdername"))
}

// === Units of work ===

/// Applies a batch of sealed member changes, as if one by one in order. Each run of
/// [`LOOKUP`] changes is looked up first: a new member whose pensions no member holds (and whose
/// member ID and asset GUIDs no other change of the batch names) is added whatever the changes
/// around it do, so those are written together, a few statements for many members; every other
/// change is applied on its own, in order.
async fn apply_batch(
    tx: &mut dyn Tx,
    key: &DataKey,
    changes: &[SealedChange],
    now: i64,
) -> Result<Vec<AppliedChange>> {
    let named = NamedOnce::of(changes);
    let mut out = Vec::with_capacity(changes.len());
    for run in changes.chunks(LOOKUP) {
        let fresh = fresh_members(tx, run, &named).await?;
        let rows: Vec<&MemberRow> = run
            .iter()
            .zip(&fresh)
            .filter_map(|(c, f)| match c {
                SealedChange::Upsert(row, _) if *f => Some(row),
                _ => None,
            })
            .collect();
        add_members(tx, &rows, now).await?;
        for (change, fresh) in run.iter().zip(fresh) {
            out.push(match change {
                SealedChange::Upsert(row, _) if fresh => {
                    AppliedChange::new(&row.member_id, Applied::Added, Vec::new())
                }
                _ => apply_change(tx, key, change, now).await?,
            });
        }
    }
    Ok(out)
}

/// The member IDs and asset GUIDs a batch names exactly once.
struct NamedOnce<'a> {
    member_ids: std::collections::HashSet<&'a str>,
    guids: std::collections::HashSet<Uuid>,
}

impl<'a> NamedOnce<'a> {
    fn of(changes: &'a [SealedChange]) -> Self {
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(changes.len());
        let mut guids: HashMap<Uuid, u32> = HashMap::with_capacity(changes.len() * 2);
        for c in changes {
            let (id, pensions) = match c {
                SealedChange::Upsert(row, _) => (row.member_id.as_str(), row.pensions.as_slice()),
                SealedChange::Remove(id) => (id.as_str(), &[][..]),
            };
            *ids.entry(id).or_default() += 1;
            for p in pensions {
                *guids.entry(p.asset_guid).or_default() += 1;
            }
        }
        Self {
            member_ids: ids
                .into_iter()
                .filter(|(_, n)| *n == 1)
                .map(|(k, _)| k)
                .collect(),
            guids: guids
                .into_iter()
                .filter(|(_, n)| *n == 1)
                .map(|(k, _)| k)
                .collect(),
        }
    }

    /// Whether a change is a candidate to be added with others: a record whose member ID and
    /// asset GUIDs the batch names once.
    fn candidate(&self, c: &SealedChange) -> bool {
        match c {
            SealedChange::Upsert(row, _) => {
                self.member_ids.contains(row.member_id.as_str())
                    && row
                        .pensions
                        .iter()
                        .all(|p| self.guids.contains(&p.asset_guid))
            }
            SealedChange::Remove(_) => false,
        }
    }
}

/// Of a run of changes, the new members (no such member stored) whose pensions no member holds
/// and whose member ID and asset GUIDs the batch names once (`named`).
async fn fresh_members(
    tx: &mut dyn Tx,
    run: &[SealedChange],
    named: &NamedOnce<'_>,
) -> Result<Vec<bool>> {
    let rows: Vec<&MemberRow> = run
        .iter()
        .filter(|c| named.candidate(c))
        .filter_map(|c| match c {
            SealedChange::Upsert(row, _) => Some(row),
            SealedChange::Remove(_) => None,
        })
        .collect();
    let mut taken_ids = std::collections::HashSet::new();
    let mut taken_guids = std::collections::HashSet::new();
    if !rows.is_empty() {
        let ids: Vec<&str> = rows.iter().map(|r| r.member_id.as_str()).collect();
        let (marks, bound) = in_list(&ids);
        let sql = format!("SELECT member_id FROM members WHERE member_id IN ({marks})");
        taken_ids.extend(tx.column::<String>(&sql, &bound).await?);
        let guids: Vec<Value> = rows
            .iter()
            .flat_map(|r| r.pensions.iter().map(|p| guid_value(&p.asset_guid)))
            .collect();
        for chunk in guids.chunks(LOOKUP) {
            let (marks, bound) = in_list(chunk);
            let sql = format!("SELECT asset_guid FROM pensions WHERE asset_guid IN ({marks})");
            for g in tx.column::<Vec<u8>>(&sql, &bound).await? {
                taken_guids.insert(guid_from(&g)?);
            }
        }
    }
    Ok(run
        .iter()
        .map(|c| match c {
            SealedChange::Upsert(row, _) if named.candidate(c) => {
                !taken_ids.contains(&row.member_id)
                    && row
                        .pensions
                        .iter()
                        .all(|p| !taken_guids.contains(&p.asset_guid))
            }
            _ => false,
        })
        .collect())
}

/// An asset GUID as stored: its 16 bytes.
fn guid_value(g: &Uuid) -> Value {
    Value::from(g.as_bytes().to_vec())
}

/// An asset GUID from its 16 stored bytes.
fn guid_from(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| StoreError::Corrupt("asset GUID"))
}

/// Adds new members and their pensions, each taking the next slot, noted for the running
/// endpoints as one change (the slots they took): a few multi-row statements for them all.
async fn add_members(tx: &mut dyn Tx, rows: &[&MemberRow], now: i64) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let last: i64 = tx
        .value(
            "UPDATE member_slot SET last = last + $1 WHERE id = 1 RETURNING last",
            &params![rows.len()],
        )
        .await?;
    let first = last - rows.len() as i64 + 1;
    let members = rows.iter().zip(first..).map(|(m, slot)| {
        params![
            &m.member_id,
            &m.holdername,
            &m.sealed,
            &m.content_sha256,
            &m.match_keys,
            slot
        ]
        .to_vec()
    });
    insert_rows(
        tx,
        "INSERT INTO members (member_id, holdername, sealed, content_sha256, match_keys, slot)",
        members.collect(),
    )
    .await?;
    // In key order: each page of the asset GUIDs' index is read and written once a batch.
    let mut pensions: Vec<(&MemberRow, &PensionRow)> = rows
        .iter()
        .flat_map(|m| m.pensions.iter().map(move |p| (*m, p)))
        .collect();
    pensions.sort_unstable_by_key(|(_, p)| p.asset_guid);
    insert_pensions(tx, pensions).await?;
    // One change for them all: the running endpoints read the new slots' members.
    note_change(tx, "added", &format!("{first}-{last}"), now).await
}

/// Applies one sealed member change. A change that writes is noted for the running endpoints;
/// a pension it drops is deleted with its PeIs retired. A pension another member holds refuses
/// the change, or (when moving) is taken from that member first.
async fn apply_change(
    tx: &mut dyn Tx,
    key: &DataKey,
    change: &SealedChange,
    now: i64,
) -> Result<AppliedChange> {
    let mut held_by = Vec::new();
    let mut freed = None;
    let (member_id, applied, removed) = match change {
        SealedChange::Remove(id) => {
            if content_hash(tx, id).await?.is_none() {
                return Ok(AppliedChange::unchanged(id, Applied::NotFound));
            }
            let gone = pension_guids(tx, id).await?;
            retire(tx, &gone, now).await?;
            let slot: Option<i64> = tx
                .query_opt(
                    "DELETE FROM members WHERE member_id = $1 RETURNING slot",
                    &params![id],
                )
                .await?
                .map(|r| r.get(0))
                .transpose()?
                .flatten();
            freed = slot;
            (id, Applied::Removed, gone)
        }
        SealedChange::Upsert(row, moving) => {
            let before = content_hash(tx, &row.member_id).await?;
            let Some(applied) = row.applied_over(before) else {
                return Ok(AppliedChange::unchanged(&row.member_id, Applied::Unchanged));
            };
            held_by = held_elsewhere(tx, row).await?;
            if !held_by.is_empty() && !moving {
                let mut refused = AppliedChange::unchanged(&row.member_id, Applied::PensionHeld);
                refused.held_by = held_by;
                return Ok(refused);
            }
            for (guid, owner) in &held_by {
                take_pension(tx, key, owner, guid, now).await?;
            }
            let stored = pension_guids(tx, &row.member_id).await?;
            let gone = row.dropped(&stored);
            retire(tx, &gone, now).await?;
            upsert(tx, row, applied == Applied::Added, &stored).await?;
            (&row.member_id, applied, gone)
        }
    };
    note_change(tx, "member", member_id, now).await?;
    if let Some(slot) = freed {
        note_change(tx, "slot", &slot.to_string(), now).await?;
    }
    let mut out = AppliedChange::new(member_id, applied, removed);
    out.held_by = held_by;
    Ok(out)
}

/// The record's pensions that another member holds, with that member.
async fn held_elsewhere(tx: &mut dyn Tx, row: &MemberRow) -> Result<Vec<(Uuid, String)>> {
    let mut held = Vec::new();
    let guids: Vec<Value> = row
        .pensions
        .iter()
        .map(|p| guid_value(&p.asset_guid))
        .collect();
    for chunk in guids.chunks(LOOKUP) {
        // As many placeholders as the next power of two (the last GUID repeated), after the
        // member ID, so that a few statements serve every record.
        let n = chunk.len().next_power_of_two();
        let marks: Vec<String> = (2..=n + 1).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT asset_guid, member_id FROM pensions
              WHERE member_id <> $1 AND asset_guid IN ({}) ORDER BY 1",
            marks.join(", ")
        );
        let bound: Vec<Value> = std::iter::once(Value::from(&row.member_id))
            .chain((0..n).map(|i| chunk[i.min(chunk.len() - 1)].clone()))
            .collect();
        for r in tx.query(&sql, &bound).await? {
            held.push((guid_from(&r.get::<Vec<u8>>(0)?)?, r.get::<String>(1)?));
        }
    }
    Ok(held)
}

/// Takes a pension from the member that holds it: the pension is deleted with its PeIs retired
/// (`asset-removed`), and the member's match record no longer lists it (re-sealed; its content
/// hash cleared, so that importing its old record again is an update, refused while another
/// member holds the pension). Noted for the running endpoints.
async fn take_pension(
    tx: &mut dyn Tx,
    key: &DataKey,
    owner: &str,
    guid: &Uuid,
    now: i64,
) -> Result<()> {
    let g = guid.hyphenated().to_string();
    retire(tx, std::slice::from_ref(guid), now).await?;
    let sealed: Vec<u8> = tx
        .value(
            "SELECT sealed FROM members WHERE member_id = $1",
            &params![owner],
        )
        .await?;
    let mut record: serde_json::Value =
        serde_json::from_slice(&packed::open(key, owner.as_bytes(), &sealed)?)
            .map_err(|_| StoreError::Corrupt("match record"))?;
    if let Some(pensions) = record
        .get_mut("pensions")
        .and_then(serde_json::Value::as_array_mut)
    {
        pensions.retain(|p| p.get("assetGuid").and_then(|v| v.as_str()) != Some(g.as_str()));
    }
    let json = serde_json::to_vec(&record).map_err(|_| StoreError::Corrupt("match record"))?;
    tx.execute(
        "UPDATE members SET sealed = $2, content_sha256 = NULL WHERE member_id = $1",
        &params![owner, packed::seal(key, owner.as_bytes(), &json)],
    )
    .await?;
    note_change(tx, "member", owner, now).await
}

/// The content hash of a stored member: `None` when no such member, `Some(None)` when stored
/// before hashes were kept.
async fn content_hash(tx: &mut dyn Tx, member_id: &str) -> Result<Option<Option<String>>> {
    tx.query_opt(
        "SELECT content_sha256 FROM members WHERE member_id = $1",
        &params![member_id],
    )
    .await?
    .map(|r| r.get(0))
    .transpose()
}

/// The asset GUIDs of a member's pensions.
async fn pension_guids(tx: &mut dyn Tx, member_id: &str) -> Result<Vec<Uuid>> {
    tx.column::<Vec<u8>>(
        "SELECT asset_guid FROM pensions WHERE member_id = $1 ORDER BY 1",
        &params![member_id],
    )
    .await?
    .iter()
    .map(|g| guid_from(g))
    .collect()
}

/// Deletes pensions that are gone and retires their PeIs (`asset-removed`): a pending one is
/// de-registered at once (the CAS never had it), a registered one waits for its de-registration
/// to be sent.
async fn retire(tx: &mut dyn Tx, guids: &[Uuid], now: i64) -> Result<()> {
    for g in guids {
        tx.execute(
            "DELETE FROM pensions WHERE asset_guid = $1",
            &[guid_value(g)],
        )
        .await?;
        let g = g.hyphenated().to_string();
        tx.execute(
            "UPDATE peis SET state = CASE state WHEN 'pending' THEN 'deregistered'
                                                ELSE 'deregistering' END,
                    deletion_reason = $2, deregistered_at = $3
              WHERE pension_asset_guid = $1 AND state IN ('pending', 'registered')",
            &params![&g, "asset-removed", now],
        )
        .await?;
    }
    Ok(())
}

/// Writes a member and its pensions (replacing what was there). `held`: the asset GUIDs the
/// member held before, rewritten in place; its other pensions are new (none stored: a
/// pension another member held has been taken, see [`take_pension`]), inserted together.
async fn upsert(tx: &mut dyn Tx, m: &MemberRow, new: bool, held: &[Uuid]) -> Result<()> {
    // A new member takes the next slot; a changed one keeps its own.
    let fields = params![
        &m.member_id,
        &m.holdername,
        &m.sealed,
        &m.content_sha256,
        &m.match_keys
    ];
    if new {
        let slot: i64 = tx
            .value(
                "UPDATE member_slot SET last = last + 1 WHERE id = 1 RETURNING last",
                &[],
            )
            .await?;
        let mut bound = fields.to_vec();
        bound.push(Value::from(slot));
        tx.execute(
            "INSERT INTO members (member_id, holdername, sealed, content_sha256, match_keys, slot)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &bound,
        )
        .await?;
    } else {
        tx.execute(
            "UPDATE members SET holdername = $2, sealed = $3, content_sha256 = $4, match_keys = $5
              WHERE member_id = $1",
            &fields,
        )
        .await?;
    }
    let (kept, added): (Vec<&PensionRow>, Vec<&PensionRow>) = m
        .pensions
        .iter()
        .partition(|p| held.contains(&p.asset_guid));
    // Its member unchanged, a rewritten pension leaves the scheme counts alone unless its
    // scheme name changed (the count triggers' condition).
    for p in kept {
        tx.execute(
            "UPDATE pensions SET scheme_name = $2, view_data = $3, statement_date = $4,
                    calculation_date = $5
              WHERE asset_guid = $1",
            &params![
                guid_value(&p.asset_guid),
                &p.scheme_name,
                &p.sealed_view_data,
                p.statement_date,
                p.calculation_date,
            ],
        )
        .await?;
    }
    insert_pensions(tx, added.into_iter().map(|p| (m, p)).collect()).await
}

/// Inserts pensions, each with its member, a few multi-row statements for them all.
async fn insert_pensions(tx: &mut dyn Tx, pensions: Vec<(&MemberRow, &PensionRow)>) -> Result<()> {
    let rows = pensions.into_iter().map(|(m, p)| {
        params![
            guid_value(&p.asset_guid),
            &m.member_id,
            &p.scheme_name,
            &p.sealed_view_data,
            p.statement_date,
            p.calculation_date,
        ]
        .to_vec()
    });
    insert_rows(
        tx,
        "INSERT INTO pensions (asset_guid, member_id, scheme_name, view_data, statement_date,
             calculation_date)",
        rows.collect(),
    )
    .await
}

/// Notes a change the running endpoints must apply to their match index.
async fn note_change(tx: &mut dyn Tx, kind: &str, key: &str, now: i64) -> Result<()> {
    lock_changes(tx).await?;
    tx.execute(
        "INSERT INTO data_changes (kind, key, at) VALUES ($1, $2, $3)",
        &params![kind, key, now],
    )
    .await?;
    Ok(())
}

/// Versions of data changes must commit in the order they are numbered, across instances: on
/// PostgreSQL the table's lock (it blocks other writers of changes, never readers) is taken, and
/// held until commit. SQLite's one writer orders them already.
async fn lock_changes(tx: &mut dyn Tx) -> Result<()> {
    if tx.dialect() == Dialect::Postgres {
        tx.execute("LOCK TABLE data_changes IN SHARE ROW EXCLUSIVE MODE", &[])
            .await?;
    }
    Ok(())
}

/// Members' sealed match records, in the order asked (`None`: not stored).
async fn members_sealed(
    tx: &mut dyn Tx,
    ids: Vec<String>,
) -> Result<Vec<(String, Option<Vec<u8>>)>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP) {
        let (marks, bound) = in_list(chunk);
        let sql = format!("SELECT member_id, sealed FROM members WHERE member_id IN ({marks})");
        for r in tx.query(&sql, &bound).await? {
            found.insert(r.get::<String>(0)?, r.get::<Vec<u8>>(1)?);
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| {
            let sealed = found.get(&id).cloned();
            (id, sealed)
        })
        .collect())
}

/// Up to `limit` members' sealed records, in member ID order, after `after` (member IDs are
/// never empty: an import refuses them).
async fn member_page(tx: &mut dyn Tx, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
    tx.query(
        "SELECT member_id, sealed FROM members WHERE member_id > $1
          ORDER BY member_id LIMIT $2",
        &params![after, limit],
    )
    .await?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// Up to `limit` pensions' sealed view data, in asset GUID order, with the GUID as sealed with
/// (its hyphenated text).
async fn pension_page(tx: &mut dyn Tx, limit: usize) -> Result<Vec<(String, Vec<u8>)>> {
    tx.query(
        "SELECT asset_guid, view_data FROM pensions ORDER BY asset_guid LIMIT $1",
        &params![limit],
    )
    .await?
    .iter()
    .map(|r| {
        let guid = guid_from(&r.get::<Vec<u8>>(0)?)?;
        Ok((guid.hyphenated().to_string(), r.get(1)?))
    })
    .collect()
}

/// One pension by asset GUID, its view data still sealed.
async fn pension_row(tx: &mut dyn Tx, asset_guid: &Uuid) -> Result<Option<StoredPensionRow>> {
    let row = tx
        .query_opt(
            "SELECT p.member_id, m.holdername, p.scheme_name, p.view_data, p.statement_date,
                    p.calculation_date
               FROM pensions p JOIN members m ON m.member_id = p.member_id
              WHERE p.asset_guid = $1",
            &[guid_value(asset_guid)],
        )
        .await?;
    row.map(|r| {
        Ok(StoredPensionRow {
            member_id: r.get(0)?,
            holdername: r.get(1)?,
            scheme_name: r.get(2)?,
            sealed_view_data: r.get(3)?,
            statement_date: stored_date(r.get(4)?),
            calculation_date: stored_date(r.get(5)?),
        })
    })
    .transpose()
}

// === Sealing ===

/// Seals a member change: its match record and view data, and the hash of what was imported.
fn seal_change(key: &DataKey, change: MemberChange) -> SealedChange {
    let (m, moving) = match change {
        MemberChange::Remove(id) => return SealedChange::Remove(id),
        MemberChange::Upsert(m) => (m, false),
        MemberChange::UpsertMoving(m) => (m, true),
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
    let digest = sha2::Digest::finalize(hash);
    let row = MemberRow {
        content_sha256: hex::encode(&digest[..CONTENT_HASH_BYTES]),
        content_sha256_whole: hex::encode(digest),
        sealed: packed::seal(key, m.member_id.as_bytes(), &m.match_record),
        match_keys: m.match_keys.to_bytes(),
        holdername: m.holdername.hyphenated().to_string(),
        pensions: m
            .pensions
            .into_iter()
            .map(|p| {
                let guid = p.asset_guid.hyphenated().to_string();
                PensionRow {
                    sealed_view_data: packed::seal(key, guid.as_bytes(), &p.view_data),
                    asset_guid: p.asset_guid,
                    scheme_name: p.scheme_name,
                    statement_date: p.statement_date,
                    calculation_date: p.calculation_date,
                }
            })
            .collect(),
        member_id: m.member_id,
    };
    SealedChange::Upsert(row, moving)
}

pub(super) fn open_json(
    key: &DataKey,
    aad: &str,
    sealed: &[u8],
) -> Result<serde_json::Value, StoreError> {
    let bytes = packed::open(key, aad.as_bytes(), sealed)?;
    serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("view data"))
}

#[cfg(test)]
mod tests;
