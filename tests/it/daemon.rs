//! The `hearth` binary as systemd runs it: a child process with a fake
//! `$NOTIFY_SOCKET`, driven by real signals.

use std::time::Duration;

use crate::support::*;

const STARTUP: Duration = Duration::from_secs(20);
/// How long a stopping daemon may take before the test calls it hung.
const STOP: Duration = Duration::from_secs(10);

#[test]
fn ready_reaches_the_notify_socket_and_sigterm_exits_zero() {
    let mut daemon = spawn_daemon(&[("main.yaml", &rules_yaml("x"))], &[]);
    let seen = daemon.wait_notify("READY=1", STARTUP);
    let ready = seen.last().unwrap();
    assert!(
        ready.contains("STATUS=rules generation 1 (1 files); last reload ok"),
        "{ready}"
    );

    daemon.signal(libc::SIGTERM);
    // A deadline for a hang, not a speed test: how fast it stops is not
    // asserted here.
    let status = daemon.wait_exit(STOP);
    let status = status.unwrap_or_else(|| panic!("still running {STOP:?} after SIGTERM"));
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    daemon.wait_notify("STOPPING=1", STOP);
}

#[test]
fn sigint_also_drains_and_exits_zero() {
    let mut daemon = spawn_daemon(&[("main.yaml", &rules_yaml("x"))], &[]);
    daemon.wait_notify("READY=1", STARTUP);
    daemon.signal(libc::SIGINT);
    let status = daemon.wait_exit(STOP).expect("exited");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sighup_reloads_with_reloading_monotonic_usec_then_ready() {
    let daemon = spawn_daemon(&[("main.yaml", &rules_yaml("x"))], &[]);
    daemon.wait_notify("READY=1", STARTUP);

    daemon.signal(libc::SIGHUP);
    let seen = daemon.wait_notify("READY=1", Duration::from_secs(10));
    let all = seen.join("\n");
    assert!(all.contains("RELOADING=1"), "{all}");
    assert!(all.contains("MONOTONIC_USEC="), "{all}");
    assert!(all.contains("STATUS=rules generation 2"), "{all}");
    let stderr = daemon.stderr();
    assert!(stderr.contains("rules reloaded"), "{stderr}");
}

#[test]
fn a_bad_edit_then_sighup_keeps_serving_and_reports_failure_in_status() {
    let daemon = spawn_daemon(&[("main.yaml", &rules_yaml("x"))], &[]);
    daemon.wait_notify("READY=1", STARTUP);
    write(&daemon.dir.path().join("rules/broken.yaml"), BROKEN_YAML);
    // The watcher sees it too; either way the status must say FAILED.
    let seen = daemon.wait_notify("FAILED", Duration::from_secs(10));
    assert!(
        seen.last().unwrap().contains("rules generation 1"),
        "{seen:?}"
    );
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("rules reload rejected; previous rules still live"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown template `does-not-exist`"),
        "{stderr}"
    );
}

#[test]
fn the_watchdog_is_pinged_when_systemd_asks_for_it() {
    let daemon = spawn_daemon(
        &[("main.yaml", &rules_yaml("x"))],
        &[("WATCHDOG_USEC", "200000")],
    );
    daemon.wait_notify("READY=1", STARTUP);
    daemon.wait_notify("WATCHDOG=1", Duration::from_secs(10));
}

#[test]
fn invalid_rules_at_start_exit_1_without_ready_and_print_every_error() {
    let mut daemon = spawn_daemon(
        &[
            ("main.yaml", &rules_yaml("x")),
            ("broken.yaml", BROKEN_YAML),
        ],
        &[],
    );
    let status = daemon.wait_exit(STARTUP).expect("exited");
    assert_eq!(status.code(), Some(1));
    let mut buf = [0u8; 256];
    daemon.notify.set_nonblocking(true).unwrap();
    assert!(
        daemon.notify.recv(&mut buf).is_err(),
        "nothing may reach systemd"
    );
    let stderr = daemon.stderr();
    assert!(
        stderr.contains(
            "broken.yaml:3:15: error: schedule `broken`: unknown template `does-not-exist`"
        ),
        "{stderr}"
    );
}

#[test]
fn a_literal_secret_in_settings_exits_1_with_a_hint() {
    let mut daemon = spawn_daemon(&[("main.yaml", &rules_yaml("x"))], &[]);
    // Replace the settings with a literal token and restart.
    let _ = daemon.child.kill();
    let _ = daemon.child.wait();
    let settings = daemon.dir.path().join("hearth.yaml");
    write(
        &settings,
        "rules_dir: rules\nprovider:\n  kind: twilio\n  account_sid: AC0123\n  auth_token: hunter2hunter2\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--settings"])
        .arg(&settings)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a literal secret is not allowed here"),
        "{stderr}"
    );
    assert!(stderr.contains("credential:NAME"), "{stderr}");
    assert!(
        !stderr.contains("hunter2hunter2"),
        "echoed the secret: {stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let daemon = spawn_daemon(
        &[("main.yaml", &rules_yaml("x"))],
        &[("HEARTH_LOG_FORMAT", "json")],
    );
    daemon.wait_notify("READY=1", STARTUP);
    daemon.signal(libc::SIGTERM);
    let stderr = daemon.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("level").is_some() && v.get("message").is_some(),
            "{line}"
        );
    }
}

#[test]
fn an_empty_rules_directory_at_start_exits_1_naming_it_without_ready() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("hearth.yaml"), &settings_yaml());
    // A file without a single rule is no better than none.
    write(&dir.path().join("rules/empty.yaml"), "# nothing yet\n");
    let mut daemon = spawn_daemon_in(dir, &[]);
    let status = daemon.wait_exit(STARTUP).expect("exited");
    assert_eq!(status.code(), Some(1));
    let mut buf = [0u8; 256];
    daemon.notify.set_nonblocking(true).unwrap();
    assert!(
        daemon.notify.recv(&mut buf).is_err(),
        "nothing may reach systemd"
    );
    let rules = daemon.dir.path().join("rules");
    let stderr = daemon.stderr();
    assert!(
        stderr.contains(&format!(
            "error: rules directory {} holds no rules",
            rules.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("  hint: put at least one *.yaml rules file in it"),
        "{stderr}"
    );
}
