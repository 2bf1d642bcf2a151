//! The platform's pages, under `/console/platform/…`, for platform administrators.

pub mod tenants;
