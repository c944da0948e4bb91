//! Contact addresses other than phone numbers: email and webhook URLs.

use super::Invalid;

/// Checks the basic RFC 5322 shape of an email address: one `@`, a local
/// part of printable characters without spaces (no leading, trailing or
/// doubled dot), and a domain of dot-separated labels (letters, digits,
/// `-`) with at least one dot. Quoted local parts and address literals are
/// not accepted: a clinic's contact address never needs them. The hint
/// strips what was written around an address (`mailto:`, `Dr Lee <...>`,
/// spaces) when what is left is an address.
pub fn parse_email(text: &str) -> Result<String, Invalid> {
    if is_email(text) {
        return Ok(text.to_owned());
    }
    let hint = bare_email(text)
        .filter(|e| is_email(e))
        .map(|e| format!("write the address alone: `{e}`"))
        .or_else(|| {
            (!text.contains('@'))
                .then(|| "an email address has an `@`, like `lee@clinic.example`".to_owned())
        });
    Err(Invalid::new(format!("invalid email address `{text}`")).with_hint(hint))
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(atext)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// `mailto:a@b.org`, `Dr Lee <a@b.org>`, ` a @b.org ` → `a@b.org`.
fn bare_email(text: &str) -> Option<String> {
    let mut t = text.trim();
    if let (Some(open), Some(close)) = (t.rfind('<'), t.rfind('>'))
        && open < close
    {
        t = &t[open + 1..close];
    }
    let t = t
        .strip_prefix("mailto:")
        .or_else(|| t.strip_prefix("MAILTO:"))
        .unwrap_or(t);
    let fixed: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    (fixed != text).then_some(fixed)
}

/// Parses a webhook URL: absolute, `http` or `https`, with a host. The hint
/// adds a missing `https://` or trims spaces when that gives a valid URL.
pub fn parse_webhook_url(text: &str) -> Result<reqwest::Url, Invalid> {
    if let Ok(url) = reqwest::Url::parse(text)
        && (!url.username().is_empty() || url.password().is_some())
    {
        // Echo the URL, not the password in it.
        let mut masked = url.clone();
        let _ = masked.set_password(url.password().map(|_| "***"));
        let userinfo = match masked.password() {
            Some(p) => format!("{}:{p}@", masked.username()),
            None => format!("{}@", masked.username()),
        };
        return Err(Invalid::new(format!(
            "invalid webhook URL `{masked}`: it holds a user name or password, and rules files are no place for secrets"
        ))
        .with_hint(Some(format!("remove `{userinfo}` from the URL"))));
    }
    let problem = match reqwest::Url::parse(text) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!("the scheme is `{}`, not http or https", url.scheme())
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => "it has no host".to_owned(),
        Ok(url) if text.trim() == text => return Ok(url),
        Ok(_) => "it has spaces around it".to_owned(),
        Err(e) => match e.to_string().as_str() {
            "relative URL without a base" => {
                "it does not start with `http://` or `https://`".to_owned()
            }
            other => other.to_owned(),
        },
    };
    let trimmed = text.trim();
    let mut candidates = vec![trimmed.to_owned()];
    if !trimmed.contains("://") {
        candidates.push(format!("https://{trimmed}"));
    }
    let hint = candidates
        .into_iter()
        .filter(|candidate| candidate != text)
        .find(|candidate| parse_webhook_url(candidate).is_ok())
        .map(|fixed| format!("write `{fixed}`"))
        .or_else(|| Some("use an absolute http:// or https:// URL".to_owned()));
    Err(Invalid::new(format!("invalid webhook URL `{text}`: {problem}")).with_hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_need_the_basic_shape() {
        for good in [
            "lee@clinic.example",
            "j.lee+oncall@mail.clinic.example",
            "o'neil@x.org",
        ] {
            assert_eq!(parse_email(good).unwrap(), good);
        }
        for bad in [
            "lee.clinic.example",
            "lee@clinic",
            "lee@",
            "@clinic.example",
            "lee smith@clinic.example",
            "lee@clinic..example",
            ".lee@clinic.example",
            "lee@-clinic.example",
            "lee@clinic.example.",
            "lee@clinic_example.org",
            "lee@@clinic.example",
        ] {
            let err = parse_email(bad).unwrap_err();
            assert_eq!(err.message, format!("invalid email address `{bad}`"));
        }
    }

    #[test]
    fn email_hints_strip_what_surrounds_the_address() {
        for (text, hint) in [
            (
                "mailto:lee@clinic.example",
                "write the address alone: `lee@clinic.example`",
            ),
            (
                "Dr Lee <lee@clinic.example>",
                "write the address alone: `lee@clinic.example`",
            ),
            (
                "lee @clinic.example",
                "write the address alone: `lee@clinic.example`",
            ),
            (
                "lee.clinic.example",
                "an email address has an `@`, like `lee@clinic.example`",
            ),
        ] {
            assert_eq!(
                parse_email(text).unwrap_err().hint.as_deref(),
                Some(hint),
                "{text}"
            );
        }
        assert_eq!(parse_email("lee@clinic").unwrap_err().hint, None);
    }

    #[test]
    fn a_webhook_url_with_a_password_is_refused_without_echoing_it() {
        let err = parse_webhook_url("https://hearth:s3cret@pager.clinic.example/x").unwrap_err();
        assert_eq!(
            err.message,
            "invalid webhook URL `https://hearth:***@pager.clinic.example/x`: it holds a user name or password, and rules files are no place for secrets"
        );
        assert_eq!(
            err.hint.as_deref(),
            Some("remove `hearth:***@` from the URL")
        );
        assert!(!format!("{err:?}").contains("s3cret"));
    }

    #[test]
    fn webhook_urls_are_absolute_http_or_https_with_a_host() {
        for good in [
            "https://pager.clinic.example/hooks/hearth",
            "http://127.0.0.1:8080/hook",
        ] {
            assert!(parse_webhook_url(good).is_ok(), "{good}");
        }
        for (bad, problem, hint) in [
            (
                "pager.clinic.example/hooks/hearth",
                "it does not start with `http://` or `https://`",
                "write `https://pager.clinic.example/hooks/hearth`",
            ),
            (
                "ftp://pager.clinic.example/x",
                "the scheme is `ftp`, not http or https",
                "use an absolute http:// or https:// URL",
            ),
            (
                " https://pager.clinic.example/x ",
                "it has spaces around it",
                "write `https://pager.clinic.example/x`",
            ),
            (
                "https://pager clinic.example/x",
                "invalid",
                "use an absolute http:// or https:// URL",
            ),
        ] {
            let err = parse_webhook_url(bad).unwrap_err();
            assert!(
                err.message
                    .starts_with(&format!("invalid webhook URL `{bad}`: ")),
                "{err}"
            );
            assert!(err.message.contains(problem), "{bad}: {err}");
            assert_eq!(err.hint.as_deref(), Some(hint), "{bad}");
        }
    }
}
