//! Gatehouse's integration tests: one binary, real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod accounts;
mod apps;
mod audit;
mod audit_streams;
mod console;
mod crash;
mod environments;
mod http;
mod idempotency;
mod kek_rotation;
mod keys;
mod mass_rotation;
mod oauth;
mod orgs;
mod pg_crash;
mod plans;
mod products;
mod projections;
mod replay_cli;
mod replay_tools;
mod roles;
mod schemas;
mod secret_scanning;
mod secrets_in_logs;
mod staff_ops;
mod store_concurrency;
mod store_contract;
mod store_processes;
mod tenancy;
mod usage;
mod verification;
mod versions;
mod webhook_workers;
mod webhooks;
