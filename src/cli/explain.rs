//! `hearth explain`: what the reply pipeline's first stages make of one
//! text, without a database.
//!
//! Built so far: normalisation, the crisis check (the rules' critical
//! alerts and the built-in floor) and the compliance keywords. Survey
//! answers, the other alerts and the replies that would be queued come
//! with the rest of the reply pipeline (issue 9); the output says so in
//! `not_built`, never as an empty answer.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Format;
use super::staff::rules_in;
use crate::pipeline::crisis::{CrisisMatch, CrisisMatcher};
use crate::pipeline::keywords::{Keyword, Keywords};
use crate::pipeline::normalize::normalize;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The rules directory whose critical alerts extend the crisis floor.
    #[arg(long, value_name = "DIR")]
    rules: PathBuf,
    /// The text, as a member would send it.
    #[arg(long)]
    text: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// What the stages built so far decided.
#[derive(Debug, serde::Serialize)]
pub struct Explained {
    pub original: String,
    /// Folded text (NFKC, lower case, plain spacing).
    pub normalised: String,
    /// The words phrases are matched against.
    pub words: Vec<String>,
    pub crisis: Crisis,
    /// `stop`, `start`, `yes`, `help`, or null.
    pub compliance: Option<Keyword>,
    /// Stages of the pipeline not built yet, so not shown.
    pub not_built: Vec<&'static str>,
}

#[derive(Debug, serde::Serialize)]
pub struct Crisis {
    pub matched: bool,
    #[serde(flatten)]
    pub found: Option<CrisisMatch>,
}

pub fn explain(args: ExplainArgs) -> ExitCode {
    let rules = tri!(rules_in(&args.rules));
    let text = normalize(&args.text);
    let found = CrisisMatcher::with_rules(Some(&rules)).find(&text);
    let explained = Explained {
        original: text.original.clone(),
        normalised: text.folded.clone(),
        words: text.words.clone(),
        crisis: Crisis {
            matched: found.is_some(),
            found,
        },
        compliance: Keywords::default().classify(&text),
        not_built: vec!["survey", "alerts", "replies"],
    };
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &explained)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(out)),
        Format::Text => write_text(&mut out, &explained),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            ExitCode::from(super::EXIT_INTERNAL)
        }
    }
}

fn write_text(out: &mut dyn Write, e: &Explained) -> std::io::Result<()> {
    writeln!(out, "normalised:  {}", e.normalised)?;
    writeln!(out, "words:       {}", e.words.join(" "))?;
    match &e.crisis.found {
        Some(m) => {
            let from = match &m.source {
                crate::pipeline::crisis::Source::Rule { alert } => format!("alert `{alert}`"),
                crate::pipeline::crisis::Source::Floor { category } => {
                    format!(
                        "the built-in floor ({})",
                        serde_json::to_value(category)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    )
                }
            };
            writeln!(out, "crisis:      MATCHED `{}` from {from}", m.phrase)?;
        }
        None => writeln!(out, "crisis:      no match")?,
    }
    match e.compliance {
        Some(k) => writeln!(
            out,
            "compliance:  {}",
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_uppercase))
                .unwrap_or_default()
        )?,
        None => writeln!(out, "compliance:  none")?,
    }
    writeln!(
        out,
        "not built yet: {} (the reply pipeline, issue 9)",
        e.not_built.join(", ")
    )
}
