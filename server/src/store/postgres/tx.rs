//! [`Tx`] on a PostgreSQL connection or transaction, and the driver's errors as the store's.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::store::sql::{render, Dialect, Row, Tx, Value};
use crate::store::{Result, StoreError};

/// A unit of work's statements on a pooled connection, or on a transaction over one.
pub(super) struct PgTx<'c, C>(pub(super) &'c C);

#[async_trait]
impl<C: GenericClient + Sync> Tx for PgTx<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let stmt = self
            .0
            .prepare_cached(&render(sql, Dialect::Postgres))
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        Ok(self.0.execute(&stmt, &params).await?)
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let stmt = self
            .0
            .prepare_cached(&render(sql, Dialect::Postgres))
            .await?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.0
            .query(&stmt, &params)
            .await?
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| value(r, i))
                    .collect::<Result<_>>()
                    .map(Row)
            })
            .collect()
    }
}

/// Column `i` of a driver's row, by its type.
fn value(r: &tokio_postgres::Row, i: usize) -> Result<Value> {
    let ty = r.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => r
            .try_get::<_, Option<i32>>(i)?
            .map(|x| Value::Int(x.into())),
        Type::INT2 => r
            .try_get::<_, Option<i16>>(i)?
            .map(|x| Value::Int(x.into())),
        Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(Value::Bool),
        Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::FLOAT4 => r
            .try_get::<_, Option<f32>>(i)?
            .map(|x| Value::Real(x.into())),
        Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
        // A pension's asset GUID (V19): its 16 bytes, as SQLite stores it.
        Type::UUID => r
            .try_get::<_, Option<uuid::Uuid>>(i)?
            .map(|u| Value::Bytes(u.as_bytes().to_vec())),
        // A pension's dates (V19): `YYYY-MM-DD`, as SQLite stores them.
        Type::DATE => r
            .try_get::<_, Option<chrono::NaiveDate>>(i)?
            .map(|d| Value::Text(d.format("%Y-%m-%d").to_string())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            r.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        other => {
            return Err(StoreError::Internal(format!(
                "column {i} is of type {other}: cast it in the query"
            )))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME) => {
                s.as_str().to_sql(ty, out)
            }
            (Value::Bytes(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (Value::Bytes(b), &Type::UUID) => uuid::Uuid::from_slice(b)?.to_sql(ty, out),
            (Value::Text(s), &Type::DATE) => {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")?.to_sql(ty, out)
            }
            (Value::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Bool(b), &Type::INT8) => i64::from(*b).to_sql(ty, out),
            (Value::Bool(b), &Type::INT4) => i32::from(*b).to_sql(ty, out),
            (v, ty) => Err(format!("{v:?} bound to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each value converts to the parameter's type in `to_sql`, or is refused there.
        true
    }

    to_sql_checked!();
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(code) = e.code() else {
            // No answer from the server: the connection broke, or never was. Anything else
            // without a code (a value that does not convert, a column that is not there) is a bug.
            let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
            return if e.is_closed() || io {
                StoreError::Unavailable(format!("postgres: {e}"))
            } else {
                StoreError::Internal(format!("postgres: {e}"))
            };
        };
        let class = &code.code()[..2];
        let transient = matches!(class, "08" | "53" | "57" | "58")
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE;
        if transient {
            StoreError::Unavailable(format!("postgres: {e}"))
        } else if class == "23" {
            StoreError::Refused(format!("postgres: {e}"))
        } else {
            StoreError::Internal(format!("postgres: {e}"))
        }
    }
}
