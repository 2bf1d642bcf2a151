//! The query of every cursor-paginated list: `?limit=&cursor=`.

use plinth_core::{Cursor, FieldErrors, PageRequest};
use serde::Deserialize;

use crate::problem::Problem;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page: 1 to 200 (larger values give 200), 50 when absent.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<PageRequest, Problem> {
        page_request(self.limit, self.cursor.as_deref())
    }
}

/// A page request from a list's `limit` and `cursor` parameters.
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> Result<PageRequest, Problem> {
    let after = cursor.map(decode_cursor).transpose()?;
    Ok(PageRequest::new(limit, after))
}

fn decode_cursor(token: &str) -> Result<String, Problem> {
    Cursor::decode(token).ok_or_else(|| {
        Problem::validation(FieldErrors::single(
            "cursor",
            "invalid_value",
            "not a cursor from this list",
        ))
    })
}
