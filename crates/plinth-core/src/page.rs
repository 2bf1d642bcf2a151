//! Cursor pagination. A cursor is an opaque, URL-safe token that encodes the sort key
//! of the last item returned; clients pass it back unchanged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::FieldErrors;

pub const DEFAULT_PAGE_LIMIT: u32 = 50;
pub const MAX_PAGE_LIMIT: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn encode(raw: &str) -> Self {
        Cursor(URL_SAFE_NO_PAD.encode(raw.as_bytes()))
    }

    /// The decoded sort key, or `None` when the token was not produced by `encode`.
    pub fn decode(token: &str) -> Option<String> {
        if token.len() > 512 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
        String::from_utf8(bytes).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A bounded page request, built once at the edge from `?limit=&cursor=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<String>,
}

impl PageRequest {
    pub fn new(limit: Option<u32>, after: Option<String>) -> Self {
        Self {
            limit: limit.unwrap_or(DEFAULT_PAGE_LIMIT).clamp(1, MAX_PAGE_LIMIT),
            after,
        }
    }

    /// The key after which an ascending text-keyed page starts: `""` on the first page,
    /// which sorts before every non-empty key. One `key > $n` then serves every page and
    /// stays an index range (`($n IS NULL OR key > $n)` would make the database scan from
    /// the start on deep pages).
    pub fn after_key(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }

    /// The id before which a newest-first page of an id-ordered list starts: the greatest
    /// UUID on the first page (see [`Self::after_key`]).
    pub fn before_id(&self) -> Result<uuid::Uuid, FieldErrors> {
        Ok(self.after_id()?.unwrap_or(uuid::Uuid::max()))
    }

    /// The id after which an oldest-first page starts: the nil UUID on the first page.
    pub fn after_id_or_nil(&self) -> Result<uuid::Uuid, FieldErrors> {
        Ok(self.after_id()?.unwrap_or(uuid::Uuid::nil()))
    }

    /// The id carried by the cursor of an id-ordered list; a cursor holding something
    /// else was not made by that list.
    pub fn after_id(&self) -> Result<Option<uuid::Uuid>, FieldErrors> {
        self.after
            .as_deref()
            .map(|cursor| {
                cursor
                    .parse::<uuid::Uuid>()
                    .map_err(|_| FieldErrors::single("cursor", "invalid_value", "not a cursor from this list"))
            })
            .transpose()
    }
}

/// One page of a list. `next_cursor` is absent on the last page; pass it back as
/// `?cursor=` for the next one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Pages a whole, bounded collection held in memory, in the order of `key` (which
    /// must be unique): the items after the cursor's key, at most `limit` of them.
    pub fn from_sorted(mut items: Vec<T>, page: &PageRequest, key: impl Fn(&T) -> String) -> Self {
        items.sort_by_key(|item| key(item));
        let rows: Vec<T> = items
            .into_iter()
            .filter(|item| {
                page.after
                    .as_ref()
                    .is_none_or(|after| key(item).as_str() > after.as_str())
            })
            .take(page.limit as usize + 1)
            .collect();
        Self::from_overfetch(rows, page.limit, key)
    }

    /// Builds a page from `limit + 1` fetched rows: the extra row only says whether
    /// another page exists.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|last| Cursor::encode(&key(last)).0)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_clamped() {
        assert_eq!(PageRequest::new(Some(0), None).limit, 1);
        assert_eq!(PageRequest::new(Some(10_000), None).limit, MAX_PAGE_LIMIT);
        assert_eq!(PageRequest::new(None, None).limit, DEFAULT_PAGE_LIMIT);
    }

    #[test]
    fn overfetch_sets_cursor_only_when_more_rows_exist() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            Cursor::decode(page.next_cursor.as_deref().unwrap()).as_deref(),
            Some("2")
        );
        let last = Page::from_overfetch(vec![1, 2], 2, |n| n.to_string());
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn a_sorted_collection_is_paged_after_the_cursor() {
        let all = vec!["c", "a", "e", "b", "d"];
        let first = Page::from_sorted(all.clone(), &PageRequest::new(Some(2), None), |s| s.to_string());
        assert_eq!(first.items, vec!["a", "b"]);
        let after = Cursor::decode(first.next_cursor.as_deref().unwrap());
        let second = Page::from_sorted(all.clone(), &PageRequest::new(Some(2), after), |s| s.to_string());
        assert_eq!(second.items, vec!["c", "d"]);
        let after = Cursor::decode(second.next_cursor.as_deref().unwrap());
        let last = Page::from_sorted(all, &PageRequest::new(Some(2), after), |s| s.to_string());
        assert_eq!(last.items, vec!["e"]);
        assert!(last.next_cursor.is_none());
    }

    #[test]
    fn garbage_cursor_is_rejected() {
        assert_eq!(Cursor::decode("%%%"), None);
    }
}
