//! Fault injection for operators and tests: `--chaos parser-panic=0.05,fetcher-panic=0.02,seed=7`
//! makes handlers panic at those rates; `--chaos poison=REGEX` makes the parser panic on
//! every delivery of a page whose URL matches.
//!
//! Decisions are deterministic for a seed: they hash (seed, actor kind, URL, delivery
//! number), so a run can be replayed, and a page that panicked once is likely to pass on
//! its next delivery.

use std::fmt;
use std::str::FromStr;

use regex::Regex;

/// Which handler a fault is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The Fetcher's request handler.
    Fetcher,
    /// The Parser's page handler.
    Parser,
}

/// The faults to inject. The default injects none.
#[derive(Debug, Clone, Default)]
pub struct Chaos {
    /// Probability that a parser delivery panics.
    pub parser_panic: f64,
    /// Probability that a fetcher delivery panics.
    pub fetcher_panic: f64,
    /// Pages whose URL matches make the parser panic on every delivery.
    pub poison: Option<Regex>,
    /// The seed of the decisions.
    pub seed: u64,
}

/// A `--chaos` argument that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("bad --chaos '{0}': {1}; use e.g. parser-panic=0.05,fetcher-panic=0.02,seed=7 or poison=REGEX")]
pub struct ChaosError(String, String);

impl FromStr for Chaos {
    type Err = ChaosError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut chaos = Chaos { seed: 1, ..Chaos::default() };
        let err = |why: String| ChaosError(s.to_string(), why);
        // `poison=` takes the rest of the argument: a regex may contain commas.
        let (head, poison) = match s.find("poison=") {
            Some(i) => (&s[..i], Some(&s[i + "poison=".len()..])),
            None => (s, None),
        };
        for part in head.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| err(format!("'{part}' has no '='")))?;
            let rate = || -> Result<f64, ChaosError> {
                let r: f64 = value.parse().map_err(|_| err(format!("'{value}' is not a number")))?;
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(err(format!("rate {r} is not between 0 and 1")))
                }
            };
            match key {
                "parser-panic" => chaos.parser_panic = rate()?,
                "fetcher-panic" => chaos.fetcher_panic = rate()?,
                "seed" => {
                    chaos.seed = value.parse().map_err(|_| err(format!("seed '{value}' is not a number")))?
                }
                other => return Err(err(format!("unknown fault '{other}'"))),
            }
        }
        if let Some(re) = poison {
            chaos.poison = Some(Regex::new(re).map_err(|e| err(e.to_string()))?);
        }
        Ok(chaos)
    }
}

impl Chaos {
    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        self.parser_panic > 0.0 || self.fetcher_panic > 0.0 || self.poison.is_some()
    }

    /// Panics if this delivery of `url` to `target` is chosen to fail.
    pub fn strike(&self, target: Target, url: &str, delivery: u32) {
        if target == Target::Parser && self.poison.as_ref().is_some_and(|re| re.is_match(url)) {
            panic!("chaos: poison page {url}");
        }
        let rate = match target {
            Target::Fetcher => self.fetcher_panic,
            Target::Parser => self.parser_panic,
        };
        if rate > 0.0 && self.roll(target, url, delivery) < rate {
            panic!("chaos: injected {target} panic on {url} (delivery {delivery})");
        }
    }

    /// A uniform number in [0, 1) from (seed, target, url, delivery).
    fn roll(&self, target: Target, url: &str, delivery: u32) -> f64 {
        let mut key = Vec::with_capacity(url.len() + 16);
        key.extend_from_slice(&self.seed.to_le_bytes());
        key.push(target as u8);
        key.extend_from_slice(&delivery.to_le_bytes());
        key.extend_from_slice(url.as_bytes());
        (xxhash_rust::xxh3::xxh3_64(&key) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Fetcher => "fetcher",
            Target::Parser => "parser",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rolls_deterministically() {
        let c: Chaos = "parser-panic=0.5,fetcher-panic=0.02,seed=7".parse().expect("parses");
        assert_eq!((c.parser_panic, c.fetcher_panic, c.seed), (0.5, 0.02, 7));
        let hits = (0..1000).filter(|i| c.roll(Target::Parser, &format!("http://a/{i}"), 1) < 0.5).count();
        assert!((400..600).contains(&hits), "{hits}");
        assert_eq!(c.roll(Target::Parser, "u", 1), c.roll(Target::Parser, "u", 1));
        let p: Chaos = "poison=/item/(1|2),3$".parse().expect("parses");
        assert!(p.poison.expect("regex").is_match("/item/2,3"));
        assert!("parser-panic=2".parse::<Chaos>().is_err());
        assert!("bogus=1".parse::<Chaos>().is_err());
    }

    #[test]
    fn poison_always_strikes() {
        let p: Chaos = "poison=/bad".parse().expect("parses");
        for delivery in 1..5 {
            assert!(std::panic::catch_unwind(|| p.strike(Target::Parser, "http://a/bad", delivery)).is_err());
        }
        p.strike(Target::Parser, "http://a/good", 1);
        p.strike(Target::Fetcher, "http://a/bad", 1);
    }
}
