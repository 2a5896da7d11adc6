//! The user's actors: started from factories that may fail, optionally under supervisors of
//! their own, and at the end of a run drained and stopped in reverse start order.

use std::time::Duration;

use actix::{Actor, Context, Supervised};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::error::RunError;
use crate::bus::Bus;
use crate::crawl::Event;
use crate::observe::Stats;
use crate::supervise::{ChildInfo, Escalation, Restart, Supervisor, SupervisorConfig};

/// What an actor factory may fail with: any error (`?` converts it).
pub type FactoryError = Box<dyn std::error::Error + Send + Sync>;

/// Builds and starts one user actor under a supervisor: its child entry, or why it could
/// not start.
pub(crate) type ActorStarter = Box<dyn FnOnce(&mut Supervisor, &Bus) -> Result<ChildInfo, RunError> + Send>;

/// The starter of actor `name`, built by `make`.
pub(crate) fn starter<A, F>(name: String, restart: Restart, make: F) -> ActorStarter
where
    A: Actor<Context = Context<A>> + Supervised,
    F: FnOnce(&Bus) -> Result<A, FactoryError> + Send + 'static,
{
    Box::new(move |sup: &mut Supervisor, bus: &Bus| {
        let failed = |source: FactoryError| RunError::ActorStart { actor: name.clone(), source };
        let built = crate::supervise::catch_panic(|| make(bus))
            .map_err(|panic| failed(format!("its factory panicked: {panic}").into()))?;
        sup.try_start_here(name.clone(), restart, |_| built).map_err(failed)?;
        sup.children().last().cloned().ok_or_else(|| failed("it was not registered".into()))
    })
}

/// Actors of the user under a supervisor of their own ([`RuntimeBuilder::supervisor`](
/// super::RuntimeBuilder::supervisor)): their restarts count towards its intensity, not the
/// root's, so a crashing side actor does not fail the crawl.
pub struct Subtree {
    pub(crate) actors: Vec<ActorStarter>,
    pub(crate) escalate: bool,
}

impl std::fmt::Debug for Subtree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subtree")
            .field("actors", &self.actors.len())
            .field("escalate", &self.escalate)
            .finish()
    }
}

impl Subtree {
    pub(crate) fn new() -> Self {
        Self { actors: Vec::new(), escalate: false }
    }

    /// Adds a transient actor to this subtree, as [`RuntimeBuilder::actor`](
    /// super::RuntimeBuilder::actor) does to the root.
    pub fn actor<A, F>(self, name: impl Into<String>, make: F) -> Self
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&Bus) -> Result<A, FactoryError> + Send + 'static,
    {
        self.actor_with_restart(name, Restart::Transient, make)
    }

    /// [`Subtree::actor`] with another restart type.
    pub fn actor_with_restart<A, F>(mut self, name: impl Into<String>, restart: Restart, make: F) -> Self
    where
        A: Actor<Context = Context<A>> + Supervised,
        F: FnOnce(&Bus) -> Result<A, FactoryError> + Send + 'static,
    {
        self.actors.push(starter(name.into(), restart, make));
        self
    }

    /// When this subtree gives up (more restarts than its intensity allows), the run fails
    /// with its [`Escalation`] (OTP's escalation to the parent). Off by default: the
    /// subtree's actors are stopped, the failure is logged, and the crawl goes on.
    pub fn escalate(mut self, on: bool) -> Self {
        self.escalate = on;
        self
    }
}

/// A subtree to start: its settings and its actors.
pub(crate) struct SubtreeSpec {
    pub(crate) config: SupervisorConfig,
    pub(crate) tree: Subtree,
}

/// The user's actors of a run, in start order.
#[derive(Default)]
pub(crate) struct UserActors {
    children: Vec<ChildInfo>,
    /// The subtrees' actors as the dashboard names them: `<subtree>/<actor>`.
    in_subtrees: Vec<ChildInfo>,
}

impl UserActors {
    /// Starts the root's user actors, then each subtree with its watcher; a subtree that
    /// gives up and escalates sends its escalation to `escalations`.
    pub(crate) fn start(
        root: &mut Supervisor,
        actors: Vec<ActorStarter>,
        subtrees: Vec<SubtreeSpec>,
        bus: &Bus,
        stats: &std::sync::Arc<Stats>,
        escalations: &UnboundedSender<Escalation>,
    ) -> Result<Self, RunError> {
        let mut started = Self::default();
        for start in actors {
            started.children.push(start(root, bus)?);
        }
        for SubtreeSpec { config, tree } in subtrees {
            let events = bus.topic::<Event>("events")?;
            let name = config.name.clone();
            let subtree = name.clone();
            let mut sup = Supervisor::new(config, stats.clone());
            sup.on_restart(move |actor, reason| {
                events.publish_now(Event::ActorRestarted {
                    actor: format!("{name}/{actor}"),
                    reason: reason.into(),
                });
            });
            for start in tree.actors {
                match start(&mut sup, bus) {
                    Ok(child) => {
                        let listed = ChildInfo { name: format!("{subtree}/{}", child.name), ..child.clone() };
                        started.in_subtrees.push(listed);
                        started.children.push(child);
                    }
                    Err(e) => {
                        sup.stop_all();
                        return Err(e);
                    }
                }
            }
            let (escalate, escalations) = (tree.escalate, escalations.clone());
            actix::spawn(async move {
                if let Err(e) = sup.watch().await {
                    crate::supervise::report_error(&format!("{e}; its actors were stopped"));
                    if escalate {
                        let _ = escalations.send(e);
                    }
                }
            });
        }
        Ok(started)
    }

    /// The subtrees' actors, named `<subtree>/<actor>` (as their restart events are), for
    /// the dashboard and remote control; the root's own are among the root's children.
    pub(crate) fn in_subtrees(&self) -> &[ChildInfo] {
        &self.in_subtrees
    }

    /// Waits (until `deadline`) for the actors to handle what was published to them, then
    /// stops them in reverse start order: each handles what its mailbox holds, gets
    /// `stopping` and `stopped`, and ends before the next is asked. An actor still busy at
    /// the deadline is stopped as it is.
    pub(crate) async fn drain(&self, bus: &Bus, deadline: Instant) {
        if self.children.is_empty() {
            return;
        }
        while bus.streamed_backlog() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for child in self.children.iter().rev() {
            child.stop_gracefully();
            if tokio::time::timeout_at(deadline, child.ended()).await.is_err() {
                tracing::warn!(actor = %child.name, "did not stop within the drain timeout");
            }
        }
    }
}
