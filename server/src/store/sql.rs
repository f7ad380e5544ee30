//! SQL written once for both backends: a unit of work is an async function over a [`Tx`], with
//! its statements in one spelling that [`render`] turns into SQLite's or PostgreSQL's.
//!
//! - Parameters are `$1`, `$2`, ... (PostgreSQL's spelling; SQLite gets `?1`, `?2`, ...).
//! - What the dialects spell differently is a token (the schema's tokens, and [`QUERY_TOKENS`]).
//! - Values cross as [`Value`]s and rows come back as [`Row`]s: each backend converts its
//!   driver's types once, and a column is read with [`Row::get`] into any [`FromValue`].
//!
//! Where a unit must lock (`FOR UPDATE`, `LOCK TABLE`) or its SQL truly differs, it asks the
//! transaction for its [`Dialect`] and says so next to the SQL.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

pub(super) use super::schema::Dialect;
use super::{Result, StoreError};

/// A future a unit of work returns, borrowing its transaction.
pub(super) type BoxFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// A unit's answer with its type erased, so that [`super::db::Database`] stays object-safe
/// (the store turns it back into the unit's type).
pub(super) type Erased = Box<dyn Any + Send>;

/// A unit of work, ready to run on whatever transaction its backend opens.
pub(super) type Work =
    Box<dyn for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<Erased>> + Send>;

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// The statements a unit of work runs, in one transaction (or, for reads, one connection).
#[async_trait]
pub(super) trait Tx: Send {
    /// The dialect, for the few statements that differ.
    fn dialect(&self) -> Dialect;

    /// Runs a statement: the rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs a query: its rows.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
}

impl dyn Tx + '_ {
    /// A query's one row, if it has one.
    pub(super) async fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// A query's one row (an aggregate, say).
    pub(super) async fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| StoreError::Internal("a query of one row returned none".into()))
    }

    /// A query's first column, from each row.
    pub(super) async fn column<T: FromValue>(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<T>> {
        self.query(sql, params)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// A query's one value.
    pub(super) async fn value<T: FromValue>(&mut self, sql: &str, params: &[Value]) -> Result<T> {
        self.query_one(sql, params).await?.get(0)
    }
}

/// How a unit of work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Reads, each statement on its own.
    Read,
    /// Reads that all see one snapshot (a report).
    Snapshot,
    /// One statement that writes: atomic by itself, durable before it answers.
    Single,
    /// Writes in one transaction, durable before it answers.
    Write,
    /// As [`Access::Write`], rolled back once answered (a dry run).
    Trial,
}

/// A row as read: its columns' values, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `i`, as `T`.
    pub(super) fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        T::from_value(self.0.get(i).unwrap_or(&Value::Null))
    }
}

/// A type a column reads into.
pub(super) trait FromValue: Sized {
    /// The value as `Self`; a value of another type is [`StoreError::Internal`], a stored
    /// spelling no enum knows is [`StoreError::Corrupt`].
    fn from_value(v: &Value) -> Result<Self>;
}

fn mismatch<T>(v: &Value) -> StoreError {
    StoreError::Internal(format!(
        "a column read as {} holds {v:?}",
        std::any::type_name::<T>()
    ))
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::Bool(b) => Ok(i64::from(*b)),
            _ => Err(mismatch::<Self>(v)),
        }
    }
}

impl FromValue for u64 {
    fn from_value(v: &Value) -> Result<Self> {
        i64::from_value(v).map(|i| u64::try_from(i).unwrap_or(0))
    }
}

impl FromValue for u32 {
    fn from_value(v: &Value) -> Result<Self> {
        i64::from_value(v).map(|i| u32::try_from(i).unwrap_or(u32::MAX))
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            _ => Err(mismatch::<Self>(v)),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Int(i) => Ok(*i != 0),
            _ => Err(mismatch::<Self>(v)),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(mismatch::<Self>(v)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self> {
        match v {
            Value::Bytes(b) => Ok(b.clone()),
            _ => Err(mismatch::<Self>(v)),
        }
    }
}

impl FromValue for chrono::NaiveDate {
    fn from_value(v: &Value) -> Result<Self> {
        let s = String::from_value(v)?;
        chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| StoreError::Corrupt("date"))
    }
}

impl FromValue for uuid::Uuid {
    fn from_value(v: &Value) -> Result<Self> {
        uuid::Uuid::try_parse(&String::from_value(v)?).map_err(|_| StoreError::Corrupt("GUID"))
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => |$x:ident| $e:expr),+ $(,)?) => {$(
        impl From<$t> for Value {
            fn from($x: $t) -> Self {
                $e
            }
        }
    )+};
}

value_from! {
    i64 => |x| Value::Int(x),
    i32 => |x| Value::Int(i64::from(x)),
    u32 => |x| Value::Int(i64::from(x)),
    usize => |x| Value::Int(i64::try_from(x).unwrap_or(i64::MAX)),
    u64 => |x| Value::Int(i64::try_from(x).unwrap_or(i64::MAX)),
    bool => |x| Value::Bool(x),
    f64 => |x| Value::Real(x),
    String => |x| Value::Text(x),
    &str => |x| Value::Text(x.to_owned()),
    &String => |x| Value::Text(x.clone()),
    Vec<u8> => |x| Value::Bytes(x),
    &[u8] => |x| Value::Bytes(x.to_vec()),
    &Vec<u8> => |x| Value::Bytes(x.clone()),
    chrono::NaiveDate => |x| Value::Text(x.to_string()),
    uuid::Uuid => |x| Value::Text(x.hyphenated().to_string()),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(x: Option<T>) -> Self {
        x.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value> + Clone> From<&Option<T>> for Value {
    fn from(x: &Option<T>) -> Self {
        x.clone().map_or(Value::Null, Into::into)
    }
}

/// The stored enums cross as their spellings, and an unknown spelling is refused on the way out.
macro_rules! enum_values {
    ($($name:ident),+) => {$(
        impl From<crate::model::$name> for Value {
            fn from(x: crate::model::$name) -> Self {
                Value::Text(x.as_str().to_owned())
            }
        }

        impl FromValue for crate::model::$name {
            fn from_value(v: &Value) -> Result<Self> {
                crate::model::$name::parse(&String::from_value(v)?)
                    .ok_or(StoreError::Corrupt(stringify!($name)))
            }
        }
    )+};
}

crate::model::for_each_stored_enum!(enum_values);

/// A statement's parameters: `params![a, b, c]` is `[Value::from(a), ...]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        [$($crate::store::sql::Value::from($p)),*]
    };
}
pub(super) use params;

/// What only queries spell differently, beside the schema's tokens: `(token, SQLite, PostgreSQL)`.
pub(super) const QUERY_TOKENS: [(&str, &str, &str); 2] = [
    // The larger of two values.
    ("{greatest}", "max", "greatest"),
    // A row lock for the rest of the transaction (SQLite's one writer already excludes others).
    ("{for_update}", "", "FOR UPDATE"),
];

/// A statement in `dialect`: tokens spelled, and `$n` as `?n` for SQLite.
pub(super) fn render(sql: &str, dialect: Dialect) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(sql);
    if sql.contains('{') {
        let tokens = super::schema::TOKENS.iter().chain(&QUERY_TOKENS);
        let spelled = tokens.fold(sql.to_owned(), |s, (token, sqlite, postgres)| {
            s.replace(
                token,
                match dialect {
                    Dialect::Sqlite => sqlite,
                    Dialect::Postgres => postgres,
                },
            )
        });
        out = Cow::Owned(spelled);
    }
    if dialect == Dialect::Sqlite && out.contains('$') {
        out = Cow::Owned(out.replace('$', "?"));
    }
    out
}

/// A unit of work with its answer's type erased.
pub(super) fn erase<T, F>(work: F) -> Work
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
{
    Box::new(move |tx: &mut dyn Tx| -> BoxFuture<'_, Result<Erased>> {
        Box::pin(async move { Ok(Box::new(work(tx).await?) as Erased) })
    })
}

/// Runs a SQLite unit of work to its end. Its statements never wait (a SQLite call blocks
/// instead), so the first poll finishes it; one that does wait is a bug, answered as such.
pub(super) fn run_blocking<T>(mut work: BoxFuture<'_, Result<T>>) -> Result<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match work.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(StoreError::Internal(
            "a unit of work waited on a blocking connection".into(),
        )),
    }
}

/// Rows written by one multi-row `INSERT` at most.
const ROWS_A_STATEMENT: usize = 64;

/// Inserts rows of values with `insert` (`INSERT INTO t (columns)`), many a statement: as many
/// as the largest power of two up to [`ROWS_A_STATEMENT`] that is left, so that a few
/// statements serve every count.
pub(super) async fn insert_rows(
    tx: &mut dyn Tx,
    insert: &str,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    insert_rows_then(tx, insert, rows, "").await
}

/// [`insert_rows`], each statement ending with `tail` (`ON CONFLICT DO NOTHING`, say).
pub(super) async fn insert_rows_then(
    tx: &mut dyn Tx,
    insert: &str,
    rows: Vec<Vec<Value>>,
    tail: &str,
) -> Result<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let mut rows = rows.into_iter().peekable();
    let mut left = rows.len();
    while left > 0 {
        let n = 1 << (usize::BITS - 1 - left.min(ROWS_A_STATEMENT).leading_zeros());
        let tuples: Vec<String> = (0..n)
            .map(|r| {
                let marks: Vec<String> =
                    (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!("{insert} VALUES {} {tail}", tuples.join(", "));
        let bound: Vec<Value> = rows.by_ref().take(n).flatten().collect();
        tx.execute(&sql, &bound).await?;
        left -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_render_in_each_dialect() {
        let sql = "UPDATE t SET a = {greatest}(a, $2) WHERE id = $1 {for_update}";
        assert_eq!(
            render(sql, Dialect::Sqlite),
            "UPDATE t SET a = max(a, ?2) WHERE id = ?1 "
        );
        assert_eq!(
            render(sql, Dialect::Postgres),
            "UPDATE t SET a = greatest(a, $2) WHERE id = $1 FOR UPDATE"
        );
        assert!(matches!(
            render("SELECT 1", Dialect::Sqlite),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn columns_read_into_their_types_and_refuse_others() {
        let row = Row(vec![
            Value::Int(3),
            Value::Null,
            Value::Text("queued".into()),
            Value::Int(1),
        ]);
        assert_eq!(row.get::<i64>(0).unwrap(), 3);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert_eq!(
            row.get::<crate::model::FindState>(2).unwrap(),
            crate::model::FindState::Queued
        );
        assert!(row.get::<bool>(3).unwrap());
        assert!(matches!(row.get::<String>(0), Err(StoreError::Internal(_))));
        let unknown = Row(vec![Value::Text("lost".into())]);
        assert!(matches!(
            unknown.get::<crate::model::FindState>(0),
            Err(StoreError::Corrupt(_))
        ));
    }
}
