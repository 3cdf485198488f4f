//! One vocabulary: the lists that Rust, JavaScript, the types and the guide each keep must
//! name the same things.

use std::collections::BTreeSet;

use reprise::engine::lifecycle::Lifecycle;
use reprise::engine::Event;
use reprise::error_code::ErrorCode;

const HISTORY_RS: &str = include_str!("../src/engine/history.rs");
const LIFECYCLE_RS: &str = include_str!("../src/engine/lifecycle.rs");
const ERRORS_JS: &str = include_str!("../lib/errors.js");
const INDEX_D_TS: &str = include_str!("../index.d.ts");
const GUIDE: &str = include_str!("../docs/guide.md");

/// The `'…'` members of a TypeScript string union that starts at `start`.
fn ts_union(start: &str) -> Vec<String> {
    let from = INDEX_D_TS.find(start).expect("the union is in index.d.ts") + start.len();
    let body = &INDEX_D_TS[from..];
    let body = &body[..body.find(';').unwrap()];
    body.split('|')
        .map(|m| m.trim().trim_matches('\'').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// `(variant, string)` pairs of the match arms `Event::Variant { .. } => "string"` in the
/// function starting at `fn_start`.
fn match_arms(source: &str, fn_start: &str) -> Vec<(String, String)> {
    let from = source.find(fn_start).expect("the function exists");
    let body = &source[from..];
    let body = &body[..body.find("\n    }\n").unwrap()];
    body.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("Event::")?;
            let variant = rest.split_whitespace().next()?.to_owned();
            let value = l.split("=> \"").nth(1)?.split('"').next()?.to_owned();
            Some((variant, value))
        })
        .collect()
}

#[test]
fn history_event_kinds_match_the_engine_and_the_types() {
    // `Event::kind` is an exhaustive match, so its arms name every variant.
    let arms = match_arms(HISTORY_RS, "pub fn kind(&self) -> &'static str");
    assert_eq!(
        arms.len(),
        Event::KINDS.len(),
        "Event::KINDS lists every variant"
    );
    for (variant, kind) in &arms {
        assert_eq!(variant, kind, "a history kind is its variant's name");
    }
    let kinds: Vec<&str> = arms.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(kinds, Event::KINDS);
    let typed = ts_union("export interface StoredHistoryEvent {\n  /** Dense per execution, from 1. */\n  eventId: number;\n  kind:");
    assert_eq!(typed, Event::KINDS, "StoredHistoryEvent.kind in index.d.ts");
}

#[test]
fn lifecycle_event_types_match_the_engine_and_the_types() {
    let arms = match_arms(LIFECYCLE_RS, "pub fn of_event(");
    let mut types: BTreeSet<String> = arms.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(
        arms.len(),
        Event::KINDS.len(),
        "every history event has a lifecycle type"
    );
    types.extend(Lifecycle::ATTEMPT_TYPES.iter().map(|t| t.to_string()));
    let typed: BTreeSet<String> = ts_union("export type LifecycleEventType =")
        .into_iter()
        .collect();
    assert_eq!(typed, types, "LifecycleEventType in index.d.ts");
}

#[test]
fn error_codes_match_lib_errors_js_and_the_guide() {
    let js: Vec<(String, String)> = ERRORS_JS
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("['")?;
            let (code, rest) = l.split_once("', '")?;
            Some((code.to_owned(), rest.split('\'').next()?.to_owned()))
        })
        .collect();
    let rust: Vec<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.js_class().to_owned()))
        .collect();
    assert_eq!(
        js, rust,
        "CODES in lib/errors.js, in ErrorCode::ALL's order"
    );

    // The guide's errors section names every code, and each class table row lists codes
    // of that class.
    let start = GUIDE
        .find("## 7. Errors")
        .expect("the guide has an errors section");
    let section = &GUIDE[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    for code in ErrorCode::ALL {
        assert!(
            section.contains(&format!("`{code}`")),
            "the guide's error tables name {code}"
        );
    }
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let class = cells[1].trim_matches('`');
        for code in ErrorCode::ALL {
            if cells[2].contains(&format!("`{code}`")) && class.ends_with("Error") {
                assert_eq!(
                    code.js_class(),
                    class,
                    "the guide's class table row for {class}"
                );
            }
        }
    }
    // Every ERR_ code the guide's section mentions is a known one.
    let known: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    for word in section.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
        if word.starts_with("ERR_") && word.len() > 4 {
            assert!(
                known.contains(word)
                    || ["ERR_NATIVE_BINARY_MISSING", "ERR_REPRISE", "ERR_RUN_FAILED"]
                        .contains(&word),
                "the guide names an unknown code {word}"
            );
        }
    }
}
