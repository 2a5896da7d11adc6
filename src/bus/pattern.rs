//! Pattern subscriptions (as Redis PSUBSCRIBE): one buffer fed by every topic of a message
//! type whose name matches a glob, including topics created after the subscription.
//!
//! The glob has Redis's syntax: `*` any run of characters (dots included), `?` any one
//! character, `[abc]`, `[a-z]` and `[^abc]` a character class, and `\` makes the next
//! character literal (also inside a class). Unlike Redis, which accepts anything, an
//! unterminated class or a trailing `\` is an error rather than a silent literal.

use std::any::Any;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, Weak};

use super::topic::{Filter, Overflow, Slot, Topic};

/// A compiled Redis-style glob over topic names.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// A glob that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `[` without its `]`.
    #[error("pattern '{0}': '[' without a closing ']'")]
    UnclosedClass(String),
    /// A `\` with nothing after it.
    #[error("pattern '{0}': '\\' at the end escapes nothing")]
    TrailingEscape(String),
}

impl Pattern {
    /// Compiles a glob.
    pub fn new(glob: &str) -> Result<Self, PatternError> {
        let mut tokens = Vec::new();
        let mut chars = glob.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => {
                    if tokens.last() == Some(&Token::AnyRun) {
                        continue;
                    }
                    Token::AnyRun
                }
                '?' => Token::AnyOne,
                '\\' => {
                    Token::Literal(chars.next().ok_or_else(|| PatternError::TrailingEscape(glob.into()))?)
                }
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        let lo = match chars.next() {
                            None => return Err(PatternError::UnclosedClass(glob.into())),
                            Some(']') => break,
                            Some('\\') => {
                                chars.next().ok_or_else(|| PatternError::UnclosedClass(glob.into()))?
                            }
                            Some(c) => c,
                        };
                        // `a-z` is a range (either way round, as in Redis); a `-` before
                        // the closing `]` is literal.
                        let mut ahead = chars.clone();
                        let hi = match (ahead.next(), ahead.next()) {
                            (Some('-'), Some(hi)) if hi != ']' => {
                                chars.next();
                                chars.next();
                                if hi == '\\' {
                                    chars.next().ok_or_else(|| PatternError::UnclosedClass(glob.into()))?
                                } else {
                                    hi
                                }
                            }
                            _ => lo,
                        };
                        ranges.push((lo.min(hi), lo.max(hi)));
                    }
                    Token::Class { negated, ranges }
                }
                c => Token::Literal(c),
            };
            tokens.push(token);
        }
        Ok(Self { source: glob.to_string(), tokens })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `name` matches. Linear backtracking on the last `*` only, so
    /// no pattern takes exponential time.
    pub fn matches(&self, name: &str) -> bool {
        let text: Vec<char> = name.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::AnyRun) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(tok) if tok.matches_one(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        star = Some((sp, st + 1));
                        p = sp + 1;
                        t = st + 1;
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|tok| *tok == Token::AnyRun)
    }
}

impl Token {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne => true,
            Token::AnyRun => false,
            Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The bus's list of live pattern subscriptions, consulted when a topic is created.
pub(super) type PatternRegistry = RwLock<Vec<Arc<dyn PatternHook>>>;

/// A pattern subscription as the bus sees it, whatever its message type.
pub(super) trait PatternHook: Send + Sync {
    /// Attaches to `topic` if it is a `Topic<T>` of this subscription's type and its name
    /// matches.
    fn offer_topic(&self, topic: &(dyn Any + Send + Sync));
    /// Ends the subscription once it has read what it holds.
    fn close(&self);
}

struct Hook<T> {
    pattern: Pattern,
    slot: Arc<Slot<T>>,
}

impl<T: Send + Sync + 'static> PatternHook for Hook<T> {
    fn offer_topic(&self, topic: &(dyn Any + Send + Sync)) {
        if let Some(topic) = topic.downcast_ref::<Topic<T>>() {
            if self.pattern.matches(topic.name()) {
                topic.attach(&self.slot);
            }
        }
    }

    fn close(&self) {
        self.slot.close();
    }
}

/// Creates a pattern subscription: registers it (so topics created from now on attach it),
/// then attaches it to the matching topics that exist. `each_topic` walks the bus's topics.
pub(super) fn subscribe<T: Send + Sync + 'static>(
    registry: &Arc<PatternRegistry>,
    each_topic: impl FnOnce(&dyn Fn(&(dyn Any + Send + Sync))),
    pattern: Pattern,
    capacity: usize,
    overflow: Overflow,
    filter: Option<Filter<T>>,
) -> PatternSubscription<T> {
    let slot = Arc::new(Slot::new(capacity, overflow, filter, true));
    let hook: Arc<dyn PatternHook> = Arc::new(Hook { pattern: pattern.clone(), slot: slot.clone() });
    // Register first, then walk the topics: a topic created meanwhile is attached by its
    // creation or by the walk (attaching twice is a no-op), never missed.
    registry.write().unwrap_or_else(|e| e.into_inner()).push(hook.clone());
    each_topic(&|topic| hook.offer_topic(topic));
    PatternSubscription { pattern, slot, hook, registry: Arc::downgrade(registry) }
}

/// A subscription to every topic of message type `T` whose name matches a glob, as Redis
/// PSUBSCRIBE: topics that exist and topics created later through the same
/// [`Bus`](crate::bus::Bus). One bounded buffer for all of them, with the same [`Overflow`] policy
/// and optional content filter as a plain subscription. Each message comes with the name of
/// the topic it was published to. Dropping it unsubscribes from every topic.
pub struct PatternSubscription<T: Send + Sync + 'static> {
    pattern: Pattern,
    slot: Arc<Slot<T>>,
    hook: Arc<dyn PatternHook>,
    registry: Weak<PatternRegistry>,
}

impl<T: Send + Sync + 'static> PatternSubscription<T> {
    /// The glob.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The next message and the topic it came from; `None` once the bus was closed
    /// ([`Bus::close`](crate::bus::Bus::close)) and this buffer is empty.
    pub async fn recv(&self) -> Option<(Arc<str>, Arc<T>)> {
        self.slot.recv_named(|| self.slot.is_closed()).await
    }

    /// The next buffered message and its topic, if any.
    pub fn try_recv(&self) -> Option<(Arc<str>, Arc<T>)> {
        self.slot.try_recv_named()
    }

    /// Names of the topics this subscription is attached to now.
    pub fn topics(&self) -> Vec<Arc<str>> {
        self.slot.attached_topics()
    }

    /// Messages this subscription lost to its overflow policy.
    pub fn dropped(&self) -> u64 {
        self.slot.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in this subscription's buffer.
    pub fn buffered(&self) -> usize {
        self.slot.buffered()
    }

    /// Turns this subscription into a stream of `(topic, message)` (for `ctx.add_stream`).
    pub fn into_stream(self) -> impl futures::Stream<Item = (Arc<str>, Arc<T>)> + Send + 'static {
        Self::shared_stream(Arc::new(self))
    }

    /// A stream over a shared subscription: an actor keeps the `Arc` and makes a new stream
    /// after a restart, without losing what is buffered.
    pub fn shared_stream(
        this: Arc<Self>,
    ) -> impl futures::Stream<Item = (Arc<str>, Arc<T>)> + Send + 'static {
        let guard = this.slot.stream_guard();
        futures::stream::unfold((this, guard), |(s, g)| async move { s.recv().await.map(|m| (m, (s, g))) })
    }
}

impl<T: Send + Sync + 'static> Drop for PatternSubscription<T> {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.write().unwrap_or_else(|e| e.into_inner()).retain(|h| !Arc::ptr_eq(h, &self.hook));
        }
        self.slot.detach_all();
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for PatternSubscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternSubscription").field("pattern", &self.pattern.source).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).unwrap().matches(s)
    }

    #[test]
    fn redis_glob_semantics() {
        assert!(m("crawl.*", "crawl.pages"));
        assert!(m("crawl.*", "crawl."));
        assert!(m("crawl.*", "crawl.a.b"), "* crosses dots, as in Redis");
        assert!(!m("crawl.*", "crawlx"));
        assert!(m("events.?", "events.1"));
        assert!(!m("events.?", "events.12"));
        assert!(!m("events.?", "events."));
        assert!(m("[abc]", "b"));
        assert!(!m("[abc]", "d"));
        assert!(!m("[abc]", "ab"));
        assert!(m("[^abc]x", "dx"));
        assert!(!m("[^abc]x", "ax"));
        assert!(m("h[a-c]llo", "hbllo"));
        assert!(m("h[c-a]llo", "hbllo"), "reversed range, as in Redis");
        assert!(m("[a-]", "-"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("[\\]]", "]"));
        assert!(m("*", ""));
        assert!(m("**a**b**", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxx"));
        assert!(m("a*b*c", "abbbcbc"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(m("é?", "éü"));
        assert_eq!(Pattern::new("a[bc"), Err(PatternError::UnclosedClass("a[bc".into())));
        assert_eq!(Pattern::new("ab\\"), Err(PatternError::TrailingEscape("ab\\".into())));
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = Pattern::new(&"a*".repeat(30)).unwrap();
        let start = std::time::Instant::now();
        assert!(p.matches(&("a".repeat(30) + &"b".repeat(1000))));
        assert!(!p.matches(&("a".repeat(29) + &"b".repeat(1000))));
        assert!(!p.matches(&"b".repeat(2000)));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
