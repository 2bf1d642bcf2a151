//! First-run setup: create the first super-admin with the one-time link `serve` prints.

pub mod api;
pub mod page;
