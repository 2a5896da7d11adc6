//! Schedules: firing instants for `every`, `cron` in a time zone (across DST changes) and
//! `solar` events; jitter bounds; the misfire policies; restarts; the Clock actor; and the
//! spec's `schedules:` validation with positions.
//!
//! The runner tests use a paused tokio clock and a `TokioClock` mapped onto a fixed wall
//! time, so every instant is exact and the tests take no real time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arachne::bus::{
    run_schedule, run_schedule_from, Bus, Firing, Overflow, Resume, Schedule, TokioClock, WallClock,
};
use arachne::crawl::clock::{Clock, FIRINGS_TOPIC};
use arachne::observe::Stats;
use arachne::spec::{
    load_str, Misfire, ScheduleAction, SolarEventKind, SpecError, SpecErrors, DURATION_FORMS,
};
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test instant").with_timezone(&Utc)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// Runs `schedule` on a paused-time clock that reads `origin` now; firings come out of the
/// channel.
fn spawn_runner(schedule: Schedule, origin: DateTime<Utc>) -> mpsc::UnboundedReceiver<Firing> {
    let (tx, rx) = mpsc::unbounded_channel();
    let clock = TokioClock::new(origin);
    tokio::spawn(async move {
        run_schedule(&schedule, &clock, move |f| {
            let _ = tx.send(f);
        })
        .await;
    });
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Firing>) -> Firing {
    rx.recv().await.expect("a firing")
}

/// Within a millisecond (tokio's timer resolution).
fn assert_near(actual: DateTime<Utc>, expected: DateTime<Utc>) {
    assert!((actual - expected).abs() <= TimeDelta::milliseconds(1), "{actual} is not {expected}");
}

// ---- every --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn every_two_seconds_fires_at_2_4_6() {
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = Schedule::every("tick", Duration::from_secs(2), t0).unwrap();
    let mut rx = spawn_runner(schedule, t0);
    for (i, s) in [2, 4, 6].into_iter().enumerate() {
        let f = next(&mut rx).await;
        assert_eq!(f.schedule, "tick");
        assert_eq!(f.scheduled_for, t0 + secs(s));
        assert_near(f.fired_at, t0 + secs(s));
        assert_eq!(f.sequence, i as u64 + 1);
        assert_eq!(f.missed, 0);
    }
}

// ---- cron ---------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn cron_in_paris_across_the_spring_dst_change() {
    // 07:30 on Mondays in Paris: CET (UTC+1) on 23 March 2026, CEST (UTC+2) after the change
    // on Sunday 29 March.
    let schedule = Schedule::cron("weekly", "0 30 7 * * Mon", "Europe/Paris").unwrap();
    let mut rx = spawn_runner(schedule, at("2026-03-22T00:00:00Z"));
    let first = next(&mut rx).await;
    assert_eq!(first.scheduled_for, at("2026-03-23T06:30:00Z"));
    assert_near(first.fired_at, at("2026-03-23T06:30:00Z"));
    let second = next(&mut rx).await;
    assert_eq!(second.scheduled_for, at("2026-03-30T05:30:00Z"));
    assert_near(second.fired_at, at("2026-03-30T05:30:00Z"));
    assert_eq!(second.sequence, 2);
}

#[test]
fn cron_in_paris_across_the_autumn_dst_change() {
    let s = Schedule::cron("weekly", "0 30 7 * * Mon", "Europe/Paris").unwrap();
    let a = s.next_after(at("2026-10-14T00:00:00Z")).unwrap();
    assert_eq!(a, at("2026-10-19T05:30:00Z")); // CEST
    let b = s.next_after(a).unwrap();
    assert_eq!(b, at("2026-10-26T06:30:00Z")); // CET, after the change on 25 October
                                               // The classic 5-field form means the same (seconds 0).
    let five = Schedule::cron("weekly", "30 7 * * mon", "Europe/Paris").unwrap();
    assert_eq!(five.next_after(at("2026-10-14T00:00:00Z")), Some(a));
    // 02:30 does not exist in Paris on 29 March 2026: it fires when the gap ends (03:00
    // CEST); on 25 October 02:30 happens twice: it fires once, the first time (CEST).
    let daily = Schedule::cron("daily", "0 30 2 * * *", "Europe/Paris").unwrap();
    assert_eq!(daily.next_after(at("2026-03-28T12:00:00Z")), Some(at("2026-03-29T01:00:00Z")));
    assert_eq!(daily.next_after(at("2026-03-29T12:00:00Z")), Some(at("2026-03-30T00:30:00Z")));
    let first = daily.next_after(at("2026-10-24T12:00:00Z")).unwrap();
    assert_eq!(first, at("2026-10-25T00:30:00Z"));
    assert_eq!(daily.next_after(first), Some(at("2026-10-26T01:30:00Z")));
}

// ---- solar --------------------------------------------------------------------------------

/// Paris (48.85 N, 2.35 E) on 2026-06-21, from astral 3.2 (Python; NOAA's algorithm),
/// computed once: sunrise 03:47:19 UTC, solar noon 11:52:18 UTC, sunset 19:57:31 UTC
/// (21:57 CEST, as published sunset tables for Paris give for the solstice).
const PARIS_SUNRISE: &str = "2026-06-21T03:47:19Z";
const PARIS_NOON: &str = "2026-06-21T11:52:18Z";
const PARIS_SUNSET: &str = "2026-06-21T19:57:31Z";

fn assert_within_minutes(actual: DateTime<Utc>, expected: DateTime<Utc>, minutes: i64) {
    assert!(
        (actual - expected).abs() <= TimeDelta::minutes(minutes),
        "{actual} is not within {minutes} min of {expected}"
    );
}

#[test]
fn solar_events_in_paris_on_the_solstice() {
    let morning = at("2026-06-21T00:00:00Z");
    for (event, expected) in [
        (SolarEventKind::Sunrise, PARIS_SUNRISE),
        (SolarEventKind::Noon, PARIS_NOON),
        (SolarEventKind::Sunset, PARIS_SUNSET),
    ] {
        let s = Schedule::solar("sun", event, 48.85, 2.35).unwrap();
        let got = s.next_after(morning).unwrap();
        assert_within_minutes(got, at(expected), 2);
    }
    // After today's sunset, the next one is tomorrow's.
    let s = Schedule::solar("sun", SolarEventKind::Sunset, 48.85, 2.35).unwrap();
    let tomorrow = s.next_after(at("2026-06-21T21:00:00Z")).unwrap();
    assert_within_minutes(tomorrow, at(PARIS_SUNSET) + TimeDelta::days(1), 3);
    // Dawn and dusk (civil) frame sunrise and sunset.
    let dawn = Schedule::solar("d", SolarEventKind::Dawn, 48.85, 2.35).unwrap().next_after(morning).unwrap();
    let dusk = Schedule::solar("d", SolarEventKind::Dusk, 48.85, 2.35).unwrap().next_after(morning).unwrap();
    assert!(dawn < at(PARIS_SUNRISE) && dusk > at(PARIS_SUNSET), "{dawn} {dusk}");
    // astral: civil dusk 20:41:01 UTC.
    assert_within_minutes(dusk, at("2026-06-21T20:41:01Z"), 2);
}

#[tokio::test(start_paused = true)]
async fn solar_sunset_fires_on_time() {
    let schedule = Schedule::solar("sunset", SolarEventKind::Sunset, 48.85, 2.35).unwrap();
    let mut rx = spawn_runner(schedule, at("2026-06-21T12:00:00Z"));
    let f = next(&mut rx).await;
    assert_within_minutes(f.scheduled_for, at(PARIS_SUNSET), 2);
    assert_near(f.fired_at, f.scheduled_for);
    let f2 = next(&mut rx).await;
    let gap = f2.scheduled_for - f.scheduled_for;
    assert!(gap > TimeDelta::hours(23) && gap < TimeDelta::hours(25), "{gap}");
}

// ---- jitter -------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_bounds() {
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule =
        Schedule::every("j", Duration::from_secs(10), t0).unwrap().with_jitter(Duration::from_secs(3));
    let mut rx = spawn_runner(schedule, t0);
    let mut delays = Vec::new();
    for i in 1..=60 {
        let f = next(&mut rx).await;
        assert_eq!(f.scheduled_for, t0 + secs(10 * i), "jitter must not move the grid");
        assert_eq!(f.missed, 0);
        assert_eq!(f.sequence, i as u64);
        let delay = f.fired_at - f.scheduled_for;
        assert!(
            delay >= TimeDelta::zero() && delay <= TimeDelta::seconds(3) + TimeDelta::milliseconds(1),
            "{delay}"
        );
        delays.push(delay);
    }
    // Random: not all the same, and spread over the range.
    let min = delays.iter().min().copied().unwrap();
    let max = delays.iter().max().copied().unwrap();
    assert!(max - min > TimeDelta::seconds(1), "delays barely vary: {min} .. {max}");
}

// ---- misfire ------------------------------------------------------------------------------

/// The runner is held up (time jumps past several instants while it waits for the first,
/// as when the process is suspended or its thread is starved); returns the firings after.
async fn blocked_run(misfire: Misfire) -> Vec<Firing> {
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = Schedule::every("m", Duration::from_secs(2), t0).unwrap().with_misfire(misfire);
    let mut rx = spawn_runner(schedule, t0);
    tokio::task::yield_now().await; // the runner now waits for t0 + 2 s
    tokio::time::advance(Duration::from_secs(9)).await; // ... and wakes at t0 + 9 s
    let mut out = Vec::new();
    while out.last().is_none_or(|f: &Firing| f.scheduled_for < t0 + secs(12)) {
        out.push(next(&mut rx).await);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn misfire_skip_drops_the_missed_instants() {
    let t0 = at("2026-01-01T00:00:00Z");
    let firings = blocked_run(Misfire::Skip).await;
    // 2, 4, 6 and 8 s passed while blocked: dropped. The next ones fire on time.
    let instants: Vec<_> = firings.iter().map(|f| f.scheduled_for).collect();
    assert_eq!(instants, vec![t0 + secs(10), t0 + secs(12)]);
    assert_near(firings[0].fired_at, t0 + secs(10));
    assert_eq!(firings.iter().map(|f| f.sequence).collect::<Vec<_>>(), vec![1, 2]);
    assert!(firings.iter().all(|f| f.missed == 0));
}

#[tokio::test(start_paused = true)]
async fn misfire_fire_once_catches_up_once() {
    let t0 = at("2026-01-01T00:00:00Z");
    let firings = blocked_run(Misfire::FireOnce).await;
    // One firing right away (at 9 s) for 2, 4, 6 and 8 s; then on time again.
    assert_eq!(firings.len(), 3, "{firings:?}");
    assert_eq!(firings[0].scheduled_for, t0 + secs(8));
    assert_near(firings[0].fired_at, t0 + secs(9));
    assert_eq!(firings[0].missed, 3);
    assert_eq!(firings[0].sequence, 1);
    assert_eq!(firings[1].scheduled_for, t0 + secs(10));
    assert_eq!(firings[1].missed, 0);
    assert_eq!(firings[2].scheduled_for, t0 + secs(12));
    assert_eq!(firings.iter().map(|f| f.sequence).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn a_little_late_is_on_time_within_the_grace() {
    // Held up 0.5 s past the first instant: within the 1 s grace, it fires (late).
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = Schedule::every("g", Duration::from_secs(2), t0).unwrap();
    let mut rx = spawn_runner(schedule, t0);
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_millis(2500)).await;
    let f = next(&mut rx).await;
    assert_eq!((f.scheduled_for, f.missed, f.sequence), (t0 + secs(2), 0, 1));
    assert_near(f.fired_at, t0 + TimeDelta::milliseconds(2500));
}

#[tokio::test(start_paused = true)]
async fn resuming_after_a_restart_treats_the_gap_as_a_misfire() {
    // A runner that fired #1 for t0+2 s, restarted at t0+7 s: 4 and 6 s passed meanwhile.
    let t0 = at("2026-01-01T00:00:00Z");
    let schedule = Schedule::every("r", Duration::from_secs(2), t0).unwrap().with_misfire(Misfire::FireOnce);
    let clock = TokioClock::new(t0 + secs(7));
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let resume = Resume { after: t0 + secs(2), fired: 1 };
        run_schedule_from(&schedule, &clock, resume, move |f| {
            let _ = tx.send(f);
        })
        .await;
    });
    let f = next(&mut rx).await;
    assert_eq!((f.scheduled_for, f.missed, f.sequence), (t0 + secs(6), 1, 2));
    assert_near(f.fired_at, t0 + secs(7));
    let f = next(&mut rx).await;
    assert_eq!((f.scheduled_for, f.missed, f.sequence), (t0 + secs(8), 0, 3));
}

/// A wall clock that can jump forward (a suspended laptop: the monotonic clock stood still,
/// the wall clock did not), read again at least every 5 s like `SystemClock`.
struct JumpyClock {
    inner: TokioClock,
    offset_s: AtomicI64,
}

impl WallClock for JumpyClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now() + secs(self.offset_s.load(Ordering::Relaxed))
    }
    fn max_sleep(&self) -> Duration {
        Duration::from_secs(5)
    }
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_is_noticed_and_is_a_misfire() {
    let t0 = at("2026-01-01T00:00:00Z");
    let clock = Arc::new(JumpyClock { inner: TokioClock::new(t0), offset_s: AtomicI64::new(0) });
    let schedule =
        Schedule::every("h", Duration::from_secs(3600), t0).unwrap().with_misfire(Misfire::FireOnce);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let c = clock.clone();
    tokio::spawn(async move {
        run_schedule(&schedule, &*c, move |f| {
            let _ = tx.send(f);
        })
        .await;
    });
    tokio::task::yield_now().await;
    // "Suspended" for 5 hours: the wall clock jumps, tokio's clock does not.
    clock.offset_s.store(5 * 3600, Ordering::Relaxed);
    let f = next(&mut rx).await;
    assert_eq!((f.scheduled_for, f.missed), (t0 + secs(5 * 3600), 4));
    // Noticed within one recheck (5 s of tokio time).
    assert!(f.fired_at - (t0 + secs(5 * 3600)) <= secs(5), "{}", f.fired_at);
}

// ---- the Clock actor ----------------------------------------------------------------------

#[test]
fn clock_actor_counts_publishes_and_reseeds() {
    let spec = load_str(
        "name: x\nseeds: [\"https://example.com/\"]\nschedules:\n  \
         - { name: refresh, every: 2s, action: reseed }\n  \
         - { name: ping, every: 3s, publish: { topic: ticks } }\n",
        "crawl.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .unwrap();
    let system = actix::System::new();
    system.block_on(async move {
        tokio::time::pause();
        let t0 = at("2026-01-01T00:00:00Z");
        let bus = Bus::new();
        let stats = Arc::new(Stats::default());
        let firings = bus.topic::<Firing>(FIRINGS_TOPIC).unwrap().subscribe(64, Overflow::Block);
        let ticks = bus.topic::<Firing>("ticks").unwrap().subscribe(64, Overflow::Block);
        let reseeds = Arc::new(Mutex::new(Vec::new()));
        let r = reseeds.clone();
        let clock = Clock::with_wall_clock(
            spec.schedules.clone(),
            bus.clone(),
            stats.clone(),
            Box::new(move |f: &Firing| r.lock().unwrap().push(f.scheduled_for)),
            Arc::new(TokioClock::new(t0)),
        )
        .unwrap();
        assert_eq!(clock.schedule_names(), vec!["refresh", "ping"]);
        use actix::Actor;
        let _addr = clock.start();
        // refresh at 2, 4, 6; ping at 3, 6.
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let f = firings.recv().await.expect("a firing");
            seen.push((f.schedule.clone(), (f.scheduled_for - t0).num_seconds()));
        }
        seen.sort_by_key(|(name, s)| (*s, name.clone()));
        assert_eq!(
            seen,
            vec![
                ("refresh".to_string(), 2),
                ("ping".to_string(), 3),
                ("refresh".to_string(), 4),
                ("ping".to_string(), 6),
                ("refresh".to_string(), 6),
            ]
        );
        assert_eq!(stats.firings.load(Ordering::Relaxed), 5);
        assert_eq!(*reseeds.lock().unwrap(), vec![t0 + secs(2), t0 + secs(4), t0 + secs(6)]);
        let tick = ticks.recv().await.expect("a tick");
        assert_eq!((tick.schedule.as_str(), tick.scheduled_for), ("ping", t0 + secs(3)));
        actix::System::current().stop();
    });
}

// ---- the spec -----------------------------------------------------------------------------

const BASE: &str = "name: x\nseeds: [\"https://example.com/\"]\nschedules:\n";

fn errors_of(rest: &str) -> Vec<SpecError> {
    match load_str(&format!("{BASE}{rest}"), "crawl.yaml", arachne::spec::NO_OVERRIDES) {
        Ok(spec) => panic!("expected errors, got {:?}", spec.schedules),
        Err(SpecErrors(errors)) => errors,
    }
}

fn only_error(rest: &str) -> SpecError {
    let errors = errors_of(rest);
    assert_eq!(errors.len(), 1, "expected one error, got: {}", SpecErrors(errors.clone()));
    errors.into_iter().next().expect("one error")
}

fn assert_at(e: &SpecError, line: usize, column: usize, words: &[&str]) {
    assert_eq!((e.line, e.column), (Some(line), Some(column)), "wrong place for: {e}");
    for w in words {
        assert!(e.message.contains(w), "message lacks {w:?}: {e}");
    }
}

#[test]
fn schedules_load_with_their_defaults() {
    let spec = load_str(
        &format!(
            "{BASE}  - {{ name: refresh, every: 6h, action: reseed }}\n  \
             - name: weekly\n    cron: \"0 30 7 * * Mon\"\n    timezone: Europe/Paris\n    \
             jitter: 30s\n    misfire: fire_once\n    publish: {{ topic: weekly }}\n  \
             - {{ name: dusk, solar: {{ event: sunset, lat: 48.85, lon: 2.35 }}, action: reseed }}\n"
        ),
        "crawl.yaml",
        arachne::spec::NO_OVERRIDES,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let [refresh, weekly, dusk] = spec.schedules.as_slice() else { panic!("{:?}", spec.schedules) };
    assert_eq!(refresh.every.map(|d| d.0), Some(Duration::from_secs(6 * 3600)));
    assert_eq!(
        (refresh.misfire, refresh.jitter.0, refresh.action),
        (Misfire::Skip, Duration::ZERO, Some(ScheduleAction::Reseed))
    );
    assert_eq!(weekly.cron.as_deref(), Some("0 30 7 * * Mon"));
    assert_eq!(weekly.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!((weekly.misfire, weekly.jitter.0), (Misfire::FireOnce, Duration::from_secs(30)));
    assert_eq!(weekly.publish.as_ref().map(|p| p.topic.as_str()), Some("weekly"));
    let solar = dusk.solar.as_ref().unwrap();
    assert_eq!((solar.event, solar.lat, solar.lon), (SolarEventKind::Sunset, 48.85, 2.35));
    // Every entry builds a schedule.
    let t0 = at("2026-01-01T00:00:00Z");
    for s in &spec.schedules {
        Schedule::from_spec(s, t0).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    }
}

#[test]
fn bad_cron_is_reported_with_the_parsers_message() {
    let e = only_error("  - name: a\n    cron: \"0 61 7 * * Mon\"\n    action: reseed\n");
    assert_at(&e, 5, 11, &["schedule 'a'", "bad cron pattern '0 61 7 * * Mon'"]);
    assert!(e.hint.as_deref().unwrap_or("").contains("seconds first"), "{e}");
    let e = only_error("  - { name: a, cron: \"0 30 7 * * * Mon\", action: reseed }\n");
    assert_at(&e, 4, 22, &["expected 5 or 6 fields", "found 7"]);
    let e = only_error("  - { name: a, cron: \"0 0 0 30 2 *\", action: reseed }\n");
    assert_at(&e, 4, 22, &["never fires"]);
}

#[test]
fn unknown_timezone_hints_the_real_name() {
    let e = only_error("  - { name: a, cron: \"0 0 7 * * *\", timezone: europe/paris, action: reseed }\n");
    assert_at(&e, 4, 47, &["unknown time zone 'europe/paris'"]);
    assert!(e.hint.as_deref().unwrap_or("").contains("'Europe/Paris'"), "{e}");
    let e = only_error("  - { name: a, cron: \"0 0 7 * * *\", timezone: Europe/Pariss, action: reseed }\n");
    assert!(e.hint.as_deref().unwrap_or("").contains("'Europe/Paris'"), "{e}");
    let e = only_error("  - { name: a, every: 1h, timezone: UTC, action: reseed }\n");
    assert_at(&e, 4, 27, &["'timezone' applies to 'cron' only"]);
}

#[test]
fn coordinates_out_of_range() {
    let errors =
        errors_of("  - name: a\n    solar: { event: sunset, lat: 95, lon: -200 }\n    action: reseed\n");
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 5, 34, &["latitude 95 is out of range"]);
    assert_at(&errors[1], 5, 43, &["longitude -200 is out of range"]);
    let e = only_error("  - { name: a, solar: { event: sundown, lat: 1, lon: 1 }, action: reseed }\n");
    assert_at(&e, 4, 32, &["unknown value 'sundown'"]);
}

#[test]
fn zero_every_and_big_jitter() {
    let e = only_error("  - { name: a, every: 0s, action: reseed }\n");
    assert_at(&e, 4, 23, &["'every' must be longer than 0"]);
    let e = only_error("  - { name: a, every: 10s, jitter: 10s, action: reseed }\n");
    assert_at(&e, 4, 36, &["jitter (10s) is not shorter than its period (10s)"]);
    // A bad value stops deserializing and is taken out; the entry then has no trigger.
    let errors = errors_of("  - { name: a, every: soon, action: reseed }\n");
    assert_eq!(errors.len(), 2, "{}", SpecErrors(errors.clone()));
    assert_at(&errors[0], 4, 5, &["no valid 'every', 'cron' or 'solar'"]);
    let e = &errors[1];
    assert_at(e, 4, 23, &["'soon' is not a duration"]);
    assert_eq!(e.hint.as_deref(), Some(format!("use {DURATION_FORMS}").as_str()));
}

#[test]
fn duplicate_names() {
    let e = only_error(
        "  - { name: a, every: 1h, action: reseed }\n  - { name: a, every: 2h, action: reseed }\n",
    );
    assert_at(&e, 5, 13, &["duplicate schedule name 'a'"]);
    assert!(e.hint.as_deref().unwrap_or("").contains("line 4"), "{e}");
}

#[test]
fn exactly_one_trigger_and_one_action() {
    let e = only_error("  - { name: a, every: 1h, cron: \"0 * * * *\", action: reseed }\n");
    assert_at(&e, 4, 27, &["has both 'every' and 'cron'"]);
    let e = only_error("  - { name: a, action: reseed }\n");
    assert_at(&e, 4, 5, &["no valid 'every', 'cron' or 'solar'"]);
    let e = only_error("  - { name: a, every: 1h }\n");
    assert_at(&e, 4, 5, &["neither 'action' nor 'publish'"]);
    let e = only_error("  - { name: a, every: 1h, action: reseed, publish: { topic: t } }\n");
    assert_at(&e, 4, 43, &["both 'action' and 'publish'"]);
    let e = only_error("  - { name: a, every: 1h, publish: { topic: items } }\n");
    assert_at(&e, 4, 45, &["'items' is one of the crawl's own channels"]);
    let e = only_error("  - { name: a, every: 1h, action: recrawl }\n");
    assert_at(&e, 4, 35, &["unknown value 'recrawl'"]);
    let e = only_error("  - { name: a, every: 1h, misfire: fire_twice, action: reseed }\n");
    assert_at(&e, 4, 36, &["unknown value 'fire_twice'"]);
    assert!(e.hint.as_deref().unwrap_or("").contains("fire_once"), "{e}");
    let e = only_error("  - { name: a, evry: 1h, action: reseed }\n");
    assert_at(&e, 4, 16, &["unknown key 'evry'"]);
}
