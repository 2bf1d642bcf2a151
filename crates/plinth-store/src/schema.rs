//! What the live schema holds, read from the database itself rather than from a list
//! kept by hand: code that must treat every table of a kind alike (a tenant's purge and
//! export) checks its own list against this.

use std::collections::BTreeSet;

use crate::{Backend, Db, StoreResult, on};

impl Db {
    /// The tables that have a column named `column` (`tenant_id`: the tenant-owned ones).
    pub async fn tables_with_column(&self, column: &str) -> StoreResult<BTreeSet<String>> {
        let mut conn = self.read().await?;
        let names: Vec<String> = match self.backend() {
            Backend::Sqlite => on!(conn.conn(), c => sqlx::query_scalar(
                "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND p.name = $1"
            ).bind(column).fetch_all(c).await)?,
            Backend::Postgres => on!(conn.conn(), c => sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND column_name = $1"
            ).bind(column).fetch_all(c).await)?,
        };
        Ok(names.into_iter().collect())
    }
}
