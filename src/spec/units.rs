//! Human-friendly units in the spec: durations (`30s`, `500ms`, `6h`) and sizes (`10MiB`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d` (`1.5s` too),
/// or a bare number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// A size in bytes written as `<number><unit>` with unit `B`, `KB`, `MB`, `GB` (powers of
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024), or a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// The accepted forms, quoted in error hints.
pub const DURATION_FORMS: &str = "a number with a unit: 500ms, 30s, 5m, 6h, 1d (or bare seconds)";
/// The accepted forms of a [`Rate`], quoted in error hints.
pub const RATE_FORMS: &str =
    "Celery's N/s, N/m or N/h (10/m: ten a minute), or a bare number a second; 0 is no limit";
/// The accepted forms, quoted in error hints.
pub const SIZE_FORMS: &str = "a number with a unit: 512B, 64KiB, 10MiB, 1GiB, 10MB (or bare bytes)";

/// A rate limit as Celery writes its `rate_limit`: `N/s`, `N/m` or `N/h` (`10/m` is ten a
/// minute, spread evenly: one every 6 s), or a bare number a second. `0` (or `0/m`) is no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// How many in each `per`.
    pub count: f64,
    /// The period: one second, minute or hour.
    pub per: Duration,
}

impl Rate {
    /// Requests a second (0: no limit).
    pub fn per_second(&self) -> f64 {
        if self.per.is_zero() {
            0.0
        } else {
            self.count / self.per.as_secs_f64()
        }
    }

    /// Whether it limits anything (a count above 0).
    pub fn is_limited(&self) -> bool {
        self.count > 0.0
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a rate; use {RATE_FORMS}");
        let (count, unit) = match s.trim().split_once('/') {
            Some((n, unit)) => (n.trim(), unit.trim()),
            None => (s.trim(), "s"),
        };
        let (count, rest) = split_number(count).ok_or_else(bad)?;
        if !rest.is_empty() {
            return Err(bad());
        }
        let per = match unit {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            3600 => "h",
            60 => "m",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Raw::deserialize(d)?.text().parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl HumanDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let value: f64 = num.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value, unit.trim()))
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a duration; use {DURATION_FORMS}");
        let (value, unit) = split_number(s).ok_or_else(bad)?;
        let secs = match unit {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86400.0,
            _ => return Err(bad()),
        };
        Duration::try_from_secs_f64(secs).map(Self).map_err(|_| bad())
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a size; use {SIZE_FORMS}");
        let (value, unit) = split_number(s).ok_or_else(bad)?;
        let factor: f64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" | "k" => 1e3,
            "mb" | "m" => 1e6,
            "gb" | "g" => 1e9,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad()),
        };
        let bytes = value * factor;
        if bytes > u64::MAX as f64 {
            return Err(bad());
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

/// Either a string with a unit or a bare number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(u64),
    Float(f64),
    Str(String),
}

impl Raw {
    fn text(self) -> String {
        match self {
            Raw::Int(n) => n.to_string(),
            Raw::Float(x) => x.to_string(),
            Raw::Str(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Raw::deserialize(d)?.text().parse().map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Raw::deserialize(d)?.text().parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What [`HumanDuration`]'s parser accepts (and `${ENV}`, substituted before parsing).
const DURATION_PATTERN: &str = r"^\s*([0-9]+\.?[0-9]*|\.[0-9]+)\s*(ms|s|m|min|h|d)?\s*$|\$\{";
/// What [`ByteSize`]'s parser accepts (units in any case).
const SIZE_PATTERN: &str = r"^\s*([0-9]+\.?[0-9]*|\.[0-9]+)\s*([bB]|[kKmMgG]([iI]?[bB])?)?\s*$|\$\{";

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": format!("A duration: {DURATION_FORMS}."),
            "type": ["string", "number"],
            "minimum": 0,
            "pattern": DURATION_PATTERN,
        })
    }
}

/// What [`Rate`]'s parser accepts (and `${ENV}`).
const RATE_PATTERN: &str = r"^\s*([0-9]+\.?[0-9]*|\.[0-9]+)\s*(/\s*[smh])?\s*$|\$\{";

impl JsonSchema for Rate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": format!("A rate: {RATE_FORMS}."),
            "type": ["string", "number"],
            "minimum": 0,
            "pattern": RATE_PATTERN,
        })
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": format!("A size: {SIZE_FORMS}."),
            "type": ["string", "number"],
            "minimum": 0,
            "pattern": SIZE_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("30s".parse::<HumanDuration>().unwrap().0, Duration::from_secs(30));
        assert_eq!("500ms".parse::<HumanDuration>().unwrap().0, Duration::from_millis(500));
        assert_eq!("1.5s".parse::<HumanDuration>().unwrap().0, Duration::from_millis(1500));
        assert_eq!("6h".parse::<HumanDuration>().unwrap().0, Duration::from_secs(6 * 3600));
        assert!("30 parsecs".parse::<HumanDuration>().is_err());
        assert!("-1s".parse::<HumanDuration>().is_err());
        assert!("".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn rates() {
        let r: Rate = "10/m".parse().unwrap();
        assert_eq!((r.count, r.per), (10.0, Duration::from_secs(60)));
        assert!((r.per_second() - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!("20/s".parse::<Rate>().unwrap().per_second(), 20.0);
        assert_eq!("7200/h".parse::<Rate>().unwrap().per_second(), 2.0);
        assert_eq!("5".parse::<Rate>().unwrap().per_second(), 5.0);
        assert!(!"0/m".parse::<Rate>().unwrap().is_limited());
        for bad in ["10/d", "ten/m", "-1/s", "10 /x", "", "/m", "1m/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert_eq!("10/m".parse::<Rate>().unwrap().to_string(), "10/m");
    }

    #[test]
    fn sizes() {
        assert_eq!("10MiB".parse::<ByteSize>().unwrap().0, 10 * 1024 * 1024);
        assert_eq!("10MB".parse::<ByteSize>().unwrap().0, 10_000_000);
        assert_eq!("512".parse::<ByteSize>().unwrap().0, 512);
        assert!("ten".parse::<ByteSize>().is_err());
    }
}
