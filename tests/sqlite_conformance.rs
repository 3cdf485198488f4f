//! The provider conformance suite on SQLite: every case on a fresh database file, some
//! also on a memory database.

#[macro_use]
mod conformance;

use reprise::store::sqlite::SqliteProvider;
use reprise::store::SharedProvider;
use tempfile::TempDir;

/// A provider on a new file in a fresh temp dir (kept alive by the returned guard).
async fn file_provider() -> (SharedProvider, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reprise.db");
    let provider: SharedProvider =
        SqliteProvider::open(path.to_str().expect("UTF-8 path"), Default::default())
            .await
            .expect("open the SQLite file");
    (provider, dir)
}

async fn memory_provider() -> (SharedProvider, ()) {
    let provider: SharedProvider = SqliteProvider::in_memory()
        .await
        .expect("open a memory database");
    (provider, ())
}

mod file {
    conformance_suite!(super::file_provider);
}

mod memory {
    conformance_tests!(super::memory_provider =>
        commit::atomic_turn_commit,
        queues::per_instance_message_order,
        queues::events_before_start,
        lifecycle::create_instance_is_idempotent,
        lifecycle::continue_as_new_starts_a_new_execution,
    );
}

/// The SQLite store claims a woken instance (in the completion's own transaction): as many
/// as the claim has room for, here one of the two.
#[tokio::test]
async fn sqlite_completions_claim_as_many_woken_instances_as_there_is_room_for() {
    let (provider, _dir) = file_provider().await;
    assert_eq!(
        conformance::direct_claims::completions_may_claim_the_instances_they_wake(provider).await,
        1
    );
}

/// A row made unreadable (an unknown message kind) sets its instance aside for a minute.
#[tokio::test]
async fn sqlite_unreadable_rows_set_their_instance_aside() {
    use sqlx::Connection;
    let (provider, dir) = file_provider().await;
    let url = format!("sqlite://{}", dir.path().join("reprise.db").display());
    conformance::poison::unreadable_rows_set_their_instance_aside(provider, |unreadable| {
        let url = url.clone();
        async move {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
            let (kind, from) = conformance::poison::unreadable_kind_swap(unreadable);
            sqlx::query(
                "UPDATE orchestrator_queue SET kind = ?1 WHERE instance_id = 'u' AND kind = ?2",
            )
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
