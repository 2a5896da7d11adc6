//! What a re-crawl needs from the last one: every HTML page fetched, with the validators
//! (ETag, Last-Modified) it was served with. A reseed (`schedules: [{ action: reseed }]`)
//! visits them all again with conditional requests: an unchanged page costs a 304 and no
//! parse, so it yields no duplicate item.

use dashmap::DashMap;
use url::Url;

use super::http::Validators;
use super::urls::{Fingerprint, FingerprintBuildHasher};

/// One page to visit again.
#[derive(Debug, Clone)]
pub struct Revisit {
    /// Its URL.
    pub url: Url,
    /// Its link depth.
    pub depth: u32,
    /// How the server identified its version.
    pub validators: Validators,
}

/// The pages of the last crawl, by fingerprint. Kept only when the spec re-seeds.
pub type Revisits = DashMap<Fingerprint, Revisit, FingerprintBuildHasher>;
