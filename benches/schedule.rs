//! Scheduling benchmarks (issue 8): the next fire of 10,000 schedules, as
//! the scheduler works out after every reload and wake, and one week of
//! fires of 1,000 schedules, which is what `hearth preview --rules` lists.
//!
//! The rule set is generated, written to a temporary directory and
//! compiled once, outside the measurement:
//!
//! - 50 groups in 5 timezones (New York, Chicago, London, Sydney,
//!   Lord Howe), meeting weekly at 17:00–20:30, each with one cancelled
//!   date and one extra session;
//! - schedules in a repeating mix of ten: 3 fixed-time crons with a
//!   `timezone:`, 2 interval crons (`*/30`, every 2 hours) with a
//!   `timezone:`, 2 crons in members' own timezones (5 zones), 3
//!   session-relative (`before_session: 1d` at 17:00, `before_session:
//!   2h`, `after_session: 30m`), each following one of the 50 groups;
//!   every third has a `window:`.
//!
//! ```sh
//! cargo bench --bench schedule
//! cargo bench --bench schedule -- --test   # each once, as a smoke test
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use hearth::config::{RuleSet, load_dir};
use hearth::schedule::plan;

const GROUPS: usize = 50;
const SCHEDULES: usize = 10_000;
const PREVIEWED: usize = 1_000;

const ZONES: [&str; 5] = [
    "America/New_York",
    "America/Chicago",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn rules_yaml() -> String {
    let mut y = String::from("groups:\n");
    for g in 0..GROUPS {
        let _ = write!(
            y,
            "  - id: grp-{g:02}\n    name: Group {g}\n    timezone: {}\n    sessions:\n      cron: \"{} {} * * {}\"\n      duration: 90m\n      cancelled: [\"2026-12-{:02}\"]\n      extra:\n        - {{ date: \"2026-12-{:02}\", at: \"12:00\", duration: 60m }}\n",
            ZONES[g % ZONES.len()],
            [0, 30][g % 2],
            17 + g % 4,
            DAYS[g % 7],
            1 + g % 28,
            2 + g % 27,
        );
    }
    y.push_str("templates:\n  note:\n    body: \"Hi {{ member.first_name }}, a note for {{ group.name }}.\"\n  plain:\n    body: \"Hi {{ member.first_name }}, how are you today?\"\nschedules:\n");
    for s in 0..SCHEDULES {
        let group = format!("grp-{:02}", s % GROUPS);
        let zone = ZONES[s % ZONES.len()];
        let timing = match s % 10 {
            0..=2 => format!(
                "    template: plain\n    cron: \"{} {} * * {}\"\n    timezone: {zone}\n",
                [0, 15, 30, 45][s % 4],
                9 + s % 11,
                DAYS[s % 7]
            ),
            3 => format!("    template: plain\n    cron: \"*/30 * * * *\"\n    timezone: {zone}\n"),
            4 => format!("    template: plain\n    cron: \"0 */2 * * *\"\n    timezone: {zone}\n"),
            5 | 6 => format!(
                "    template: note\n    groups: [{group}]\n    cron: \"0 {} * * MON-FRI\"\n",
                10 + s % 8
            ),
            7 => format!(
                "    template: note\n    groups: [{group}]\n    before_session: 1d\n    at: \"17:00\"\n"
            ),
            8 => format!("    template: note\n    groups: [{group}]\n    before_session: 2h\n"),
            _ => format!("    template: note\n    groups: [{group}]\n    after_session: 30m\n"),
        };
        let _ = write!(y, "  - id: sched-{s:05}\n{timing}");
        if s % 3 == 0 {
            y.push_str("    window: { from: \"09:00\", to: \"20:00\" }\n");
        }
    }
    y
}

fn compiled() -> (tempfile::TempDir, RuleSet) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rules.yaml"), rules_yaml()).expect("write rules");
    let compiled = load_dir(dir.path()).expect("read rules");
    let errors: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    let rules = compiled
        .rules
        .unwrap_or_else(|| panic!("generated rules do not compile: {errors:#?}"));
    assert_eq!(rules.schedules.len(), SCHEDULES);
    assert_eq!(rules.groups.len(), GROUPS);
    (dir, rules)
}

fn zones() -> Vec<Tz> {
    ZONES.iter().map(|z| z.parse().expect("a zone")).collect()
}

/// Monday 2026-11-30 09:00 UTC: a week that has no daylight-saving change
/// in the northern zones; Lord Howe and Sydney are on summer time.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T09:00:00Z")
        .expect("a time")
        .with_timezone(&Utc)
}

fn schedule(c: &mut Criterion) {
    let (_dir, rules) = compiled();
    let zones = zones();
    let now = now();
    let all: Vec<_> = rules.schedules.values().collect();
    let previewed = &all[..PREVIEWED];

    let next: Vec<_> = all
        .iter()
        .map(|s| plan::next_fire(&rules, s, now, &zones))
        .collect();
    assert!(
        next.iter().all(Option::is_some),
        "every schedule fires again"
    );
    let week: usize = previewed
        .iter()
        .map(|s| plan::fires(&rules, s, now, now + TimeDelta::days(7), &zones).len())
        .sum();
    eprintln!(
        "schedule: {SCHEDULES} schedules, {GROUPS} groups; a week of {PREVIEWED} schedules has {week} fires"
    );

    let mut group = c.benchmark_group("schedule");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("next_fire_10000_schedules", |b| {
        b.iter(|| {
            all.iter()
                .filter_map(|s| plan::next_fire(&rules, s, now, &zones))
                .count()
        })
    });
    group.bench_function("fires_one_week_1000_schedules", |b| {
        b.iter(|| {
            previewed
                .iter()
                .map(|s| plan::fires(&rules, s, now, now + TimeDelta::days(7), &zones).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, schedule);
criterion_main!(benches);
