//! Release windows: `window: {cron: "0 0 2 * * Mon-Fri", duration: 4h, tz: Asia/Shanghai}`. A window opens at
//! every time the cron expression names, read on the wall clock of `tz`, and stays open for `duration` of real
//! (elapsed) time. "Open at `now`" means: some opening `t` has `t <= now < t + duration`.
//!
//! Daylight-saving changes (the `cron` crate alone would skip or double these):
//! - an opening that falls in a spring-forward gap (02:30 on the day clocks jump from 02:00 to 03:00) opens at
//!   the first wall-clock minute after the gap (03:00);
//! - an opening in a repeated fall-back hour opens once, at its first occurrence.
//!
//! All results are UTC instants; the time zone only says how to read the cron expression.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};
use cron::Schedule;
use jiff::tz::{AmbiguousOffset, TimeZone as Zone};

use super::format_duration;

/// Wall-clock openings are looked for this far on either side of `now`: more than any UTC offset change
/// (DST shifts are at most two hours anywhere).
const OFFSET_MARGIN: chrono::Duration = chrono::Duration::hours(3);
/// Most cron openings examined for one question; a schedule that fires more often than this within the margin
/// (every second, say) is answered "closed" rather than spinning.
const MAX_STEPS: usize = 20_000;

#[derive(Debug, Clone)]
pub struct Window {
    /// The cron expression as written (6 or 7 fields, seconds first).
    pub cron: String,
    schedule: Schedule,
    pub duration: Duration,
    /// The time zone's rules, from the database bundled into the binary (jiff's: compact, and the same on every
    /// host; the system's zoneinfo, which a Lambda or FC image may lack, is never read).
    zone: Zone,
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.cron == other.cron && self.duration == other.duration && self.tz() == other.tz()
    }
}

/// Whether a window is open at some instant.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowState {
    /// No window is configured: releases may happen at any time.
    Always,
    /// Open since `opened`, until `closes`.
    Open { opened: DateTime<Utc>, closes: DateTime<Utc> },
    /// Closed; `next` is the next opening (`None`: the expression names no future time, or it could not be found).
    Closed { next: Option<DateTime<Utc>> },
}

impl WindowState {
    pub fn is_open(&self) -> bool {
        !matches!(self, WindowState::Closed { .. })
    }
}

impl Window {
    /// Parses and checks a window. `cron` must have 6 or 7 fields, seconds first (or be `@daily`, `@weekly`...);
    /// the day-of-week field must use names (`Mon-Fri`): the `cron` crate counts 1 = Sunday, unlike most crons,
    /// so a number there is refused rather than silently shifted by a day. `tz` is an IANA name (default UTC).
    pub fn new(cron: &str, duration: Duration, tz: Option<&str>) -> Result<Window, (&'static str, String)> {
        let text = cron.trim();
        if !text.starts_with('@') {
            let fields: Vec<&str> = text.split_whitespace().collect();
            if !(6..=7).contains(&fields.len()) {
                return Err((
                    "cron",
                    format!(
                        "`{cron}` has {} fields: expected 6 or 7, seconds first, such as \"0 0 2 * * Mon-Fri\" (sec min hour day month weekday [year])",
                        fields.len()
                    ),
                ));
            }
            if fields[5].bytes().any(|b| b.is_ascii_digit()) {
                return Err((
                    "cron",
                    format!(
                        "day-of-week `{}` uses numbers: write day names such as Mon-Fri (the cron library counts 1 = Sunday, so numbers are ambiguous)",
                        fields[5]
                    ),
                ));
            }
        }
        let schedule =
            Schedule::from_str(text).map_err(|e| ("cron", format!("`{cron}` is not a valid cron expression: {e}")))?;
        // A day that never exists (`30 Feb`, `31 Apr`) or a year already past parses, but the window would never
        // open: every release of its rules would wait forever while the policy looks valid. Refused here.
        if schedule.after(&Utc::now()).next().is_none() {
            return Err((
                "cron",
                format!("`{cron}` names no future time (a day that does not exist, such as 30 Feb, or a past year): the window would never open"),
            ));
        }
        if duration.is_zero() {
            return Err(("duration", "a window must stay open for a positive duration such as 4h".into()));
        }
        let name = tz.map_or("UTC", str::trim);
        let zone = Zone::get(name).map_err(|_| {
            (
                "tz",
                format!(
                    "`{}` is not an IANA time zone: expected a name such as Asia/Shanghai, Europe/Berlin or UTC",
                    tz.unwrap_or_default()
                ),
            )
        })?;
        Ok(Window { cron: text.to_string(), schedule, duration, zone })
    }

    /// The IANA name of the time zone, as the bundled database spells it (`Asia/Shanghai`, `UTC`).
    pub fn tz(&self) -> &str {
        // Every zone here comes from `Zone::get`, which always knows its name.
        self.zone.iana_name().unwrap_or("UTC")
    }

    /// Whether the window is open at `now`.
    pub fn state_at(&self, now: DateTime<Utc>) -> WindowState {
        let (Ok(duration), Some(probe)) = (
            chrono::Duration::from_std(self.duration),
            self.wall(now).and_then(|w| w.checked_add_signed(OFFSET_MARGIN)),
        ) else {
            return WindowState::Closed { next: None };
        };
        // The last opening at or before `now`: walk wall-clock openings backwards from a little after `now`.
        // Placing a wall-clock time on the real clock is monotonic, so the first one not after `now` is the latest.
        for wall in self.schedule.after(&Utc.from_utc_datetime(&probe)).rev().take(MAX_STEPS) {
            let Some(opened) = self.place(wall.naive_utc()) else { continue };
            if opened > now {
                continue;
            }
            return match opened.checked_add_signed(duration) {
                Some(closes) if now < closes => WindowState::Open { opened, closes },
                _ => WindowState::Closed { next: self.next_opening(now) },
            };
        }
        WindowState::Closed { next: self.next_opening(now) }
    }

    /// The first opening strictly after `now`.
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.wall(now)?.checked_sub_signed(OFFSET_MARGIN)?;
        self.schedule
            .after(&Utc.from_utc_datetime(&start))
            .take(MAX_STEPS)
            .filter_map(|wall| self.place(wall.naive_utc()))
            .find(|t| *t > now)
    }

    /// A readable description for reports: `0 0 2 * * Mon-Fri (Asia/Shanghai) for 4h`.
    pub fn describe(&self) -> String {
        format!("{} ({}) for {}", self.cron, self.tz(), format_duration(self.duration))
    }

    /// `now` on the window's wall clock (as a naive time; the cron crate is driven in UTC as a stand-in).
    /// `None` past jiff's range (years -9999..=9999): such a clock is answered "closed".
    fn wall(&self, now: DateTime<Utc>) -> Option<NaiveDateTime> {
        let offset = self.zone.to_offset(jiff::Timestamp::from_second(now.timestamp()).ok()?);
        now.naive_utc().checked_add_signed(chrono::Duration::seconds(offset.seconds().into()))
    }

    /// A wall-clock time placed on the real clock: a time in a DST gap moves to the first minute after the gap,
    /// a repeated time takes its first occurrence.
    fn place(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut t = wall;
        // Gaps are whole minutes and at most a few hours long.
        for step in 0..=(4 * 60) {
            if step > 0 {
                t = t.checked_add_signed(chrono::Duration::minutes(1))?;
                if step == 1 {
                    t = t.with_second(0)?;
                }
            }
            if let Some(at) = self.earliest(t) {
                return Some(at);
            }
        }
        None
    }

    /// The first real instant that shows `wall` on the window's clock; `None` when `wall` is skipped (a DST gap).
    fn earliest(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let small = |v: u32| i8::try_from(v).ok();
        let civil = jiff::civil::DateTime::new(
            i16::try_from(wall.year()).ok()?,
            small(wall.month())?,
            small(wall.day())?,
            small(wall.hour())?,
            small(wall.minute())?,
            small(wall.second())?,
            0,
        )
        .ok()?;
        let offset = match self.zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            // A repeated hour: its first occurrence is under the offset in force before the change.
            AmbiguousOffset::Fold { before, .. } => before,
            AmbiguousOffset::Gap { .. } => return None,
        };
        let utc = wall.checked_sub_signed(chrono::Duration::seconds(offset.seconds().into()))?;
        Some(Utc.from_utc_datetime(&utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn window(cron: &str, hours: u64, tz: &str) -> Window {
        Window::new(cron, Duration::from_secs(hours * 3600), Some(tz)).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn open(w: &Window, now: &str) -> bool {
        w.state_at(utc(now)).is_open()
    }

    #[test]
    fn weekday_night_window_in_shanghai() {
        // Wednesday 2026-11-25 02:00 in Shanghai (UTC+8, no DST) is 2026-11-24T18:00Z; open 4h.
        let w = window("0 0 2 * * Mon-Fri", 4, "Asia/Shanghai");
        assert!(!open(&w, "2026-11-24T17:59:59Z"));
        assert_eq!(
            w.state_at(utc("2026-11-24T18:00:00Z")),
            WindowState::Open { opened: utc("2026-11-24T18:00:00Z"), closes: utc("2026-11-24T22:00:00Z") }
        );
        assert!(open(&w, "2026-11-24T21:59:59Z"));
        assert!(!open(&w, "2026-11-24T22:00:00Z"), "the end is exclusive");
        assert_eq!(
            w.state_at(utc("2026-11-25T12:00:00Z")),
            WindowState::Closed { next: Some(utc("2026-11-25T18:00:00Z")) }
        );
        // Saturday 2026-11-28 02:00 local: no window; the next is Monday 2026-11-30 02:00 local.
        assert!(!open(&w, "2026-11-27T19:00:00Z"));
        assert_eq!(w.next_opening(utc("2026-11-27T19:00:00Z")), Some(utc("2026-11-29T18:00:00Z")));
    }

    #[test]
    fn a_window_longer_than_its_period_is_always_open() {
        let w = window("0 0 * * * *", 2, "UTC");
        for now in ["2026-01-01T00:00:00Z", "2026-01-01T00:59:59Z", "2026-06-30T23:30:00Z"] {
            assert!(open(&w, now), "{now}");
        }
    }

    #[test]
    fn spring_forward_gap_opens_right_after_the_gap() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist that day.
        let w = window("0 30 2 * * *", 1, "America/New_York");
        // The day before: 02:30 EST = 07:30Z.
        assert!(open(&w, "2026-03-07T07:30:00Z"));
        // On the day: opens at 03:00 EDT = 07:00Z, for one hour of real time.
        assert!(!open(&w, "2026-03-08T06:59:00Z"));
        assert_eq!(
            w.state_at(utc("2026-03-08T07:10:00Z")),
            WindowState::Open { opened: utc("2026-03-08T07:00:00Z"), closes: utc("2026-03-08T08:00:00Z") }
        );
        assert!(!open(&w, "2026-03-08T08:00:00Z"));
        // The day after: 02:30 EDT = 06:30Z.
        assert!(open(&w, "2026-03-09T06:30:00Z"));
        assert!(!open(&w, "2026-03-09T07:30:00Z"));
        assert_eq!(w.next_opening(utc("2026-03-08T00:00:00Z")), Some(utc("2026-03-08T07:00:00Z")));
    }

    #[test]
    fn a_repeated_hour_opens_once() {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice (05:30Z and 06:30Z).
        let w = window("0 30 1 * * *", 1, "America/New_York");
        assert!(open(&w, "2026-11-01T05:30:00Z"));
        assert!(open(&w, "2026-11-01T06:29:59Z"));
        assert!(!open(&w, "2026-11-01T06:45:00Z"), "the second 01:30 does not reopen the window");
        assert_eq!(w.next_opening(utc("2026-11-01T05:00:00Z")), Some(utc("2026-11-01T05:30:00Z")));
        assert_eq!(w.next_opening(utc("2026-11-01T05:30:00Z")), Some(utc("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn a_window_spanning_a_dst_change_lasts_its_real_duration() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST. Opening 01:00 CET = 00:00Z, 4h of real time = until 04:00Z
        // (06:00 CEST on the wall clock).
        let w = window("0 0 1 * * Sun", 4, "Europe/Berlin");
        assert!(open(&w, "2026-03-29T00:00:00Z"));
        assert!(open(&w, "2026-03-29T03:59:59Z"));
        assert!(!open(&w, "2026-03-29T04:00:00Z"));
        // A week later (CEST, UTC+2): 01:00 CEST = 23:00Z the day before.
        assert!(open(&w, "2026-04-04T23:00:00Z"));
        assert!(!open(&w, "2026-04-04T22:59:00Z"));
        // Autumn: 2026-10-25, 03:00 CEST falls back to 02:00 CET; 01:00 CEST = 23:00Z on the 24th.
        assert!(open(&w, "2026-10-24T23:00:00Z"));
        assert!(open(&w, "2026-10-25T02:59:00Z"));
        assert!(!open(&w, "2026-10-25T03:00:00Z"));
    }

    #[test]
    fn a_schedule_that_never_fires_again_is_closed_with_no_next_opening() {
        // Valid today (it opens once, in 2090), but asked about a time after its only opening.
        let w = window("0 0 2 1 1 * 2090", 4, "UTC");
        assert_eq!(w.state_at(utc("2091-11-25T00:00:00Z")), WindowState::Closed { next: None });
    }

    #[test]
    fn a_window_that_can_never_open_is_refused() {
        for cron in ["0 0 0 30 Feb *", "0 0 0 31 Apr *", "0 0 0 31 Jun,Sep,Nov *", "0 0 2 1 1 * 2020"] {
            let err = Window::new(cron, Duration::from_secs(3600), None).expect_err(cron);
            assert_eq!(err.0, "cron", "{cron}");
            assert!(err.1.contains("never open"), "{cron}: {}", err.1);
        }
        assert!(Window::new("0 0 0 29 Feb *", Duration::from_secs(3600), None).is_ok(), "29 Feb exists in leap years");
    }

    #[test]
    fn every_second_is_answered_without_spinning() {
        let w = window("* * * * * *", 1, "UTC");
        assert!(open(&w, "2026-11-25T00:00:00Z"));
    }

    #[test]
    fn bad_windows_name_the_field() {
        let err = |cron: &str, tz: Option<&str>| Window::new(cron, Duration::from_secs(3600), tz).expect_err(cron);
        assert_eq!(err("0 2 * * 1-5", None).0, "cron");
        assert!(err("0 2 * * 1-5", None).1.contains("has 5 fields"));
        assert!(err("0 0 2 * * 1-5", None).1.contains("write day names such as Mon-Fri"));
        assert_eq!(err("0 0 25 * * *", None).0, "cron");
        assert_eq!(err("0 0 2 * * Mon-Fri", Some("Mars/Olympus")).0, "tz");
        assert_eq!(Window::new("0 0 2 * * *", Duration::ZERO, None).unwrap_err().0, "duration");
        assert!(Window::new("@daily", Duration::from_secs(60), None).is_ok());
        assert_eq!(Window::new("0 0 2 * * *", Duration::from_secs(60), None).unwrap().tz(), "UTC");
    }
}
