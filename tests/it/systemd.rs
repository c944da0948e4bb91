//! The systemd unit, checked by systemd's own analyser.

use std::process::Command;

use crate::support::components;

#[test]
fn the_unit_passes_systemd_analyze_verify_and_security() {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !components::require(found, "systemd-analyze", "apt-get install systemd") {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/verify.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok: no problems reported for hearth.service"),
        "{text}"
    );
}

#[test]
fn the_unit_runs_the_daemon_as_systemd_expects() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/hearth.service"
    ))
    .unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "StateDirectory=hearth",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "missing `{line}`"
        );
    }
}
