//! The schema, written once for both backends: each migration is one SQL file here, in which a
//! few tokens stand for what the dialects spell differently and `--{sqlite` / `--{postgres` …
//! `--}` blocks hold what only one of them has (SQLite's triggers against PostgreSQL's plpgsql
//! guard, and indexes each planner wants). A column added to a table is added for both.
//!
//! | token             | SQLite                                | PostgreSQL                       |
//! |-------------------|---------------------------------------|----------------------------------|
//! | `{int64}`         | `INTEGER`                             | `BIGINT`                         |
//! | `{bytes}`         | `BLOB`                                | `BYTEA`                          |
//! | `{bool}`          | `INTEGER` (0/1)                       | `BOOLEAN`                        |
//! | `{false}`         | `0`                                   | `FALSE`                          |
//! | `{rowid}`         | `INTEGER PRIMARY KEY`                 | `BIGINT GENERATED ALWAYS AS`     |
//! |                   |                                       | `IDENTITY PRIMARY KEY`           |
//! | `{serial}`        | `INTEGER PRIMARY KEY AUTOINCREMENT`   | the same as `{rowid}`            |
//! | `{strict}`        | ` STRICT` (typed columns)             | nothing                          |
//! | `{if_not_exists}` | ` IF NOT EXISTS` (V1: databases from  | nothing                          |
//! |                   | before migrations)                    |                                  |
//!
//! Migrations are applied in order at start by refinery; a change to the schema is a new file,
//! never an edit of an applied one. Versions 1 to 5 were also shipped as a copy per backend
//! (kept as test fixtures): a database that applied a copy holds the same schema as the
//! rendering, so a version applied from a copy counts as applied ([`runner`]), its history row
//! untouched.

use refinery::Migration;

use super::StoreError;

/// The SQL dialect a migration is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// The migrations, oldest first: refinery's name (`V<n>__<name>`) and the template.
const MIGRATIONS: [(&str, &str); 22] = [
    ("V1__initial", include_str!("V1__initial.sql")),
    ("V2__member_changes", include_str!("V2__member_changes.sql")),
    ("V3__daily_runs", include_str!("V3__daily_runs.sql")),
    ("V4__reports", include_str!("V4__reports.sql")),
    ("V5__console", include_str!("V5__console.sql")),
    (
        "V6__console_sign_in",
        include_str!("V6__console_sign_in.sql"),
    ),
    (
        "V7__possible_match_searches",
        include_str!("V7__possible_match_searches.sql"),
    ),
    ("V8__match_keys", include_str!("V8__match_keys.sql")),
    ("V9__console_mfa", include_str!("V9__console_mfa.sql")),
    ("V10__audit_by_id", include_str!("V10__audit_by_id.sql")),
    (
        "V11__pension_schemes",
        include_str!("V11__pension_schemes.sql"),
    ),
    ("V12__find_history", include_str!("V12__find_history.sql")),
    (
        "V13__audit_ids_and_tallies",
        include_str!("V13__audit_ids_and_tallies.sql"),
    ),
    (
        "V14__pensions_compact",
        include_str!("V14__pensions_compact.sql"),
    ),
    (
        "V15__pension_schemes_by_row",
        include_str!("V15__pension_schemes_by_row.sql"),
    ),
    (
        "V16__audit_ids_recent",
        include_str!("V16__audit_ids_recent.sql"),
    ),
    (
        "V17__find_ids_in_memory",
        include_str!("V17__find_ids_in_memory.sql"),
    ),
    (
        "V18__import_at_scale",
        include_str!("V18__import_at_scale.sql"),
    ),
    (
        "V19__pensions_typed",
        include_str!("V19__pensions_typed.sql"),
    ),
    (
        "V20__audit_ids_by_row",
        include_str!("V20__audit_ids_by_row.sql"),
    ),
    (
        "V21__no_match_in_audit",
        include_str!("V21__no_match_in_audit.sql"),
    ),
    (
        "V22__recent_ids_unlogged",
        include_str!("V22__recent_ids_unlogged.sql"),
    ),
];

/// Each token and its spelling in SQLite and in PostgreSQL.
pub(super) const TOKENS: [(&str, &str, &str); 8] = [
    ("{int64}", "INTEGER", "BIGINT"),
    ("{bytes}", "BLOB", "BYTEA"),
    ("{bool}", "INTEGER", "BOOLEAN"),
    ("{false}", "0", "FALSE"),
    (
        "{rowid}",
        "INTEGER PRIMARY KEY",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    (
        "{serial}",
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    ("{strict}", " STRICT", ""),
    ("{if_not_exists}", " IF NOT EXISTS", ""),
];

/// Checksums refinery recorded for the per-backend copies of the migrations (dialect, version,
/// checksum), before the schema was written once. Each rendering is the same schema as its copy.
const SHIPPED: [(Dialect, i32, u64); 10] = [
    (Dialect::Sqlite, 1, 348488927939075930),
    (Dialect::Sqlite, 2, 4967693576423098793),
    (Dialect::Sqlite, 3, 4925373501483986918),
    (Dialect::Sqlite, 4, 4392993534494439028),
    (Dialect::Sqlite, 5, 1985072929735744732),
    (Dialect::Postgres, 1, 1352204317857827544),
    (Dialect::Postgres, 2, 4003265141516620276),
    (Dialect::Postgres, 3, 3446525439712564591),
    (Dialect::Postgres, 4, 12779405839480213066),
    (Dialect::Postgres, 5, 9865370969475572371),
];

/// A template in a dialect: the other dialect's blocks dropped, the tokens spelled.
pub(super) fn render(template: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(template.len());
    let mut only = None;
    for line in template.lines() {
        match line.trim_end() {
            "--{sqlite" => only = Some(Dialect::Sqlite),
            "--{postgres" => only = Some(Dialect::Postgres),
            "--}" => only = None,
            _ if only.is_none_or(|d| d == dialect) => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    TOKENS.iter().fold(out, |sql, (token, sqlite, postgres)| {
        sql.replace(
            token,
            match dialect {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
            },
        )
    })
}

/// The migrations in a dialect, oldest first.
pub(super) fn migrations(dialect: Dialect) -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(name, template)| {
            Migration::unapplied(name, &render(template, dialect))
                .expect("migration names are V<n>__<name> (tested)")
        })
        .collect()
}

/// The runner of a dialect's migrations for a database whose history holds `applied`. A
/// version applied from its per-backend copy ([`SHIPPED`]) stands as applied: the history is
/// left as it is, so those rows still verify for the binaries that shipped the copies (they
/// refuse a database only for the newer migrations they do not know, by name, as this one
/// does). Any other checksum is an edited migration, refused by refinery.
pub(super) fn runner(dialect: Dialect, applied: &[Migration]) -> refinery::Runner {
    let known: Vec<Migration> = migrations(dialect)
        .into_iter()
        .map(|m| {
            applied
                .iter()
                .find(|a| {
                    a.version() == m.version()
                        && a.name() == m.name()
                        && SHIPPED.contains(&(dialect, a.version(), a.checksum()))
                })
                .cloned()
                .unwrap_or(m)
        })
        .collect();
    refinery::Runner::new(&known).set_abort_missing(true)
}

/// The newest migration this binary knows.
pub(super) fn newest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// What a failed migration run means, named by the setting that points at the database: a
/// schema newer than this binary (it has applied a migration the binary does not know), or a
/// migration that failed.
pub(super) fn error(e: &refinery::Error, setting: &'static str) -> StoreError {
    match e.kind() {
        refinery::error::Kind::MissingVersion(m) => StoreError::SchemaTooNew {
            setting,
            found: i64::from(m.version()),
            known: newest(),
        },
        _ => StoreError::Migration {
            setting,
            cause: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
