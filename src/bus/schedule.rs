//! Schedules: the bus's periodic channel (as Celery beat). A [`Schedule`] says when it fires
//! (`every`, `cron` in a time zone, or a daily `solar` event at a place), with a jitter and a
//! misfire policy; [`run_schedule`] drives it on tokio time and hands each [`Firing`] to a
//! callback.
//!
//! The calendar part is pure: [`Schedule::next_after`] maps an instant to the next firing
//! instant, and is tested without any clock. The runner reads wall time through a
//! [`WallClock`]: [`SystemClock`] in production (wall time, looked at again every few seconds
//! so that a suspended laptop or a clock step is noticed), [`TokioClock`] in tests (wall time
//! derived from tokio's clock, so `tokio::time::pause` and `advance` drive it exactly).

use std::time::Duration;

#[cfg(feature = "schedules")]
use chrono::NaiveDate;
use chrono::{DateTime, TimeDelta, Utc};
#[cfg(feature = "schedules")]
use chrono_tz::Tz;
#[cfg(feature = "schedules")]
use croner::parser::{CronParser, Seconds, Year};
#[cfg(feature = "schedules")]
use croner::Cron;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::spec::{Misfire, ScheduleSpec, SolarEventKind};

/// How many days ahead a solar event is looked for (polar night and day last up to about six
/// months; the poles have one sunrise a year).
#[cfg(feature = "schedules")]
const SOLAR_SEARCH_DAYS: i64 = 400;

/// How many missed instants are counted one by one before the count stops.
const MAX_MISSED_COUNT: u64 = 100_000;

/// How late a firing may be and still count as on time, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron pattern does not parse; `reason` is the parser's message.
    #[error("bad cron pattern '{pattern}': {reason}")]
    BadCron {
        /// The pattern as written.
        pattern: String,
        /// What the cron parser said.
        reason: String,
    },
    /// The cron pattern parses but matches no instant (like the 30th of February).
    #[error("cron pattern '{0}' never fires")]
    NeverFires(String),
    /// Not an IANA time zone name.
    #[error("unknown time zone '{0}'")]
    UnknownTimezone(String),
    /// Latitude or longitude out of range (or not a number).
    #[error("coordinates out of range: lat {lat} (must be -90 to 90), lon {lon} (must be -180 to 180)")]
    BadCoordinates {
        /// The latitude given.
        lat: f64,
        /// The longitude given.
        lon: f64,
    },
    /// `every` of zero.
    #[error("the period of 'every' must be longer than 0")]
    ZeroPeriod,
    /// A `cron` or `solar` schedule in a build without the `schedules` feature.
    #[error("this build has no {0} schedules (cron, time zones, solar): rebuild with --features schedules")]
    NotBuilt(&'static str),
    /// None, or more than one, of `every`, `cron` and `solar`.
    #[error("a schedule needs exactly one of 'every', 'cron' or 'solar' (found {0})")]
    Trigger(usize),
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// At `anchor + k * period`, for k = 1, 2, ...
    Every {
        /// The period.
        period: Duration,
        /// The instant the period is counted from (not itself a firing instant).
        anchor: DateTime<Utc>,
    },
    /// When the cron pattern matches the wall clock of `timezone`.
    #[cfg(feature = "schedules")]
    Cron {
        /// The parsed pattern.
        cron: Box<Cron>,
        /// The time zone the pattern is read in.
        timezone: Tz,
    },
    /// Every day the event happens at the place.
    #[cfg(feature = "schedules")]
    Solar {
        /// Which event.
        event: SolarEventKind,
        /// Where.
        coordinates: sunrise::Coordinates,
    },
}

/// A named schedule: its trigger, jitter and misfire policy.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule's name, carried by each firing.
    pub name: String,
    /// When it fires.
    pub trigger: Trigger,
    /// Each firing is delayed by a random duration from 0 up to this.
    pub jitter: Duration,
    /// What happens to instants missed while the runner was busy or asleep.
    pub misfire: Misfire,
    /// How late past its (jittered) instant a firing may happen and still be on time; later
    /// than that, or once the next instant has passed too, the instant is missed.
    pub grace: Duration,
}

/// One firing of a schedule, as published on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// The schedule's name.
    pub schedule: String,
    /// The instant the firing is for (before jitter). For a `fire_once` catch-up, the latest
    /// of the missed instants.
    pub scheduled_for: DateTime<Utc>,
    /// When it actually fired.
    pub fired_at: DateTime<Utc>,
    /// 1 for the schedule's first firing, then 2, 3, ...
    pub sequence: u64,
    /// Instants that passed without a firing of their own and that this one stands for
    /// (`fire_once` after a misfire); 0 for an on-time firing.
    #[serde(default)]
    pub missed: u64,
}

#[cfg(feature = "schedules")]
/// Parses a cron pattern: 6 fields with seconds first (`0 30 7 * * Mon`), or the classic 5
/// (minute first; seconds are then 0). Names of days and months, `L`, `#`, `W` and
/// `@daily`-style nicknames are croner's.
pub fn parse_cron(pattern: &str) -> Result<Cron, ScheduleError> {
    let bad = |reason: String| ScheduleError::BadCron { pattern: pattern.to_string(), reason };
    let fields = pattern.split_whitespace().count();
    if !pattern.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(bad(format!("expected 5 or 6 fields (seconds first when 6), found {fields}")));
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| bad(e.to_string().trim_end_matches('.').to_string()))
}

#[cfg(feature = "schedules")]
/// Parses an IANA time zone name (`Europe/Paris`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    name.trim().parse::<Tz>().map_err(|_| ScheduleError::UnknownTimezone(name.to_string()))
}

#[cfg(feature = "schedules")]
/// Checks a latitude and longitude in degrees.
pub fn parse_coordinates(lat: f64, lon: f64) -> Result<sunrise::Coordinates, ScheduleError> {
    sunrise::Coordinates::new(lat, lon).ok_or(ScheduleError::BadCoordinates { lat, lon })
}

impl Schedule {
    fn with_trigger(name: impl Into<String>, trigger: Trigger) -> Self {
        Self {
            name: name.into(),
            trigger,
            jitter: Duration::ZERO,
            misfire: Misfire::Skip,
            grace: DEFAULT_GRACE,
        }
    }

    /// Fires every `period`, counted from `anchor`.
    pub fn every(
        name: impl Into<String>,
        period: Duration,
        anchor: DateTime<Utc>,
    ) -> Result<Self, ScheduleError> {
        if period.is_zero() {
            return Err(ScheduleError::ZeroPeriod);
        }
        Ok(Self::with_trigger(name, Trigger::Every { period, anchor }))
    }

    /// Fires when `pattern` matches the wall clock in `timezone` (an IANA name).
    #[cfg(feature = "schedules")]
    pub fn cron(name: impl Into<String>, pattern: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let cron = parse_cron(pattern)?;
        let timezone = parse_timezone(timezone)?;
        let schedule = Self::with_trigger(name, Trigger::Cron { cron: Box::new(cron), timezone });
        // A pattern that matches nothing within croner's search limit never fires.
        let probe = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        if schedule.next_after(probe).is_none() {
            return Err(ScheduleError::NeverFires(pattern.to_string()));
        }
        Ok(schedule)
    }

    /// Fires every day `event` happens at `lat`, `lon` (degrees).
    #[cfg(feature = "schedules")]
    pub fn solar(
        name: impl Into<String>,
        event: SolarEventKind,
        lat: f64,
        lon: f64,
    ) -> Result<Self, ScheduleError> {
        let coordinates = parse_coordinates(lat, lon)?;
        Ok(Self::with_trigger(name, Trigger::Solar { event, coordinates }))
    }

    /// Without the `schedules` feature: an error saying so.
    #[cfg(not(feature = "schedules"))]
    pub fn cron(_: impl Into<String>, _: &str, _: &str) -> Result<Self, ScheduleError> {
        Err(ScheduleError::NotBuilt("cron"))
    }

    /// Without the `schedules` feature: an error saying so.
    #[cfg(not(feature = "schedules"))]
    pub fn solar(_: impl Into<String>, _: SolarEventKind, _: f64, _: f64) -> Result<Self, ScheduleError> {
        Err(ScheduleError::NotBuilt("solar"))
    }

    /// The schedule a spec entry describes; an `every` period is counted from `anchor`
    /// (the Clock actor passes the time it was created).
    pub fn from_spec(spec: &ScheduleSpec, anchor: DateTime<Utc>) -> Result<Self, ScheduleError> {
        let triggers = [spec.every.is_some(), spec.cron.is_some(), spec.solar.is_some()];
        let count = triggers.iter().filter(|t| **t).count();
        let schedule = match (&spec.every, &spec.cron, &spec.solar) {
            (Some(every), None, None) => Self::every(&spec.name, every.0, anchor)?,
            (None, Some(cron), None) => {
                Self::cron(&spec.name, cron, spec.timezone.as_deref().unwrap_or("UTC"))?
            }
            (None, None, Some(solar)) => Self::solar(&spec.name, solar.event, solar.lat, solar.lon)?,
            _ => return Err(ScheduleError::Trigger(count)),
        };
        Ok(schedule.with_jitter(spec.jitter.0).with_misfire(spec.misfire))
    }

    /// Sets the jitter.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the misfire policy.
    pub fn with_misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// Sets how late a firing may be and still be on time.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The first firing instant strictly after `t` (without jitter); `None` when there is
    /// none (a cron pattern with no future match, a solar event that does not happen within
    /// 400 days, or past the end of time).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.trigger {
            Trigger::Every { period, anchor } => every_next(*period, *anchor, t),
            #[cfg(feature = "schedules")]
            Trigger::Cron { cron, timezone } => {
                let local = t.with_timezone(timezone);
                cron.find_next_occurrence(&local, false).ok().map(|n| n.with_timezone(&Utc))
            }
            #[cfg(feature = "schedules")]
            Trigger::Solar { event, coordinates } => solar_next(*event, *coordinates, t),
        }
    }

    /// The instants that passed by `now`, from `due` on: the latest of them and how many
    /// (counting stops at [`MAX_MISSED_COUNT`]).
    #[cfg_attr(not(feature = "schedules"), allow(irrefutable_let_patterns))]
    fn passed(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> (DateTime<Utc>, u64) {
        if let Trigger::Every { period, .. } = self.trigger {
            // Direct arithmetic: any number of periods.
            let period_ns = period.as_nanos().max(1);
            let behind = (now - due).num_nanoseconds().map_or(u128::MAX, |n| n.max(0) as u128);
            let k = behind / period_ns;
            let latest = i64::try_from(k * period_ns)
                .ok()
                .and_then(|ns| due.checked_add_signed(TimeDelta::nanoseconds(ns)))
                .unwrap_or(due);
            return (latest, u64::try_from(k).unwrap_or(u64::MAX).saturating_add(1));
        }
        let (mut latest, mut count) = (due, 1);
        while count < MAX_MISSED_COUNT {
            match self.next_after(latest) {
                Some(n) if n <= now => {
                    latest = n;
                    count += 1;
                }
                _ => break,
            }
        }
        (latest, count)
    }

    fn draw_jitter(&self) -> TimeDelta {
        if self.jitter.is_zero() {
            return TimeDelta::zero();
        }
        let max = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        let ns = rand::rng().random_range(0..=max);
        TimeDelta::nanoseconds(i64::try_from(ns).unwrap_or(i64::MAX))
    }
}

fn every_next(period: Duration, anchor: DateTime<Utc>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let period_ns = i128::try_from(period.as_nanos()).ok()?.max(1);
    let since = i128::from((t - anchor).num_nanoseconds()?);
    let k = if since < 0 { 1 } else { since / period_ns + 1 };
    let offset = i64::try_from(k * period_ns).ok()?;
    anchor.checked_add_signed(TimeDelta::nanoseconds(offset))
}

#[cfg(feature = "schedules")]
fn solar_next(
    event: SolarEventKind,
    coordinates: sunrise::Coordinates,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // A day's event can fall on the UTC date before or after it (far east or west).
    let first = t.date_naive().checked_sub_days(chrono::Days::new(1))?;
    (0..SOLAR_SEARCH_DAYS)
        .filter_map(|i| first.checked_add_days(chrono::Days::new(u64::try_from(i).ok()?)))
        .filter_map(|date| solar_event_on(event, coordinates, date))
        .find(|at| *at > t)
}

#[cfg(feature = "schedules")]
/// The event on `date` at the place, if it happens that day.
pub fn solar_event_on(
    event: SolarEventKind,
    coordinates: sunrise::Coordinates,
    date: NaiveDate,
) -> Option<DateTime<Utc>> {
    use sunrise::{DawnType, SolarDay, SolarEvent};
    let day = SolarDay::new(coordinates, date);
    match event {
        SolarEventKind::Sunrise => day.event_time(SolarEvent::Sunrise),
        SolarEventKind::Sunset => day.event_time(SolarEvent::Sunset),
        SolarEventKind::Dawn => day.event_time(SolarEvent::Dawn(DawnType::Civil)),
        SolarEventKind::Dusk => day.event_time(SolarEvent::Dusk(DawnType::Civil)),
        SolarEventKind::Noon => solar_noon(coordinates.lon(), date),
    }
}

#[cfg(feature = "schedules")]
/// Solar transit on `date` at longitude `lon`: the sunrise crate's own equation (the
/// Wikipedia "sunrise equation", as in `SolarDay`), which it computes but does not expose.
/// Sunrise and sunset are symmetric around it.
fn solar_noon(lon: f64, date: NaiveDate) -> Option<DateTime<Utc>> {
    use std::f64::consts::PI;
    const J2000: f64 = 2_451_545.0;
    const UNIX_EPOCH_JD: f64 = 2_440_587.5;
    let noon_utc = date.and_hms_opt(12, 0, 0)?.and_utc().timestamp() as f64;
    let day = noon_utc / 86_400.0 + UNIX_EPOCH_JD - lon / 360.0;
    let m = (357.5291 + 0.985_600_28 * (day - J2000)).to_radians().rem_euclid(2.0 * PI);
    let c = (1.9148 * m.sin() + 0.02 * (2.0 * m).sin() + 0.0003 * (3.0 * m).sin()).to_radians();
    let perihelion = (102.93005 + 0.317_952_6 * (day - J2000) / 36_525.0).to_radians();
    let lambda = (m + c + perihelion % (2.0 * PI) + 3.0 * PI) % (2.0 * PI);
    let transit = day + 0.0053 * m.sin() - 0.0069 * (2.0 * lambda).sin();
    DateTime::from_timestamp(((transit - UNIX_EPOCH_JD) * 86_400.0) as i64, 0)
}

/// Where the runner reads wall time.
pub trait WallClock: Send + Sync {
    /// The current wall time.
    fn now(&self) -> DateTime<Utc>;

    /// The longest single sleep: a clock that may jump (suspend, a clock step) is read again
    /// at least this often, so a firing is not late by more than this after a jump.
    fn max_sleep(&self) -> Duration {
        Duration::MAX
    }
}

/// The system's wall clock (`Utc::now()`), read again every [`SystemClock::RECHECK`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// How often a long wait looks at the wall clock again.
    pub const RECHECK: Duration = Duration::from_secs(5);
}

impl WallClock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn max_sleep(&self) -> Duration {
        Self::RECHECK
    }
}

/// Wall time derived from tokio's clock: `origin` plus the tokio time elapsed since this
/// clock was made. Under `tokio::time::pause()` it moves only with `advance` and auto-advance,
/// which makes schedule tests exact and instant.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `origin` now.
    pub fn new(origin: DateTime<Utc>) -> Self {
        Self { origin, start: tokio::time::Instant::now() }
    }
}

impl WallClock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.start.elapsed()).unwrap_or(TimeDelta::MAX);
        self.origin.checked_add_signed(elapsed).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Where a runner starts: it fires only instants after `after`, and numbers its firings
/// from `fired + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Instants at or before this are not fired.
    pub after: DateTime<Utc>,
    /// Firings so far.
    pub fired: u64,
}

/// Runs `schedule` from the clock's current time until it has no next instant (for most
/// schedules: forever; drop the future to stop it), calling `on_fire` for each firing.
pub async fn run_schedule<C: WallClock + ?Sized>(
    schedule: &Schedule,
    clock: &C,
    on_fire: impl FnMut(Firing),
) {
    let resume = Resume { after: clock.now(), fired: 0 };
    run_schedule_from(schedule, clock, resume, on_fire).await;
}

/// [`run_schedule`] from a given point: after a restart, pass the last firing's
/// `scheduled_for` and `sequence`; the instants that passed since are misfires.
///
/// Each instant is waited for, plus a random jitter. On waking, the firing is on time if
/// it is no later than [`Schedule::grace`] past that and the next instant has not passed
/// yet. Otherwise the runner was held up past one or more instants: with
/// [`Misfire::Skip`] they are dropped and the runner waits for the next future instant;
/// with [`Misfire::FireOnce`] it fires once, right away, for all of them.
pub async fn run_schedule_from<C: WallClock + ?Sized>(
    schedule: &Schedule,
    clock: &C,
    resume: Resume,
    mut on_fire: impl FnMut(Firing),
) {
    let Resume { after: mut cursor, mut fired } = resume;
    let grace = TimeDelta::from_std(schedule.grace).unwrap_or(TimeDelta::MAX);
    while let Some(due) = schedule.next_after(cursor) {
        let target = due.checked_add_signed(schedule.draw_jitter()).unwrap_or(due);
        sleep_until(clock, target).await;
        let now = clock.now();
        let late_by_grace = target.checked_add_signed(grace).is_some_and(|limit| now > limit);
        let next_passed = schedule.next_after(due).is_some_and(|next| next <= now);
        if !late_by_grace && !next_passed {
            fired += 1;
            on_fire(Firing {
                schedule: schedule.name.clone(),
                scheduled_for: due,
                fired_at: now,
                sequence: fired,
                missed: 0,
            });
            cursor = due;
            continue;
        }
        let (latest, count) = schedule.passed(due, now);
        match schedule.misfire {
            Misfire::Skip => {
                tracing::info!(schedule = %schedule.name, missed = count, "schedule misfired: skipped");
            }
            Misfire::FireOnce => {
                tracing::info!(schedule = %schedule.name, missed = count, "schedule misfired: firing once");
                fired += 1;
                on_fire(Firing {
                    schedule: schedule.name.clone(),
                    scheduled_for: latest,
                    fired_at: now,
                    sequence: fired,
                    missed: count.saturating_sub(1),
                });
            }
        }
        cursor = now.max(latest);
    }
    tracing::info!(schedule = %schedule.name, "schedule has no further instant");
}

/// Sleeps on tokio time until the clock reads `target` or later.
async fn sleep_until<C: WallClock + ?Sized>(clock: &C, target: DateTime<Utc>) {
    loop {
        let Ok(left) = (target - clock.now()).to_std() else { return };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(clock.max_sleep())).await;
    }
}

#[cfg(all(test, feature = "schedules"))]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("test instant").with_timezone(&Utc)
    }

    #[test]
    fn every_counts_from_its_anchor() {
        let s = Schedule::every("e", Duration::from_secs(2), at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(s.next_after(at("2025-12-31T00:00:00Z")), Some(at("2026-01-01T00:00:02Z")));
        assert_eq!(s.next_after(at("2026-01-01T00:00:00Z")), Some(at("2026-01-01T00:00:02Z")));
        assert_eq!(s.next_after(at("2026-01-01T00:00:02Z")), Some(at("2026-01-01T00:00:04Z")));
        assert_eq!(s.next_after(at("2026-01-01T00:00:03.5Z")), Some(at("2026-01-01T00:00:04Z")));
        assert_eq!(
            Schedule::every("z", Duration::ZERO, at("2026-01-01T00:00:00Z")).unwrap_err(),
            ScheduleError::ZeroPeriod
        );
    }

    #[test]
    fn every_counts_missed_instants_directly() {
        let s = Schedule::every("e", Duration::from_secs(2), at("2026-01-01T00:00:00Z")).unwrap();
        let (latest, count) = s.passed(at("2026-01-01T00:00:02Z"), at("2026-01-01T00:00:09Z"));
        assert_eq!((latest, count), (at("2026-01-01T00:00:08Z"), 4));
    }

    #[test]
    fn cron_five_and_six_fields() {
        let six = Schedule::cron("c", "0 30 7 * * Mon", "UTC").unwrap();
        let five = Schedule::cron("c", "30 7 * * Mon", "UTC").unwrap();
        let t = at("2026-03-04T12:00:00Z"); // a Wednesday
        assert_eq!(six.next_after(t), Some(at("2026-03-09T07:30:00Z")));
        assert_eq!(five.next_after(t), six.next_after(t));
        let secs = Schedule::cron("c", "*/15 * * * * *", "UTC").unwrap();
        assert_eq!(secs.next_after(at("2026-03-04T12:00:01Z")), Some(at("2026-03-04T12:00:15Z")));
    }

    #[test]
    fn cron_errors() {
        let e = parse_cron("0 30 7 * *  * Mon").unwrap_err();
        assert!(e.to_string().contains("expected 5 or 6 fields"), "{e}");
        let e = parse_cron("0 61 7 * * *").unwrap_err();
        assert!(matches!(e, ScheduleError::BadCron { .. }), "{e}");
        let e = Schedule::cron("c", "0 0 0 30 2 *", "UTC").unwrap_err();
        assert_eq!(e, ScheduleError::NeverFires("0 0 0 30 2 *".into()));
        assert!(matches!(parse_timezone("Europe/Pariss"), Err(ScheduleError::UnknownTimezone(_))));
    }

    #[test]
    fn solar_noon_is_midway_between_sunrise_and_sunset() {
        let paris = parse_coordinates(48.85, 2.35).unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 6, 21).unwrap();
        let rise = solar_event_on(SolarEventKind::Sunrise, paris, date).unwrap();
        let set = solar_event_on(SolarEventKind::Sunset, paris, date).unwrap();
        let noon = solar_event_on(SolarEventKind::Noon, paris, date).unwrap();
        let mid = rise + (set - rise) / 2;
        assert!((noon - mid).num_seconds().abs() <= 1, "noon {noon}, midpoint {mid}");
    }

    #[test]
    fn polar_night_skips_to_the_first_sunrise() {
        // Tromsø (69.65 N): no sunrise from late November to mid-January.
        let s = Schedule::solar("s", SolarEventKind::Sunrise, 69.65, 18.96).unwrap();
        let next = s.next_after(at("2026-12-01T00:00:00Z")).unwrap();
        assert!(next > at("2027-01-10T00:00:00Z") && next < at("2027-01-20T00:00:00Z"), "{next}");
        // Midnight sun: no sunset from late May to late July.
        let s = Schedule::solar("s", SolarEventKind::Sunset, 69.65, 18.96).unwrap();
        let next = s.next_after(at("2026-06-01T00:00:00Z")).unwrap();
        assert!(next > at("2026-07-15T00:00:00Z") && next < at("2026-08-01T00:00:00Z"), "{next}");
        // Noon happens every day, even in polar night.
        let s = Schedule::solar("s", SolarEventKind::Noon, 69.65, 18.96).unwrap();
        let next = s.next_after(at("2026-12-21T00:00:00Z")).unwrap();
        assert!(next < at("2026-12-22T00:00:00Z"), "{next}");
        assert!(matches!(
            Schedule::solar("s", SolarEventKind::Noon, 91.0, 0.0),
            Err(ScheduleError::BadCoordinates { .. })
        ));
    }

    #[test]
    fn firing_serializes() {
        let f = Firing {
            schedule: "refresh".into(),
            scheduled_for: at("2026-01-01T00:00:02Z"),
            fired_at: at("2026-01-01T00:00:02.5Z"),
            sequence: 1,
            missed: 0,
        };
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains("\"scheduled_for\":\"2026-01-01T00:00:02Z\""), "{json}");
        assert_eq!(serde_json::from_str::<Firing>(&json).unwrap(), f);
    }
}
