//! arachne: an actor-based crawl runtime.
//!
//! One process runs a supervised tree of actors — a scheduler (the frontier), fetchers,
//! parsers and sinks — that talk over a local [`bus`] of topics and acked queues. The
//! [`spec`] module reads the YAML crawl spec; [`runtime`] builds and runs the tree from it,
//! and is the same API the `arachne` binary uses.

pub mod bridges;
pub mod bus;
pub mod crawl;
pub mod observe;
pub mod runtime;
pub mod sandbox;
pub mod spec;
pub mod state;
pub mod supervise;
