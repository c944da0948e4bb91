//! `database:`: where the encrypted database lives and where its key
//! comes from; by default `hearth.db` in systemd's state directory.

use std::path::PathBuf;

use super::SecretRef;
use super::raw::RawDatabase;

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub path: PathBuf,
    /// Where the encryption key comes from; `None` lets the store generate a
    /// key file beside the database on first start.
    pub(crate) key: Option<SecretRef>,
}

/// The file's database path and key; without a `database:` section,
/// `hearth.db` in the folder systemd's StateDirectory= names
/// (`STATE_DIRECTORY` in `env`), since the settings folder (/etc/hearth)
/// is read-only there, and a key the store generates.
pub(super) fn path_and_key(
    raw: Option<RawDatabase>,
    env: &[(String, String)],
) -> (PathBuf, Option<SecretRef>) {
    match raw {
        Some(d) => (d.path, d.key),
        None => {
            let state_dir = env
                .iter()
                .find(|(k, _)| k == "STATE_DIRECTORY")
                .map(|(_, v)| PathBuf::from(v));
            (state_dir.unwrap_or_default().join("hearth.db"), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::settings::testing::parse;

    #[test]
    fn the_default_database_lives_in_systemds_state_directory() {
        let s = parse("", &[("STATE_DIRECTORY", "/var/lib/hearth")]).unwrap();
        assert_eq!(s.database.path, PathBuf::from("/var/lib/hearth/hearth.db"));
    }
}
