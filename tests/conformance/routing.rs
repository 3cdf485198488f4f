//! The claim rule (docs/protocol.md, "The claim rule"): a claim takes only the names its
//! routing has (or the orphans), an instance of a fixed version only from a claimer of that
//! version (unless no runtime has had it for the grace period), and an activity of a
//! session only while no other live owner holds the session, within the claimer's limit of
//! sessions. Also the registry of names behind it: unserved work and when a runtime last
//! had a name.

use std::sync::Arc;

use reprise::engine::ActivityRequest;
use reprise::store::{
    ActivityItem, ActivityResult, KnownHistories, OrchestrationClaim, Orphans, Routing,
    RuntimeRegistration, SessionRule, SharedProvider, TagFilter, UnservedName, ACTIVITY_KIND,
    ORCHESTRATION_KIND,
};

use super::{advance, payload, schedule_activity, start_instance_with, start_request, LONG_LEASE};

/// A runtime recording itself with `stale_after_ms` and the given `(kind, name, version)`s.
fn runtime(id: &str, stale_after_ms: i64, names: &[(&str, &str, &str)]) -> RuntimeRegistration {
    RuntimeRegistration {
        runtime_id: id.to_owned(),
        worker_node_id: None,
        host: "h".to_owned(),
        pid: 1,
        stale_after_ms,
        capabilities: "{}".to_owned(),
        names: names
            .iter()
            .map(|(k, n, v)| ((*k).to_owned(), (*n).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// A routing with these orchestrations (each with its versions) and activities, every tag,
/// sessions owned by `owner`, and no orphans.
fn routing(owner: &str, orchestrations: &[(&str, &[&str])], activities: &[&str]) -> Routing {
    Routing {
        orchestrations: orchestrations
            .iter()
            .map(|(n, vs)| {
                (
                    (*n).to_owned(),
                    vs.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect(),
        activities: activities.iter().map(|a| (*a).to_owned()).collect(),
        tags: TagFilter::Any,
        orphans: Orphans::default(),
        unserved_grace_ms: 60_000,
        not_registered_grace_ms: 0,
        sessions: SessionRule {
            owner: owner.to_owned(),
            ..SessionRule::default()
        },
    }
}

/// Claims every instance `routing` lets `owner` take; their ids, sorted.
async fn claim_ids(p: &SharedProvider, owner: &str, routing: Routing) -> Vec<String> {
    let claim = OrchestrationClaim {
        owner: owner.to_owned(),
        lease_ms: LONG_LEASE,
        max: 100,
        known: KnownHistories::none(),
        routing: Arc::new(routing),
    };
    let items = p
        .claim_orchestrations(&claim)
        .await
        .expect("claim_orchestrations");
    for item in &items {
        // Give it back at once: the cases look only at who may take what.
        p.abandon_orchestration(&item.instance_id, item.generation, 0, false)
            .await
            .expect("abandon_orchestration");
    }
    let mut ids: Vec<String> = items.into_iter().map(|i| i.instance_id).collect();
    ids.sort();
    ids
}

/// Claims up to `max` activities `routing` lets its session owner take.
async fn claim_acts(p: &SharedProvider, max: usize, routing: &Routing) -> Vec<ActivityItem> {
    let mut items = p
        .claim_activities(&routing.sessions.owner, LONG_LEASE, max, routing)
        .await
        .expect("claim_activities");
    items.sort_by_key(|i| i.task);
    items
}

fn tasks(items: &[ActivityItem]) -> Vec<u32> {
    items.iter().map(|i| i.task).collect()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// An activity "Act" of session `session` (none: a plain activity).
fn session_activity(task: u32, session: Option<&str>) -> ActivityRequest {
    ActivityRequest {
        task,
        name: "Act".to_owned(),
        input: payload("null"),
        retry: None,
        session_id: session.map(str::to_owned),
        tag: None,
        orchestration: "Flow".to_owned(),
        orchestration_version: Some("1.0.0".to_owned()),
    }
}

/// Starts instance `id` of "Flow" with these activities queued.
async fn queue_session_activities(p: &SharedProvider, id: &str, rows: &[(u32, Option<&str>)]) {
    start_instance_with(p, id, "Flow", |o| {
        for (task, session) in rows {
            o.activities.push(session_activity(*task, *session));
        }
    })
    .await;
}

async fn complete(p: &SharedProvider, items: &[ActivityItem]) {
    for item in items {
        assert!(p
            .complete_activity(item, ActivityResult::Completed(payload("null")))
            .await
            .expect("complete_activity"));
    }
}

/// A session rule for `owner`: at most `max` sessions, free after `idle_ms` unused.
fn sessions(owner: &str, max: u32, idle_ms: i64) -> SessionRule {
    SessionRule {
        owner: owner.to_owned(),
        max,
        idle_ms,
    }
}

/// A routing for activity "Act" with `rule`.
fn act_routing(rule: SessionRule) -> Routing {
    Routing {
        sessions: rule,
        ..routing("", &[], &["Act"])
    }
}

pub async fn claims_take_only_the_claimers_names(p: SharedProvider) {
    // Activities first (their instance's setup claim must be the only claimable one).
    start_instance_with(&p, "acts", "Host", |o| {
        schedule_activity(o, 1, "Ax", "null");
        schedule_activity(o, 2, "Bx", "null");
    })
    .await;
    for (id, name) in [("a", "A"), ("b", "B")] {
        assert!(p
            .create_instance(&start_request(id, name, "null"))
            .await
            .unwrap());
    }

    assert_eq!(claim_ids(&p, "R", routing("R", &[], &[])).await, ids(&[]));
    assert_eq!(
        claim_ids(&p, "R", routing("R", &[("A", &[])], &[])).await,
        ids(&["a"])
    );
    assert_eq!(
        claim_ids(&p, "R", routing("R", &[("B", &[])], &[])).await,
        ids(&["b"])
    );
    assert_eq!(
        claim_ids(&p, "R", routing("R", &[("C", &[])], &["A", "B"])).await,
        ids(&[]),
        "activity names do not claim instances"
    );
    let orphan_b = Routing {
        orphans: Orphans {
            orchestrations: vec!["B".to_owned()],
            activities: vec![],
        },
        ..routing("R", &[], &[])
    };
    // Orphans' work is claimed only once older than the not-registered grace period.
    let young = Routing {
        not_registered_grace_ms: 3_600_000,
        ..orphan_b.clone()
    };
    assert_eq!(claim_ids(&p, "R", young).await, ids(&[]), "too young");
    assert_eq!(claim_ids(&p, "R", orphan_b).await, ids(&["b"]));
    assert_eq!(
        claim_ids(&p, "R", routing("R", &[("A", &[]), ("B", &[])], &[])).await,
        ids(&["a", "b"])
    );

    // Activities: each claim takes only its names.
    let none = claim_acts(&p, 100, &routing("W", &[("A", &[]), ("B", &[])], &[])).await;
    assert_eq!(tasks(&none), Vec::<u32>::new(), "no activity names");
    let ax = claim_acts(&p, 100, &routing("W", &[], &["Ax"])).await;
    assert_eq!(tasks(&ax), vec![1]);
    assert_eq!(ax[0].name, "Ax");
    let bx = claim_acts(&p, 100, &routing("W", &[], &["Bx", "Cx"])).await;
    assert_eq!(tasks(&bx), vec![2]);
    assert_eq!(bx[0].name, "Bx");
    for item in ax.iter().chain(&bx) {
        p.abandon_activity(item, 0).await.unwrap();
    }
    let orphan_bx = Routing {
        orphans: Orphans {
            orchestrations: vec![],
            activities: vec!["Bx".to_owned()],
        },
        ..routing("W", &[], &[])
    };
    let young = Routing {
        not_registered_grace_ms: 3_600_000,
        ..orphan_bx.clone()
    };
    assert!(claim_acts(&p, 100, &young).await.is_empty(), "too young");
    let orphans = claim_acts(&p, 100, &orphan_bx).await;
    assert_eq!(tasks(&orphans), vec![2], "an orphan name is claimed");
    let rest = claim_acts(&p, 100, &routing("W", &[], &["Ax", "Bx"])).await;
    assert_eq!(tasks(&rest), vec![1], "Bx is leased, Ax is free");
}

pub async fn a_fixed_version_routes_to_claimers_of_that_version(p: SharedProvider) {
    // The runtime that has V 2.0.0, recorded before the instances exist (attaching to
    // SQLite releases every lease and empties the registry of runtimes).
    p.attach_runtime(
        &runtime("other", 60_000, &[(ORCHESTRATION_KIND, "V", "2.0.0")]),
        None,
    )
    .await
    .unwrap();
    for (id, version) in [("v2", Some("2.0.0")), ("v9", Some("9.9.9")), ("vn", None)] {
        let mut start = start_request(id, "V", "null");
        start.version = version.map(str::to_owned);
        assert!(p.create_instance(&start).await.unwrap());
    }

    let v1 = || routing("R", &[("V", &["1.0.0"])], &[]);
    assert_eq!(
        claim_ids(&p, "R", v1()).await,
        ids(&["v9", "vn"]),
        "2.0.0 is another live runtime's; 9.9.9 no runtime ever had (to be failed as not \
         registered); an unfixed version is anyone's"
    );
    assert_eq!(
        claim_ids(&p, "R", routing("R", &[("V", &["1.0.0", "2.0.0"])], &[])).await,
        ids(&["v2", "v9", "vn"])
    );
    assert_eq!(
        claim_ids(&p, "R", routing("R", &[("W", &["2.0.0"])], &[])).await,
        ids(&[]),
        "the version alone claims nothing"
    );

    // The last runtime that had 2.0.0 stopped a while ago: within the grace period its
    // instances wait for it, after it they are anyone's to fail.
    advance(&p, 61_000).await;
    let patient = Routing {
        unserved_grace_ms: 120_000,
        ..v1()
    };
    assert_eq!(claim_ids(&p, "R", patient).await, ids(&["v9", "vn"]));
    assert_eq!(claim_ids(&p, "R", v1()).await, ids(&["v2", "v9", "vn"]));
}

pub async fn unserved_work_and_last_registered_follow_the_registry_of_names(p: SharedProvider) {
    start_instance_with(&p, "host", "Host", |o| {
        schedule_activity(o, 1, "GoneAct", "null")
    })
    .await;
    assert!(p
        .create_instance(&start_request("g", "Gone", "null"))
        .await
        .unwrap());
    let unserved = |live_ms: i64| {
        let p = p.clone();
        async move {
            let work = p.unserved_work(live_ms).await.expect("unserved_work");
            let mut names = work.names;
            names.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
            (names, work.now)
        }
    };
    let name = |kind: &str, name: &str, last_seen_at: Option<i64>| UnservedName {
        kind: kind.to_owned(),
        name: name.to_owned(),
        last_seen_at,
        waiting: 1,
    };

    let (names, now) = unserved(1_000).await;
    assert!(now > 0, "the store's clock");
    assert_eq!(
        names,
        vec![
            name(ACTIVITY_KIND, "GoneAct", None),
            name(ORCHESTRATION_KIND, "Gone", None),
        ],
        "no runtime ever had them"
    );
    assert_eq!(
        p.last_registered(ORCHESTRATION_KIND, "Gone", None)
            .await
            .unwrap(),
        None
    );

    let rt = runtime(
        "R",
        600_000,
        &[
            (ORCHESTRATION_KIND, "Gone", "1.0.0"),
            (ACTIVITY_KIND, "GoneAct", ""),
        ],
    );
    p.attach_runtime(&rt, None).await.unwrap();
    assert_eq!(
        unserved(1_000).await.0,
        Vec::<UnservedName>::new(),
        "a live runtime has them"
    );
    let seen = p
        .last_registered(ORCHESTRATION_KIND, "Gone", None)
        .await
        .unwrap()
        .expect("recorded by attach_runtime");
    assert!(seen > 0 && seen <= p.now().await.unwrap());
    assert_eq!(
        p.last_registered(ORCHESTRATION_KIND, "Gone", Some("1.0.0"))
            .await
            .unwrap(),
        Some(seen)
    );
    assert_eq!(
        p.last_registered(ORCHESTRATION_KIND, "Gone", Some("2.0.0"))
            .await
            .unwrap(),
        None,
        "filtered by version"
    );
    assert_eq!(
        p.last_registered(ACTIVITY_KIND, "Gone", None)
            .await
            .unwrap(),
        None,
        "filtered by kind"
    );
    let act_seen = p
        .last_registered(ACTIVITY_KIND, "GoneAct", None)
        .await
        .unwrap()
        .expect("recorded by attach_runtime");

    advance(&p, 5_000).await;
    assert_eq!(
        unserved(1_000).await.0,
        vec![
            name(ACTIVITY_KIND, "GoneAct", Some(act_seen)),
            name(ORCHESTRATION_KIND, "Gone", Some(seen)),
        ],
        "no runtime had them within the last second"
    );
    assert_eq!(
        unserved(10_000).await.0,
        Vec::<UnservedName>::new(),
        "one had them within ten seconds"
    );

    p.heartbeat(&rt, false).await.unwrap();
    assert_eq!(
        unserved(1_000).await.0,
        Vec::<UnservedName>::new(),
        "a heartbeat records them"
    );
    let again = p
        .last_registered(ORCHESTRATION_KIND, "Gone", Some("1.0.0"))
        .await
        .unwrap()
        .expect("still recorded");
    assert!(again >= seen + 5_000, "refreshed by the heartbeat");
}

pub async fn a_session_belongs_to_one_claimer_at_a_time(p: SharedProvider) {
    // Both owners alive throughout (SQLite's attach empties the registry of runtimes, so
    // the second records itself by heartbeat).
    p.attach_runtime(&runtime("O1", 600_000, &[]), None)
        .await
        .unwrap();
    p.heartbeat(&runtime("O2", 600_000, &[]), false)
        .await
        .unwrap();
    queue_session_activities(
        &p,
        "s",
        &[
            (1, Some("s1")),
            (2, Some("s1")),
            (3, None),
            (4, Some("s1")),
            (5, Some("s1")),
        ],
    )
    .await;
    let o1 = act_routing(sessions("O1", 10, 10_000));
    let o2 = act_routing(sessions("O2", 10, 10_000));

    let first = claim_acts(&p, 1, &o1).await;
    assert_eq!(tasks(&first), vec![1], "O1 acquires s1");
    assert_eq!(first[0].session_id.as_deref(), Some("s1"));
    assert_eq!(
        tasks(&claim_acts(&p, 100, &o2).await),
        vec![3],
        "O2 takes the plain activity, none of O1's session"
    );
    let second = claim_acts(&p, 1, &o1).await;
    assert_eq!(tasks(&second), vec![2], "O1 takes more of its own session");

    complete(&p, &first).await;
    complete(&p, &second).await;
    assert_eq!(
        tasks(&claim_acts(&p, 100, &o2).await),
        Vec::<u32>::new(),
        "nothing of s1 runs, but O1 used it within its idle timeout"
    );

    advance(&p, 11_000).await;
    let taken = claim_acts(&p, 1, &o2).await;
    assert_eq!(tasks(&taken), vec![4], "s1 was idle: O2 acquires it");
    assert_eq!(
        tasks(&claim_acts(&p, 100, &o1).await),
        Vec::<u32>::new(),
        "s1 is O2's now"
    );
    assert_eq!(tasks(&claim_acts(&p, 100, &o2).await), vec![5]);
}

pub async fn max_sessions_limits_new_sessions(p: SharedProvider) {
    p.attach_runtime(&runtime("M", 600_000, &[]), None)
        .await
        .unwrap();
    queue_session_activities(
        &p,
        "m",
        &[(1, Some("s1")), (2, Some("s2")), (3, Some("s3"))],
    )
    .await;
    let m = act_routing(sessions("M", 2, 10_000));

    let held = claim_acts(&p, 100, &m).await;
    assert_eq!(tasks(&held), vec![1, 2], "two sessions, s3 waits");
    assert_eq!(
        tasks(&claim_acts(&p, 100, &m).await),
        Vec::<u32>::new(),
        "s1 and s2 run: no room for s3"
    );
    complete(&p, &held).await;
    assert_eq!(
        tasks(&claim_acts(&p, 100, &m).await),
        Vec::<u32>::new(),
        "s1 and s2 are still held within the idle timeout"
    );
    advance(&p, 11_000).await;
    p.heartbeat(&runtime("M", 600_000, &[]), false)
        .await
        .unwrap();
    let third = claim_acts(&p, 100, &m).await;
    assert_eq!(tasks(&third), vec![3], "s1 and s2 went idle: room for s3");
    assert_eq!(third[0].session_id.as_deref(), Some("s3"));
}

pub async fn a_dead_owners_session_is_free(p: SharedProvider) {
    let dying = runtime("D", 5_000, &[]);
    let live = runtime("L", 600_000, &[]);
    p.attach_runtime(&dying, None).await.unwrap();
    p.heartbeat(&live, false).await.unwrap();
    queue_session_activities(&p, "d", &[(1, Some("s1"))]).await;
    let d = act_routing(sessions("D", 10, 600_000));
    let l = act_routing(sessions("L", 10, 600_000));

    let item = claim_acts(&p, 100, &d).await;
    assert_eq!(tasks(&item), vec![1]);
    p.abandon_activity(&item[0], 0).await.unwrap();
    p.heartbeat(&dying, false).await.unwrap();
    assert_eq!(
        tasks(&claim_acts(&p, 100, &l).await),
        Vec::<u32>::new(),
        "D is alive and used s1 within its idle timeout"
    );

    advance(&p, 6_000).await;
    p.heartbeat(&live, false).await.unwrap();
    let taken = claim_acts(&p, 100, &l).await;
    assert_eq!(
        tasks(&taken),
        vec![1],
        "D's heartbeat is stale: its session is free"
    );
    assert_eq!(taken[0].session_id.as_deref(), Some("s1"));
    assert_eq!(
        tasks(&claim_acts(&p, 100, &d).await),
        Vec::<u32>::new(),
        "the row is L's"
    );
}
