//! PostgreSQL-only cases, one file per concern. Each test makes its own schema with
//! `crate::fresh` (or `crate::unique_schema` and `crate::connect_with`).

mod connect;
mod notifications;
mod sharing;
mod variants;
