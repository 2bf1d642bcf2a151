//! Saved views of the consoles' tables: a user's named query strings per table. They are
//! the user's own links, kept server-side so they follow the user between browsers; they
//! grant nothing (the page re-checks every field and every permission when one is opened).

use plinth_core::{FieldErrors, Timestamp};
use plinth_store::{exec, on};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{IdentityError, IdentityResult};
use crate::service::{Identity, Principal};

/// Views one user keeps for one table.
pub const MAX_VIEWS_PER_TABLE: i64 = 20;
const MAX_NAME: usize = 60;
const MAX_QUERY: usize = 1000;
const MAX_PAGE_KEY: usize = 40;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SavedView {
    pub id: Uuid,
    pub name: String,
    pub query: String,
}

impl Identity {
    /// The caller's views of table `page`, by name.
    pub async fn saved_views(&self, principal: &Principal, page: &str) -> IdentityResult<Vec<SavedView>> {
        let mut conn = self.inner.db.read().await?;
        Ok(on!(conn.conn(), c => sqlx::query_as(
            "SELECT id, name, query FROM console_views WHERE user_id = $1 AND page = $2 ORDER BY name"
        ).bind(principal.user).bind(page).fetch_all(c).await)?)
    }

    /// Saves `query` (already reduced to the table's own fields) as view `name` of table
    /// `page`; a view of the same name is replaced.
    pub async fn save_view(
        &self,
        principal: &Principal,
        page: &str,
        name: &str,
        query: &str,
    ) -> IdentityResult<SavedView> {
        let name = name.trim();
        let mut errors = FieldErrors::new();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            errors.add("name", "invalid_value", format!("use 1 to {MAX_NAME} characters"));
        }
        if query.len() > MAX_QUERY {
            errors.add("query", "too_long", format!("at most {MAX_QUERY} characters"));
        }
        if page.is_empty() || page.len() > MAX_PAGE_KEY || !page.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            errors.add("page", "invalid_value", "a table's key");
        }
        errors.finish().map_err(IdentityError::Validation)?;
        let mut tx = self.inner.db.begin().await?;
        let count: i64 = on!(tx.conn(), c => sqlx::query_scalar(
            "SELECT count(*) FROM console_views WHERE user_id = $1 AND page = $2 AND name <> $3"
        ).bind(principal.user).bind(page).bind(name).fetch_one(c).await)?;
        if count >= MAX_VIEWS_PER_TABLE {
            return Err(IdentityError::Validation(FieldErrors::single(
                "name",
                "too_many",
                format!("keep at most {MAX_VIEWS_PER_TABLE} views of a table; delete one first"),
            )));
        }
        exec!(tx.conn(), c => sqlx::query("DELETE FROM console_views WHERE user_id = $1 AND page = $2 AND name = $3")
            .bind(principal.user).bind(page).bind(name).execute(c).await)?;
        let view = SavedView {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            query: query.to_owned(),
        };
        exec!(tx.conn(), c => sqlx::query(
            "INSERT INTO console_views (id, user_id, page, name, query, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        ).bind(view.id).bind(principal.user).bind(page).bind(&view.name).bind(&view.query)
        .bind(Timestamp::now()).execute(c).await)?;
        tx.commit().await?;
        Ok(view)
    }

    /// Deletes one of the caller's views; another user's is not found.
    pub async fn delete_view(&self, principal: &Principal, id: Uuid) -> IdentityResult<()> {
        let mut tx = self.inner.db.begin().await?;
        let deleted = exec!(tx.conn(), c => sqlx::query("DELETE FROM console_views WHERE id = $1 AND user_id = $2")
            .bind(id).bind(principal.user).execute(c).await)?;
        if deleted == 0 {
            return Err(IdentityError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }
}
