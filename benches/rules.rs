//! Benchmarks of the rules directory (figures in `docs/BENCHMARKS.md`).
//!
//! - `check`: compile a generated directory of 1,000 rules (100 of them
//!   alerts with Rhai script files, 300 templates) spread over 20 files, as
//!   `hearth check` does: [`load_dir`], `cli::check`, and the `hearth check`
//!   binary itself.
//! - `reload`: one SIGHUP reload of that directory
//!   ([`LiveRules::reload`] with [`Trigger::Signal`]), and one watch reload
//!   that finds every file unchanged.
//! - `watch`: wall time from an editor's rename over a rules file to the new
//!   generation being live, through the daemon's own watcher path
//!   ([`RulesWatcher`] → `reload(Trigger::Watch)` on a blocking thread) with
//!   the default 200 ms `reload_debounce`. Besides criterion's figures it
//!   prints every rename's latency split into settling and reloading.
//!
//! Every benchmark first checks, outside the timed loop, that the directory
//! compiles to exactly the rules generated, so none can silently time an
//! error path.
//!
//! Run with `cargo bench --bench rules`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main};
use hearth::cli::Format;
use hearth::config::load_dir;
use hearth::config::reload::{LiveRules, ReloadOutcome, RulesWatcher, Trigger};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Programs (one YAML file each) in the large directory: 20 × 50 = 1,000 rules.
const LARGE: usize = 20;
/// Programs in the small directory the watch latency is measured on.
const SMALL: usize = 3;
/// The daemon's default `reload_debounce` (`src/settings.rs`).
const DEBOUNCE: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// The generated rules directory.
// ---------------------------------------------------------------------------

/// How many rules of each kind a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    groups: usize,
    segments: usize,
    templates: usize,
    schedules: usize,
    surveys: usize,
    alerts: usize,
    /// Of `alerts`, those with a `script:` file.
    script_alerts: usize,
    escalations: usize,
    contacts: usize,
}

/// What one program file defines.
const PER_PROGRAM: Counts = Counts {
    groups: 2,
    segments: 4,
    templates: 15,
    schedules: 12,
    surveys: 3,
    alerts: 8,
    script_alerts: 5,
    escalations: 2,
    contacts: 4,
};

/// Of a program's schedules, those that send a survey; the rest send templates.
const SURVEY_SCHEDULES: usize = 3;

impl Counts {
    fn times(self, n: usize) -> Counts {
        Counts {
            groups: self.groups * n,
            segments: self.segments * n,
            templates: self.templates * n,
            schedules: self.schedules * n,
            surveys: self.surveys * n,
            alerts: self.alerts * n,
            script_alerts: self.script_alerts * n,
            escalations: self.escalations * n,
            contacts: self.contacts * n,
        }
    }

    fn total(self) -> usize {
        self.groups
            + self.segments
            + self.templates
            + self.schedules
            + self.surveys
            + self.alerts
            + self.escalations
            + self.contacts
    }

    /// In the shape of [`hearth::config::RuleSet::counts`].
    fn by_kind(self) -> Vec<(&'static str, usize)> {
        vec![
            ("groups", self.groups),
            ("segments", self.segments),
            ("templates", self.templates),
            ("schedules", self.schedules),
            ("surveys", self.surveys),
            ("alerts", self.alerts),
            ("escalations", self.escalations),
            ("contacts", self.contacts),
            ("rotations", 0),
            ("tests", 0),
        ]
    }
}

/// A generated rules directory: `program-NN.yaml` files and `scripts/*.rhai`.
struct RulesDir {
    dir: TempDir,
    programs: usize,
}

impl RulesDir {
    fn generate(programs: usize) -> RulesDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("scripts")).expect("scripts dir");
        for p in 0..programs {
            std::fs::write(dir.path().join(program_file(p)), program_yaml(p, 0))
                .expect("write program");
            for a in 0..PER_PROGRAM.script_alerts {
                std::fs::write(dir.path().join(script_path(p, a)), script_rhai(p, a))
                    .expect("write script");
            }
        }
        RulesDir { dir, programs }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn counts(&self) -> Counts {
        PER_PROGRAM.times(self.programs)
    }

    /// YAML files plus script files.
    fn files(&self) -> usize {
        self.programs * (1 + PER_PROGRAM.script_alerts)
    }

    /// Asserts the directory compiles, with no diagnostic at all, to exactly
    /// the rules generated.
    fn assert_valid(&self) {
        let compiled = load_dir(self.path()).expect("read rules directory");
        assert!(
            compiled.diagnostics.is_empty(),
            "generated rules have diagnostics:\n{}",
            compiled
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        let rules = compiled.rules.expect("generated rules are valid");
        let counts = self.counts();
        assert_eq!(rules.counts(), counts.by_kind());
        let scripted = rules.alerts.iter().filter(|a| a.script.is_some()).count();
        assert_eq!(scripted, counts.script_alerts);
        assert_eq!(compiled.files.len(), self.files());
    }
}

fn program_file(p: usize) -> String {
    format!("program-{p:02}.yaml")
}

const _: () = assert!(SCRIPT_NAMES.len() == PER_PROGRAM.script_alerts);
const _: () = assert!(SCRIPTS.len() == PER_PROGRAM.script_alerts);

fn script_path(p: usize, a: usize) -> String {
    format!("scripts/{}-{p:02}.rhai", SCRIPT_NAMES[a])
}

/// Replaces every `%name%` in `text`.
fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("%{name}%"), value);
    }
    assert!(!out.contains('%'), "unfilled placeholder in:\n{out}");
    out
}

fn pick<T: Copy>(items: &[T], n: usize) -> T {
    items[n % items.len()]
}

const FIRST_NAMES: &[&str] = &[
    "Dana", "Priya", "Marcus", "Elena", "Tomasz", "Grace", "Jamal", "Ines", "Kofi", "Hannah",
];
const LAST_NAMES: &[&str] = &[
    "Whitfield",
    "Raman",
    "Okafor",
    "Lindqvist",
    "Nowak",
    "Bellamy",
    "Haddad",
    "Moreau",
];
const GROUP_NAMES: &[&str] = &[
    "Anxiety Support",
    "Grief Circle",
    "Recovery Group",
    "Young Adults",
    "Caregivers",
    "Postpartum Peer Support",
    "Veterans Circle",
];
const WEEKDAYS: &[&str] = &["MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// Per weekday of [`WEEKDAYS`]: its name, and two holiday sessions to cancel.
const SESSION_DAYS: &[(&str, &str, &str)] = &[
    ("Monday", "2026-12-21", "2026-12-28"),
    ("Tuesday", "2026-12-22", "2026-12-29"),
    ("Wednesday", "2026-12-23", "2026-12-30"),
    ("Thursday", "2026-12-24", "2026-12-31"),
    ("Friday", "2026-12-25", "2027-01-01"),
    ("Saturday", "2026-12-26", "2027-01-02"),
];
const TIMEZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "Europe/London",
];

/// Realistic message bodies; each renders to one or two SMS segments.
const BODIES: &[&str] = &[
    "Hi {{ member.first_name }}, a reminder that {{ group.name }} meets tomorrow at {{ session.starts_at | time }}. If you can't make it, reply SKIP and we'll let your facilitator know.",
    "Good morning {{ member.first_name }}. Before {{ group.name }} on {{ session.starts_at | weekday }}, try the breathing exercise from last week: in for 4, hold for 4, out for 6. Reply DONE when you've tried it.",
    "Thanks for coming to {{ group.name }} today, {{ member.first_name }}. One small step for this week: write down one thing that went better than you expected. We meet again {{ session.starts_at | date }} at {{ session.starts_at | time }}.",
    "{{ member.first_name }}, {{ group.name }} starts in two hours ({{ session.starts_at | time }}). The room is open 10 minutes early if you'd like a quiet moment first.",
    "Hi {{ member.first_name }}, it's been a while since we heard from you. No pressure - {{ group.name }} is here whenever you're ready. Reply CALL if you'd like a facilitator to phone you.",
    "Weekly tip from {{ group.name }}: when a worry loops, name it out loud and set a 10-minute worry window for later in the day. See you {{ session.starts_at | weekday }}, {{ member.first_name }}.",
    "Hi {{ member.first_name }}. This week's session of {{ group.name }} is cancelled. We'll be back at the usual time next week. If you need support before then, reply HELP.",
    "{{ member.first_name }}, welcome to {{ group.name }}! Sessions are {{ session.starts_at | weekday }}s at {{ session.starts_at | time }}. Texts come from this number; reply STOP at any time to stop them.",
];

const SURVEY_TITLES: &[&str] = &[
    "Weekly mood check-in",
    "Mid-week pulse",
    "After-session reflection",
];

/// Replies to crisis language. Anyone may text it, roster or not, so a
/// critical alert's reply names no member, group or session.
const CRISIS_BODIES: &[&str] = &[
    "We hear you, and we're glad you reached out. If you are in danger right now, call or text 988 or call 911. A facilitator has been told and will contact you soon.",
    "Thank you for telling us. You don't have to handle this alone: call or text 988 any time, day or night. Someone from the group team will reach out to you shortly.",
];

/// Rhai alert scripts, 7 to 14 lines, over `member`, `answers`, `history`
/// and `engagement`.
const SCRIPT_NAMES: &[&str] = &[
    "low-mood-streak",
    "declining-mood",
    "poor-sleep",
    "missed-check-ins",
    "worrying-notes",
];
const SCRIPTS: &[&str] = &[
    r#"// Low mood: %count% or more of the last %window% check-ins at %mood% or below.
let low = 0;
let seen = 0;
for entry in history {
    if seen >= %window% { break; }
    seen += 1;
    let mood = entry.answers.mood;
    if mood != () && mood <= %mood% {
        low += 1;
    }
}
low >= %count%
"#,
    r#"// Declining mood: today's answer is %drop% or more below the recent average.
let today = answers.mood;
if today == () { return false; }
let total = 0;
let count = 0;
for entry in history {
    if entry.answers.mood != () {
        total += entry.answers.mood;
        count += 1;
    }
}
if count < 3 { return false; }
total / count - today >= %drop%
"#,
    r#"// Poor sleep with no coping strategy, once past the first %days% days.
if member.days_since_joined < %days% { return false; }
let nights = 0;
for entry in history {
    if entry.answers.slept == false { nights += 1; }
}
let coping = answers.coping;
answers.slept == false && nights >= %count% && (coping == () || coping == "none")
"#,
    r#"// Disengaging: %count% questions in a row left unanswered, few texts.
engagement.unanswered_in_a_row >= %count% && engagement.replies_30d < %replies%
"#,
    r#"// Worrying notes while the member's progress level is %level% or lower.
let notes = answers.notes;
if notes == () { return false; }
let text = notes.to_lower();
let hits = 0;
for word in ["panic", "can't sleep", "alone", "worse", "scared"] {
    if text.contains(word) { hits += 1; }
}
hits >= %count% && member.attributes.progress_level <= %level%
"#,
];

fn script_rhai(p: usize, a: usize) -> String {
    let n = |base: usize, spread: usize| (base + p % spread).to_string();
    fill(
        SCRIPTS[a],
        &[
            ("count", &n(2, 3)),
            ("window", &n(5, 3)),
            ("mood", &n(3, 2)),
            ("drop", &n(2, 3)),
            ("days", &n(7, 14)),
            ("replies", &n(2, 4)),
            ("level", &n(1, 3)),
        ],
    )
}

/// One program's rules file: 50 rules of every kind, referring to each
/// other within the file. `revision` changes the first template's body.
fn program_yaml(p: usize, revision: u32) -> String {
    let pp = format!("{p:02}");
    let mut y = String::new();
    let _ = writeln!(y, "# Program {pp}: groups, audiences, messages and alerts.");

    y.push_str("\ncontacts:\n");
    for c in 0..PER_PROGRAM.contacts {
        let n = p * PER_PROGRAM.contacts + c;
        let first = pick(FIRST_NAMES, n);
        let last = pick(LAST_NAMES, n / 3);
        let webhook = if c == PER_PROGRAM.contacts - 1 {
            format!("\n    webhook: https://hooks.example.org/hearth/{pp}-{c}")
        } else {
            String::new()
        };
        let _ = writeln!(
            y,
            "  contact-{pp}-{c}:\n    name: {first} {last}\n    sms: \"+1555555{n:04}\"\n    email: {}.{}@example.org{webhook}",
            first.to_lowercase(),
            last.to_lowercase(),
        );
    }

    y.push_str("\ngroups:\n");
    for g in 0..PER_PROGRAM.groups {
        let n = p * PER_PROGRAM.groups + g;
        let (day, first, second) = pick(SESSION_DAYS, n);
        let _ = writeln!(
            y,
            "  - id: grp-{pp}-{g}\n    name: {day} {} {pp}\n    timezone: {}\n    sessions:\n      cron: \"{} {} * * {}\"\n      duration: {}\n      cancelled: [\"{first}\", \"{second}\"]\n    facilitators: [contact-{pp}-{g}, contact-{pp}-{}]",
            pick(GROUP_NAMES, n),
            pick(TIMEZONES, n),
            pick(&["0", "30"], n),
            17 + n % 3,
            pick(WEEKDAYS, n),
            pick(&["90m", "1h", "1h30m"], n),
            g + 1,
        );
    }

    y.push_str("\nsegments:\n");
    let _ = writeln!(
        y,
        "  - id: seg-{pp}-0\n    description: New members in their first month\n    match:\n      days_since_joined: {{ lt: 30 }}\n      language: en"
    );
    let _ = writeln!(
        y,
        "  - id: seg-{pp}-1\n    description: Anxiety diagnoses in this program's groups\n    match:\n      attributes.diagnosis: {{ in: [gad, panic, social-anxiety] }}\n      groups: {{ any_of: [grp-{pp}-0, grp-{pp}-1] }}"
    );
    let _ = writeln!(
        y,
        "  - id: seg-{pp}-2\n    description: Settled in and making progress\n    when: \"member.days_since_joined > {} && member.attributes.progress_level >= 2\"",
        14 + p
    );
    let _ = writeln!(
        y,
        "  - id: seg-{pp}-3\n    description: Mid-programme, English or Spanish speakers\n    match:\n      progress_level: {{ gte: 2, lte: 4 }}\n      joined_on: {{ gte: \"2026-01-01\" }}\n      status: active\n    when: 'member.language == \"en\" || member.language == \"es\"'"
    );

    y.push_str("\ntemplates:\n");
    for t in 0..PER_PROGRAM.templates {
        // The last template answers crisis language (see the alerts).
        let body = if t == PER_PROGRAM.templates - 1 {
            pick(CRISIS_BODIES, p)
        } else {
            pick(BODIES, p + t)
        };
        let body = if t == 0 && revision > 0 {
            format!("{body} (rev {revision})")
        } else {
            body.to_owned()
        };
        let _ = writeln!(
            y,
            "  tpl-{pp}-{t:02}:\n    description: Message {t} of program {pp}\n    body: |\n      {body}"
        );
    }

    y.push_str("\nsurveys:\n");
    for s in 0..PER_PROGRAM.surveys {
        let _ = writeln!(
            y,
            "  srv-{pp}-{s}:\n    description: {}\n    questions:\n      - id: mood\n        ask: \"Hi {{{{ member.first_name }}}}, on a scale of 1 to 10, how has your mood been since {{{{ group.name }}}} met?\"\n        expect: {{ number: {{ min: 1, max: 10, integer: true }} }}\n      - id: slept\n        ask: Did you sleep at least 6 hours most nights this week? (yes/no)\n        expect: yes_no\n      - id: coping\n        ask: \"Which helped most this week: breathing, journaling, walking, talking, or none?\"\n        expect: {{ choice: [breathing, journaling, walking, talking, none] }}\n      - id: notes\n        ask: Anything you'd like your facilitator to know? A few words is plenty, or reply SKIP.\n        expect: free_text\n    reprompt: \"Sorry {{{{ member.first_name }}}}, I didn't catch that. Could you answer the last question again?\"\n    max_reprompts: 2\n    expires_after: {}\n    thanks: \"Thanks, {{{{ member.first_name }}}}. See you at {{{{ group.name }}}} on {{{{ session.starts_at | weekday }}}}.\"",
            pick(SURVEY_TITLES, s),
            pick(&["1d", "12h", "2d"], p + s),
        );
    }

    y.push_str("\nschedules:\n");
    let template_schedules = PER_PROGRAM.schedules - SURVEY_SCHEDULES;
    for s in 0..PER_PROGRAM.schedules {
        let n = p + s;
        let mut entry =
            format!("  - id: sched-{pp}-{s:02}\n    description: Send {s} of program {pp}\n");
        match n % 3 {
            0 => {}
            1 => {
                let _ = writeln!(entry, "    segment: seg-{pp}-{}", s % PER_PROGRAM.segments);
            }
            _ => {
                let _ = writeln!(entry, "    segment: seg-{pp}-{}", s % PER_PROGRAM.segments);
                let _ = writeln!(entry, "    groups: [grp-{pp}-{}]", s % PER_PROGRAM.groups);
            }
        }
        // The templates name the group: a cron needs `groups:` to have one.
        if n % 3 != 2 && s % 5 < 2 {
            let _ = writeln!(entry, "    groups: [grp-{pp}-{}]", s % PER_PROGRAM.groups);
        }
        if s < template_schedules {
            let _ = writeln!(entry, "    template: tpl-{pp}-{s:02}");
        } else {
            let _ = writeln!(entry, "    survey: srv-{pp}-{}", s - template_schedules);
        }
        match s % 5 {
            0 => {
                let _ = writeln!(
                    entry,
                    "    cron: \"{} {} * * {}\"\n    timezone: {}",
                    pick(&["0", "15", "30"], n),
                    9 + n % 11,
                    pick(WEEKDAYS, n),
                    pick(TIMEZONES, n),
                );
            }
            1 => {
                let _ = writeln!(entry, "    cron: \"0 {} * * 1-5\"", 10 + n % 8);
            }
            2 => {
                let _ = writeln!(
                    entry,
                    "    before_session: 1d\n    at: \"{}:00\"",
                    12 + n % 6
                );
            }
            3 => {
                let _ = writeln!(entry, "    before_session: 2h");
            }
            _ => {
                let _ = writeln!(
                    entry,
                    "    after_session: 1d\n    at: \"10:30\"\n    expires_after: 8h"
                );
            }
        }
        y.push_str(&entry);
    }

    y.push_str("\nalerts:\n");
    for (a, name) in SCRIPT_NAMES.iter().enumerate() {
        let _ = writeln!(
            y,
            "  - id: {name}-{pp}\n    description: Scripted check {a} of program {pp}\n    severity: {}\n    script: {}\n    reply: tpl-{pp}-{:02}\n    escalate: esc-{pp}-{}\n    realert: 1d",
            pick(&["warning", "info"], p + a),
            script_path(p, a),
            template_schedules + a,
            a % PER_PROGRAM.escalations,
        );
    }
    let keyword_reply = PER_PROGRAM.templates - 1;
    for k in 0..PER_PROGRAM.alerts - PER_PROGRAM.script_alerts {
        let keywords = pick(
            &[
                "[\"hurt myself\", \"end it\", \"can't go on\", \"no reason to live\"]",
                "[hopeless, worthless, \"give up\"]",
                "[relapse, \"used again\", drinking, \"picked up\"]",
            ],
            k,
        );
        let _ = writeln!(
            y,
            "  - id: words-{pp}-{k}\n    description: Crisis language, list {k}\n    severity: critical\n    keywords: {keywords}\n    reply: tpl-{pp}-{keyword_reply:02}\n    escalate: esc-{pp}-0\n    realert: 6h"
        );
    }

    y.push_str("\nescalations:\n");
    for e in 0..PER_PROGRAM.escalations {
        let _ = writeln!(
            y,
            "  esc-{pp}-{e}:\n    steps:\n      - notify: [group.facilitators]\n        via: [sms]\n        ack_within: {}\n      - notify: [contact-{pp}-{}, contact-{pp}-{}]\n        via: [sms, email]\n        ack_within: 30m\n      - notify: [contact-{pp}-3]\n        via: [webhook]\n        ack_within: 1h\n    repeat: {}",
            pick(&["10m", "15m"], e),
            e,
            e + 2,
            e + 1,
        );
    }
    y
}

// ---------------------------------------------------------------------------
// The benchmarks.
// ---------------------------------------------------------------------------

fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    measure: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measure);
    group
}

/// `hearth check` of 1,000 rules: the library call, the CLI function (which
/// adds printing the summary), and the binary (which adds process start).
fn check(c: &mut Criterion) {
    let rules = RulesDir::generate(LARGE);
    assert_eq!(rules.counts().total(), 1_000);
    assert_eq!(rules.counts().script_alerts, 100);
    assert_eq!(rules.counts().templates, 300);
    rules.assert_valid();

    let bin = env!("CARGO_BIN_EXE_hearth");
    let run_bin = || {
        Command::new(bin)
            .arg("check")
            .arg(rules.path())
            .stdout(Stdio::null())
            .status()
            .expect("run hearth check")
    };
    assert!(
        run_bin().success(),
        "`hearth check` failed on the generated rules"
    );
    let mut out = Vec::new();
    assert_eq!(
        hearth::cli::check(rules.path(), Format::Text, &mut out),
        ExitCode::SUCCESS
    );
    let summary = String::from_utf8_lossy(&out);
    assert!(summary.starts_with("ok: 120 files"), "{summary}");

    let mut group = slow_group(c, "check", Duration::from_secs(10));
    group.bench_function("load_dir_1000_rules", |b| {
        b.iter(|| load_dir(rules.path()).expect("read rules"))
    });
    group.bench_function("cli_check_1000_rules", |b| {
        b.iter(|| hearth::cli::check(rules.path(), Format::Text, &mut std::io::sink()))
    });
    group.bench_function("binary_1000_rules", |b| b.iter(run_bin));
    group.finish();
}

/// One SIGHUP reload of 1,000 rules, each of which must put a new
/// generation live; and a watch reload that finds nothing changed.
fn reload(c: &mut Criterion) {
    let rules = RulesDir::generate(LARGE);
    rules.assert_valid();
    let live = LiveRules::load(rules.path()).expect("load rules");

    let mut group = slow_group(c, "reload", Duration::from_secs(10));
    group.bench_function("signal_1000_rules", |b| {
        b.iter(|| {
            let before = live.generation();
            match live.reload(Trigger::Signal) {
                ReloadOutcome::Applied { generation, .. } => assert_eq!(generation, before + 1),
                other => panic!("reload did not apply: {other:?}"),
            }
        })
    });
    // What a watch event costs when no file changed (a `touch`, a chmod):
    // the whole directory is still compiled before the hashes are compared.
    group.bench_function("watch_unchanged_1000_rules", |b| {
        b.iter(|| match live.reload(Trigger::Watch) {
            ReloadOutcome::Unchanged { .. } => {}
            other => panic!("unchanged files reloaded: {other:?}"),
        })
    });
    group.finish();
}

/// The daemon's watch path (`src/daemon.rs`: the watcher task and
/// `reload_loop`), minus systemd and logging: [`RulesWatcher::next_change`]
/// (a change, then `quiet` with no other change), then
/// `reload(Trigger::Watch)` on a blocking thread. Runs until `stop` is
/// cancelled.
///
/// Each reload leaves a [`Marks`] in `marks`, to split the latency.
fn spawn_watch_path(
    rt: &Runtime,
    live: Arc<LiveRules>,
    stop: CancellationToken,
    marks: Arc<Mutex<Vec<Marks>>>,
) {
    let mut watcher = RulesWatcher::start(live.dir(), DEBOUNCE).expect("watch rules directory");
    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel::<(Trigger, Instant)>();
    {
        let stop = stop.clone();
        rt.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    changed = watcher.next_change() => {
                        if !changed || reload_tx.send((Trigger::Watch, Instant::now())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    rt.spawn(async move {
        loop {
            let (mut trigger, settled) = tokio::select! {
                _ = stop.cancelled() => break,
                t = reload_rx.recv() => match t { Some(t) => t, None => break },
            };
            while let Ok((t, _)) = reload_rx.try_recv() {
                if t == Trigger::Signal {
                    trigger = t;
                }
            }
            let r = live.clone();
            let (outcome, reload_started, reloaded, sched) =
                tokio::task::spawn_blocking(move || {
                    let (cpu, waiting) = thread_sched();
                    let started = Instant::now();
                    let outcome = r.reload(trigger);
                    let done = Instant::now();
                    let (cpu_after, waiting_after) = thread_sched();
                    (
                        outcome,
                        started,
                        done,
                        (cpu_after - cpu, waiting_after - waiting),
                    )
                })
                .await
                .expect("reload task");
            marks.lock().expect("marks").push(Marks {
                settled,
                reload_started,
                reloaded,
                reload_cpu: sched.0,
                reload_waiting: sched.1,
            });
            if let ReloadOutcome::Rejected { errors, .. } = outcome {
                eprintln!("watch reload rejected: {errors:?}");
            }
        }
    });
}

/// When one watch reload's steps ended.
#[derive(Debug, Clone, Copy)]
struct Marks {
    /// `next_change` returned: the change was seen and the quiet period passed.
    settled: Instant,
    reload_started: Instant,
    reloaded: Instant,
    /// Of the reload: time on a CPU, and time runnable but waiting for one.
    reload_cpu: Duration,
    reload_waiting: Duration,
}

/// This thread's time on a CPU and time waiting for one, from Linux
/// schedstat; zero where it is not available.
fn thread_sched() -> (Duration, Duration) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| Duration::from_nanos(f.parse().unwrap_or(0)));
    (
        fields.next().unwrap_or_default(),
        fields.next().unwrap_or_default(),
    )
}

/// From `rename(tmp, program-00.yaml)` to the new generation seen through
/// `subscribe()`, with the default 200 ms debounce.
fn watch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = slow_group(c, "watch", Duration::from_secs(6));
    for (name, programs) in [
        ("rename_to_live_3_files", SMALL),
        ("rename_to_live_1000_rules", LARGE),
    ] {
        let rules = RulesDir::generate(programs);
        rules.assert_valid();
        let live = Arc::new(LiveRules::load(rules.path()).expect("load rules"));
        let stop = CancellationToken::new();
        let marks = Arc::new(Mutex::new(Vec::new()));
        spawn_watch_path(&rt, live.clone(), stop.clone(), marks.clone());
        let mut generations = live.subscribe();
        let target: PathBuf = rules.path().join(program_file(0));
        // Editors write a temporary beside the file, then rename it over.
        let tmp: PathBuf = rules.path().join(format!(".{}.tmp", program_file(0)));
        let mut revision = 0;
        // Every rename's latency, warm-up included, for the spread: in all,
        // until `next_change` returned, and the reload itself.
        let mut latencies = Vec::new();
        let mut settling = Vec::new();
        let mut reloading = Vec::new();
        let mut reload_cpu = Vec::new();
        let mut reload_waiting = Vec::new();

        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    revision += 1;
                    let expected = live.generation() + 1;
                    let file = std::fs::File::create(&tmp).expect("create temp file");
                    std::io::Write::write_all(&mut &file, program_yaml(0, revision).as_bytes())
                        .expect("write temp file");
                    file.sync_all().expect("sync temp file");
                    drop(file);

                    let reloads_before = marks.lock().expect("marks").len();
                    let start = Instant::now();
                    std::fs::rename(&tmp, &target).expect("rename over rules file");
                    let seen = rt.block_on(async {
                        tokio::time::timeout(
                            Duration::from_secs(5),
                            generations.wait_for(|g| *g >= expected),
                        )
                        .await
                        .map(|r| *r.expect("rules dropped"))
                    });
                    let latency = start.elapsed();
                    total += latency;
                    latencies.push(latency);
                    // The reload task leaves its marks just after the
                    // generation goes live.
                    let deadline = Instant::now() + Duration::from_secs(1);
                    let m = loop {
                        if let Some(m) = marks.lock().expect("marks").get(reloads_before) {
                            break *m;
                        }
                        assert!(Instant::now() < deadline, "reload left no marks");
                        std::thread::sleep(Duration::from_millis(1));
                    };
                    settling.push(m.settled - start);
                    reloading.push(m.reloaded - m.reload_started);
                    reload_cpu.push(m.reload_cpu);
                    reload_waiting.push(m.reload_waiting);
                    match seen {
                        Ok(g) => assert_eq!(g, expected, "one rename, one new generation"),
                        Err(_) => panic!(
                            "no new generation 5 s after the rename; last attempt: {:?}",
                            live.status().last
                        ),
                    }
                    // Let any straggling batch pass before the next rename.
                    std::thread::sleep(DEBOUNCE + Duration::from_millis(100));
                }
                total
            })
        });
        stop.cancel();
        // Every rename put exactly one generation live; a batch straggling
        // after one would only have reloaded unchanged files.
        let status = live.status();
        assert_eq!(status.generation, 1 + revision as u64);
        if latencies.is_empty() {
            continue; // filtered out
        }
        eprintln!(
            "watch/{name}: {revision} renames, {} reloads",
            status.attempts - 1
        );
        for (what, times) in [
            ("rename to live", &mut latencies),
            ("  rename to change settled", &mut settling),
            ("  reload", &mut reloading),
            ("    on a CPU", &mut reload_cpu),
            ("    waiting for a CPU", &mut reload_waiting),
        ] {
            times.sort();
            let ms = |i: usize| times[i].as_secs_f64() * 1e3;
            let last = times.len() - 1;
            eprintln!(
                "  {what}: min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
                ms(0),
                ms(last / 2),
                ms(last * 9 / 10),
                ms(last),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, check, reload, watch);
criterion_main!(benches);
