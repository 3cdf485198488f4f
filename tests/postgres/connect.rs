//! Connecting: bad URLs and schema names fail at once, unreachable servers within the
//! timeout, an untrusted certificate at once, and processes connecting to a new schema at
//! once migrate it once.

use std::time::{Duration, Instant};

use reprise::store::postgres::{PostgresOptions, PostgresProvider};
use reprise::store::{Provider, StoreError};

use crate::conformance::start_request;
use crate::{admin, connect_with, database_url, options, unique_schema, SchemaGuard};

fn expect_config<T>(result: Result<T, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::Config(message)) => message,
        Err(other) => panic!("{what}: expected StoreError::Config, got {other:?}"),
        Ok(_) => panic!("{what}: expected StoreError::Config, got a provider"),
    }
}

fn expect_unavailable<T>(result: Result<T, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::Unavailable(message)) => message,
        Err(other) => panic!("{what}: expected StoreError::Unavailable, got {other:?}"),
        Ok(_) => panic!("{what}: expected StoreError::Unavailable, got a provider"),
    }
}

/// Bad URLs and schema names fail at once, naming the problem (never the password).
#[tokio::test]
async fn malformed_urls_and_schema_names_fail_fast_with_a_clear_error() {
    let cases = [
        ("", "the PostgreSQL URL is empty"),
        ("   ", "the PostgreSQL URL is empty"),
        ("sqlite:app.db", "is not a PostgreSQL URL"),
        (
            "mysql://root:hunter2@127.0.0.1/app",
            "is not a PostgreSQL URL",
        ),
        (
            "postgres://user:hunter2@127.0.0.1:notaport/test",
            "invalid PostgreSQL URL",
        ),
        (
            "postgres://user:hunter2@127.0.0.1:5432/test?sslmode=sometimes",
            "sslmode 'sometimes' in the PostgreSQL URL is not a TLS mode",
        ),
        (
            "postgres://user:hunter2@127.0.0.1:5432/test?sslmode=verify-ca&sslrootcert=/nowhere/root.pem",
            "sslrootcert file '/nowhere/root.pem'",
        ),
    ];
    for (url, expected) in cases {
        let started = Instant::now();
        let message = expect_config(
            PostgresProvider::connect(url, PostgresOptions::default()).await,
            url,
        );
        assert!(
            message.contains(expected),
            "'{url}': '{message}' should say '{expected}'"
        );
        assert!(
            !message.contains("hunter2"),
            "'{message}' shows the password"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{url}");
    }

    let url = database_url();
    for (schema, expected) in [
        ("", "is invalid"),
        ("bad-name", "is invalid"),
        ("x\"; DROP TABLE t; --", "is invalid"),
        ("ü", "is invalid"),
        (&"s".repeat(64), "is invalid"),
        ("pg_mine", "is reserved"),
    ] {
        let message = expect_config(
            PostgresProvider::connect(&url, options(schema)).await,
            schema,
        );
        assert!(
            message.contains(expected) && message.contains(schema),
            "schema '{schema}': '{message}'"
        );
    }
}

/// A server that is not there fails within the connect timeout, saying where it looked.
#[tokio::test]
async fn unreachable_servers_fail_fast_with_a_clear_error() {
    assert_eq!(PostgresOptions::default().connect_timeout_ms, 10_000);

    // Nothing listens on port 1: refused at once (not retried until a pool timeout).
    let started = Instant::now();
    let message = expect_unavailable(
        PostgresProvider::connect(
            "postgres://postgres:hunter2@127.0.0.1:1/test",
            PostgresOptions::default(),
        )
        .await,
        "port 1",
    );
    assert!(
        message.contains("cannot connect to PostgreSQL at 127.0.0.1:1/test"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    // An address that never answers: bounded by the connect timeout.
    let started = Instant::now();
    let message = expect_unavailable(
        PostgresProvider::connect(
            "postgres://postgres@10.255.255.1:5432/test",
            PostgresOptions {
                connect_timeout_ms: 1_000,
                ..Default::default()
            },
        )
        .await,
        "blackhole",
    );
    assert!(
        message.contains("cannot connect to PostgreSQL at 10.255.255.1:5432/test"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );

    // A database that does not exist on a server that does.
    let mut url = database_url();
    let path = url.rfind('/').expect("a database in DATABASE_URL");
    url.truncate(path);
    url.push_str("/reprise_no_such_database");
    let message = expect_unavailable(
        PostgresProvider::connect(&url, PostgresOptions::default()).await,
        "missing database",
    );
    assert!(
        message.contains("reprise_no_such_database") && message.contains("does not exist"),
        "{message}"
    );
}

/// A certificate the client does not trust is a configuration error, reported at once with
/// the mode, not an outage retried until the connect timeout.
#[tokio::test]
async fn an_untrusted_server_certificate_fails_at_once_as_a_configuration_error() {
    let url = database_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}sslmode=verify-full");
    let started = Instant::now();
    match PostgresProvider::connect(&url, PostgresOptions::default()).await {
        // A server without TLS fails the same way (the mode cannot be met).
        Err(StoreError::Config(message)) => {
            assert!(
                message.contains("TLS/certificate failure")
                    && message.contains("sslmode=verify-full"),
                "{message}"
            );
        }
        Err(other) => panic!("expected StoreError::Config, got {other:?}"),
        Ok(_) => panic!("a self-signed certificate was trusted without sslrootcert"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

/// Two processes (two pools) starting on one new schema at once both migrate it cleanly.
#[tokio::test]
async fn concurrent_connects_create_and_migrate_a_schema_once() {
    let schema = unique_schema("concurrent_connects");
    let guard = SchemaGuard {
        schema: schema.clone(),
    };
    let (p1, p2, p3) = tokio::join!(
        connect_with(&schema, options(&schema)),
        connect_with(&schema, options(&schema)),
        connect_with(&schema, options(&schema)),
    );
    assert!(p1
        .create_instance(&start_request("x", "Flow", "1"))
        .await
        .unwrap());
    assert_eq!(
        p2.instance("x").await.unwrap().map(|i| i.name),
        Some("Flow".to_owned())
    );
    assert!(!p3
        .create_instance(&start_request("x", "Flow", "1"))
        .await
        .unwrap());
    let mut admin = admin().await;
    let applied: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\"._sqlx_migrations",
        guard.schema
    ))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.path().extension().is_some_and(|e| e == "sql"))
        })
        .count() as i64;
    assert_eq!(applied, migrations, "each migration applied exactly once");
}

/// A pool whose every connection is busy is not an outage: a call waiting longer than the
/// 1.5 s outage bound for a connection keeps its place and succeeds (seen with 300
/// concurrent starts on a busy machine).
#[tokio::test]
async fn a_call_waiting_for_a_busy_pool_is_not_failed_as_unavailable() {
    let schema = unique_schema("busy_pool");
    let _guard = SchemaGuard {
        schema: schema.clone(),
    };
    let provider = connect_with(
        &schema,
        PostgresOptions {
            pool_size: 1,
            ..options(&schema)
        },
    )
    .await;
    // Another session holds the clock lock, so a clock shift holds the pool's only
    // connection until it lets go, 2.5 s later.
    let mut admin = admin().await;
    sqlx::query("BEGIN").execute(&mut admin).await.unwrap();
    sqlx::query(&format!(
        "SELECT pg_advisory_xact_lock(hashtext('reprise_clock:{schema}'))"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let shifting = tokio::spawn({
        let provider = provider.clone();
        async move { provider.shift_clock(0).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let provider = provider.clone();
        async move { provider.now().await }
    });
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    sqlx::query("COMMIT").execute(&mut admin).await.unwrap();
    shifting.await.unwrap().expect("the clock shift");
    let now = waiting.await.unwrap();
    assert!(now.is_ok(), "the call behind the busy connection: {now:?}");
}

/// Thousands of callers sharing one connection wait in turn longer than the outage bound;
/// the connection keeps being handed out, so none of them is failed as unavailable.
#[tokio::test]
async fn many_callers_queueing_for_a_busy_pool_all_get_through() {
    let schema = unique_schema("queueing_pool");
    let _guard = SchemaGuard {
        schema: schema.clone(),
    };
    let provider = connect_with(
        &schema,
        PostgresOptions {
            pool_size: 1,
            ..options(&schema)
        },
    )
    .await;
    let started = Instant::now();
    let calls: Vec<_> = (0..10_000)
        .map(|i| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.instance(&format!("none-{i}")).await })
        })
        .collect();
    for call in calls {
        let result = call.await.unwrap();
        assert!(matches!(result, Ok(None)), "{result:?}");
    }
    eprintln!(
        "10,000 calls on one connection took {:?}",
        started.elapsed()
    );
}
