//! Integration tests of the HTTP server: the real server on a random port, against a
//! fresh SQLite file, and against a fresh PostgreSQL database when
//! `PLINTH_TEST_POSTGRES_URL` is set. One test binary; modules mirror the routes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod api_keys;
mod audit;
mod auth;
mod console;
mod events;
mod export;
mod flows;
mod health;
mod isolation;
mod lifecycle;
mod live_events;
mod malformed_input;
mod mfa;
mod middleware;
mod openapi;
mod pagination;
mod passkeys;
mod policies;
mod portals;
mod record_everything;
mod routes;
mod setup;
mod support;
mod tenants;
mod tokens;
mod webhooks;
