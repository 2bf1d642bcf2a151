//! Pages of one tenant, under `/console/t/<tenant>/…`, each guarded by the permission
//! of the API route it mirrors.

pub mod members;
