//! The crisis detector against the project's own evaluation corpus
//! (`tests/fixtures/crisis/`): the tuning set must keep recall at 98% or
//! more and false alerts on its look-alikes at 5% or less; the held-out
//! set, which nobody tunes against, reports counts per category only and
//! holds a regression floor.
//!
//! `cargo test --test it crisis_corpus -- --nocapture` prints the tables
//! `docs/CRISIS.md` publishes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hearth::domain::normalize::normalize;
use hearth::pipeline::crisis::{CrisisMatch, CrisisMatcher, CrisisSeverity};

#[derive(serde::Deserialize)]
struct File {
    category: String,
    texts: Vec<Text>,
}

#[derive(serde::Deserialize)]
struct Text {
    text: String,
    label: Label,
    lang: String,
    #[allow(dead_code)]
    why: Option<String>,
}

#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Label {
    Critical,
    Warning,
    None,
}

/// One category's counts.
#[derive(Default, Clone, Copy)]
struct Row {
    /// Texts labelled critical or warning.
    crisis: usize,
    /// Of those, at the label's severity or above.
    strict: usize,
    /// Of those, shown to a person at all (any severity).
    shown: usize,
    /// Texts labelled none.
    benign: usize,
    /// Of those, any alert.
    false_alerts: usize,
}

impl Row {
    fn add(&mut self, o: Row) {
        self.crisis += o.crisis;
        self.strict += o.strict;
        self.shown += o.shown;
        self.benign += o.benign;
        self.false_alerts += o.false_alerts;
    }
}

fn dir(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/crisis")
        .join(set)
}

fn load(set: &str) -> Vec<File> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir(set))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir(set).display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let s = std::fs::read_to_string(p).unwrap();
            serde_saphyr::from_str(&s)
                .unwrap_or_else(|e| panic!("{}: not a corpus file: {e}", p.display()))
        })
        .collect()
}

fn severity_ok(label: Label, got: Option<&CrisisMatch>) -> bool {
    matches!(
        (label, got.map(|m| m.severity)),
        (Label::Critical, Some(CrisisSeverity::Critical))
            | (Label::Warning, Some(_))
            | (Label::None, None)
    )
}

/// Runs the detector over one set; returns rows per category and, for the
/// tuning set only, each miss and false alert described.
fn run(files: &[File], describe: bool) -> (BTreeMap<String, Row>, Vec<String>) {
    let m = CrisisMatcher::floor();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut wrong = Vec::new();
    for f in files {
        for t in &f.texts {
            assert!(
                matches!(t.lang.as_str(), "en" | "es"),
                "{}: lang {}",
                f.category,
                t.lang
            );
            let got = m.find(&normalize(&t.text));
            let mut r = Row::default();
            if t.label == Label::None {
                r.benign = 1;
                r.false_alerts = usize::from(got.is_some());
            } else {
                r.crisis = 1;
                r.strict = usize::from(severity_ok(t.label, got.as_ref()));
                r.shown = usize::from(got.is_some());
            }
            if describe && !severity_ok(t.label, got.as_ref()) && t.label != Label::Warning {
                wrong.push(format!(
                    "[{}] {:?} {:?} → {}",
                    f.category,
                    t.label,
                    t.text,
                    got.map_or("nothing".to_owned(), |g| format!(
                        "{:?} by `{}` ({})",
                        g.severity, g.rule, g.phrase
                    ))
                ));
            } else if describe && t.label == Label::Warning && got.is_none() {
                wrong.push(format!("[{}] Warning {:?} → nothing", f.category, t.text));
            }
            rows.entry(f.category.clone()).or_default().add(r);
        }
    }
    (rows, wrong)
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "—".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

fn table(name: &str, rows: &BTreeMap<String, Row>) -> Row {
    println!(
        "\n{name}\n| category | recall (label met) | shown to a person | false alerts |\n|---|---|---|---|"
    );
    let mut all = Row::default();
    for (c, r) in rows {
        all.add(*r);
        let rec = if r.crisis > 0 {
            format!("{}/{} ({})", r.strict, r.crisis, pct(r.strict, r.crisis))
        } else {
            "—".into()
        };
        let shown = if r.crisis > 0 {
            format!("{}/{}", r.shown, r.crisis)
        } else {
            "—".into()
        };
        let fa = if r.benign > 0 {
            format!(
                "{}/{} ({})",
                r.false_alerts,
                r.benign,
                pct(r.false_alerts, r.benign)
            )
        } else {
            "—".into()
        };
        println!("| {c} | {rec} | {shown} | {fa} |");
    }
    println!(
        "| **all** | {}/{} ({}) | {}/{} ({}) | {}/{} ({}) |",
        all.strict,
        all.crisis,
        pct(all.strict, all.crisis),
        all.shown,
        all.crisis,
        pct(all.shown, all.crisis),
        all.false_alerts,
        all.benign,
        pct(all.false_alerts, all.benign)
    );
    all
}

#[test]
fn the_tuning_set_keeps_recall_at_98_percent_and_false_alerts_at_5() {
    let files = load("tune");
    let texts: usize = files.iter().map(|f| f.texts.len()).sum();
    assert!(
        files.len() >= 18 && texts >= 1_000,
        "{} files, {texts} texts",
        files.len()
    );
    let (rows, wrong) = run(&files, true);
    let all = table("tuning set", &rows);
    for w in &wrong {
        println!("{w}");
    }
    let recall = all.strict as f64 / all.crisis as f64;
    let false_alerts = all.false_alerts as f64 / all.benign as f64;
    assert!(
        recall >= 0.98 && false_alerts <= 0.05,
        "recall {:.1}% (at least 98%), false alerts {:.1}% (at most 5%); misses and false alerts above",
        recall * 100.0,
        false_alerts * 100.0
    );
}

/// Measured once at the end of issue 17 (recall 77.0%, false alerts 7.5%;
/// see docs/CRISIS.md); the floor sits a few points below so the test
/// catches a regression, not noise. Never tune the detector to raise it.
const HELD_OUT_RECALL_FLOOR: f64 = 0.72;
const HELD_OUT_FALSE_ALERT_CEILING: f64 = 0.12;

#[test]
fn the_held_out_set_reports_counts_only_and_holds_its_floor() {
    let files = load("heldout");
    let texts: usize = files.iter().map(|f| f.texts.len()).sum();
    assert!(texts >= 100, "held-out set has {texts} texts");
    let (rows, wrong) = run(&files, false);
    assert!(wrong.is_empty());
    let all = table("held-out set (counts only)", &rows);
    let recall = all.strict as f64 / all.crisis as f64;
    let false_alerts = all.false_alerts as f64 / all.benign.max(1) as f64;
    assert!(
        recall >= HELD_OUT_RECALL_FLOOR && false_alerts <= HELD_OUT_FALSE_ALERT_CEILING,
        "held-out recall {:.1}% (floor {:.0}%), false alerts {:.1}% (ceiling {:.0}%)",
        recall * 100.0,
        HELD_OUT_RECALL_FLOOR * 100.0,
        false_alerts * 100.0,
        HELD_OUT_FALSE_ALERT_CEILING * 100.0
    );
}
