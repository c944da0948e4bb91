//! The crisis check on every tuning-corpus text (`tests/fixtures/crisis/tune/`):
//! the time of one text through `CrisisMatcher::floor().find(&normalize(t))`,
//! as criterion's mean over the whole corpus and as p50 / p99 / max over
//! single texts (printed before criterion runs). The same file runs against
//! the previous phrase-list matcher for docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hearth::domain::normalize::normalize;
use hearth::pipeline::crisis::CrisisMatcher;

/// Every `- text: "…"` of the tuning files, read without a YAML parser
/// so this file builds against any version of the crate.
fn texts() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crisis/tune");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tuning corpus") {
        let s = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in s.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("- text: ") {
                let t = rest.trim().trim_matches('"').replace("\\\"", "\"");
                out.push(t);
            }
        }
    }
    assert!(out.len() > 1_000, "{} texts", out.len());
    out
}

fn percentiles(m: &CrisisMatcher, texts: &[String]) {
    let mut times: Vec<Duration> = Vec::with_capacity(texts.len() * 20);
    for _ in 0..20 {
        for t in texts {
            let start = Instant::now();
            std::hint::black_box(m.find(&normalize(t)));
            times.push(start.elapsed());
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "crisis check per text over {} texts x 20: p50 {:?}, p99 {:?}, max {:?}",
        texts.len(),
        at(0.50),
        at(0.99),
        times[times.len() - 1]
    );
}

fn bench(c: &mut Criterion) {
    let texts = texts();
    let m = CrisisMatcher::floor();
    percentiles(&m, &texts);
    c.bench_function("crisis/every_tuning_text", |b| {
        b.iter(|| {
            for t in &texts {
                std::hint::black_box(m.find(&normalize(t)));
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
