//! Supervision, as in Erlang/OTP: every actor is started from a factory under a
//! [`Supervisor`], with a [`Restart`] type, and the supervisor applies a [`Strategy`] and a
//! restart intensity when a child fails.
//!
//! actix does not restart an actor whose handler panicked: the panic unwinds into the task
//! and the actor becomes a zombie whose mailbox is closed. Here each actor's context future
//! runs inside `child::SupervisedActor`, which catches the panic, restarts the context
//! (cancelling the actor's spawned futures, so unacked bus deliveries go back to their
//! queue), calls `Supervised::restarting` and polls again — with the same address and
//! mailbox, so senders never notice. The supervisor counts the restarts that are not a
//! message's fault (see [`blame`] and `supervisor.rs`); past `max_restarts` within `within`
//! it escalates to its parent, which at the root ends the run with an error counting the
//! restarts of each actor.
//!
//! ```
//! use arachne::spec::{Strategy, SupervisionSpec};
//! use arachne::supervise::{Chaos, SupervisorConfig};
//!
//! // The spec's `supervision:` section becomes the root supervisor's settings.
//! let config = SupervisorConfig::from_spec("root", &SupervisionSpec::default());
//! assert_eq!(config.strategy, Strategy::OneForOne);
//! assert_eq!(config.max_restarts, 10);
//!
//! // Fault injection, as `arachne run --chaos` takes it.
//! let chaos: Chaos = "parser-panic=0.05,seed=7".parse()?;
//! assert!(chaos.is_active());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod blame;
pub mod chaos;
mod child;
mod panic;
mod subscribe;
mod supervisor;

pub use chaos::Chaos;
pub use child::{ChildInfo, Restart};
pub(crate) use panic::{catch as catch_panic, report_error};
pub use subscribe::{ContextExt, Published, SUBSCRIBE_CAPACITY};
pub use supervisor::{Escalation, Supervisor, SupervisorConfig};

pub use crate::spec::Strategy;
