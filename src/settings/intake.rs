//! `intake:`: the HTTP intake's limits (body size, the addresses Kannel
//! may call from), with their defaults and checks.

use super::raw::RawIntake;

/// The HTTP intake (provider webhooks, admin API).
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// Largest request body accepted, in bytes.
    pub(crate) max_body: usize,
    /// Addresses Kannel may call the MO and DLR endpoints from.
    pub(crate) kannel_allow: Vec<std::net::IpAddr>,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            max_body: 64 * 1024,
            kannel_allow: vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
        }
    }
}

pub(super) fn intake_settings(raw: RawIntake) -> Result<IntakeSettings, String> {
    let mut i = IntakeSettings::default();
    if let Some(n) = raw.max_body {
        i.max_body = n;
    }
    if let Some(list) = raw.kannel_allow {
        i.kannel_allow = list
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| format!("intake.kannel_allow: `{a}` is not an IP address"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(i)
}
