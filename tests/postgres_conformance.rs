//! The provider conformance suite on PostgreSQL, plus PostgreSQL-specific cases. Every test
//! runs on its own freshly created schema (`t_<case>_<pid>_<random>`), dropped at the end
//! (kept, and named on stderr, when the test fails). The server is `DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable every test
//! here fails.

#[macro_use]
mod conformance;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::{
    claim_only, event_message, kinds, schedule_activity, start_outcome, start_request, turn_commit,
    LONG_LEASE,
};
use reprise::store::postgres::{application_name, redact_url, PostgresOptions, PostgresProvider};
use reprise::store::{Provider, SharedProvider, StoreError};
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

// ---------------------------------------------------------------------------------------
// PostgreSQL-specific cases
// ---------------------------------------------------------------------------------------

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

/// Two schemas share nothing: instances, ids, queues.
#[tokio::test]
async fn schemas_are_isolated() {
    let (a, _ga) = fresh("iso_a").await;
    let (b, _gb) = fresh("iso_b").await;
    let (a, b): (SharedProvider, SharedProvider) = (a, b);

    assert!(a
        .create_instance(&start_request("same", "InA", "1"))
        .await
        .unwrap());
    assert!(b.instance("same").await.unwrap().is_none());
    assert!(b
        .claim_orchestrations("B", LONG_LEASE, 100)
        .await
        .unwrap()
        .is_empty());
    assert!(
        b.create_instance(&start_request("same", "InB", "2"))
            .await
            .unwrap(),
        "the id is free in the other schema"
    );
    a.enqueue("same", &event_message("onlyA", "1"))
        .await
        .unwrap();

    let ia = claim_only(&a, "A", LONG_LEASE, "same").await;
    assert_eq!(kinds(&ia), vec!["Start", "Event"]);
    assert_eq!(ia.name, "InA");
    let ib = claim_only(&b, "B", LONG_LEASE, "same").await;
    assert_eq!(kinds(&ib), vec!["Start"]);
    assert_eq!(ib.name, "InB");

    let mut outcome = start_outcome(&ia);
    schedule_activity(&mut outcome, 1, "Work", "0");
    a.commit_turn(turn_commit(&ia, outcome)).await.unwrap();
    assert!(b
        .claim_activities("W", LONG_LEASE, 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        a.claim_activities("W", LONG_LEASE, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(b.history("same", None).await.unwrap().is_empty());
    assert_eq!(a.history("same", None).await.unwrap().len(), 2);
}

/// A commit on one provider wakes the other providers on the same schema (other
/// processes, as far as the database can tell), and nobody on another schema.
#[tokio::test]
async fn notifications_reach_other_providers_on_the_same_schema_only() {
    let (a1, guard) = fresh("notify").await;
    let a2 = connect_with(&guard.schema, options(&guard.schema)).await;
    let (b, _gb) = fresh("notify_other").await;

    // The runtime's connections can be found by application_name.
    let mut admin = admin().await;
    let listeners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(application_name(&guard.schema))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        listeners, 2,
        "both providers' LISTEN connections are named (and the other schema's are not)"
    );

    let watch = a2.wakers().watch("n1");
    let changed = watch.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    assert!(a1
        .create_instance(&start_request("n1", "Flow", "null"))
        .await
        .unwrap());
    assert!(
        notified_within(&a2.wakers().orchestrations, 5_000).await,
        "new work wakes the other provider's dispatcher"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(5), changed)
            .await
            .is_ok(),
        "a created instance wakes the other provider's watchers"
    );

    let item = claim_only(&(a1.clone() as SharedProvider), "A", LONG_LEASE, "n1").await;
    let mut outcome = start_outcome(&item);
    schedule_activity(&mut outcome, 1, "Work", "0");
    a1.commit_turn(turn_commit(&item, outcome)).await.unwrap();
    assert!(
        notified_within(&a2.wakers().activities, 5_000).await,
        "a new activity wakes the other provider's workers"
    );

    assert!(
        !notified_within(&b.wakers().orchestrations, 500).await,
        "another schema hears nothing"
    );
    assert!(!notified_within(&b.wakers().activities, 10).await);
}

/// When the LISTEN connection drops, the provider reconnects and signals everything once
/// (notifications sent meanwhile are lost), and notifications flow again afterwards.
#[tokio::test]
async fn listener_reconnect_signals_everything_and_resumes() {
    let (a1, guard) = fresh("relisten").await;
    let a2 = connect_with(&guard.schema, options(&guard.schema)).await;
    let watch = a2.wakers().watch("w");
    let changed = watch.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();

    let mut admin = admin().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(application_name(&guard.schema))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(
        killed,
        vec![true, true],
        "both providers' LISTEN connections"
    );

    assert!(
        notified_within(&a2.wakers().orchestrations, 10_000).await,
        "a reconnect wakes the dispatcher once"
    );
    assert!(notified_within(&a2.wakers().activities, 1_000).await);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), changed)
            .await
            .is_ok(),
        "a reconnect wakes every watcher"
    );

    // Notifications flow again (the sender's pool lost nothing; the listener is back).
    let mut delivered = false;
    for attempt in 0..20 {
        a1.enqueue(&format!("later{attempt}"), &event_message("e", "1"))
            .await
            .unwrap();
        if notified_within(&a2.wakers().orchestrations, 500).await {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "notifications resume after the reconnect");
}

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
            "invalid PostgreSQL URL",
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

/// Claimers on two pools over one schema, racing, never get the same instance or activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_providers_claiming_concurrently_never_share_work() {
    const N: usize = 240;
    let (p1, guard) = fresh("concurrent_claims").await;
    let small = PostgresOptions {
        pool_size: 4,
        ..options(&guard.schema)
    };
    let p2 = connect_with(&guard.schema, small).await;
    let providers: [SharedProvider; 2] = [p1, p2];
    for i in 0..N {
        assert!(providers[i % 2]
            .create_instance(&start_request(&format!("i{i:03}"), "Flow", "null"))
            .await
            .unwrap());
    }

    // Every claimer commits the first turn (with one activity) of what it claimed.
    let mut claimers = tokio::task::JoinSet::new();
    for c in 0..6 {
        let p = providers[c % 2].clone();
        claimers.spawn(async move {
            let owner = format!("C{c}");
            let mut mine = Vec::new();
            loop {
                let items = p.claim_orchestrations(&owner, LONG_LEASE, 7).await.unwrap();
                if items.is_empty() {
                    break;
                }
                for item in items {
                    let mut outcome = start_outcome(&item);
                    schedule_activity(&mut outcome, 1, "Work", "0");
                    p.commit_turn(turn_commit(&item, outcome)).await.unwrap();
                    mine.push(item.instance_id);
                }
            }
            mine
        });
    }
    let mut seen = HashSet::new();
    while let Some(mine) = claimers.join_next().await {
        for id in mine.unwrap() {
            assert!(seen.insert(id.clone()), "instance '{id}' was claimed twice");
        }
    }
    assert_eq!(seen.len(), N, "every instance was claimed");

    let mut workers = tokio::task::JoinSet::new();
    for c in 0..6 {
        let p = providers[c % 2].clone();
        workers.spawn(async move {
            let owner = format!("W{c}");
            let mut mine = Vec::new();
            loop {
                let items = p.claim_activities(&owner, LONG_LEASE, 5).await.unwrap();
                if items.is_empty() {
                    break;
                }
                mine.extend(items.into_iter().map(|i| i.seq));
            }
            mine
        });
    }
    let mut seqs = HashSet::new();
    while let Some(mine) = workers.join_next().await {
        for seq in mine.unwrap() {
            assert!(seqs.insert(seq), "activity {seq} was claimed twice");
        }
    }
    assert_eq!(seqs.len(), N, "every activity was claimed");
    drop(guard);
}

/// The store's clock is the database's.
#[tokio::test]
async fn the_clock_is_the_databases() {
    let (p, _guard) = fresh("clock").await;
    let mut admin = admin().await;
    let db: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    let store = p.now().await.unwrap();
    assert!((store - db).abs() < 2_000, "store {store} vs database {db}");
    assert_eq!(
        p.foreign_commit_poll(),
        Some(Duration::from_millis(
            PostgresOptions::default().poll_interval_ms
        )),
        "polling stays as a fallback, at the configured interval"
    );
}

/// The PostgreSQL store records completions without claiming the instances they wake: the
/// dispatcher claims them.
#[tokio::test]
async fn postgres_completions_claim_no_instance() {
    let (provider, _guard) = fresh("completions_claim").await;
    assert_eq!(
        conformance::direct_claims::completions_may_claim_the_instances_they_wake(provider).await,
        0
    );
}

/// A row made unreadable (an unknown message kind) sets its instance aside for a minute.
#[tokio::test]
async fn postgres_unreadable_rows_set_their_instance_aside() {
    let schema = unique_schema("unreadable");
    let _guard = SchemaGuard {
        schema: schema.clone(),
    };
    let provider: SharedProvider = connect_with(&schema, options(&schema)).await;
    conformance::poison::unreadable_rows_set_their_instance_aside(provider, |unreadable| {
        let schema = schema.clone();
        async move {
            let mut conn = admin().await;
            let (kind, from) = conformance::poison::unreadable_kind_swap(unreadable);
            sqlx::query(&format!(
                "UPDATE \"{schema}\".orchestrator_queue SET kind = $1 WHERE instance_id = 'u' AND kind = $2"
            ))
            .bind(kind)
            .bind(from)
            .execute(&mut conn)
            .await
            .expect("update");
            conn.close().await.expect("close");
        }
    })
    .await;
}
