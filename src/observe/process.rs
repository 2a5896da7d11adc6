//! The process's own resource use, for `/metrics` and heartbeats, read from Linux's
//! `/proc/self` (elsewhere the figures are 0).

use std::time::{SystemTime, UNIX_EPOCH};

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// Resident memory and CPU time of this process.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ProcessFigures {
    /// Resident set size now, in bytes (0 when unknown).
    pub rss_bytes: u64,
    /// User + system CPU time so far, in seconds (0 when unknown).
    pub cpu_seconds: f64,
}

impl ProcessFigures {
    /// Reads them now.
    pub fn now() -> Self {
        Self { rss_bytes: rss_bytes().unwrap_or(0), cpu_seconds: cpu_seconds().unwrap_or(0.0) }
    }
}

/// `VmRSS` of `/proc/self/status` (in kB there).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `utime + stime` of `/proc/self/stat` (fields 14 and 15, after the parenthesised name).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name come the state (field 3) and on: utime is field 14, index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_figures() {
        let f = ProcessFigures::now();
        assert!(f.rss_bytes > 0, "{f:?}");
        assert!(f.cpu_seconds >= 0.0, "{f:?}");
    }
}
