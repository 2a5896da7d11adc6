//! Errors in a crawl spec, each with the file, line and column it points at.

use std::fmt;

/// One problem in a spec: where it is, what is wrong, and how to fix it.
///
/// Displays as `file:line:column: message`, then `  hint: ...` on the next line when there
/// is a hint. Errors from a `--set` override have the override as `origin` and no line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{}", render(self))]
pub struct SpecError {
    /// The spec file's name as given, or `--set KEY=VALUE` for an override.
    pub origin: String,
    /// 1-based line, when the error has a place in the file.
    pub line: Option<usize>,
    /// 1-based column, when the error has a place in the file.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

/// Every problem found in a spec, in the order of their place in the file (overrides last).
///
/// Displays one error after the other, as [`SpecError`] does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(self))]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecError {
    /// An error with no place in a file (an I/O error, a malformed `--set`).
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self { origin: origin.into(), line: None, column: None, message: message.into(), hint: None }
    }

    /// The same error with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl SpecErrors {
    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, SpecError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is none (a loaded spec never returns an empty list).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts errors by their place: file errors by line and column, then override errors
    /// in the order the overrides were given.
    /// Repeated errors are reported once.
    pub(crate) fn sorted(errors: Vec<SpecError>) -> Self {
        let mut seen = std::collections::HashSet::with_capacity(errors.len());
        let mut errors: Vec<SpecError> = errors.into_iter().filter(|e| seen.insert(e.clone())).collect();
        errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
        Self(errors)
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        Self(vec![e])
    }
}

impl<'a> IntoIterator for &'a SpecErrors {
    type Item = &'a SpecError;
    type IntoIter = std::slice::Iter<'a, SpecError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

fn render(e: &SpecError) -> impl fmt::Display + '_ {
    struct R<'a>(&'a SpecError);
    impl fmt::Display for R<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let e = self.0;
            f.write_str(&e.origin)?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
                if let Some(column) = e.column {
                    write!(f, ":{column}")?;
                }
            }
            write!(f, ": {}", e.message)?;
            if let Some(hint) = &e.hint {
                write!(f, "\n  hint: {hint}")?;
            }
            Ok(())
        }
    }
    R(e)
}

fn render_all(errors: &SpecErrors) -> impl fmt::Display + '_ {
    struct R<'a>(&'a SpecErrors);
    impl fmt::Display for R<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, e) in self.0 .0.iter().enumerate() {
                if i > 0 {
                    f.write_str("\n")?;
                }
                write!(f, "{e}")?;
            }
            Ok(())
        }
    }
    R(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let e = SpecError {
            origin: "crawl.yaml".into(),
            line: Some(3),
            column: Some(5),
            message: "unknown key 'concurency' in fetch".into(),
            hint: Some("did you mean 'concurrency'?".into()),
        };
        assert_eq!(
            e.to_string(),
            "crawl.yaml:3:5: unknown key 'concurency' in fetch\n  hint: did you mean 'concurrency'?"
        );
        let set = SpecError::new("--set fetch.concurrency=0", "fetch.concurrency must be at least 1");
        let all = SpecErrors(vec![e, set]);
        assert_eq!(all.to_string().lines().count(), 3);
        assert!(all.to_string().ends_with("--set fetch.concurrency=0: fetch.concurrency must be at least 1"));
    }
}
