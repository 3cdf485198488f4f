//! How each public face reads the stored status: one table. The generator API keeps its
//! contract (an instance is `Running`, `Completed` or `Failed`; a canceled one is `Failed`
//! with `canceled: <reason>`); the CLI shows and filters on the stored statuses themselves.

use crate::store::StoredStatus;
pub use crate::store::GENERATOR_FACE;

/// The status the generator API shows for a stored one (an unknown one shows as stored).
pub fn generator_status(stored: &str) -> &str {
    StoredStatus::parse(stored).map_or(stored, |s| s.generator_face())
}

/// The stored statuses a filter on `status` matches: a generator-face name takes every
/// stored status it shows as (`Running` takes `Pending` too); a stored-only name
/// (`Pending`, `Canceled`) takes itself.
pub fn stored_statuses(status: &str) -> Vec<String> {
    let shown_as: Vec<String> = GENERATOR_FACE
        .iter()
        .filter(|(_, face)| *face == status)
        .map(|(s, _)| s.as_str().to_owned())
        .collect();
    if shown_as.is_empty() {
        vec![status.to_owned()]
    } else {
        shown_as
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_status_has_one_generator_face() {
        for s in StoredStatus::ALL {
            let faces: Vec<_> = GENERATOR_FACE.iter().filter(|(x, _)| *x == s).collect();
            assert_eq!(faces.len(), 1, "{s:?}");
        }
        assert_eq!(generator_status("Pending"), "Running");
        assert_eq!(generator_status("Running"), "Running");
        assert_eq!(generator_status("Completed"), "Completed");
        assert_eq!(generator_status("Failed"), "Failed");
        assert_eq!(generator_status("Canceled"), "Failed");
    }

    #[test]
    fn a_filter_takes_what_shows_as_it() {
        assert_eq!(stored_statuses("Running"), ["Pending", "Running"]);
        assert_eq!(stored_statuses("Failed"), ["Failed", "Canceled"]);
        assert_eq!(stored_statuses("Completed"), ["Completed"]);
        assert_eq!(stored_statuses("Pending"), ["Pending"]);
        assert_eq!(stored_statuses("Canceled"), ["Canceled"]);
    }

    #[test]
    fn active_and_finished_split_the_stored_statuses() {
        let active: Vec<_> = StoredStatus::ALL
            .iter()
            .filter(|s| StoredStatus::is_active(s.as_str()))
            .map(|s| s.as_str())
            .collect();
        assert_eq!(active, ["Pending", "Running"]);
        for s in StoredStatus::ALL {
            assert_eq!(
                StoredStatus::is_finished(s.as_str()),
                !StoredStatus::is_active(s.as_str())
            );
        }
        assert!(StoredStatus::is_failure("Canceled") && StoredStatus::is_failure("Failed"));
        assert!(!StoredStatus::is_failure("Completed"));
    }
}
