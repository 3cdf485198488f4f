//! What a turn makes of the instance's queued messages: the start, the jobs it hands the
//! driver (history replayed in full or not, then the new arrivals), the late or stale ones
//! it drops without running the code, and a history too new to replay.

use super::*;

fn jobs_json(turn: &Turn) -> String {
    serde_json::to_string(&turn.jobs).unwrap()
}

#[test]
fn start_turn_records_start_and_schedules() {
    let mut h = Vec::new();
    let out = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A","input":{"x":1}}]"#,
    )
    .unwrap();
    assert_eq!(kinds(&h), vec!["ExecutionStarted", "ActivityScheduled"]);
    assert_eq!(out.activities.len(), 1);
    assert_eq!(out.activities[0].input.get(), r#"{"x":1}"#);
    assert_eq!(out.consumed, vec![1]);
    assert_eq!(out.started, Some(("Flow".into(), Some("1.0.0".into()))));
}

#[test]
fn incremental_turn_sends_only_new_jobs_and_full_replay_sends_all() {
    let h = two_step_history();
    let m = [msg(3, completed(2, "8"))];
    let Plan::Run(inc) = plan_of(&h, &m, true) else {
        panic!()
    };
    assert_eq!(inc.replay_count, 0);
    assert_eq!(
        jobs_json(&inc),
        r#"[{"t":"ok","ts":5000,"task":2,"value":8}]"#
    );
    let Plan::Run(mut full) = plan_of(&h, &m, false) else {
        panic!()
    };
    assert_eq!(full.replay_count, 2);
    assert_eq!(
        jobs_json(&full),
        r#"[{"t":"start","ts":1000,"input":{"n":1}},{"t":"ok","ts":1000,"task":1,"value":7},{"t":"ok","ts":5000,"task":2,"value":8}]"#
    );
    // A full replay that reproduces history's commands is accepted; the new ones are written.
    let out = full
        .finish(raw(r#"[{"t":"activity","task":1,"name":"A","input":1},{"t":"activity","task":2,"name":"B","input":"changed input is fine"},{"t":"complete","output":15}]"#))
        .unwrap();
    assert_eq!(
        event_kinds(&out.events),
        vec!["ActivityCompleted", "ExecutionCompleted"]
    );
    assert!(matches!(out.terminal, Some(Terminal::Completed(ref v)) if v.get() == "15"));
}

#[test]
fn late_and_stale_completions_are_dropped_without_running_the_driver() {
    let mut h = Vec::new();
    let first = run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"activity","task":1,"name":"A"},{"t":"timer","task":2,"delayMs":50},{"t":"cancel","task":1}]"#,
    )
    .unwrap();
    // The activity scheduled and cancelled in one turn is never enqueued.
    assert!(first.activities.is_empty());
    assert_eq!(
        kinds(&h),
        vec![
            "ExecutionStarted",
            "ActivityScheduled",
            "TimerCreated",
            "TaskCanceled"
        ]
    );
    let plan = plan_of(
        &h,
        &[
            msg(2, completed(1, "1")),
            msg(
                3,
                Message::ActivityCompleted {
                    execution_id: 0,
                    task: 2,
                    result: p("1"),
                },
            ),
            msg(4, completed(9, "1")),
        ],
        true,
    );
    let Plan::Commit(out) = plan else {
        panic!("expected a commit-only plan")
    };
    assert!(out.events.is_empty());
    assert_eq!(out.consumed, vec![2, 3, 4]);
}

#[test]
fn messages_before_start_wait_and_events_are_kept() {
    let early = msg(1, event("e", "1"));
    assert!(matches!(
        plan_of(&[], std::slice::from_ref(&early), false),
        Plan::NotStarted
    ));
    let Plan::Run(mut turn) = plan_of(&[], &[early, start_msg(2)], false) else {
        panic!()
    };
    assert_eq!(
        jobs_json(&turn),
        r#"[{"t":"start","ts":5000,"input":{"n":1}},{"t":"event","ts":5000,"name":"e","data":1}]"#
    );
    let out = turn.finish(vec![]).unwrap();
    assert_eq!(out.consumed, vec![2, 1]);
    assert_eq!(
        event_kinds(&out.events),
        vec!["ExecutionStarted", "EventRaised"]
    );
}

#[test]
fn finished_execution_drops_messages() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"complete","output":"done"}]"#,
    )
    .unwrap();
    let Plan::Commit(out) = plan_of(&h, &[msg(2, event("e", "1"))], true) else {
        panic!()
    };
    assert!(out.events.is_empty());
    assert_eq!(out.consumed, vec![2]);
}

#[test]
fn a_newer_history_format_is_not_replayed() {
    let mut h = Vec::new();
    run(
        &mut h,
        &[start_msg(1)],
        false,
        r#"[{"t":"wait","task":1,"name":"x"}]"#,
    )
    .unwrap();
    if let Event::ExecutionStarted { format, .. } = &mut h[0].event {
        *format = FORMAT_VERSION + 1;
    }
    let Plan::Unsupported(m) = plan_of(&h, &[msg(2, event("x", "1"))], true) else {
        panic!("a newer format must not be replayed")
    };
    assert_eq!(
        m,
        format!(
            "history format {} is newer than this engine's {FORMAT_VERSION}",
            FORMAT_VERSION + 1
        )
    );
}

/// Open: activity 1, timer 2, children 3 and 4, activity 8. Settled: activity 5, timer 6,
/// child 7.
const EVERY_KIND_COMMANDS: &str = r#"[{"t":"activity","task":1,"name":"A","input":1},
    {"t":"timer","task":2,"delayMs":10},
    {"t":"child","task":3,"name":"Sub","input":null},
    {"t":"child","task":4,"name":"Sub","input":null},
    {"t":"activity","task":5,"name":"B","input":5},
    {"t":"timer","task":6,"delayMs":10},
    {"t":"child","task":7,"name":"Sub","input":null},
    {"t":"activity","task":8,"name":"C","input":8}]"#;

fn tasks_of_every_kind_history() -> Vec<HistoryRow> {
    let mut h = Vec::new();
    run(&mut h, &[start_msg(1)], false, EVERY_KIND_COMMANDS).unwrap();
    run(
        &mut h,
        &[
            msg(2, completed(5, "5")),
            msg(3, timer_fired(1, 6)),
            msg(4, child_completed(1, 7, "7")),
        ],
        true,
        "[]",
    )
    .unwrap();
    h
}

#[test]
fn results_for_another_execution_or_for_tasks_that_are_not_open_are_dropped() {
    let h = tasks_of_every_kind_history();
    assert_eq!(
        kinds(&h)[h.len() - 3..],
        ["ActivityCompleted", "TimerFired", "ChildCompleted"]
    );
    let stale = [
        // Another execution's results for task numbers open in this one.
        Message::ActivityCompleted {
            execution_id: 2,
            task: 1,
            result: p("1"),
        },
        activity_failed(2, 1, "x"),
        timer_fired(2, 2),
        child_completed(2, 3, "3"),
        child_failed(2, 4, "x"),
        // This execution's results for tasks already settled.
        completed(5, "5"),
        activity_failed(1, 5, "x"),
        timer_fired(1, 6),
        child_completed(1, 7, "7"),
        child_failed(1, 7, "x"),
        // Open task numbers of another kind, and an unknown one.
        activity_failed(1, 2, "x"),
        timer_fired(1, 1),
        child_completed(1, 2, "2"),
        child_failed(1, 1, "x"),
        timer_fired(1, 99),
    ];
    for message in stale {
        let described = format!("{message:?}");
        let Plan::Commit(out) = plan_of(&h, &[msg(10, message)], true) else {
            panic!("{described} must be dropped without running the code")
        };
        assert!(out.events.is_empty(), "{described}: {:?}", out.events);
        assert_eq!(out.consumed, vec![10], "{described}");
        assert!(!out.changes_instance(), "{described}");
    }
}

#[test]
fn results_for_open_tasks_of_this_execution_become_jobs_of_every_kind() {
    let h = tasks_of_every_kind_history();
    let arrivals = [
        msg(20, activity_failed(1, 8, "C broke")),
        msg(21, timer_fired(1, 2)),
        msg(22, child_completed(1, 3, r#""three""#)),
        msg(23, child_failed(1, 4, "four broke")),
        msg(24, completed(1, "1")),
        msg(25, event("go", "true")),
    ];
    let Plan::Run(mut turn) = plan_of(&h, &arrivals, false) else {
        panic!("the results must run the code")
    };
    // History replays first (the start, then its three results), then the arrivals.
    assert_eq!(turn.replay_count, 4);
    assert_eq!(
        jobs_json(&turn),
        concat!(
            r#"[{"t":"start","ts":1000,"input":{"n":1}},"#,
            r#"{"t":"ok","ts":1000,"task":5,"value":5},"#,
            r#"{"t":"ok","ts":1000,"task":6,"value":null},"#,
            r#"{"t":"ok","ts":1000,"task":7,"value":7},"#,
            r#"{"t":"err","ts":5000,"task":8,"error":{"message":"C broke"}},"#,
            r#"{"t":"ok","ts":5000,"task":2,"value":null},"#,
            r#"{"t":"ok","ts":5000,"task":3,"value":"three"},"#,
            r#"{"t":"err","ts":5000,"task":4,"error":{"message":"four broke"}},"#,
            r#"{"t":"ok","ts":5000,"task":1,"value":1},"#,
            r#"{"t":"event","ts":5000,"name":"go","data":true}]"#
        )
    );
    let out = turn.finish(raw(EVERY_KIND_COMMANDS)).unwrap();
    assert_eq!(
        event_kinds(&out.events),
        [
            "ActivityFailed",
            "TimerFired",
            "ChildCompleted",
            "ChildFailed",
            "ActivityCompleted",
            "EventRaised"
        ]
    );
    assert_eq!(out.consumed, vec![20, 21, 22, 23, 24, 25]);
    assert!(out.activities.is_empty() && out.timers.is_empty() && out.starts.is_empty());
}

#[test]
fn a_full_replay_whose_arrivals_were_all_dropped_commits_without_running_the_code() {
    let h = two_step_history();
    let Plan::Commit(out) = plan_of(&h, &[msg(3, completed(1, "7"))], false) else {
        panic!("nothing new for the code: commit only")
    };
    assert!(out.events.is_empty());
    assert_eq!(out.consumed, vec![3]);
    assert!(!out.changes_instance());
}
