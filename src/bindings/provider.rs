//! `NativeProvider`: opening a store.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::{json_arg, store_err};
use crate::store::postgres::{PostgresOptions, PostgresProvider};
use crate::store::sqlite::{SqliteOptions, SqliteProvider};
use crate::store::SharedProvider;

#[napi]
pub struct NativeProvider {
    pub(super) inner: SharedProvider,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SqliteOptionsIn {
    #[serde(default)]
    synchronous_full: bool,
    unknown_event_ttl_ms: Option<i64>,
}

/// Opens (creating if needed) a SQLite database file. `options` is JSON, already validated
/// by the JavaScript layer.
#[napi]
pub async fn open_sqlite(url: String, options: String) -> Result<NativeProvider> {
    let o: SqliteOptionsIn = json_arg(&options)?;
    let provider = SqliteProvider::open(
        &url,
        SqliteOptions {
            synchronous_full: o.synchronous_full,
            unknown_event_ttl_ms: o.unknown_event_ttl_ms,
        },
    )
    .await
    .map_err(store_err)?;
    Ok(NativeProvider { inner: provider })
}

#[napi]
pub async fn open_sqlite_in_memory() -> Result<NativeProvider> {
    let provider = SqliteProvider::in_memory().await.map_err(store_err)?;
    Ok(NativeProvider { inner: provider })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PostgresOptionsIn {
    pool_size: Option<u32>,
    poll_interval_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    unknown_event_ttl_ms: Option<i64>,
    create_schema: Option<bool>,
}

/// Connects to PostgreSQL on `schema` (default `public`, created if missing) and migrates
/// it. `options` is JSON, already validated by the JavaScript layer.
#[napi]
pub async fn open_postgres(
    url: String,
    schema: Option<String>,
    options: String,
) -> Result<NativeProvider> {
    let o: PostgresOptionsIn = json_arg(&options)?;
    let d = PostgresOptions::default();
    let provider = PostgresProvider::connect(
        &url,
        PostgresOptions {
            schema,
            pool_size: o.pool_size.unwrap_or(d.pool_size),
            poll_interval_ms: o.poll_interval_ms.unwrap_or(d.poll_interval_ms),
            connect_timeout_ms: o.connect_timeout_ms.unwrap_or(d.connect_timeout_ms),
            unknown_event_ttl_ms: o.unknown_event_ttl_ms.unwrap_or(d.unknown_event_ttl_ms),
            create_schema: o.create_schema.unwrap_or(d.create_schema),
        },
    )
    .await
    .map_err(store_err)?;
    Ok(NativeProvider { inner: provider })
}
