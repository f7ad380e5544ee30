use super::*;

fn writer() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_writer(&dir.path().join("t.sqlite")).unwrap();
    (dir, conn)
}

/// The lines of SQLite's plan for `sql`, its parameters unbound.
fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
    stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Each statement that changes open finds reads them through the open finds' indexes, not the
/// day's finds (the hot table has no other index by ID: schema V17): the claim by state and ACK
/// time, without sorting, the others by ID.
#[test]
fn statements_on_open_finds_use_their_indexes() {
    use crate::store::finds::{CLAIM_SQLITE, END, RECORD, RENEW};
    let (_d, conn) = writer();
    for (q, by_id) in [
        (CLAIM_SQLITE, false),
        (RENEW, true),
        (RECORD, true),
        (END, true),
    ] {
        let plan = query_plan(&conn, q);
        // Each read of the table goes through one of the open finds' indexes (`_open`, by state
        // and ACK time, or `_open_id`, by ID).
        let reads: Vec<&String> = plan
            .iter()
            .filter(|p| p.contains("find_requests"))
            .collect();
        assert!(!reads.is_empty(), "{q}: {plan:?}");
        let index = if by_id {
            "USING INDEX find_requests_open_id (request_id=?)"
        } else {
            "USING INDEX find_requests_open (state=?)"
        };
        assert!(reads.iter().any(|r| r.contains(index)), "{q}: {plan:?}");
        assert!(
            !plan.iter().any(|p| p.contains("TEMP B-TREE")),
            "{q}: {plan:?}"
        );
        for read in reads {
            assert!(
                read.starts_with("SEARCH find_requests USING INDEX find_requests_open"),
                "{q}: {plan:?}"
            );
        }
    }
}

#[test]
fn a_look_up_by_id_reads_only_the_rows_its_keys_name() {
    use crate::store::sql::{render, Dialect};
    let (_d, conn) = writer();
    for frontier in [true, false] {
        let sql = crate::store::audit::by_id_sql(frontier);
        let plan = query_plan(&conn, &render(&sql, Dialect::Sqlite));
        // The trail itself by row ID: from the IDs' keys, or above the recent frontier.
        let trail: Vec<&String> = plan
            .iter()
            .filter(|p| p.ends_with(" a") || p.contains(" a USING"))
            .collect();
        assert!(!trail.is_empty(), "{plan:?}");
        for read in &trail {
            let by_row = read.starts_with("SEARCH a USING INTEGER PRIMARY KEY");
            let by_time = read.starts_with(
                "SEARCH a USING INDEX audit_log_received (received_at>? AND received_at<?)",
            );
            assert!(
                by_row || (!frontier && by_time),
                "frontier {frontier}: {plan:?}"
            );
        }
        assert_eq!(
            trail.iter().filter(|r| r.contains("(rowid>?)")).count(),
            usize::from(frontier),
            "{plan:?}"
        );
    }
}

#[test]
fn the_audit_trail_is_append_only() {
    let (_d, conn) = writer();
    let rec = crate::model::AuditRecord {
        transaction_id: "t".into(),
        request_id: None,
        direction: crate::model::Direction::Inbound,
        party: "p".into(),
        endpoint: "e".into(),
        received_at: 5,
        responded_at: 6,
        status: 200,
        outcome: "ok".into(),
    };
    let mut conn = conn;
    writer::insert_audits(&conn, &[rec]).unwrap();
    assert!(conn
        .execute("UPDATE audit_log SET status = 500", [])
        .is_err());
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    let mut tx = SqliteTx(&mut conn);
    let purged = run_blocking(Box::pin(crate::store::history::purge(&mut tx, 6, 10)));
    assert_eq!(purged.unwrap().audit, 1);
}

#[tokio::test]
async fn unknown_stored_spellings_are_refused_not_guessed() {
    let (dir, conn) = writer();
    conn.execute(
        "INSERT INTO find_requests (request_id, received_at, acked_at, state)
         VALUES ('x', 1, 1, 'Pending')",
        [],
    )
    .unwrap();
    drop(conn);
    let key = crate::store::tests::key();
    let path = dir.path().join("t.sqlite");
    let store = crate::store::Store::open(&path, key, StoreLimits::default()).unwrap();
    let e = store.find_request("x").await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt("FindState")), "{e}");
}

/// Under a steady stream of commits, with upkeep's checkpoints running beside them, the WAL
/// starts again from its beginning (the writer checkpoints the rest itself every tenth of a
/// second): the WAL header's checkpoint sequence number, which each start again increments,
/// moves on (upkeep's checkpoints alone never start it again while appends keep the writer
/// busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_again_under_a_steady_stream_of_commits() {
    use crate::store::tests::{audit, find};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let store =
        crate::store::Store::open(&path, crate::store::tests::key(), StoreLimits::default())
            .unwrap();
    let append = |store: crate::store::Store| async move {
        let id = uuid::Uuid::new_v4().to_string();
        let (find, audit) = (find(&id, false), audit(&id));
        store.append(find, audit).await.unwrap();
    };
    append(store.clone()).await;
    // The WAL header's checkpoint sequence number (bytes 12-15, big-endian).
    let wal = dir.path().join("t.sqlite-wal");
    let sequence = || {
        let header = std::fs::read(&wal).unwrap();
        u32::from_be_bytes(header[12..16].try_into().unwrap())
    };
    let before = sequence();
    let until = Instant::now() + Duration::from_millis(2500);
    let mut appenders = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        appenders.push(tokio::spawn(async move {
            while Instant::now() < until {
                append(store.clone()).await;
            }
        }));
    }
    // Upkeep's checkpoints, off the writer.
    while Instant::now() < until {
        store.checkpoint().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for a in appenders {
        a.await.unwrap();
    }
    let after = sequence();
    assert!(
        after > before,
        "the WAL never started again ({before} -> {after})"
    );
    store.close().await;
}

#[test]
fn a_database_from_a_newer_binary_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    drop(open_writer(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
            [],
        )
        .unwrap();
    let e = open_writer(&path).unwrap_err();
    assert!(matches!(e, StoreError::SchemaTooNew { .. }), "{e}");
    assert!(e.to_string().contains("store.path"));
}

#[test]
fn a_database_of_the_previous_release_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    {
        // As the previous release left it: the first schema, `user_version` 2, no history.
        let old = Connection::open(&path).unwrap();
        old.execute_batch(include_str!(
            "../schema/tests/shipped/sqlite/V1__initial.sql"
        ))
        .unwrap();
        old.pragma_update(None, "user_version", 2).unwrap();
        old.execute(
            "INSERT INTO members (member_id, holdername, sealed) VALUES ('M1', 'h', x'00')",
            [],
        )
        .unwrap();
    }
    let conn = open_writer(&path).unwrap();
    let (id, hash): (String, Option<String>) = conn
        .query_row("SELECT member_id, content_sha256 FROM members", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((id.as_str(), hash), ("M1", None));
    // Opening again applies nothing twice.
    drop(conn);
    open_writer(&path).unwrap();
}

mod writer_batches {
    use crate::model::AppendOutcome;
    use crate::model::{AuditRecord, Direction};
    use crate::store::db::Database;
    use crate::store::group_commit::FindRow;
    use crate::store::sql::{erase, params, Access, Tx};
    use crate::store::sqlite::Sqlite;
    use crate::store::{StoreError, StoreLimits};

    fn open(dir: &tempfile::TempDir) -> Sqlite {
        Sqlite::open(&dir.path().join("s.sqlite"), StoreLimits::default())
            .unwrap()
            .0
    }

    fn append(id: &str) -> (FindRow, AuditRecord) {
        let find = FindRow {
            request_id: id.into(),
            received_at: 1,
            sealed: None,
        };
        let audit = AuditRecord {
            transaction_id: id.into(),
            request_id: Some(id.into()),
            direction: Direction::Inbound,
            party: "CN=pfs".into(),
            endpoint: "POST /find-requests".into(),
            received_at: 1,
            responded_at: 0,
            status: 202,
            outcome: "ack".into(),
        };
        (find, audit)
    }

    async fn heartbeat(tx: &mut dyn Tx, minute: i64) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO heartbeats (minute) VALUES ($1)",
            &params![minute],
        )
        .await
        .map(|_| ())
    }

    /// Minutes up in `[from, to)`, in minutes.
    async fn minutes_up(s: &Sqlite, from: i64, to: i64) -> u64 {
        let (from, to) = (from * 60_000_000, to * 60_000_000);
        let work = erase(move |tx| Box::pin(crate::store::audit::minutes_up(tx, from, to)));
        *s.run(Access::Read, work)
            .await
            .unwrap()
            .downcast::<u64>()
            .unwrap()
    }

    /// A start's `prepare` has the writer read the last day's IDs there and then: a no-match
    /// ACK's record written after it (here by another connection) is not among them, where a
    /// writer not prepared reads them at its first append, that record included.
    #[tokio::test]
    async fn a_prepared_writer_has_read_the_days_ids_before_the_first_append() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::now_micros();
        let no_match = |id: &str| {
            let (mut find, mut audit) = append(id);
            find.received_at = now;
            (audit.received_at, audit.responded_at) = (now, now);
            audit.outcome = "no-match".into();
            (find, audit)
        };
        let s = open(&dir);
        let (find, audit) = no_match("before");
        let first = s.group_commit().append(find, audit).await.unwrap();
        assert_eq!(first, AppendOutcome::Created);
        s.group_commit().close().await;
        drop(s);
        for (prepared, late) in [
            (true, AppendOutcome::Created),
            (false, AppendOutcome::Duplicate),
        ] {
            let s = open(&dir);
            if prepared {
                s.group_commit().prepare().await;
            }
            let id = format!("late-{prepared}");
            let other = super::open_writer(&dir.path().join("s.sqlite")).unwrap();
            super::writer::insert_audits(&other, &[no_match(&id).1]).unwrap();
            drop(other);
            for (id, expected) in [("before", AppendOutcome::Duplicate), (id.as_str(), late)] {
                let (find, audit) = no_match(id);
                let outcome = s.group_commit().append(find, audit).await.unwrap();
                assert_eq!(outcome, expected, "{id}, prepared: {prepared}");
            }
            s.group_commit().close().await;
        }
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_and_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let bad = s.run(
            Access::Write,
            erase(|tx| {
                Box::pin(async move {
                    heartbeat(tx, 7).await?;
                    Err::<(), _>(StoreError::Corrupt("test"))
                })
            }),
        );
        let good = s.run(Access::Write, erase(|tx| Box::pin(heartbeat(tx, 8))));
        let (find, record) = append("x");
        let append = s.group_commit().append(find, record);
        let (bad, good, append) = tokio::join!(bad, good, append);
        assert!(matches!(bad, Err(StoreError::Corrupt("test"))));
        good.unwrap();
        append.unwrap();
        // Minute 7's heartbeat was rolled back with its failing write; minute 8's is there.
        assert_eq!(minutes_up(&s, 7, 8).await, 0);
        assert_eq!(minutes_up(&s, 8, 9).await, 1);
    }

    #[tokio::test]
    async fn a_write_that_panics_is_rolled_back_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let bad = s.run(
            Access::Write,
            erase(|tx| {
                Box::pin(async move {
                    heartbeat(tx, 7).await?;
                    panic!("a bug in a write");
                    #[allow(unreachable_code)]
                    Ok(())
                })
            }),
        );
        let (find, record) = append("after");
        let good = s.group_commit().append(find, record);
        let (bad, good) = tokio::join!(bad, good);
        assert!(bad.is_err());
        assert_eq!(good.unwrap(), AppendOutcome::Created);
        assert_eq!(minutes_up(&s, 7, 8).await, 0);
        // Still writing.
        s.run(Access::Write, erase(|tx| Box::pin(heartbeat(tx, 9))))
            .await
            .unwrap();
        assert_eq!(minutes_up(&s, 9, 10).await, 1);
    }

    /// A write alone in its batch runs without a savepoint: failing, panicking or a trial, its
    /// transaction is rolled back whole; otherwise committed.
    #[tokio::test]
    async fn a_write_alone_in_its_batch_is_rolled_back_whole_unless_it_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let failed = s
            .run(
                Access::Write,
                erase(|tx| {
                    Box::pin(async move {
                        heartbeat(tx, 7).await?;
                        Err::<(), _>(StoreError::Corrupt("test"))
                    })
                }),
            )
            .await;
        assert!(matches!(failed, Err(StoreError::Corrupt("test"))));
        let panicked = s
            .run(
                Access::Write,
                erase(|tx| {
                    Box::pin(async move {
                        heartbeat(tx, 7).await?;
                        panic!("a bug in a write");
                        #[allow(unreachable_code)]
                        Ok(())
                    })
                }),
            )
            .await;
        assert!(panicked.is_err());
        s.run(Access::Trial, erase(|tx| Box::pin(heartbeat(tx, 7))))
            .await
            .unwrap();
        assert_eq!(minutes_up(&s, 7, 8).await, 0);
        s.run(Access::Write, erase(|tx| Box::pin(heartbeat(tx, 7))))
            .await
            .unwrap();
        assert_eq!(minutes_up(&s, 7, 8).await, 1);
    }

    #[tokio::test]
    async fn a_snapshot_that_panics_leaves_its_connection_outside_any_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            readers: 1,
            ..StoreLimits::default()
        };
        let s = Sqlite::open(&dir.path().join("s.sqlite"), limits)
            .unwrap()
            .0;
        let bad = s
            .run(
                Access::Snapshot,
                erase(
                    |_tx| -> crate::store::sql::BoxFuture<'_, Result<(), StoreError>> {
                        Box::pin(async move { panic!("a bug in a report") })
                    },
                ),
            )
            .await;
        assert!(matches!(bad, Err(StoreError::Task(_))), "{bad:?}");
        // The one read connection is back in the pool outside a transaction: another snapshot
        // begins on it (inside one, BEGIN fails), and sees a write made since.
        s.run(Access::Write, erase(|tx| Box::pin(heartbeat(tx, 3))))
            .await
            .unwrap();
        let seen = s
            .run(
                Access::Snapshot,
                erase(|tx| Box::pin(crate::store::audit::minutes_up(tx, 0, i64::MAX))),
            )
            .await
            .unwrap();
        assert_eq!(*seen.downcast::<u64>().unwrap(), 1);
    }
}
