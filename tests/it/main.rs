//! Gatehouse's integration tests: one binary, real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod store_contract;
