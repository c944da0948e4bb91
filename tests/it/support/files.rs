//! Files on disk: writing rules and settings, an editor's save, and the
//! rules files tests start from.

use std::path::Path;

/// A valid rules file whose reminder text is `body`.
pub fn rules_yaml(body: &str) -> String {
    format!(
        r#"templates:
  reminder:
    body: "{body}"
schedules:
  - id: weekly
    template: reminder
    cron: "0 12 * * THU"
"#
    )
}

/// A second, independent valid rules file.
pub const EXTRA_YAML: &str = r#"templates:
  extra:
    body: "Hi {{ member.first_name }}"
schedules:
  - id: extra-weekly
    template: extra
    cron: "0 13 * * FRI"
"#;

/// A file that does not compile: an unknown template reference.
pub const BROKEN_YAML: &str = r#"schedules:
  - id: broken
    template: does-not-exist
    cron: "0 12 * * THU"
"#;

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Writes a sibling temp file and renames it over `path`, as vim, VS Code
/// and most editors save.
pub fn rename_save(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp-save");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
