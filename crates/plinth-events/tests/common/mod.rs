//! What the event tests share: a migrated store on a throwaway database.

#![allow(clippy::unwrap_used)]

use plinth_core::config::SqliteSynchronous;
use plinth_store::{Db, DbOptions};
use plinth_testkit::TestDatabase;
use secrecy::SecretString;

/// A store on `db` with its schema migrated; each call opens its own pool.
pub async fn open(db: &TestDatabase) -> Db {
    let store = Db::open(&DbOptions {
        url: Some(SecretString::from(db.url.clone())),
        data_dir: db.data_dir.clone(),
        max_connections: 8,
        sqlite_synchronous: SqliteSynchronous::Full,
    })
    .await
    .unwrap();
    store.migrate(|_| {}).await.unwrap();
    store
}
