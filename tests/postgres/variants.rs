//! PostgreSQL's answers to the conformance cases that leave a choice to the backend or need
//! its SQL.

use reprise::store::{Provider, SharedProvider};
use sqlx::Connection;

use crate::{admin, connect_with, fresh, options, unique_schema, SchemaGuard};

/// The PostgreSQL store claims the instances completions wake in the completion's own
/// statement, up to the room given.
#[tokio::test]
async fn postgres_completions_claim_the_instances_they_wake() {
    let (provider, _guard) = fresh("completions_claim").await;
    assert_eq!(
        crate::conformance::direct_claims::completions_may_claim_the_instances_they_wake(provider)
            .await,
        1
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
    crate::conformance::poison::unreadable_rows_set_their_instance_aside(provider, |unreadable| {
        let schema = schema.clone();
        async move {
            let mut conn = admin().await;
            let (kind, from) = crate::conformance::poison::unreadable_kind_swap(unreadable);
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

/// Turns committed at the same moment share statements: the group committer carried more
/// turns than it ran statements (and the conformance case shows each was fenced alone).
#[tokio::test]
async fn postgres_commits_turns_finishing_together_in_one_statement() {
    let (provider, _guard) = fresh("group_commit").await;
    crate::conformance::fencing::turns_committed_together_are_fenced_one_by_one(provider.clone())
        .await;
    let counters: std::collections::HashMap<_, _> = provider.counters().into_iter().collect();
    assert!(
        counters["store_operations"] > counters["store_transactions"],
        "{counters:?}"
    );
}
