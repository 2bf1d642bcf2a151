//! Shared vocabulary of Plinth: identifiers, timestamps, configuration, the tenant
//! scope and pagination. Nothing here performs I/O.

pub mod catalogue;
pub mod config;
pub mod id;
pub mod page;
pub mod proxy;
pub mod scope;
pub mod time;
pub mod validation;

pub use id::*;
pub use page::{Cursor, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, PageRequest};
pub use scope::{Actor, ActorKind};
pub use time::Timestamp;
pub use validation::{FieldError, FieldErrors};
