//! The templates render to plain SQL in both dialects, and to the same schema as the per-backend
//! copies they replaced (`shipped/`, the files as they were last shipped): so a database those
//! copies migrated opens, its history brought up to date, and nothing is applied twice.

use rusqlite::Connection;

use super::*;
use crate::store::tests::{key, options, Place};
use crate::store::{Store, StoreLimits};

mod shipped_sqlite {
    refinery::embed_migrations!("src/store/schema/tests/shipped/sqlite");
}

mod shipped_postgres {
    refinery::embed_migrations!("src/store/schema/tests/shipped/postgres");
}

const BOTH: [Dialect; 2] = [Dialect::Sqlite, Dialect::Postgres];

/// The newest version the per-backend copies had: renderings are compared with them up to it.
const COPIES_THROUGH: i32 = 5;

#[test]
fn every_template_renders_to_its_dialect_alone() {
    for dialect in BOTH {
        let versions: Vec<i32> = migrations(dialect).iter().map(|m| m.version()).collect();
        assert_eq!(versions, (1..=22).collect::<Vec<_>>());
        for (name, template) in MIGRATIONS {
            let sql = render(template, dialect);
            assert!(!sql.contains('{') && !sql.contains("--}"), "{name}: {sql}");
            let theirs: &[&str] = match dialect {
                Dialect::Sqlite => &["BIGINT", "BYTEA", "BOOLEAN", "plpgsql", "IDENTITY"],
                Dialect::Postgres => &[
                    "STRICT",
                    "BLOB",
                    "RAISE(ABORT",
                    "AUTOINCREMENT",
                    "IF NOT EXISTS",
                ],
            };
            let statements: String = sql
                .lines()
                .map(|l| l.split("--").next().unwrap_or_default())
                .collect();
            for word in theirs {
                assert!(
                    !statements.contains(word),
                    "{name} in {dialect:?} has {word}"
                );
            }
        }
    }
    assert_eq!(newest(), 22);
    let sqlite = render(MIGRATIONS[0].1, Dialect::Sqlite);
    assert!(sqlite.contains("CREATE TRIGGER IF NOT EXISTS audit_log_retained"));
    assert!(sqlite.contains(") STRICT;"));
    let postgres = render(MIGRATIONS[0].1, Dialect::Postgres);
    assert!(postgres.contains("EXECUTE FUNCTION audit_log_guard()"));
    assert!(postgres.contains("id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"));
}

#[test]
fn the_shipped_checksums_are_those_the_per_backend_copies_left() {
    for (dialect, runner) in [
        (Dialect::Sqlite, shipped_sqlite::migrations::runner()),
        (Dialect::Postgres, shipped_postgres::migrations::runner()),
    ] {
        let copies: Vec<(i32, u64)> = runner
            .get_migrations()
            .iter()
            .map(|m| (m.version(), m.checksum()))
            .collect();
        let listed: Vec<(i32, u64)> = SHIPPED
            .iter()
            .filter(|(d, _, _)| *d == dialect)
            .map(|&(_, v, c)| (v, c))
            .collect();
        assert_eq!(listed, copies, "{dialect:?}");
    }
}

/// What SQLite holds of a schema: every object's statement, comments and spacing folded away.
fn sqlite_schema(conn: &Connection) -> Vec<String> {
    let mut st = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master
             WHERE sql IS NOT NULL AND name <> 'refinery_schema_history' ORDER BY type, name",
        )
        .unwrap();
    st.query_map([], |r| {
        let sql: String = r.get(2)?;
        let folded = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" IF NOT EXISTS", "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(format!(
            "{} {}: {folded}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn the_sqlite_rendering_is_the_shipped_schema() {
    let mut shipped = Connection::open_in_memory().unwrap();
    shipped_sqlite::migrations::runner()
        .run(&mut shipped)
        .unwrap();
    let mut rendered = Connection::open_in_memory().unwrap();
    runner(Dialect::Sqlite, &[])
        .set_target(refinery::Target::Version(COPIES_THROUGH))
        .run(&mut rendered)
        .unwrap();
    let schema = sqlite_schema(&rendered);
    assert!(schema.len() > 30, "{schema:#?}");
    assert_eq!(sqlite_schema(&shipped), schema);
}

/// The checksums a database's history holds, by version.
fn sqlite_history(path: &std::path::Path) -> Vec<(i32, String)> {
    let conn = Connection::open(path).unwrap();
    let mut st = conn
        .prepare("SELECT version, checksum FROM refinery_schema_history ORDER BY version")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The checksums the per-backend copies left in a history.
fn shipped_history(dialect: Dialect) -> Vec<(i32, String)> {
    SHIPPED
        .iter()
        .filter(|(d, _, _)| *d == dialect)
        .map(|&(_, v, c)| (v, c.to_string()))
        .collect()
}

#[tokio::test]
async fn a_sqlite_database_the_copies_migrated_opens_and_stays_theirs_and_an_edit_is_refused() {
    let place = Place::sqlite();
    let Place::Sqlite(dir) = &place else {
        unreachable!()
    };
    let path = dir.path().join("s.sqlite");
    let mut old = Connection::open(&path).unwrap();
    shipped_sqlite::migrations::runner().run(&mut old).unwrap();
    old.execute(
        "INSERT INTO members (member_id, holdername, sealed) VALUES ('M1', 'h', x'00')",
        [],
    )
    .unwrap();
    drop(old);
    assert_eq!(sqlite_history(&path), shipped_history(Dialect::Sqlite));

    place.open().await.close().await;
    place.open().await.close().await;
    // The history is left as the copies wrote it, the newer migrations applied after it: the
    // copies' checksums still verify (an older binary refuses the database only for the newer
    // migrations it does not know, by name, never as an edited one).
    let history = sqlite_history(&path);
    assert_eq!(history[..5], shipped_history(Dialect::Sqlite));
    assert_eq!(history.len(), migrations(Dialect::Sqlite).len());
    let mut conn = Connection::open(&path).unwrap();
    shipped_sqlite::migrations::runner()
        .set_abort_missing(false)
        .run(&mut conn)
        .unwrap();
    let kept: i64 = conn
        .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1, "nothing applied again");
    drop(conn);

    // A history that is neither the copies' nor the rendering's: an edited migration.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 2",
            [],
        )
        .unwrap();
    let e = Store::open(&path, key(), StoreLimits::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("store.path: "), "{e}");
    assert!(e.contains("V2__member_changes"), "{e}");
}

/// What PostgreSQL holds of a schema: columns, indexes, constraints, triggers and functions.
async fn postgres_schema(c: &tokio_postgres::Client) -> Vec<String> {
    let queries = [
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
                || ' ' || coalesce(column_default, '-') || ' ' || is_identity
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> 'refinery_schema_history'",
        "SELECT indexdef FROM pg_indexes
         WHERE schemaname = 'public' AND tablename <> 'refinery_schema_history'",
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace AND conname NOT LIKE 'refinery%'",
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT proname || ' ' || prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
    ];
    let mut schema = Vec::new();
    for q in queries {
        let mut rows: Vec<String> = c
            .query(q, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        rows.sort();
        schema.extend(rows);
    }
    schema
}

async fn postgres_history(c: &tokio_postgres::Client) -> Vec<(i32, String)> {
    c.query(
        "SELECT version, checksum FROM refinery_schema_history ORDER BY version",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn connect(place: &Place) -> tokio_postgres::Client {
    let Place::Postgres(url) = place else {
        unreachable!()
    };
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c
}

#[tokio::test]
async fn the_postgres_rendering_is_the_shipped_schema_and_the_copies_databases_open_unchanged() {
    let shipped = Place::postgres().await;
    let mut old = connect(&shipped).await;
    shipped_postgres::migrations::runner()
        .run_async(&mut old)
        .await
        .unwrap();
    let rendered = Place::postgres().await;
    let mut new = connect(&rendered).await;
    runner(Dialect::Postgres, &[])
        .set_target(refinery::Target::Version(COPIES_THROUGH))
        .run_async(&mut new)
        .await
        .unwrap();
    let schema = postgres_schema(&new).await;
    assert!(schema.len() > 100, "{schema:#?}");
    assert_eq!(postgres_schema(&old).await, schema);

    old.execute(
        "INSERT INTO members (member_id, holdername, sealed) VALUES ('M1', 'h', '\\x00')",
        &[],
    )
    .await
    .unwrap();
    shipped.open().await.close().await;
    let history = postgres_history(&old).await;
    assert_eq!(
        history[..5],
        shipped_history(Dialect::Postgres),
        "the history is left for the binaries before this one"
    );
    assert_eq!(history.len(), migrations(Dialect::Postgres).len());
    shipped_postgres::migrations::runner()
        .set_abort_missing(false)
        .run_async(&mut old)
        .await
        .unwrap();
    let kept: i64 = old
        .query_one("SELECT count(*) FROM members", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "nothing applied again");

    // An edited migration is refused, naming it.
    old.execute(
        "UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 4",
        &[],
    )
    .await
    .unwrap();
    let Place::Postgres(url) = &shipped else {
        unreachable!()
    };
    let e = Store::connect_postgres(&options(url), key(), StoreLimits::default())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.starts_with("store.url: "), "{e}");
    assert!(e.contains("V4__reports"), "{e}");
}

#[test]
fn every_dialect_block_is_closed_and_none_is_nested() {
    for (name, template) in MIGRATIONS {
        let mut open = None;
        for (n, line) in template.lines().enumerate() {
            match line.trim_end() {
                "--{sqlite" | "--{postgres" => {
                    assert!(open.is_none(), "{name}:{}: a block inside a block", n + 1);
                    open = Some(n + 1);
                }
                "--}" => {
                    assert!(open.is_some(), "{name}:{}: a close without an open", n + 1);
                    open = None;
                }
                other => assert!(
                    !other.trim_start().starts_with("--{"),
                    "{name}:{}: an unknown block {other}",
                    n + 1
                ),
            }
        }
        assert!(
            open.is_none(),
            "{name}: the block at line {open:?} is not closed"
        );
    }
}

/// How far V12 had written the audit IDs (an hour) is where V13 has them written (its start).
#[tokio::test]
async fn the_audit_ids_frontier_keeps_its_place_from_the_hour_to_the_microsecond() {
    const V12_FRONTIER: &str = "INSERT INTO audit_ids_written (id, next_hour) VALUES (1, 490000)";
    const FRONTIER: &str = "SELECT next_at FROM audit_ids_through";
    let mut sqlite = Connection::open_in_memory().unwrap();
    runner(Dialect::Sqlite, &[])
        .set_target(refinery::Target::Version(12))
        .run(&mut sqlite)
        .unwrap();
    sqlite.execute(V12_FRONTIER, []).unwrap();
    runner(Dialect::Sqlite, &[]).run(&mut sqlite).unwrap();
    let at: i64 = sqlite.query_row(FRONTIER, [], |r| r.get(0)).unwrap();
    assert_eq!(at, 490_000 * 3_600_000_000);

    let place = Place::postgres().await;
    let mut pg = connect(&place).await;
    runner(Dialect::Postgres, &[])
        .set_target(refinery::Target::Version(12))
        .run_async(&mut pg)
        .await
        .unwrap();
    pg.execute(V12_FRONTIER, &[]).await.unwrap();
    runner(Dialect::Postgres, &[])
        .run_async(&mut pg)
        .await
        .unwrap();
    let at: i64 = pg.query_one(FRONTIER, &[]).await.unwrap().get(0);
    assert_eq!(at, 490_000 * 3_600_000_000);
}

/// V17 rebuilds SQLite's hot table without its key on the request ID: every find is kept as it
/// was, the open ones indexed by ID (uniquely), and a repeat is still recognised after the
/// upgrade, from what the writer loads at start: a find of the last day, or an open one of any
/// age; a find ended longer ago than a day is a new one.
#[tokio::test]
async fn sqlite_finds_outlive_v17_and_their_repeats_are_still_duplicates() {
    use crate::model::AppendOutcome;
    use crate::store::tests::{audit, find};
    let place = Place::sqlite();
    let Place::Sqlite(dir) = &place else {
        unreachable!()
    };
    let path = dir.path().join("s.sqlite");
    let now = crate::now_micros();
    let hour = crate::store::HOUR;
    let mut old = Connection::open(&path).unwrap();
    runner(Dialect::Sqlite, &[])
        .set_target(refinery::Target::Version(16))
        .run(&mut old)
        .unwrap();
    for (id, acked_at, state, data) in [
        ("ended-an-hour-ago", now - hour, "done", None),
        ("ended-two-days-ago", now - 48 * hour, "done", None),
        (
            "open-three-days",
            now - 72 * hour,
            "queued",
            Some(vec![1u8, 2]),
        ),
    ] {
        old.execute(
            "INSERT INTO find_requests (request_id, received_at, acked_at, state, find_data)
             VALUES (?1, ?2, ?2, ?3, ?4)",
            rusqlite::params![id, acked_at, state, data],
        )
        .unwrap();
    }
    let before = sqlite_finds(&old);
    drop(old);

    let s = place.open().await;
    let conn = Connection::open(&path).unwrap();
    assert_eq!(sqlite_finds(&conn), before);
    let unique: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'find_requests_open_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(unique.starts_with("CREATE UNIQUE INDEX"), "{unique}");
    for (id, expected) in [
        ("ended-an-hour-ago", AppendOutcome::Duplicate),
        ("open-three-days", AppendOutcome::Duplicate),
        ("ended-two-days-ago", AppendOutcome::Created),
        ("new", AppendOutcome::Created),
        ("new", AppendOutcome::Duplicate),
    ] {
        let (find, audit) = (find(id, false), audit(id));
        assert_eq!(s.append(find, audit).await.unwrap(), expected, "{id}");
    }
    s.close().await;
}

/// Every row of SQLite's hot table, in ACK order.
fn sqlite_finds(conn: &Connection) -> Vec<(String, i64, String, Option<Vec<u8>>)> {
    let mut stmt = conn
        .prepare(
            "SELECT request_id, acked_at, state, find_data FROM find_requests
              ORDER BY acked_at, request_id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
