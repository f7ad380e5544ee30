//! In-memory match indexes, built at start-up from the stored members and kept current while the
//! endpoint serves ([`super::live`]).
//!
//! A find is turned into candidates by two look-ups: the first 8 characters of its NINO, and
//! each (name, date of birth) pair, where "name" is any given, family or previous family name,
//! so swapped names and historic surnames still find their member. Rules then decide each
//! candidate. The maps are `DashMap`s so that index building runs on every core at once.

use std::sync::Arc;

use chrono::NaiveDate;
use dashmap::DashMap;
use uuid::Uuid;

use super::record::MatchRecord;
use super::rules::{Person, RawIdentity, RuleSet};
use super::PensionMatch;
use crate::wire::find::FindData;

/// A pension as the index knows it.
#[derive(Debug, Clone)]
pub struct PensionRef {
    /// Its stable asset GUID.
    pub asset_guid: Uuid,
    /// The scheme name from its view data.
    pub scheme_name: Arc<str>,
}

/// A member as the index knows it.
#[derive(Debug, Clone)]
pub struct IndexedMember {
    /// The provider's member ID.
    pub member_id: Box<str>,
    /// The holdername.
    pub holdername: Uuid,
    /// Normalised identity.
    pub person: Person,
    /// Pensions.
    pub pensions: Vec<PensionRef>,
}

/// The member indexes.
///
/// A member lives in one slot for as long as it is stored. Changing it replaces the slot's
/// record in one step, then adds its new keys and drops its stale ones; a find that reaches the
/// slot by any key, old or new, evaluates one whole record, old or new, never a mix. Removing it
/// empties the slot first, so a stale key leads nowhere.
#[derive(Default)]
pub struct MemberIndex {
    members: DashMap<u32, IndexedMember>,
    slots: DashMap<Box<str>, u32>,
    by_nino: DashMap<[u8; 8], Vec<u32>>,
    by_name_dob: DashMap<(Box<str>, NaiveDate), Vec<u32>>,
    next: std::sync::atomic::AtomicU32,
}

/// The index plus the rule sets: everything a worker needs to match a find.
pub struct Matcher {
    /// The members.
    pub index: MemberIndex,
    /// Holdernames suspended or severed (CoCo3.2.5): their members are not matched.
    pub inactive: dashmap::DashSet<Uuid>,
    /// Members whose latest stored record does not open or parse, so the index cannot say
    /// whether a find is theirs: while any are listed, finds are refused (`503`) and the
    /// endpoint is not ready, rather than ending their finds as no-matches.
    unreadable: dashmap::DashSet<Box<str>>,
    /// How many `unreadable` lists, read on every find's ACK (one atomic load, where the set's
    /// own count locks each of its shards).
    unreadable_count: std::sync::atomic::AtomicUsize,
    /// The configured data key as an operator knows it (setting, file or variable name, key
    /// ID; never its value), for the errors about records it does not open.
    pub key_name: Box<str>,
    default_rules: RuleSet,
    schemes: std::collections::HashMap<Uuid, RuleSet>,
}

/// One look-up key of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Nino([u8; 8]),
    NameDob(Box<str>, NaiveDate),
}

/// Every look-up key of a person.
fn keys(p: &Person) -> Vec<Key> {
    let mut out = Vec::new();
    if let Some(n) = p.nino8 {
        out.push(Key::Nino(n));
    }
    if let Some(dob) = p.date_of_birth {
        for name in name_keys(p) {
            let k = Key::NameDob(name.into(), dob);
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
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

// === impl MemberIndex ===

impl MemberIndex {
    /// Adds or replaces one member (safe to call from many threads at once).
    pub fn insert(&self, m: &MatchRecord) {
        let slot = *self
            .slots
            .entry(m.member_id.as_str().into())
            .or_insert_with(|| self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let person = m.person();
        let new_keys = keys(&person);
        let pensions = m
            .pensions
            .iter()
            .map(|p| PensionRef {
                asset_guid: p.asset_guid,
                scheme_name: p.scheme_name.as_str().into(),
            })
            .collect();
        let old = self.members.insert(
            slot,
            IndexedMember {
                member_id: m.member_id.as_str().into(),
                holdername: m.holdername,
                person,
                pensions,
            },
        );
        self.add_keys(slot, &new_keys);
        if let Some(old) = old {
            let stale: Vec<Key> = keys(&old.person)
                .into_iter()
                .filter(|k| !new_keys.contains(k))
                .collect();
            self.drop_keys(slot, &stale);
        }
    }

    /// Removes a member; false when it was not indexed.
    pub fn remove(&self, member_id: &str) -> bool {
        let Some((_, slot)) = self.slots.remove(member_id) else {
            return false;
        };
        if let Some((_, old)) = self.members.remove(&slot) {
            self.drop_keys(slot, &keys(&old.person));
        }
        true
    }

    fn add_keys(&self, slot: u32, keys: &[Key]) {
        fn push(slots: &mut Vec<u32>, slot: u32) {
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        for k in keys {
            match k {
                Key::Nino(n) => push(&mut self.by_nino.entry(*n).or_default(), slot),
                Key::NameDob(name, dob) => push(
                    &mut self.by_name_dob.entry((name.clone(), *dob)).or_default(),
                    slot,
                ),
            }
        }
    }

    fn drop_keys(&self, slot: u32, keys: &[Key]) {
        for k in keys {
            match k {
                Key::Nino(n) => {
                    if let Some(mut e) = self.by_nino.get_mut(n) {
                        e.retain(|s| *s != slot);
                    }
                    self.by_nino.remove_if(n, |_, v| v.is_empty());
                }
                Key::NameDob(name, dob) => {
                    let key = (name.clone(), *dob);
                    if let Some(mut e) = self.by_name_dob.get_mut(&key) {
                        e.retain(|s| *s != slot);
                    }
                    self.by_name_dob.remove_if(&key, |_, v| v.is_empty());
                }
            }
        }
    }

    /// Members indexed.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no member is indexed.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Candidate member slots for a find.
    fn candidates(&self, find: &Person) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(n) = find.nino8 {
            if let Some(ids) = self.by_nino.get(&n) {
                out.extend(ids.iter().copied());
            }
        }
        if let Some(dob) = find.date_of_birth {
            for name in name_keys(find) {
                if let Some(ids) = self.by_name_dob.get(&(name.into(), dob)) {
                    out.extend(ids.iter().copied());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

// === impl Matcher ===

impl Matcher {
    /// A matcher over `index` with the configured rules.
    pub fn new(index: MemberIndex, config: &crate::config::MatchingConfig) -> Self {
        Self {
            index,
            inactive: dashmap::DashSet::new(),
            unreadable: dashmap::DashSet::new(),
            unreadable_count: std::sync::atomic::AtomicUsize::new(0),
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

    /// Whether every stored member is in the index: finds are taken only then.
    pub fn complete(&self) -> bool {
        self.unreadable() == 0
    }

    /// Members whose latest stored record does not open or parse.
    pub fn unreadable(&self) -> usize {
        self.unreadable_count
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Lists a member whose latest stored record does not open or parse.
    pub fn mark_unreadable(&self, member_id: Box<str>) {
        if self.unreadable.insert(member_id) {
            self.unreadable_count
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Takes a member off the list: its record opened, or it is gone.
    pub fn mark_readable(&self, member_id: &str) {
        if self.unreadable.remove(member_id).is_some() {
            self.unreadable_count
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// The rules for a holdername.
    pub fn rules_for(&self, holdername: Uuid) -> &RuleSet {
        self.schemes.get(&holdername).unwrap_or(&self.default_rules)
    }

    /// Every pension this find matches, across every hosted holdername.
    pub fn find_matches(&self, find: &FindData) -> Vec<PensionMatch> {
        let person = find_person(find);
        let mut out = Vec::new();
        for id in self.index.candidates(&person) {
            let Some(m) = self.index.members.get(&id) else {
                continue;
            };
            if self.inactive.contains(&m.holdername) {
                continue;
            }
            let rules = self.rules_for(m.holdername);
            if let Some(rule) = rules.evaluate(&person, &m.person) {
                for p in &m.pensions {
                    out.push(PensionMatch {
                        holdername: m.holdername,
                        member_id: m.member_id.to_string(),
                        pension_asset_guid: p.asset_guid,
                        scheme_name: p.scheme_name.to_string(),
                        status: rule.outcome,
                        reason: rule.reason.clone(),
                        rules_version: rules.version.clone(),
                    });
                }
            }
        }
        out
    }
}

/// The index built from the store, and how many stored records it could not take.
pub struct Loaded {
    /// The members that opened and parsed.
    pub index: MemberIndex,
    /// Records that did not open with the configured keys, or did not parse.
    pub unreadable: u64,
}

/// Builds the index from every stored member, opening rows on all cores. Records that cannot
/// be opened or read are counted and logged, never half-indexed.
pub async fn load(store: &crate::store::Store) -> Result<MemberIndex, crate::store::StoreError> {
    let loaded = load_counted(store).await?;
    if loaded.unreadable > 0 {
        tracing::error!(
            failed = loaded.unreadable,
            "member records could not be opened; not indexed (is every data key configured?)"
        );
    }
    Ok(loaded.index)
}

/// Builds the index from every stored member, opening rows on all cores, and counts the
/// records that cannot be opened or read (each also counted in `pdp_member_unreadable_total`).
pub async fn load_counted(store: &crate::store::Store) -> Result<Loaded, crate::store::StoreError> {
    let index = Arc::new(MemberIndex::default());
    let unreadable = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (i, u) = (index.clone(), unreadable.clone());
    let unopened = store
        .for_each_member(
            move |json| match serde_json::from_slice::<MatchRecord>(json) {
                Ok(m) => i.insert(&m),
                Err(_) => {
                    u.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
        )
        .await?;
    let failed = unopened + unreadable.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..failed {
        crate::metrics::member_unreadable();
    }
    let index = Arc::try_unwrap(index)
        .map_err(|_| crate::store::StoreError::Task("member index still shared".into()))?;
    Ok(Loaded {
        index,
        unreadable: failed,
    })
}
