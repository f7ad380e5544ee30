//! The request IDs of the last day's finds, held in memory by the writer (SQLite only).
//!
//! A request ID sent again within a day of its find's ACK is the same find, answered as a
//! duplicate (wire contract §3.1). On PostgreSQL the hot table's primary key decides it, as
//! several instances share the table. SQLite has one instance and one writer, so the writer
//! decides it here, and the hot table keeps no index of every find's ID: such an index put
//! each ACK's entry at a random place in a day's finds, one page written whole to the WAL a
//! find (schema V17). Open finds are still indexed by ID on disk, uniquely: a repeat of an open
//! find older than the day held here is refused by that index.
//!
//! # Constraints
//!
//! - Exact: no ID ACKed within the day is forgotten, and no ID is taken for another. UUIDs (every
//!   find the endpoint takes has one) are held as their 128 bits; any other ID as its SHA-256
//!   cut to 128 bits.
//! - Bounded by the day: IDs are held in one set per hour of ACK, and an hour's set is dropped
//!   whole once the hour is more than [`HOT_FOR`] old, so a day is held to the hour (between 24
//!   and 25 hours) without walking the sets.
//! - An open find stays one whatever its age (a pipeline stopped for days): the open finds
//!   ACKed before the hours held are held too, read again through the open finds' index each
//!   time an hour is dropped.
//! - What a crash forgets, the next start reads again: the hot table holds every matched find
//!   of the last day ([`HOT_FOR`] is how long ended finds stay in it), read through its
//!   ACK-time index, and the audit trail every no-match find's ACK (a no-match find has no
//!   other row: schema V21), read through its time index with every other record of the day.
//!   The writer reads both when the first find is appended (a command that only reads never
//!   pays for it; the first ACK after a start waits for it).

use std::collections::{BTreeMap, HashSet, VecDeque};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::store::finds::NO_MATCH_ACK;
use crate::store::{Result, HOT_FOR, HOUR};

/// A request ID as held: its UUID's bits, or its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key(u128);

impl Key {
    pub(super) fn of(request_id: &str) -> Self {
        let mut canonical = [0; uuid::fmt::Hyphenated::LENGTH];
        match uuid::Uuid::try_parse(request_id) {
            // Only the form the endpoint stores (hyphenated, lower case) is taken as bits, so
            // that two IDs are one exactly when their text is.
            Ok(u)
                if u.hyphenated().encode_lower(&mut canonical).as_bytes()
                    == request_id.as_bytes() =>
            {
                Self(u.as_u128())
            }
            _ => {
                let digest = Sha256::digest(request_id.as_bytes());
                let mut bits = [0; 16];
                bits.copy_from_slice(&digest[..16]);
                Self(u128::from_be_bytes(bits))
            }
        }
    }
}

/// A set of IDs. Each ACK looks its ID up in every hour held (25 at most): foldhash, seeded
/// per process, hashes a key in a few nanoseconds where the standard SipHash takes tens.
type Ids = HashSet<Key, foldhash::fast::RandomState>;

/// The last day's request IDs, by the hour of their ACK.
#[derive(Default)]
pub(super) struct RecentFinds {
    /// Oldest hour first; each hour's IDs.
    hours: VecDeque<(i64, Ids)>,
    /// The open finds ACKed before the oldest hour held.
    older_open: Ids,
}

impl RecentFinds {
    /// The IDs of the finds ACKed since `now` less [`HOT_FOR`]: from the hot table, and the
    /// no-match finds' from their ACKs' audit records.
    pub(super) fn load(conn: &Connection, now: i64) -> Result<Self> {
        let since = now - hot_for();
        // An ACK's record is received before it is ACKed, by less than the ACK's time-outs.
        let received_since = since - ACK_WITHIN;
        // Each hour's IDs are gathered first and its set built once at its size: a set grown
        // one insert at a time rehashes every ID it holds at each doubling. The lists cost 16
        // bytes an ID until their sets are built (27 MB for 1.7 M IDs), once, at start.
        let mut by_hour: BTreeMap<i64, Vec<Key>> = BTreeMap::new();
        for (sql, from) in [
            (
                "SELECT request_id, acked_at FROM find_requests
                  WHERE acked_at >= ?1 ORDER BY acked_at",
                since,
            ),
            (
                format!(
                    "SELECT request_id, responded_at FROM audit_log
                      WHERE received_at >= ?1 AND {NO_MATCH_ACK} ORDER BY received_at"
                )
                .as_str(),
                received_since,
            ),
        ] {
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query([from])?;
            while let Some(row) = rows.next()? {
                let acked_at: i64 = row.get(1)?;
                if acked_at < since {
                    continue;
                }
                // Read in place: the ID is only hashed or parsed, never kept as text.
                let key = Key::of(row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?);
                by_hour
                    .entry(acked_at.div_euclid(HOUR))
                    .or_default()
                    .push(key);
            }
        }
        let mut recent = Self::default();
        for (hour, keys) in by_hour {
            let mut set = Ids::with_capacity_and_hasher(keys.len(), Default::default());
            set.extend(keys);
            recent.hours.push_back((hour, set));
        }
        recent.expire(now);
        recent.read_older_open(conn, now)?;
        Ok(recent)
    }

    /// Whether a find with this ID was ACKed within the day, or is open.
    pub(super) fn contains(&self, key: Key) -> bool {
        self.hours.iter().rev().any(|(_, ids)| ids.contains(&key)) || self.older_open.contains(&key)
    }

    /// Holds an ID ACKed at `acked_at` (µs); false when it was held already.
    pub(super) fn insert(&mut self, key: Key, acked_at: i64) -> bool {
        let hour = acked_at.div_euclid(HOUR);
        let at = self.hours.iter().rposition(|(h, _)| *h <= hour);
        let ids = match at {
            Some(i) if self.hours[i].0 == hour => &mut self.hours[i].1,
            // An hour not held yet: its place keeps the hours in order (a start's load is in
            // order; the writer's clock is read once a batch).
            _ => {
                let i = at.map_or(0, |i| i + 1);
                self.hours.insert(i, (hour, Ids::default()));
                &mut self.hours[i].1
            }
        };
        ids.insert(key)
    }

    /// Forgets an ID held by [`insert`](Self::insert) whose commit failed.
    pub(super) fn remove(&mut self, key: Key) {
        for (_, ids) in self.hours.iter_mut().rev() {
            if ids.remove(&key) {
                return;
            }
        }
    }

    /// Drops the hours older than [`HOT_FOR`] before `now`, keeping the IDs of their finds still
    /// open.
    pub(super) fn forget_before(&mut self, conn: &Connection, now: i64) -> Result<()> {
        if self.expire(now) {
            self.read_older_open(conn, now)?;
        }
        Ok(())
    }

    /// Drops the hours older than [`HOT_FOR`] before `now`; whether any was.
    fn expire(&mut self, now: i64) -> bool {
        let oldest = oldest_hour(now);
        let mut dropped = false;
        while self.hours.front().is_some_and(|(h, _)| *h < oldest) {
            self.hours.pop_front();
            dropped = true;
        }
        dropped
    }

    /// Reads the open finds ACKed before the hours held at `now`.
    fn read_older_open(&mut self, conn: &Connection, now: i64) -> Result<()> {
        let mut stmt = conn.prepare_cached(
            "SELECT request_id FROM find_requests
              WHERE state IN ('queued', 'working') AND acked_at < ?1",
        )?;
        let mut rows = stmt.query([oldest_hour(now) * HOUR])?;
        self.older_open.clear();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            self.older_open.insert(Key::of(&id));
        }
        Ok(())
    }

    /// IDs held by the hour.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.hours.iter().map(|(_, ids)| ids.len()).sum()
    }
}

/// Longer than any find is received before its ACK: a no-match find's audit record is read by
/// when it was received. A find's body is read within seconds and its append waits on the
/// writer's commit (seconds, or the busy time-out); only one whose commit came more than an hour
/// after its receipt (a writer stalled that long, its client long gone) would not be held after
/// a restart, and a repeat of it would be taken as new: a second no-match, nothing sent.
const ACK_WITHIN: i64 = 60 * 60 * 1_000_000;

/// The oldest hour held at `now`: the one [`HOT_FOR`] before it.
fn oldest_hour(now: i64) -> i64 {
    (now - hot_for()).div_euclid(HOUR)
}

/// [`HOT_FOR`] in µs.
fn hot_for() -> i64 {
    i64::try_from(HOT_FOR.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR;

    #[test]
    fn an_id_is_held_for_a_day_to_the_hour_then_dropped_with_its_hour() {
        let mut r = RecentFinds::default();
        let a = Key::of("5f0c7c1e-1b2a-4c3d-8e9f-0a1b2c3d4e5f");
        let b = Key::of("not-a-uuid");
        assert!(r.insert(a, 10 * H + 5));
        assert!(!r.insert(a, 10 * H + 6), "held already");
        assert!(r.insert(b, 12 * H));
        assert!(r.contains(a) && r.contains(b));
        assert!(!r.contains(Key::of("5f0c7c1e-1b2a-4c3d-8e9f-0a1b2c3d4e50")));
        // A day after the hour of its ACK began, the ID is still held; after the hour ends, not.
        r.expire(10 * H + hot_for());
        assert!(r.contains(a));
        r.expire(11 * H + hot_for());
        assert!(!r.contains(a) && r.contains(b));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn an_open_find_is_held_past_the_day_until_it_ends() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE find_requests (request_id TEXT, acked_at INTEGER, state TEXT);
             INSERT INTO find_requests VALUES ('open', 36000000000, 'queued'),
                                              ('ended', 36000000001, 'done');",
        )
        .unwrap();
        let mut r = RecentFinds::default();
        r.insert(Key::of("open"), 10 * H);
        r.insert(Key::of("ended"), 10 * H + 1);
        r.forget_before(&conn, 11 * H + hot_for()).unwrap();
        assert_eq!(r.len(), 0);
        assert!(r.contains(Key::of("open")) && !r.contains(Key::of("ended")));
        // Once it has ended, it is let go when the next hour is dropped.
        conn.execute("UPDATE find_requests SET state = 'done'", [])
            .unwrap();
        r.insert(Key::of("later"), 11 * H);
        r.forget_before(&conn, 11 * H + hot_for()).unwrap();
        assert!(r.contains(Key::of("open")));
        r.forget_before(&conn, 12 * H + hot_for()).unwrap();
        assert!(!r.contains(Key::of("open")) && !r.contains(Key::of("later")));
    }

    #[test]
    fn a_start_reads_the_days_matched_finds_and_no_match_acks() {
        let conn = Connection::open_in_memory().unwrap();
        let now = 100 * H;
        let day = now - hot_for();
        conn.execute_batch(&format!(
            "CREATE TABLE find_requests (request_id TEXT, acked_at INTEGER, state TEXT);
             CREATE TABLE audit_log (request_id TEXT, direction TEXT, endpoint TEXT,
                                     received_at INTEGER, responded_at INTEGER, outcome TEXT);
             INSERT INTO find_requests VALUES ('matched', {m}, 'done'),
                                              ('matched-old', {old}, 'done');
             INSERT INTO audit_log VALUES
                 ('no-match', 'inbound', 'POST /find-requests', {nm}, {nm}, 'no-match'),
                 ('acked-at-the-edge', 'inbound', 'POST /find-requests', {edge_in}, {day},
                  'no-match'),
                 ('no-match-old', 'inbound', 'POST /find-requests', {old}, {old}, 'no-match'),
                 ('a-repeat', 'inbound', 'POST /find-requests', {nm}, {nm}, 'duplicate'),
                 ('a-view', 'inbound', 'GET /view-data', {nm}, {nm}, 'no-match');",
            m = now - H,
            old = day - 1,
            nm = now - 2 * H,
            edge_in = day - 3_000_000,
        ))
        .unwrap();
        let r = RecentFinds::load(&conn, now).unwrap();
        for id in ["matched", "no-match", "acked-at-the-edge"] {
            assert!(r.contains(Key::of(id)), "{id}");
        }
        for id in ["matched-old", "no-match-old", "a-repeat", "a-view"] {
            assert!(!r.contains(Key::of(id)), "{id}");
        }
    }

    #[test]
    fn a_start_gathers_each_hours_ids_from_both_tables_into_one_set_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        let now = 100 * H;
        conn.execute_batch(
            "CREATE TABLE find_requests (request_id TEXT, acked_at INTEGER, state TEXT);
             CREATE TABLE audit_log (request_id TEXT, direction TEXT, endpoint TEXT,
                                     received_at INTEGER, responded_at INTEGER, outcome TEXT);",
        )
        .unwrap();
        // Matched finds in hours 97 to 99, no-match ACKs in hours 96 and 98 (one of them a
        // repeat of a matched find's ID): the hours held are 96 to 99, each with its IDs once.
        let mut expected: Vec<(i64, Vec<String>)> =
            vec![(96, vec![]), (97, vec![]), (98, vec![]), (99, vec![])];
        for hour in 97..=99 {
            for i in 0..50 {
                let id = format!("m-{hour}-{i}");
                conn.execute(
                    "INSERT INTO find_requests VALUES (?1, ?2, 'done')",
                    rusqlite::params![id, hour * H + i * 1_000],
                )
                .unwrap();
                expected[(hour - 96) as usize].1.push(id);
            }
        }
        for (hour, n) in [(96, 30), (98, 20)] {
            for i in 0..n {
                let id = format!("n-{hour}-{i}");
                conn.execute(
                    "INSERT INTO audit_log VALUES
                         (?1, 'inbound', 'POST /find-requests', ?2, ?2, 'no-match')",
                    rusqlite::params![id, hour * H + i * 1_000],
                )
                .unwrap();
                expected[(hour - 96) as usize].1.push(id);
            }
        }
        conn.execute(
            "INSERT INTO audit_log VALUES
                 ('m-98-0', 'inbound', 'POST /find-requests', ?1, ?1, 'no-match')",
            [98 * H + 5],
        )
        .unwrap();
        let r = RecentFinds::load(&conn, now).unwrap();
        let hours: Vec<(i64, usize)> = r.hours.iter().map(|(h, ids)| (*h, ids.len())).collect();
        assert_eq!(hours, [(96, 30), (97, 50), (98, 70), (99, 50)]);
        for (hour, ids) in &expected {
            let held = &r.hours.iter().find(|(h, _)| h == hour).unwrap().1;
            for id in ids {
                assert!(held.contains(&Key::of(id)), "{id} in hour {hour}");
            }
        }
        assert!(!r.contains(Key::of("m-97-50")));
    }

    #[test]
    fn hours_stay_in_order_whatever_order_ids_arrive_in() {
        let mut r = RecentFinds::default();
        for (i, hour) in [5, 3, 7, 3, 4].into_iter().enumerate() {
            r.insert(Key::of(&format!("id{i}")), hour * H);
        }
        let hours: Vec<i64> = r.hours.iter().map(|(h, _)| *h).collect();
        assert_eq!(hours, [3, 4, 5, 7]);
        r.remove(Key::of("id1"));
        assert!(!r.contains(Key::of("id1")) && r.contains(Key::of("id3")));
        r.expire(4 * H + hot_for());
        assert_eq!(r.len(), 3);
        assert!(!r.contains(Key::of("id3")) && r.contains(Key::of("id4")));
    }

    #[test]
    fn two_ids_are_one_key_exactly_when_their_text_is() {
        let lower = "5f0c7c1e-1b2a-4c3d-8e9f-0a1b2c3d4e5f";
        assert_eq!(Key::of(lower), Key::of(lower));
        assert_eq!(
            Key::of(lower).0,
            uuid::Uuid::parse_str(lower).unwrap().as_u128()
        );
        for other in [
            "5F0C7C1E-1B2A-4C3D-8E9F-0A1B2C3D4E5F",
            "5f0c7c1e1b2a4c3d8e9f0a1b2c3d4e5f",
            "urn:uuid:5f0c7c1e-1b2a-4c3d-8e9f-0a1b2c3d4e5f",
        ] {
            assert_ne!(Key::of(other), Key::of(lower), "{other}");
        }
    }
}
