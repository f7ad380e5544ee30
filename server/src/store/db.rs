//! What a backend must provide: [`Database`], a handful of capabilities, none of them a query.
//!
//! The queries are the units of work in the store's area modules, written once over
//! [`super::sql::Tx`]; a backend opens the connection or transaction a unit asks for
//! ([`Access`]), runs it, and makes its writes durable before it answers. Its driver's errors
//! are mapped into [`super::StoreError`] once, in its own module.

use async_trait::async_trait;

use super::group_commit::GroupCommit;
use super::sql::{Access, Erased, Work};
use super::Result;

/// A database that holds the store.
#[async_trait]
pub(super) trait Database: Send + Sync + 'static {
    /// Whether several instances of the endpoint share it (finds being worked are then left to
    /// their leases at start, and the count of open finds is read again every second).
    fn shared(&self) -> bool;

    /// The writer's group commits, which the find ACK and the audit trail ride: a find is
    /// answered only after the commit that holds it.
    fn group_commit(&self) -> &dyn GroupCommit;

    /// Runs a unit of work as `access` asks: its answer once it is durable (writes), or rolled
    /// back ([`Access::Trial`]).
    async fn run(&self, access: Access, work: Work) -> Result<Erased>;

    /// Upkeep beside the writer (SQLite: a passive WAL checkpoint; PostgreSQL has its own).
    async fn checkpoint(&self) -> Result<()>;
}
