//! The in-memory match index, built at start-up from the stored members' look-up keys and kept
//! current while the endpoint serves ([`super::live`]).
//!
//! A member's look-up keys are the first 8 characters of its NINO and each (name, date of
//! birth) pair, where "name" is any given, family or previous family name, so swapped names and
//! historic surnames still find their member. Each key is a keyed hash ([`IndexKey`]: 64 bits
//! of HMAC-SHA256), computed when the member is imported and stored beside its sealed record:
//! the index holds no personal data, and is built from the stored hashes without opening a
//! record.
//!
//! The index is only the way from a find to its candidates. Each key is one `u64`: the hash's
//! upper 32 bits and the member's slot (a number the store gives each member and never gives
//! again), in one of 4,096 sorted shards chosen by the hash's lowest 12 bits; about 8 bytes per
//! key, so 30-50 per member. A find's keys are hashed the same way; each candidate's record is
//! then read from the store by slot and opened, and the rules decide on that whole record. Two
//! keys that share 44 bits of hash give a candidate the rules turn down, never a wrong match.
//!
//! Applying a member's change only adds keys: a key its stored record does not have leads to
//! that record, which the rules turn down, and is gone from the index built at the next start.
//! A removed member's slot is out of the set of live slots, so its keys lead nowhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use uuid::Uuid;

use super::record::MatchRecord;
use super::rules::{Person, RawIdentity, RuleSet};
use super::PensionMatch;
use crate::model::MatchKeys;
use crate::sealed::{Header, IndexKey};
use crate::store::{Store, StoreError};
use crate::wire::find::FindData;

/// Shards of the index: the hash's lowest bits choose one.
const SHARD_BITS: u32 = 12;
const SHARDS: usize = 1 << SHARD_BITS;
/// The hash's bits kept in an entry, above the slot's 32.
const TAG: u64 = !0xFFFF_FFFF;

/// Members read from the store at once while the index is built.
const PAGE: usize = 65_536;

/// The member index: look-up key hashes to member slots.
pub struct MemberIndex {
    /// Each shard's entries (`hash & TAG | slot`), sorted.
    shards: Box<[RwLock<Vec<u64>>]>,
    /// The slots of the members stored, one bit each.
    live: RwLock<Vec<u64>>,
    members: AtomicUsize,
}

/// The index plus the rule sets: everything a worker needs to match a find.
pub struct Matcher {
    /// The members.
    pub index: MemberIndex,
    /// What look-up keys are hashed with.
    index_key: IndexKey,
    /// Where candidates' records are read.
    store: Store,
    /// Holdernames suspended or severed (CoCo3.2.5): their members are not matched.
    pub inactive: dashmap::DashSet<Uuid>,
    /// Members whose latest stored record does not open or parse, so the index cannot say
    /// whether a find is theirs: while any are listed, finds are refused (`503`) and the
    /// endpoint is not ready, rather than ending their finds as no-matches.
    unreadable: dashmap::DashSet<Box<str>>,
    /// How many `unreadable` lists, read on every find's ACK (one atomic load, where the set's
    /// own count locks each of its shards).
    unreadable_count: AtomicUsize,
    /// The configured data key as an operator knows it (setting, file or variable name, key
    /// ID; never its value), for the errors about records it does not open.
    pub key_name: Box<str>,
    default_rules: RuleSet,
    schemes: std::collections::HashMap<Uuid, RuleSet>,
}

/// Why a find could not be matched: it is refused (`503`) or retried, never ended as a
/// no-match.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The store did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A candidate's record does not open with the configured data key, or does not parse.
    #[error(
        "a candidate member's record does not open with the configured data key, or does not parse"
    )]
    Unreadable,
}

/// Every look-up key of a person, hashed with `key`.
pub fn look_up_keys(key: &IndexKey, p: &Person) -> MatchKeys {
    let mut out = Vec::new();
    let mut push = |h: u64| {
        if !out.contains(&h) {
            out.push(h);
        }
    };
    if let Some(n) = p.nino8 {
        push(key.hash(&[b"nino", &n]));
    }
    if let Some(dob) = p.date_of_birth {
        let dob = IsoDate::of(dob);
        for name in name_keys(p) {
            push(key.hash(&[b"name-dob", name.as_bytes(), dob.as_bytes()]));
        }
    }
    MatchKeys(out)
}

/// A date as `%Y-%m-%d` writes it (the bytes a key hashes): written by hand for the years of
/// four digits, every date of birth in practice; by chrono for any other.
enum IsoDate {
    Short([u8; 10]),
    Other(String),
}

impl IsoDate {
    fn of(d: chrono::NaiveDate) -> Self {
        use chrono::Datelike;
        match u32::try_from(d.year()) {
            Ok(y) if y <= 9999 => {
                let digit = |n: u32| b'0' + (n % 10) as u8;
                let (m, day) = (d.month(), d.day());
                Self::Short([
                    digit(y / 1000),
                    digit(y / 100),
                    digit(y / 10),
                    digit(y),
                    b'-',
                    digit(m / 10),
                    digit(m),
                    b'-',
                    digit(day / 10),
                    digit(day),
                ])
            }
            _ => Self::Other(d.format("%Y-%m-%d").to_string()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Short(b) => b,
            Self::Other(s) => s.as_bytes(),
        }
    }
}

/// A find request's identity, normalised.
pub fn find_person(d: &FindData) -> Person {
    Person::normalise(RawIdentity {
        names: d
            .names
            .iter()
            .map(|n| (n.given_name.as_str(), n.family_name.as_str())),
        previous_family_names: d
            .previous_family_names
            .iter()
            .map(|n| n.family_name.as_str()),
        date_of_birth: d.date_of_birth.as_ref().map(|v| v.value.as_str()),
        nino: d.nino.as_ref().map(|v| v.value.as_str()),
        postcodes: d.addresses.iter().filter_map(|a| a.postcode.as_deref()),
        previous_postcodes: d
            .previous_addresses
            .iter()
            .filter_map(|a| a.postcode.as_deref()),
    })
}

fn name_keys(p: &Person) -> impl Iterator<Item = &str> {
    p.names
        .iter()
        .flat_map(|(g, f)| [g.as_str(), f.as_str()])
        .chain(p.previous_family_names.iter().map(String::as_str))
        .filter(|s| !s.is_empty())
}

/// A key's shard and entry.
fn entry(hash: u64, slot: u32) -> (usize, u64) {
    (
        (hash as usize) & (SHARDS - 1),
        (hash & TAG) | u64::from(slot),
    )
}

/// A stored slot as the index holds it.
fn slot(stored: i64) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| StoreError::Corrupt("member slot"))
}

// === impl MemberIndex ===

impl Default for MemberIndex {
    fn default() -> Self {
        Builder::new(0).finish()
    }
}

impl MemberIndex {
    /// Adds a member's keys under its slot (safe to call from many threads at once); adding
    /// what is there already changes nothing.
    pub fn add(&self, slot: u32, keys: &[u64]) {
        for &k in keys {
            let (shard, e) = entry(k, slot);
            let mut entries = write(&self.shards[shard]);
            if let Err(at) = entries.binary_search(&e) {
                entries.insert(at, e);
            }
        }
        let mut live = write(&self.live);
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if live.len() <= word {
            live.resize(word + 1, 0);
        }
        if live[word] & bit == 0 {
            live[word] |= bit;
            self.members.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Removes the member in `slot`: its keys lead nowhere from now on.
    pub fn remove(&self, slot: u32) {
        let mut live = write(&self.live);
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        if live.get(word).is_some_and(|w| w & bit != 0) {
            live[word] &= !bit;
            self.members.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Members indexed.
    pub fn len(&self) -> usize {
        self.members.load(Ordering::Acquire)
    }

    /// Whether no member is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the index holds (its entries and live slots, at their capacity).
    pub fn heap_bytes(&self) -> usize {
        let entries: usize = self.shards.iter().map(|s| read(s).capacity() * 8).sum();
        entries + read(&self.live).capacity() * 8 + SHARDS * std::mem::size_of::<RwLock<Vec<u64>>>()
    }

    /// The live member slots the keys lead to, in slot order.
    pub fn candidates(&self, keys: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        for &k in keys {
            let (shard, e) = entry(k, 0);
            let entries = read(&self.shards[shard]);
            let from = entries.partition_point(|x| *x < e);
            out.extend(
                entries[from..]
                    .iter()
                    .take_while(|x| *x & TAG == e)
                    .map(|x| *x as u32),
            );
        }
        out.sort_unstable();
        out.dedup();
        let live = read(&self.live);
        out.retain(|s| {
            live.get(*s as usize / 64)
                .is_some_and(|w| w & (1 << (s % 64)) != 0)
        });
        out
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Builds an index in bulk: every member pushed, then sorted once.
pub struct Builder {
    shards: Vec<Vec<u64>>,
    live: Vec<u64>,
    members: usize,
}

impl Builder {
    /// A builder sized for about `members` members.
    pub fn new(members: usize) -> Self {
        // Four keys a member is usual (NINO, given and family name, one previous name).
        let per_shard = members * 4 / SHARDS + members * 4 / SHARDS / 8;
        Self {
            shards: (0..SHARDS).map(|_| Vec::with_capacity(per_shard)).collect(),
            live: Vec::with_capacity(members / 64 + 1),
            members: 0,
        }
    }

    /// Adds a member's keys under its slot (each slot once).
    pub fn push(&mut self, slot: u32, keys: &[u64]) {
        for &k in keys {
            let (shard, e) = entry(k, slot);
            self.shards[shard].push(e);
        }
        let word = slot as usize / 64;
        if self.live.len() <= word {
            self.live.resize(word + 1, 0);
        }
        self.live[word] |= 1 << (slot % 64);
        self.members += 1;
    }

    /// The index.
    pub fn finish(self) -> MemberIndex {
        let shards = self
            .shards
            .into_iter()
            .map(|mut s| {
                s.sort_unstable();
                s.dedup();
                s.shrink_to_fit();
                RwLock::new(s)
            })
            .collect();
        MemberIndex {
            shards,
            live: RwLock::new(self.live),
            members: AtomicUsize::new(self.members),
        }
    }
}

// === impl Matcher ===

impl Matcher {
    /// A matcher over `index` (keys hashed with `index_key`), reading candidates from `store`,
    /// with the configured rules.
    pub fn new(
        index: MemberIndex,
        index_key: IndexKey,
        store: Store,
        config: &crate::config::MatchingConfig,
    ) -> Self {
        Self {
            index,
            index_key,
            store,
            inactive: dashmap::DashSet::new(),
            unreadable: dashmap::DashSet::new(),
            unreadable_count: AtomicUsize::new(0),
            key_name: "the configured data key".into(),
            default_rules: config.default.clone(),
            schemes: config
                .schemes
                .iter()
                .map(|s| (s.holdername, s.rules.clone()))
                .collect(),
        }
    }

    /// Names the configured data key in errors about records it does not open.
    pub fn naming_key(mut self, key_name: impl Into<Box<str>>) -> Self {
        self.key_name = key_name.into();
        self
    }

    /// A member's look-up keys.
    pub fn keys_of(&self, person: &Person) -> MatchKeys {
        look_up_keys(&self.index_key, person)
    }

    /// Whether every stored member is in the index: finds are taken only then.
    pub fn complete(&self) -> bool {
        self.unreadable() == 0
    }

    /// Members whose latest stored record does not open or parse.
    pub fn unreadable(&self) -> usize {
        self.unreadable_count.load(Ordering::Acquire)
    }

    /// Lists a member whose latest stored record does not open or parse.
    pub fn mark_unreadable(&self, member_id: Box<str>) {
        if self.unreadable.insert(member_id) {
            self.unreadable_count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Takes a member off the list: its record opened, or it is gone.
    pub fn mark_readable(&self, member_id: &str) {
        if self.unreadable.remove(member_id).is_some() {
            self.unreadable_count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The rules for a holdername.
    pub fn rules_for(&self, holdername: Uuid) -> &RuleSet {
        self.schemes.get(&holdername).unwrap_or(&self.default_rules)
    }

    /// Every pension this find matches, across every hosted holdername. A candidate whose
    /// record does not open or parse is listed as unreadable, and the find is not decided.
    pub async fn find_matches(&self, find: &FindData) -> Result<Vec<PensionMatch>, MatchError> {
        let person = find_person(find);
        let slots = self.index.candidates(&self.keys_of(&person).0);
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let slots = slots.into_iter().map(i64::from).collect();
        let mut out = Vec::new();
        for candidate in self.store.members_by_slot(slots).await? {
            let record = candidate
                .record
                .ok()
                .and_then(|json| serde_json::from_slice::<MatchRecord>(&json).ok());
            let Some(m) = record else {
                crate::metrics::member_unreadable();
                self.mark_unreadable(candidate.member_id.into_boxed_str());
                return Err(MatchError::Unreadable);
            };
            if self.inactive.contains(&m.holdername) {
                continue;
            }
            let rules = self.rules_for(m.holdername);
            if let Some(rule) = rules.evaluate(&person, &m.person()) {
                for p in &m.pensions {
                    out.push(PensionMatch {
                        holdername: m.holdername,
                        member_id: m.member_id.clone(),
                        pension_asset_guid: p.asset_guid,
                        scheme_name: p.scheme_name.clone(),
                        status: rule.outcome,
                        reason: rule.reason.clone(),
                        rules_version: rules.version.clone(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The index built from the store, and how many stored records it could not take.
pub struct Loaded {
    /// The members whose records the configured keys open.
    pub index: MemberIndex,
    /// Records that do not open with the configured keys, or whose keys do not read.
    pub unreadable: u64,
}

/// Every stored member's look-up keys read, before the index is finished ([`Scanned::finish`]).
pub struct Scanned {
    builder: Builder,
    /// Records the configured keys do not open (by their header), or whose keys do not read.
    pub unreadable: u64,
    without_keys: bool,
}

/// Reads every stored member's look-up keys into an index; nothing is opened (a record's
/// header tells whether the configured keys open it). Records they do not open are counted,
/// never indexed.
pub async fn scan(store: &Store) -> Result<Scanned, StoreError> {
    let mut builder = Builder::new(store.member_count().await? as usize);
    let mut failed = 0u64;
    let mut without_keys = false;
    let mut after = 0;
    loop {
        let page = store.index_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.slot;
        let full = page.len() == PAGE;
        for row in page {
            if row.header == Header::Unknown {
                failed += 1;
                continue;
            }
            match row.keys.as_deref().map(MatchKeys::from_bytes) {
                Some(Some(keys)) => builder.push(slot(row.slot)?, &keys.0),
                Some(None) => failed += 1,
                None => without_keys = true,
            }
        }
        if !full {
            break;
        }
    }
    Ok(Scanned {
        builder,
        unreadable: failed,
        without_keys,
    })
}

impl Scanned {
    /// The index: members stored without look-up keys have theirs computed with `index_key`
    /// and written back. Each record that could not be taken is counted in
    /// `pdp_member_unreadable_total`.
    pub async fn finish(self, store: &Store, index_key: &IndexKey) -> Result<Loaded, StoreError> {
        let Self {
            mut builder,
            mut unreadable,
            without_keys,
        } = self;
        if without_keys {
            unreadable += add_missing_keys(store, index_key, &mut builder).await?;
        }
        for _ in 0..unreadable {
            crate::metrics::member_unreadable();
        }
        Ok(Loaded {
            index: builder.finish(),
            unreadable,
        })
    }
}

/// Builds the index from the store (see [`scan`] and [`Scanned::finish`]).
pub async fn load(store: &Store, index_key: &IndexKey) -> Result<Loaded, StoreError> {
    scan(store).await?.finish(store, index_key).await
}

/// Computes and stores the keys of members stored without them, and indexes them; returns how
/// many records could not be opened or read.
async fn add_missing_keys(
    store: &Store,
    index_key: &IndexKey,
    builder: &mut Builder,
) -> Result<u64, StoreError> {
    let (mut failed, mut after) = (0, 0);
    loop {
        let page = store.members_without_keys(after, 4096).await?;
        let Some(last) = page.last() else {
            return Ok(failed);
        };
        after = last.slot;
        let mut computed = Vec::with_capacity(page.len());
        for m in page {
            let record = m
                .record
                .ok()
                .and_then(|json| serde_json::from_slice::<MatchRecord>(&json).ok());
            let Some(record) = record else {
                failed += 1;
                continue;
            };
            let keys = look_up_keys(index_key, &record.person());
            builder.push(slot(m.slot)?, &keys.0);
            computed.push((m.slot, keys));
        }
        store.set_match_keys(computed).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of a date of birth hash the bytes chrono's `%Y-%m-%d` writes (the keys stored
    /// for members were made that way): the same bytes for every year, short or not.
    #[test]
    fn a_date_is_written_as_chrono_writes_it() {
        for (y, m, d) in [
            (-44, 3, 15),
            (0, 1, 1),
            (1, 2, 3),
            (999, 12, 31),
            (1000, 1, 1),
            (1890, 1, 1),
            (1967, 10, 9),
            (2024, 2, 29),
            (9999, 12, 31),
            (10000, 1, 1),
            (262_000, 6, 30),
        ] {
            let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                IsoDate::of(date).as_bytes(),
                date.format("%Y-%m-%d").to_string().as_bytes(),
                "{date:?}"
            );
        }
    }

    #[test]
    fn candidates_are_the_live_slots_sharing_a_key() {
        let mut b = Builder::new(4);
        b.push(1, &[10, 20]);
        b.push(2, &[20, 30]);
        let index = b.finish();
        assert_eq!(index.len(), 2);
        assert_eq!(index.candidates(&[20]), vec![1, 2]);
        assert_eq!(index.candidates(&[10, 30]), vec![1, 2]);
        assert!(index.candidates(&[40]).is_empty());
        // Same lowest 12 bits and upper 32: the same key as far as the index can tell.
        assert_eq!(index.candidates(&[10 | 0xF000]), vec![1]);
        index.add(3, &[30]);
        index.add(3, &[30]);
        assert_eq!(index.len(), 3);
        assert_eq!(index.candidates(&[30]), vec![2, 3]);
        index.remove(2);
        index.remove(2);
        assert_eq!(index.len(), 2);
        assert_eq!(index.candidates(&[20, 30]), vec![1, 3]);
    }
}

/// The index against a reference index with every key in the clear and every member's record
/// in memory: both decide every generated find the same way (outcome, reason, pensions).
/// `PDP_REPLAY_MEMBERS` sets how many members (and finds: one a member, a third each meant to
/// match, possibly match and not); 3,000 by default.
#[cfg(test)]
mod replay {
    use std::collections::HashMap;

    use super::*;
    use crate::members::generate::{self, FindKind};

    /// A key in the clear, as the index held them before.
    #[derive(Hash, PartialEq, Eq)]
    enum Clear {
        Nino([u8; 8]),
        NameDob(String, chrono::NaiveDate),
    }

    fn clear_keys(p: &Person) -> Vec<Clear> {
        let mut out = Vec::new();
        out.extend(p.nino8.map(Clear::Nino));
        if let Some(dob) = p.date_of_birth {
            out.extend(name_keys(p).map(|n| Clear::NameDob(n.to_owned(), dob)));
        }
        out
    }

    type Decided = Vec<(String, Uuid, String, String)>;

    fn decided(matches: Vec<PensionMatch>) -> Decided {
        let mut d: Decided = matches
            .into_iter()
            .map(|m| {
                (
                    m.member_id,
                    m.pension_asset_guid,
                    format!("{:?}", m.status),
                    m.reason,
                )
            })
            .collect();
        d.sort();
        d
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_generated_find_is_decided_as_the_clear_index_decides_it() {
        let n: u64 = std::env::var("PDP_REPLAY_MEMBERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3_000);
        let schemes = generate::schemes(7);
        let members: Vec<_> = (0..n).map(|i| generate::member(7, i, &schemes)).collect();
        let dir = tempfile::tempdir().unwrap();
        let key =
            crate::sealed::DataKey::from_hex(&crate::sealed::DataKey::generate_hex()).unwrap();
        let store = Store::open(&dir.path().join("s.sqlite"), key, Default::default()).unwrap();
        let index_key = store.index_key().await.unwrap();
        for chunk in members.chunks(2048) {
            let changes = chunk
                .iter()
                .map(|m| crate::model::MemberChange::Upsert(m.to_new_member(&index_key)))
                .collect();
            store.apply_members(changes, false).await.unwrap();
        }
        let config = crate::config::MatchingConfig::default();
        let loaded = load(&store, &index_key).await.unwrap();
        assert_eq!((loaded.index.len(), loaded.unreadable), (n as usize, 0));
        let matcher = Matcher::new(loaded.index, index_key, store, &config);

        // Before: the keys in the clear, the records in memory.
        let records: Vec<MatchRecord> = members.iter().map(|m| m.match_record()).collect();
        let people: Vec<Person> = records.iter().map(MatchRecord::person).collect();
        let mut clear: HashMap<Clear, Vec<usize>> = HashMap::new();
        for (i, p) in people.iter().enumerate() {
            for k in clear_keys(p) {
                clear.entry(k).or_default().push(i);
            }
        }
        let rules = &config.default;
        let before = |find: &Person| {
            let mut cands: Vec<usize> = clear_keys(find)
                .iter()
                .filter_map(|k| clear.get(k))
                .flatten()
                .copied()
                .collect();
            cands.sort_unstable();
            cands.dedup();
            let mut out = Vec::new();
            for i in cands {
                if let Some(rule) = rules.evaluate(find, &people[i]) {
                    for p in &records[i].pensions {
                        out.push((
                            records[i].member_id.clone(),
                            p.asset_guid,
                            format!("{:?}", rule.outcome),
                            rule.reason.clone(),
                        ));
                    }
                }
            }
            out.sort();
            out
        };

        let kinds = [FindKind::Yes, FindKind::Possible, FindKind::No];
        let mut decisions = [0usize; 3];
        for (i, m) in members.iter().enumerate() {
            let body = serde_json::to_vec(&generate::find_for(m, kinds[i % 3], "sub")).unwrap();
            let find = crate::wire::find::parse(&body).unwrap().find_data;
            let after = decided(matcher.find_matches(&find).await.unwrap());
            let want = before(&find_person(&find));
            assert_eq!(after, want, "find {i} ({:?})", kinds[i % 3]);
            decisions[usize::from(!want.is_empty())] += 1;
        }
        // The replay decided both ways, many times.
        assert!(
            decisions[0] > n as usize / 4 && decisions[1] > n as usize / 2,
            "{decisions:?}"
        );
    }
}
