//! Whether a run that ended in order did its job: one that crawled nothing at all while
//! everything it tried failed is an error (exit 1), not a success with zero items.

use super::error::RunError;
use crate::observe::Summary;

/// `Err` when the run tried pages and none got through: every seed (or every request a
/// resumed run had saved) failed, was blocked by robots.txt or was dead-lettered.
/// `pages_dead_letters` are pages fetched but never parsed (dead-lettered in the `pages`
/// queue); `first_dead_letter` tells why the first dead letter was one.
pub(super) fn check(
    summary: &Summary,
    pages_dead_letters: u64,
    first_dead_letter: Option<String>,
) -> Result<(), RunError> {
    let crawled = (summary.pages_fetched + summary.not_modified).saturating_sub(pages_dead_letters);
    let failed = summary.pages_failed + summary.robots_blocked + summary.dead_letters;
    if crawled > 0 || failed == 0 {
        return Ok(());
    }
    let mut parts = Vec::new();
    if summary.pages_failed > 0 {
        let kinds: Vec<String> = summary.errors.iter().map(|(kind, n)| format!("{kind} ×{n}")).collect();
        parts.push(format!("{} failed ({})", summary.pages_failed, kinds.join(", ")));
    }
    if summary.robots_blocked > 0 {
        parts.push(format!("{} blocked by robots.txt", summary.robots_blocked));
    }
    if summary.dead_letters > 0 {
        let why = first_dead_letter.map(|d| format!(": {d}")).unwrap_or_default();
        parts.push(format!("{} dead-lettered{why}", summary.dead_letters));
    }
    Err(RunError::NothingCrawled { detail: parts.join("; "), summary: Box::new(summary.clone()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        crate::observe::Stats::default().summary(std::time::Duration::ZERO)
    }

    #[test]
    fn nothing_tried_is_fine_partial_failure_is_fine_total_failure_is_not() {
        assert!(check(&summary(), 0, None).is_ok(), "a rerun of a finished crawl tries nothing");
        let partial = Summary { pages_fetched: 3, pages_failed: 2, ..summary() };
        assert!(check(&partial, 0, None).is_ok());
        let refused = Summary { pages_failed: 1, errors: [("connect".into(), 1)].into(), ..summary() };
        let err = check(&refused, 0, None).expect_err("all failed").to_string();
        assert!(err.contains("1 failed (connect ×1)"), "{err}");
        let dead = Summary { pages_fetched: 1, dead_letters: 1, ..summary() };
        let err = check(&dead, 1, Some("http://a/: boom".into())).expect_err("dead").to_string();
        assert!(err.contains("1 dead-lettered: http://a/: boom"), "{err}");
        let blocked = Summary { robots_blocked: 2, ..summary() };
        assert!(check(&blocked, 0, None).is_err());
    }
}
