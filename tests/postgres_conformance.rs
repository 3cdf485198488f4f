//! The provider conformance suite on PostgreSQL, plus PostgreSQL-specific cases (in
//! `postgres/`, one file per concern). Every test runs on its own freshly created schema (`t_<case>_<pid>_<random>`), dropped at the end
//! (kept, and named on stderr, when the test fails). The server is `DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable every test
//! here fails.

#[macro_use]
mod conformance;
mod postgres;

use std::sync::Arc;
use std::time::Duration;

use reprise::store::postgres::{redact_url, PostgresOptions, PostgresProvider};
use reprise::store::SharedProvider;
use sqlx::Connection;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema name of its own for one test: `t_<case>_<pid>_<random>`, at most 63 characters.
fn unique_schema(case: &str) -> String {
    let case: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!(
        "t_{case}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Drops its schema when the test ends (keeps it when the test failed, for inspection).
struct SchemaGuard {
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: schema \"{}\" (if it was created) kept for inspection",
                self.schema
            );
            return;
        }
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let schema = self.schema.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the schema");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&database_url()).await {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    if let Err(e) = sqlx::raw_sql(&sql).execute(&mut conn).await {
                        eprintln!("could not drop schema \"{schema}\": {e}");
                    }
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions {
        schema: Some(schema.to_owned()),
        ..Default::default()
    }
}

async fn connect_with(schema: &str, options: PostgresOptions) -> Arc<PostgresProvider> {
    let url = database_url();
    PostgresProvider::connect(&url, options)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot use PostgreSQL at {} for schema '{schema}' (set DATABASE_URL): {e}",
                redact_url(&url)
            )
        })
}

/// A fresh schema for `case` and a provider on it.
async fn fresh(case: &str) -> (Arc<PostgresProvider>, SchemaGuard) {
    let schema = unique_schema(case);
    let guard = SchemaGuard {
        schema: schema.clone(),
    };
    (connect_with(&schema, options(&schema)).await, guard)
}

/// The suite's factory: the case's name is the test thread's name.
async fn pg_provider() -> (SharedProvider, SchemaGuard) {
    let thread = std::thread::current();
    let case = thread
        .name()
        .and_then(|n| n.rsplit("::").next())
        .unwrap_or("case")
        .to_owned();
    let (provider, guard) = fresh(&case).await;
    (provider, guard)
}

mod pg {
    conformance_suite!(super::pg_provider);
}

async fn admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&database_url())
        .await
        .expect("an admin connection to DATABASE_URL")
}

async fn notified_within(notify: &tokio::sync::Notify, ms: u64) -> bool {
    tokio::time::timeout(Duration::from_millis(ms), notify.notified())
        .await
        .is_ok()
}
