//! `hearth preview`: the fires coming up, before they happen.
//!
//! With the settings' database it counts each fire's recipients exactly as
//! the scheduler would pick them (segment, group, active, consent, the
//! frequency caps in fire order) and renders a sample with the member's
//! names, id and text attributes masked. With `--rules DIR` alone it needs
//! no database: recipients are left out, and schedules in members' own
//! timezones are shown for `--timezone` (default UTC).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::staff::{block_on, fail, open, rules as settings_rules, rules_in};
use super::{EXIT_INVALID, Format, load_settings};
use crate::domain::member::Member;
use crate::rules::{Content, RuleSet, Schedule};
use crate::schedule::plan::{self, Fire, Scope};
use crate::store::Backend;
use crate::store::sqlite::OpenMode;
use crate::timers::schedules::fanout::{self, CapCounts};

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Preview this rules directory without a database (no recipient
    /// counts). Without it, the settings' rules and database are used.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Start: RFC 3339 (`2026-03-08T09:00:00-05:00`), a date
    /// (`2026-03-08`, midnight) or a date and time (`2026-03-08T09:00`)
    /// in --timezone, or a duration from now (`2h`). Default: now.
    #[arg(long, value_name = "T")]
    from: Option<String>,
    /// End, written like --from; a duration counts from --from. Default:
    /// seven days after --from.
    #[arg(long, value_name = "T")]
    to: Option<String>,
    /// Only this schedule.
    #[arg(long, value_name = "ID")]
    schedule: Option<String>,
    /// Only fires concerning this group (its sessions, or schedules
    /// naming it), and only its members as recipients.
    #[arg(long, value_name = "ID")]
    group: Option<String>,
    /// Only fires that reach this member (external id); needs the database.
    #[arg(long, value_name = "ID")]
    member: Option<String>,
    /// The timezone dates without an offset are read in and, with
    /// --rules, the one that schedules in members' own timezones are
    /// shown for. Default UTC.
    #[arg(long, value_name = "TZ")]
    timezone: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// One line of the preview.
#[derive(Debug, serde::Serialize)]
pub(crate) struct PreviewFire {
    pub(crate) schedule: String,
    /// `scheduled`, or `cancelled` for a session a `cancelled:` date
    /// removed (nothing is sent for it).
    pub(crate) status: &'static str,
    pub(crate) fire_utc: String,
    pub(crate) fire_local: String,
    pub(crate) timezone: String,
    /// Who the fire is for: `all` (a cron with its own timezone),
    /// `tz:ZONE` (a cron in members' own timezones: those in ZONE),
    /// `group:ID` (a session fire).
    pub(crate) scope: String,
    pub(crate) group: Option<String>,
    pub(crate) session_utc: Option<String>,
    pub(crate) session_local: Option<String>,
    /// An `extra:` session.
    pub(crate) extra_session: bool,
    /// `template:ID` or `survey:ID`.
    pub(crate) sends: String,
    /// Members it would reach (null without a database).
    pub(crate) recipients: Option<usize>,
    /// Of those, how many a frequency cap would suppress.
    pub(crate) capped: Option<usize>,
    /// The message for one recipient, names and text attributes masked.
    pub(crate) sample: Option<String>,
}

pub(crate) fn preview(settings_path: &std::path::Path, args: PreviewArgs) -> ExitCode {
    let tz: Tz = match args.timezone.as_deref().unwrap_or("UTC").parse() {
        Ok(tz) => tz,
        Err(_) => {
            eprintln!(
                "error: --timezone `{}` is not an IANA timezone",
                args.timezone.as_deref().unwrap_or_default()
            );
            eprintln!("  hint: write it like `America/New_York` or `UTC`");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let now = Utc::now();
    let from = match args.from.as_deref() {
        Some(t) => tri!(when("--from", t, tz, now)),
        None => now,
    };
    let to = match args.to.as_deref() {
        Some(t) => tri!(when("--to", t, tz, from)),
        None => from + chrono::TimeDelta::days(7),
    };
    if to <= from {
        eprintln!("error: --to ({to}) is not after --from ({from})");
        return ExitCode::from(EXIT_INVALID);
    }

    let (rules, store) = match &args.rules {
        Some(dir) => {
            if args.member.is_some() {
                eprintln!("error: --member needs the database, which --rules leaves out");
                eprintln!("  hint: drop --rules to use the settings' rules and database");
                return ExitCode::from(EXIT_INVALID);
            }
            (tri!(rules_in(dir)), None)
        }
        None => {
            let settings = tri!(load_settings(settings_path));
            let rules = tri!(settings_rules(&settings));
            (rules, Some(tri!(open(&settings, OpenMode::Existing))))
        }
    };
    if let Some(s) = &args.schedule
        && !rules.schedules.contains_key(s)
    {
        return unknown("schedule", s, rules.schedules.keys());
    }
    if let Some(g) = &args.group
        && !rules.groups.contains_key(g)
    {
        return unknown("group", g, rules.groups.keys());
    }

    let rows = match &store {
        None => plan_rows(&rules, &args, from, to, &[tz], None),
        Some(store) => {
            let data = match block_on(load_store(store, &rules, &args, now)) {
                Ok(d) => d,
                Err(code) => return code,
            };
            let zones = data.zones.clone();
            plan_rows(&rules, &args, from, to, &zones, Some(data))
        }
    };

    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(out)),
        Format::Text => write_text(&mut out, &rows, from, to, store.is_some()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            ExitCode::from(super::EXIT_INTERNAL)
        }
    }
}

fn unknown<'a>(kind: &str, id: &str, known: impl Iterator<Item = &'a String>) -> ExitCode {
    eprintln!("error: unknown {kind} `{id}`");
    if let Some(h) = crate::text::did_you_mean(id, known.map(String::as_str)) {
        eprintln!("  hint: {h}");
    }
    ExitCode::from(EXIT_INVALID)
}

/// Parses a `--from`/`--to` value, reporting failure as exit 1.
fn when(flag: &str, text: &str, tz: Tz, base: DateTime<Utc>) -> Result<DateTime<Utc>, ExitCode> {
    parse_when(text, tz, base).ok_or_else(|| {
        eprintln!("error: {flag} `{text}` is not a time");
        eprintln!(
            "  hint: write RFC 3339 (`2026-03-08T09:00:00-05:00`), a date (`2026-03-08`), a date and time (`2026-03-08T09:00`), or a duration (`2d`)"
        );
        ExitCode::from(EXIT_INVALID)
    })
}

/// RFC 3339; a date or date and time in `tz` (a time in a spring-forward
/// gap is the first instant after it); or a duration after `base`.
fn parse_when(text: &str, tz: Tz, base: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Some(t.with_timezone(&Utc));
    }
    let local = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M"));
    if let Ok(local) = local {
        return Some(
            crate::domain::local_time::resolve_local(tz, local.date(), local.time())
                .with_timezone(&Utc),
        );
    }
    let d = crate::domain::Duration::parse(t).ok()?;
    base.checked_add_signed(chrono::TimeDelta::try_seconds(
        d.as_secs().try_into().ok()?,
    )?)
}

/// What the database adds to a preview.
struct StoreData {
    members: Vec<Member>,
    zones: Vec<Tz>,
    caps: CapCounts,
}

async fn load_store(
    store: &impl Backend,
    rules: &RuleSet,
    args: &PreviewArgs,
    now: DateTime<Utc>,
) -> Result<StoreData, ExitCode> {
    let mut members = store.recipients().await.map_err(fail)?;
    if let Some(ext) = &args.member {
        members.retain(|m| &m.external_id == ext);
        if members.is_empty() {
            return Err(match store.member(ext).await {
                Ok(Some(m)) => {
                    eprintln!(
                        "error: member {} receives no scheduled messages: {}",
                        m.external_id,
                        if m.status != crate::domain::member::MemberStatus::Active {
                            "inactive"
                        } else {
                            "no current SMS consent"
                        }
                    );
                    ExitCode::from(EXIT_INVALID)
                }
                Ok(None) => fail(crate::store::StoreError::NotFound(format!(
                    "member `{ext}`"
                ))),
                Err(e) => fail(e),
            });
        }
    }
    if let Some(g) = &args.group {
        members.retain(|m| m.groups.contains(g));
    }
    let mut zones: Vec<Tz> = members
        .iter()
        .filter_map(|m| m.timezone.parse().ok())
        .collect();
    zones.sort_by_key(|z: &Tz| z.name());
    zones.dedup();
    let times = if rules.limits.is_some() {
        store
            .routine_times(now - chrono::TimeDelta::days(9))
            .await
            .map_err(fail)?
    } else {
        Default::default()
    };
    Ok(StoreData {
        members,
        zones,
        caps: CapCounts { times },
    })
}

/// Every fire in `(from, to]` of the selected schedules, with the
/// sessions a `cancelled:` date removed, in time order.
fn plan_rows(
    rules: &RuleSet,
    args: &PreviewArgs,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zones: &[Tz],
    mut data: Option<StoreData>,
) -> Vec<PreviewFire> {
    let fires = selected_fires(rules, args, from, to, zones);
    let mut rows = Vec::with_capacity(fires.len());
    for (fire, status, schedule) in fires {
        let counts = match (&mut data, status) {
            (Some(d), "scheduled") => match recipients(rules, args, schedule, &fire, d) {
                Some(c) => c,
                None => continue,
            },
            (Some(_), _) => Counts {
                recipients: Some(0),
                capped: Some(0),
                sample: None,
            },
            (None, _) => Counts {
                recipients: None,
                capped: None,
                sample: None,
            },
        };
        rows.push(preview_fire(schedule, status, &fire, counts));
    }
    rows
}

/// The selected schedules' fires in `(from, to]`, each `scheduled` or
/// `cancelled` (a fire only the rules without `cancelled:` dates have),
/// of `--group` if given, in time order.
fn selected_fires<'r>(
    rules: &'r RuleSet,
    args: &PreviewArgs,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    zones: &[Tz],
) -> Vec<(Fire, &'static str, &'r Schedule)> {
    // The same rules with no date cancelled: a fire only they have is a
    // cancelled session's.
    let mut uncancelled = rules.clone();
    for g in uncancelled.groups.values_mut() {
        g.cancelled.clear();
    }
    let selected: Vec<&Schedule> = rules
        .schedules
        .values()
        .filter(|s| args.schedule.as_ref().is_none_or(|id| *id == s.id))
        .filter(|s| s.enabled)
        .collect();
    let mut fires: Vec<(Fire, &'static str, &Schedule)> = Vec::new();
    for s in selected {
        let live = plan::fires(rules, s, from, to, zones);
        if let Some(u) = uncancelled.schedules.get(&s.id) {
            for f in plan::fires(&uncancelled, u, from, to, zones) {
                if !live.iter().any(|l| l.at == f.at && l.scope == f.scope) {
                    fires.push((f, "cancelled", s));
                }
            }
        }
        fires.extend(live.into_iter().map(|f| (f, "scheduled", s)));
    }
    fires.retain(|(f, _, s)| match &args.group {
        None => true,
        Some(g) => match &f.scope {
            Scope::Session { group, .. } => group == g,
            _ => s.groups.contains(g),
        },
    });
    fires.sort_by(|a, b| {
        (a.0.at, &a.0.schedule, a.0.scope.key()).cmp(&(b.0.at, &b.0.schedule, b.0.scope.key()))
    });
    fires
}

/// Whom a fire reaches, from the database.
struct Counts {
    recipients: Option<usize>,
    capped: Option<usize>,
    sample: Option<String>,
}

/// A scheduled fire fanned out over the stored members as the scheduler
/// would: how many it reaches, how many the caps hold back, and a masked
/// sample; `None` when `--member` is given and it does not reach them.
fn recipients(
    rules: &RuleSet,
    args: &PreviewArgs,
    schedule: &Schedule,
    fire: &Fire,
    d: &mut StoreData,
) -> Option<Counts> {
    let cx = fanout::Context {
        rules,
        generation: 0,
        version: "preview",
    };
    let out = fanout::fan_out(&cx, schedule, fire, &d.members, &mut d.caps);
    let capped = out
        .messages
        .iter()
        .filter(|m| m.suppressed.is_some())
        .count();
    let sample = out
        .messages
        .first()
        .and_then(|m| d.members.iter().find(|x| Some(x.id) == m.member_id))
        .and_then(|m| masked_sample(rules, schedule, fire, m));
    if args.member.is_some() && out.messages.is_empty() {
        return None;
    }
    Some(Counts {
        recipients: Some(out.messages.len()),
        capped: Some(capped),
        sample,
    })
}

fn preview_fire(
    schedule: &Schedule,
    status: &'static str,
    fire: &Fire,
    counts: Counts,
) -> PreviewFire {
    let (group, session) = match &fire.scope {
        Scope::Session { group, session } => (Some(group.clone()), Some(session)),
        _ => (None, None),
    };
    let local = fire.local;
    PreviewFire {
        schedule: schedule.id.clone(),
        status,
        fire_utc: fire.at.to_rfc3339(),
        fire_local: local.to_rfc3339(),
        timezone: local.timezone().name().to_owned(),
        scope: fire.scope.key(),
        group,
        session_utc: session.map(|s| s.starts_at.to_rfc3339()),
        session_local: session.map(|s| s.local_starts_at.to_rfc3339()),
        extra_session: session.is_some_and(|s| s.extra),
        sends: match &schedule.content {
            Content::Template(t) => format!("template:{t}"),
            Content::Survey(s) => format!("survey:{s}"),
        },
        recipients: counts.recipients,
        capped: counts.capped,
        sample: counts.sample,
    }
}

/// The message one recipient would get, rendered for a copy of them whose
/// names, external id and text attributes are placeholders.
fn masked_sample(rules: &RuleSet, schedule: &Schedule, fire: &Fire, m: &Member) -> Option<String> {
    let mut masked = m.clone();
    masked.first_name = "[first_name]".into();
    masked.last_name = m.last_name.as_ref().map(|_| "[last_name]".into());
    masked.external_id = "[external_id]".into();
    for (k, v) in masked.attributes.iter_mut() {
        if v.is_string() || v.is_array() {
            *v = serde_json::Value::String(format!("[{k}]"));
        }
    }
    // The real member passed the segment; the masked copy may not.
    let mut everyone = schedule.clone();
    everyone.segment = crate::rules::ALL_SEGMENT.to_owned();
    let cx = fanout::Context {
        rules,
        generation: 0,
        version: "preview",
    };
    let out = fanout::fan_out(&cx, &everyone, fire, &[masked], &mut CapCounts::default());
    out.messages.into_iter().next().map(|m| m.body)
}

fn write_text(
    out: &mut dyn Write,
    rows: &[PreviewFire],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    with_store: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} from {} to {} (UTC)",
        match rows.len() {
            1 => "1 fire".to_owned(),
            n => format!("{n} fires"),
        },
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M")
    )?;
    for r in rows {
        let local = DateTime::parse_from_rfc3339(&r.fire_local).ok();
        let tz: Option<Tz> = r.timezone.parse().ok();
        let when = match (local, tz) {
            (Some(l), Some(tz)) => l
                .with_timezone(&tz)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            _ => r.fire_local.clone(),
        };
        write!(out, "{when}  {}  {}", r.schedule, r.sends)?;
        if let Some(g) = &r.group {
            write!(out, "  group {g}")?;
        } else if let Some(zone) = r.scope.strip_prefix("tz:") {
            write!(out, "  members in {zone}")?;
        }
        if let (Some(s), Some(tz)) = (&r.session_local, tz)
            && let Ok(s) = DateTime::parse_from_rfc3339(s)
        {
            write!(
                out,
                "  session {}{}",
                s.with_timezone(&tz).format("%a %Y-%m-%d %H:%M"),
                if r.extra_session { " (extra)" } else { "" }
            )?;
        }
        if r.status == "cancelled" {
            write!(
                out,
                "  CANCELLED: the session is cancelled, nothing is sent"
            )?;
        } else if let Some(n) = r.recipients {
            write!(out, "  recipients {n}")?;
            if let Some(c) = r.capped.filter(|c| *c > 0) {
                write!(out, " ({c} capped)")?;
            }
        }
        writeln!(out)?;
        if let Some(s) = &r.sample {
            writeln!(out, "    sample: {s}")?;
        }
    }
    if !with_store {
        writeln!(
            out,
            "(no database: recipients not counted; schedules in members' own timezones shown for --timezone)"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn times_are_rfc3339_local_dates_and_times_or_durations() {
        let ny = chrono_tz::America::New_York;
        let base = t("2026-03-01T00:00:00Z");
        for (text, want) in [
            ("2026-03-08T09:00:00-05:00", "2026-03-08T14:00:00Z"),
            ("2026-03-08", "2026-03-08T05:00:00Z"),
            ("2026-03-08T09:00", "2026-03-08T13:00:00Z"),
            // In the spring-forward gap: the first instant after it.
            ("2026-03-08 02:30", "2026-03-08T07:00:00Z"),
            ("2d", "2026-03-03T00:00:00Z"),
        ] {
            assert_eq!(parse_when(text, ny, base), Some(t(want)), "{text}");
        }
        assert_eq!(parse_when("tomorrow", ny, base), None);
    }

    #[test]
    fn no_text_makes_time_parsing_panic() {
        // A seeded xorshift over the characters times are written with.
        let mut rng = crate::testing::Rng::new(0x9e37_79b9_7f4a_7c15);
        let alphabet: Vec<char> = "0123456789-:+TZ .wdhms/xé9".chars().collect();
        let tz = chrono_tz::Pacific::Chatham;
        for _ in 0..20_000 {
            let x = rng.next();
            let len = (x % 28) as usize;
            let text: String = (0..len)
                .map(|i| alphabet[((x >> (i % 48)) as usize + i * 7) % alphabet.len()])
                .collect();
            let _ = parse_when(&text, tz, DateTime::<Utc>::MAX_UTC);
            let _ = parse_when(&text, tz, DateTime::<Utc>::MIN_UTC);
        }
        // Durations that overflow the calendar are refused, not a panic.
        assert_eq!(parse_when("999999w", tz, DateTime::<Utc>::MAX_UTC), None);
    }
}
