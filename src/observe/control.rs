//! Remote control of one process: the actions (what Flower and `celery control` offer, for
//! a crawl) and the [`Controller`] that carries them out on the run's actors.

use actix::Addr;
use serde::{Deserialize, Serialize};

use crate::bus::Topic;
use crate::crawl::scheduler::{FrontierView, Inspect, Scheduler, Steer};
use crate::crawl::Event;
use crate::runtime::StopHandle;
use crate::supervise::ChildInfo;

/// One control action, as the API takes it (`{"action": "pause_host", "host": "a.test"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlAction {
    /// Stop handing out requests (what is in flight finishes).
    Pause,
    /// Hand out requests again.
    Resume,
    /// Stop gracefully: drain what is in flight, flush the sinks, end the run.
    Stop,
    /// Hand out no request for this host (`host[:port]`).
    PauseHost {
        /// The host, as the hosts table names it.
        host: String,
    },
    /// Hand out requests for this host again.
    ResumeHost {
        /// The host.
        host: String,
    },
    /// Change the request rate (per second; 0 = no limit) of one host; of the `requests`
    /// queue (every request of the crawl, whatever its host); or, with neither, of every
    /// host without a rate of its own.
    SetRate {
        /// The host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// The queue: `requests` (the only one the scheduler feeds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// Requests per second.
        rate: f64,
    },
    /// Add start URLs (depth 0; their hosts join an implicit scope).
    AddSeeds {
        /// Absolute http(s) URLs.
        urls: Vec<String>,
    },
    /// Queue the requests that were dead-lettered again.
    RequeueDeadLetters,
    /// Restart one actor in place (as after a panic).
    RestartActor {
        /// Its name (`fetcher-0`, `parser-1`, `scheduler`, ...).
        actor: String,
    },
}

/// A control request: an action, for this worker (no `worker`), one worker of the crawl
/// (its id), or all of them (`"*"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// What to do.
    #[serde(flatten)]
    pub action: ControlAction,
    /// Which worker: absent for the one that serves the request, `"*"` for every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// Why a control action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The action's arguments are wrong (a bad URL, a negative rate, ...).
    #[error("{0}")]
    Invalid(String),
    /// No actor of that name.
    #[error("no actor named '{0}'")]
    UnknownActor(String),
    /// No worker of that id in the crawl.
    #[error("no worker '{0}' in this crawl")]
    UnknownWorker(String),
    /// The run is ending: its scheduler does not answer any more.
    #[error("the run is ending")]
    Ending,
    /// A broker carries control to other workers, and it failed.
    #[error("cannot reach the other workers: {0}")]
    Broker(String),
}

/// Carries out control actions on this process's run.
#[derive(Clone)]
pub struct Controller {
    scheduler: Addr<Scheduler>,
    children: Vec<ChildInfo>,
    stop: StopHandle,
    events: Topic<Event>,
}

impl Controller {
    /// A controller of the run whose scheduler, supervised children and stop handle these
    /// are; restarts it makes are announced on `events`.
    pub fn new(
        scheduler: Addr<Scheduler>,
        children: Vec<ChildInfo>,
        stop: StopHandle,
        events: Topic<Event>,
    ) -> Self {
        Self { scheduler, children, stop, events }
    }

    /// The run's actors, in start order.
    pub fn children(&self) -> &[ChildInfo] {
        &self.children
    }

    /// Carries out `action` here; the answer says what was done.
    pub async fn apply(&self, action: &ControlAction) -> Result<String, ControlError> {
        match action {
            ControlAction::Stop => {
                self.stop.stop();
                Ok("stopping: draining what is in flight".into())
            }
            ControlAction::RestartActor { actor } => {
                let child = self
                    .children
                    .iter()
                    .find(|c| &c.name == actor)
                    .ok_or_else(|| ControlError::UnknownActor(actor.clone()))?;
                child.signal.restart();
                tracing::info!(actor = %actor, "restart asked for by remote control");
                self.events.publish_now(Event::ActorRestarted {
                    actor: actor.clone(),
                    reason: "restarted by remote control".into(),
                });
                Ok(format!("restarting {actor}"))
            }
            ControlAction::SetRate { rate, .. } if !rate.is_finite() || *rate < 0.0 => {
                Err(ControlError::Invalid(format!("rate {rate} is not 0 or more requests per second")))
            }
            other => match self.scheduler.send(Steer(other.clone())).await {
                Ok(result) => result.map_err(ControlError::Invalid),
                Err(_) => Err(ControlError::Ending),
            },
        }
    }

    /// The frontier as the scheduler sees it now, with its `hosts` busiest hosts (`None`
    /// once the run is ending).
    pub async fn inspect(&self, hosts: usize) -> Option<FrontierView> {
        self.scheduler.send(Inspect { hosts }).await.ok()
    }
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("children", &self.children.len()).finish()
    }
}
