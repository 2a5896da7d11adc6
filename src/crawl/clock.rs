//! The Clock actor: runs every schedule of the spec (`schedules:`) and acts on each firing.
//!
//! On a firing it counts it (`stats.firings`), publishes the [`Firing`] on the bus topic
//! `schedules` and, for `publish: { topic }`, on that topic too, and for `action: reseed`
//! calls the reseed callback it was built with. Each schedule runs as a future spawned in
//! the actor's context, armed in `started`: a restart cancels them and arms them again from
//! where they were (the last firing's instant and number), so the instants that passed
//! during a crash are misfires, handled by the schedule's policy, not lost or doubled.

use std::sync::{Arc, Mutex};

use actix::prelude::*;
use chrono::{DateTime, Utc};

use crate::bus::{
    run_schedule_from, Bus, Firing, Resume, Schedule, ScheduleError, SystemClock, Topic, Trigger, WallClock,
    WrongType,
};
use crate::observe::Stats;
use crate::spec::{ScheduleAction, ScheduleSpec};

/// The topic every firing is published on.
pub const FIRINGS_TOPIC: &str = "schedules";

/// What `action: reseed` calls, with the firing that asked for it.
pub type ReseedFn = Box<dyn Fn(&Firing) + Send>;

/// With a shared broker: asked before a firing acts; `true` when this process won the
/// firing (one process per tick across the crawl).
pub type ClaimFn = Arc<dyn Fn(&Firing) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// Why the Clock cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// A schedule of the spec is not valid (validation catches this first).
    #[error("schedule '{name}': {source}")]
    Schedule {
        /// The schedule's name.
        name: String,
        /// What is wrong with it.
        source: ScheduleError,
    },
    /// A topic to publish to exists on the bus with another message type.
    #[error(transparent)]
    Topic(#[from] WrongType),
}

/// One schedule and what its firings do.
struct Entry {
    schedule: Arc<Schedule>,
    action: Option<ScheduleAction>,
    publish: Option<Topic<Firing>>,
}

/// The Clock actor.
pub struct Clock {
    entries: Vec<Entry>,
    firings: Topic<Firing>,
    stats: Arc<Stats>,
    on_reseed: ReseedFn,
    wall: Arc<dyn WallClock>,
    /// Where each schedule is, kept across restarts.
    progress: Arc<Mutex<Vec<Resume>>>,
    /// With a shared broker: who acts on each firing.
    claim: Option<ClaimFn>,
}

impl Clock {
    /// A clock running `schedules` (validated spec entries) on the system's wall clock.
    /// `every` periods are counted from now; `on_reseed` is called on each firing of a
    /// schedule with `action: reseed`.
    pub fn new(
        schedules: Vec<ScheduleSpec>,
        bus: Bus,
        stats: Arc<Stats>,
        on_reseed: ReseedFn,
    ) -> Result<Self, ClockError> {
        Self::with_wall_clock(schedules, bus, stats, on_reseed, Arc::new(SystemClock))
    }

    /// [`Clock::new`] on another wall clock (a [`crate::bus::TokioClock`] in tests);
    /// `every` periods are counted from `wall.now()`.
    pub fn with_wall_clock(
        schedules: Vec<ScheduleSpec>,
        bus: Bus,
        stats: Arc<Stats>,
        on_reseed: ReseedFn,
        wall: Arc<dyn WallClock>,
    ) -> Result<Self, ClockError> {
        let start = wall.now();
        Self::build(schedules, bus, stats, on_reseed, wall, start)
    }

    /// A clock of one crawl shared by many processes: `every` periods are counted from the
    /// Unix epoch (so every process has the same ticks), and each firing acts only in the
    /// process that `claim` says won it.
    pub fn shared(
        schedules: Vec<ScheduleSpec>,
        bus: Bus,
        stats: Arc<Stats>,
        on_reseed: ReseedFn,
        claim: ClaimFn,
    ) -> Result<Self, ClockError> {
        let mut clock =
            Self::build(schedules, bus, stats, on_reseed, Arc::new(SystemClock), DateTime::UNIX_EPOCH)?;
        let now = clock.wall.now();
        for p in clock.progress.lock().unwrap_or_else(|e| e.into_inner()).iter_mut() {
            p.after = now;
        }
        clock.claim = Some(claim);
        Ok(clock)
    }

    fn build(
        schedules: Vec<ScheduleSpec>,
        bus: Bus,
        stats: Arc<Stats>,
        on_reseed: ReseedFn,
        wall: Arc<dyn WallClock>,
        anchor: DateTime<Utc>,
    ) -> Result<Self, ClockError> {
        let start = anchor;
        let mut entries = Vec::with_capacity(schedules.len());
        for spec in &schedules {
            let schedule = Schedule::from_spec(spec, start)
                .map_err(|source| ClockError::Schedule { name: spec.name.clone(), source })?;
            let publish = spec.publish.as_ref().map(|p| bus.topic::<Firing>(p.topic.trim())).transpose()?;
            entries.push(Entry { schedule: Arc::new(schedule), action: spec.action, publish });
        }
        let progress = vec![Resume { after: start, fired: 0 }; entries.len()];
        Ok(Self {
            entries,
            firings: bus.topic::<Firing>(FIRINGS_TOPIC)?,
            stats,
            on_reseed,
            wall,
            progress: Arc::new(Mutex::new(progress)),
            claim: None,
        })
    }

    /// The schedules' names, in spec order.
    pub fn schedule_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.schedule.name.clone()).collect()
    }

    /// The next firing instant (before jitter) of each schedule after `t`, in spec order.
    pub fn next_instants(&self, t: DateTime<Utc>) -> Vec<Option<DateTime<Utc>>> {
        self.entries.iter().map(|e| e.schedule.next_after(t)).collect()
    }
}

/// A schedule fired (sent by its runner to the actor).
#[derive(Message)]
#[rtype(result = "()")]
struct Fired {
    index: usize,
    firing: Firing,
}

impl Actor for Clock {
    type Context = Context<Self>;

    #[cfg_attr(not(feature = "schedules"), allow(irrefutable_let_patterns))]
    fn started(&mut self, ctx: &mut Context<Self>) {
        let resumes = self.progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (index, (entry, resume)) in self.entries.iter().zip(resumes).enumerate() {
            let schedule = entry.schedule.clone();
            let wall = self.wall.clone();
            let progress = self.progress.clone();
            let addr = ctx.address();
            if let Trigger::Every { period, .. } = &schedule.trigger {
                tracing::debug!(schedule = %schedule.name, ?period, "schedule armed");
            } else {
                tracing::debug!(schedule = %schedule.name, next = ?schedule.next_after(resume.after), "schedule armed");
            }
            let run = async move {
                run_schedule_from(&schedule, &*wall, resume, |firing| {
                    if let Some(p) = progress.lock().unwrap_or_else(|e| e.into_inner()).get_mut(index) {
                        *p = Resume { after: firing.scheduled_for, fired: firing.sequence };
                    }
                    addr.do_send(Fired { index, firing });
                })
                .await;
            };
            ctx.spawn(run.into_actor(self));
        }
    }
}

/// A restart cancels the runners; `started` arms them again from their last firing.
impl Supervised for Clock {}

impl Handler<Fired> for Clock {
    type Result = ();

    fn handle(&mut self, msg: Fired, ctx: &mut Context<Self>) {
        let Fired { index, firing } = msg;
        match self.claim.clone() {
            None => self.act(index, firing, ctx),
            Some(claim) => {
                let won = claim(&firing);
                ctx.spawn(won.into_actor(self).map(move |won, act, ctx| {
                    if won {
                        act.act(index, firing, ctx);
                    } else {
                        tracing::debug!(schedule = %firing.schedule, "another process of the crawl took this firing");
                    }
                }));
            }
        }
    }
}

impl Clock {
    /// Counts a firing, reseeds or publishes as its schedule says.
    fn act(&mut self, index: usize, firing: Firing, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get(index) else { return };
        Stats::incr(&self.stats.firings);
        tracing::info!(
            schedule = %firing.schedule,
            sequence = firing.sequence,
            scheduled_for = %firing.scheduled_for,
            missed = firing.missed,
            "schedule fired"
        );
        if entry.action == Some(ScheduleAction::Reseed) {
            (self.on_reseed)(&firing);
        }
        let firings = self.firings.clone();
        let extra = entry.publish.clone();
        let publish = async move {
            if let Some(topic) = extra {
                topic.publish(firing.clone()).await;
            }
            firings.publish(firing).await;
        };
        ctx.spawn(publish.into_actor(self));
    }
}
