//! HTTP middleware, outermost first: `observe` (request id, access log, metrics),
//! `problem_backstop` (bare error responses from layers become problem documents),
//! security headers, compression, NUL refusal, panic catching, timeout, body limit.

pub mod observe;
pub mod problem_backstop;
pub mod refuse_nul;
pub mod request_id;
pub mod security_headers;
