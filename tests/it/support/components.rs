//! The one check every real-component test makes before driving Kannel,
//! Prism, aiosmtpd, openssl, python3 or systemd-analyze: on a laptop a
//! missing component is a printed skip; under CI it is a failure.
//!
//! ```ignore
//! if !components::require(found, "systemd-analyze", "apt-get install systemd") {
//!     return; // skipped
//! }
//! ```
//!
//! A component is required when `HEARTH_REQUIRE_COMPONENTS=1` (`.ci/run`
//! sets it) or when `CI` is set to anything but empty, `0` or `false`
//! (every CI service sets `CI=true`), so a CI run that forgot the first
//! still cannot pass by skipping.

/// What to do about a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// It is installed: run the test.
    Run,
    /// It is missing and not required: print a skip and pass.
    Skip,
    /// It is missing and required: fail.
    Fail,
}

/// Whether a component named `what` may be used, given whether it is
/// `present`. Missing and not required: prints `skipped: …` and returns
/// false. Missing and required: panics naming it and `hint` (how to
/// install it).
pub fn require(present: bool, what: &str, hint: &str) -> bool {
    let require_components = std::env::var("HEARTH_REQUIRE_COMPONENTS").ok();
    let ci = std::env::var("CI").ok();
    match decide(present, require_components.as_deref(), ci.as_deref()) {
        Decision::Run => true,
        Decision::Skip => {
            eprintln!("skipped: {what} is not installed\n  hint: {hint}");
            false
        }
        Decision::Fail => panic!(
            "{what} is not installed, and real components are required here (HEARTH_REQUIRE_COMPONENTS=1 or CI)\n  hint: {hint}"
        ),
    }
}

/// The decision as a function of presence and the two variables' values
/// (`None`: unset).
pub fn decide(present: bool, require_components: Option<&str>, ci: Option<&str>) -> Decision {
    if present {
        Decision::Run
    } else if require_components == Some("1") || ci.is_some_and(ci_is_set) {
        Decision::Fail
    } else {
        Decision::Skip
    }
}

/// `CI` as CI services set it: anything but empty, `0` or `false`.
fn ci_is_set(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false"
    )
}

#[test]
fn a_missing_component_fails_under_either_variable_and_is_skipped_otherwise() {
    use Decision::*;
    let cases: &[(bool, Option<&str>, Option<&str>, Decision)] = &[
        (true, None, None, Run),
        (true, Some("1"), Some("true"), Run),
        (false, None, None, Skip),
        (false, Some("1"), None, Fail),
        (false, Some("0"), None, Skip),
        (false, Some(""), None, Skip),
        (false, Some("yes"), None, Skip),
        (false, None, Some("true"), Fail),
        (false, None, Some("1"), Fail),
        (false, None, Some("TRUE"), Fail),
        (false, None, Some("woodpecker"), Fail),
        (false, None, Some("false"), Skip),
        (false, None, Some("False"), Skip),
        (false, None, Some("0"), Skip),
        (false, None, Some(""), Skip),
        (false, Some("1"), Some("false"), Fail),
        (false, Some("0"), Some("true"), Fail),
    ];
    for &(present, require_components, ci, want) in cases {
        assert_eq!(
            decide(present, require_components, ci),
            want,
            "present={present} HEARTH_REQUIRE_COMPONENTS={require_components:?} CI={ci:?}"
        );
    }
}
