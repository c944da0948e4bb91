//! Hot reload on a real temp directory, through the real watcher.

use std::os::unix::fs::symlink;

use crate::support::*;

fn reminder_body(app: &TestApp) -> String {
    let rules = app.rules.current();
    rules
        .renderer
        .render("reminder", &hearth::rules::template::sample_context())
        .unwrap()
}

#[tokio::test]
async fn a_good_edit_goes_live_as_a_new_generation() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("first"))]).await;
    assert_eq!(app.rules.generation(), 1);

    write(&app.rules_dir().join("main.yaml"), &rules_yaml("second"));
    app.wait_for_generation(2).await;

    assert_eq!(reminder_body(&app), "second");
    let status = app.status();
    assert!(status.last.ok);
    assert_eq!(status.last.diff.as_deref(), Some("templates: ~reminder"));
    app.stop().await;
}

#[tokio::test]
async fn a_bad_edit_keeps_the_old_rules_live_and_records_the_error() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("good"))]).await;

    write(&app.rules_dir().join("broken.yaml"), BROKEN_YAML);
    app.wait_for_attempts(2).await;

    let status = app.status();
    assert_eq!(status.generation, 1, "the broken set must not go live");
    assert!(!status.last.ok);
    assert_eq!(status.failures, 1);
    let rendered: Vec<String> = status
        .last
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(
        rendered.iter().any(|d| d.starts_with(
            "broken.yaml:3:15: error: schedule `broken`: unknown template `does-not-exist`"
        )),
        "{rendered:#?}"
    );
    assert!(status.summary().contains("FAILED"), "{}", status.summary());
    assert_eq!(reminder_body(&app), "good");
    assert!(!app.rules.current().schedules.contains_key("broken"));

    // Fixing it brings the next generation.
    write(&app.rules_dir().join("broken.yaml"), EXTRA_YAML);
    app.wait_for_generation(2).await;
    assert!(app.rules.current().schedules.contains_key("extra-weekly"));
    app.stop().await;
}

#[tokio::test]
async fn an_editor_rename_save_is_picked_up() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("before"))]).await;
    rename_save(&app.rules_dir().join("main.yaml"), &rules_yaml("after"));
    app.wait_for_generation(2).await;
    assert_eq!(reminder_body(&app), "after");

    // Again, to prove the watch survived the inode swap.
    rename_save(&app.rules_dir().join("main.yaml"), &rules_yaml("again"));
    app.wait_for_generation(3).await;
    assert_eq!(reminder_body(&app), "again");
    app.stop().await;
}

#[tokio::test]
async fn a_file_deleted_and_recreated_is_followed_both_ways() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("x")), ("extra.yaml", EXTRA_YAML)]).await;
    assert!(app.rules.current().schedules.contains_key("extra-weekly"));

    std::fs::remove_file(app.rules_dir().join("extra.yaml")).unwrap();
    app.wait_for_generation(2).await;
    assert!(!app.rules.current().schedules.contains_key("extra-weekly"));
    assert_eq!(
        app.status().last.diff.as_deref(),
        Some("schedules: -extra-weekly; templates: -extra")
    );

    write(&app.rules_dir().join("extra.yaml"), EXTRA_YAML);
    app.wait_for_generation(3).await;
    assert!(app.rules.current().schedules.contains_key("extra-weekly"));
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_twenty_writes_in_100ms_reloads_exactly_once() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("v0"))]).await;
    let before = app.status().attempts;

    let path = app.rules_dir().join("main.yaml");
    for i in 1..=20 {
        write(&path, &rules_yaml(&format!("v{i}")));
        // The spacing of the burst is what is under test: writes 5 ms
        // apart, each inside the quiet window of the one before.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.wait_for_generation(2).await;
    app.settle().await;

    let status = app.status();
    assert_eq!(status.attempts - before, 1, "{status:#?}");
    assert_eq!(status.generation, 2);
    assert_eq!(reminder_body(&app), "v20");
    app.stop().await;
}

#[tokio::test]
async fn editor_swap_files_do_not_trigger_a_reload() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("x"))]).await;
    let before = app.status().attempts;
    write(&app.rules_dir().join(".main.yaml.swp"), "\u{0}garbage: [");
    write(&app.rules_dir().join("main.yaml~"), "garbage: [");
    write(&app.rules_dir().join("4913"), "");
    app.settle().await;
    assert_eq!(app.status().attempts, before);
    app.stop().await;
}

#[tokio::test]
async fn a_touch_without_changes_does_not_make_a_new_generation() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("same"))]).await;
    write(&app.rules_dir().join("main.yaml"), &rules_yaml("same"));
    app.wait_for_attempts(2).await;
    assert_eq!(app.status().generation, 1);
    assert!(app.status().last.ok);
    app.stop().await;
}

#[tokio::test]
async fn a_kubernetes_style_symlink_swap_goes_live() {
    // ConfigMap layout: rules/..data -> ..v1, rules/main.yaml -> ..data/main.yaml.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    write(&rules.join("..v1/main.yaml"), &rules_yaml("from v1"));
    symlink("..v1", rules.join("..data")).unwrap();
    symlink("..data/main.yaml", rules.join("main.yaml")).unwrap();
    let app = spawn_app_in(dir).await;
    assert_eq!(reminder_body(&app), "from v1");
    assert_eq!(
        app.status().files.len(),
        1,
        "the ..v1 copy must not be read twice"
    );

    // Kubelet writes the new version beside it and swaps ..data atomically.
    write(&rules.join("..v2/main.yaml"), &rules_yaml("from v2"));
    symlink("..v2", rules.join("..data_tmp")).unwrap();
    std::fs::rename(rules.join("..data_tmp"), rules.join("..data")).unwrap();
    std::fs::remove_dir_all(rules.join("..v1")).unwrap();

    app.wait_for_generation(2).await;
    assert_eq!(reminder_body(&app), "from v2");
    app.stop().await;
}

#[tokio::test]
async fn stopping_waits_for_subsystems_and_tells_systemd() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("x"))]).await;
    let notifier = app.notifier.clone();
    app.stop().await;
    let events = notifier.events.lock().unwrap().clone();
    assert!(
        events
            .first()
            .unwrap()
            .starts_with("READY rules generation 1 (1 files)"),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap(), "STOPPING");
}

#[tokio::test]
async fn a_reload_reading_the_files_does_not_trigger_another_reload() {
    // Regression: inotify reports our own reads as access events, which
    // once fed back into the watcher and reloaded every debounce window.
    let app = spawn_app(&[("main.yaml", &rules_yaml("a"))]).await;
    write(&app.rules_dir().join("main.yaml"), &rules_yaml("b"));
    app.wait_for_generation(2).await;
    app.settle().await;
    app.settle().await;
    assert_eq!(app.status().attempts, 2, "{:#?}", app.status());
}

/// An app whose `/status` answers to [`TestApp::ADMIN_TOKEN`].
async fn app_with_status(files: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(&dir.path().join("rules").join(name), text);
    }
    let settings = settings_with_admin_token(dir.path());
    spawn_app_with_settings(dir, &settings).await
}

#[tokio::test]
async fn a_compiler_panic_keeps_the_last_rules_live_and_the_next_good_edit_reloads() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = app_with_status(&[("main.yaml", &rules_yaml("good"))]).await;
    let armed = Arc::new(AtomicBool::new(true));
    let trigger = armed.clone();
    app.rules
        .set_compile_hook(Some(Arc::new(move |_: &hearth::config::Snapshot| {
            if trigger.swap(false, Ordering::SeqCst) {
                panic!("injected compiler fault");
            }
        })));

    write(
        &app.rules_dir().join("main.yaml"),
        &rules_yaml("while broken"),
    );
    app.wait_for_attempts(2).await;

    let status = app.status();
    assert_eq!(status.generation, 1);
    assert!(!status.last.ok);
    assert_eq!(status.failures, 1);
    let message = &status.last.diagnostics[0].message;
    assert!(
        message.contains("the rules compiler crashed: injected compiler fault"),
        "{message}"
    );
    assert_eq!(reminder_body(&app), "good");
    // systemd hears READY again, with the failure in STATUS=.
    let ready = app
        .notifier
        .wait_for(|e| e.starts_with("READY") && e.contains("FAILED"))
        .await;
    assert!(ready.contains("rules generation 1"), "{ready}");
    // `/status` still answers, and says so.
    let (code, body) = app.get_status().await;
    assert_eq!(code, 200);
    assert_eq!(body["rules"]["last"]["ok"], false, "{body}");

    // The hook fired once; the next edit compiles and goes live.
    write(&app.rules_dir().join("main.yaml"), &rules_yaml("fixed"));
    app.wait_for_generation(2).await;
    assert_eq!(reminder_body(&app), "fixed");
    let (code, body) = app.get_status().await;
    assert_eq!(code, 200);
    assert_eq!(body["rules"]["generation"], 2, "{body}");
    assert_eq!(body["rules"]["last"]["ok"], true, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn deleting_every_rules_file_is_refused_and_the_last_rules_stay_live() {
    let app = spawn_app(&[
        ("main.yaml", &rules_yaml("kept")),
        ("extra.yaml", EXTRA_YAML),
    ])
    .await;

    std::fs::remove_file(app.rules_dir().join("main.yaml")).unwrap();
    std::fs::remove_file(app.rules_dir().join("extra.yaml")).unwrap();
    // Both deletions land in one quiet window: one reload, refused.
    app.wait_for_attempts(2).await;

    let status = app.status();
    assert_eq!(status.generation, 1, "{status:#?}");
    let message = &status.last.diagnostics[0].message;
    assert!(message.contains("holds no rules"), "{message}");
    assert!(message.contains("previous rules still live"), "{message}");
    assert!(status.summary().contains("FAILED"), "{}", status.summary());
    assert_eq!(reminder_body(&app), "kept");
    assert!(app.rules.current().schedules.contains_key("extra-weekly"));

    // Putting a file back goes live as usual.
    write(&app.rules_dir().join("main.yaml"), &rules_yaml("back"));
    app.wait_for_generation(2).await;
    assert_eq!(reminder_body(&app), "back");
    app.stop().await;
}

#[tokio::test]
async fn removing_the_rules_directory_is_refused_and_recreating_it_is_watched_again() {
    let app = spawn_app(&[("main.yaml", &rules_yaml("before"))]).await;
    let rules = app.rules_dir();

    std::fs::remove_dir_all(&rules).unwrap();
    app.wait_for_attempts(2).await;
    let status = app.status();
    assert_eq!(status.generation, 1);
    assert!(
        status.last.diagnostics[0]
            .message
            .contains("cannot read rules directory"),
        "{status:#?}"
    );
    assert_eq!(reminder_body(&app), "before");

    // Recreated: the watch follows it and the new files go live.
    write(&rules.join("main.yaml"), &rules_yaml("recreated"));
    app.wait_for_generation(2).await;
    assert_eq!(reminder_body(&app), "recreated");

    // And it keeps following it: a plain edit reloads again.
    write(&rules.join("main.yaml"), &rules_yaml("edited"));
    app.wait_for_generation(3).await;
    assert_eq!(reminder_body(&app), "edited");
    app.stop().await;
}

#[tokio::test]
async fn swapping_the_parents_symlink_moves_the_watch_to_the_new_release() {
    // releases/v1/rules, with rules_dir = current/rules and current -> releases/v1.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("releases/v1/rules/main.yaml"), &rules_yaml("v1"));
    symlink("releases/v1", root.join("current")).unwrap();
    let settings = settings_yaml().replace("rules_dir: rules", "rules_dir: current/rules");
    let app = spawn_app_with_settings(dir, &settings).await;
    assert_eq!(reminder_body(&app), "v1");

    // Deploy v2 beside it and swap the symlink atomically.
    write(
        &root_of(&app).join("releases/v2/rules/main.yaml"),
        &rules_yaml("v2"),
    );
    symlink("releases/v2", root_of(&app).join("current.tmp")).unwrap();
    std::fs::rename(
        root_of(&app).join("current.tmp"),
        root_of(&app).join("current"),
    )
    .unwrap();
    app.wait_for_generation(2).await;
    assert_eq!(reminder_body(&app), "v2");

    // The watch is on v2 now: an edit there reloads.
    write(
        &root_of(&app).join("releases/v2/rules/main.yaml"),
        &rules_yaml("v2 edited"),
    );
    app.wait_for_generation(3).await;
    assert_eq!(reminder_body(&app), "v2 edited");
    app.stop().await;
}

fn root_of(app: &TestApp) -> std::path::PathBuf {
    app.dir.path().to_owned()
}

/// Rules with a follow-up landing at 21:30, after an 18:00 session.
const LATE_FOLLOW_UP: &str = r#"groups:
  - id: evening
    name: Evening Group
    timezone: America/New_York
    sessions: { cron: "0 18 * * TUE", duration: 90m }
templates:
  follow-up: { body: "How was {{ group.name }}?" }
schedules:
  - { id: after, template: follow-up, after_session: 2h }
"#;

fn quiet_hours_warnings(app: &TestApp) -> Vec<String> {
    app.status()
        .last
        .diagnostics
        .iter()
        .map(|d| d.to_string())
        .filter(|d| d.contains("quiet hours"))
        .collect()
}

#[tokio::test]
async fn reloads_judge_quiet_hours_by_the_settings_send_window() {
    // The default window (08:00–21:00): 21:30 is quiet, at start and on reload.
    let app = spawn_app(&[("main.yaml", LATE_FOLLOW_UP)]).await;
    assert_eq!(quiet_hours_warnings(&app).len(), 1, "{:#?}", app.status());
    write(
        &app.rules_dir().join("main.yaml"),
        &LATE_FOLLOW_UP.replace("How was", "How did you find"),
    );
    app.wait_for_generation(2).await;
    assert_eq!(quiet_hours_warnings(&app).len(), 1, "{:#?}", app.status());
    app.stop().await;

    // A clinic that sends all day: no quiet hours, no warning.
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("rules/main.yaml"), LATE_FOLLOW_UP);
    let settings = format!(
        "{}dispatch: {{ send_window: {{ start: \"00:00\", end: \"23:59\" }} }}\n",
        settings_yaml()
    );
    let app = spawn_app_with_settings(dir, &settings).await;
    assert_eq!(quiet_hours_warnings(&app), Vec::<String>::new());
    write(
        &app.rules_dir().join("main.yaml"),
        &LATE_FOLLOW_UP.replace("How was", "How did you find"),
    );
    app.wait_for_generation(2).await;
    assert_eq!(quiet_hours_warnings(&app), Vec::<String>::new());
    app.stop().await;
}
