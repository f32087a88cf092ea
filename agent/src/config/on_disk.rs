//! When the config file no longer loads, the commands that only read the store (`status`,
//! `print list`, `dlq`) still find the store, so a bad edit never takes away the tools a
//! technician needs to see what is going on. (Whether the file on disk is what the daemon runs is
//! decided in `status`, from digests.)

use std::path::{Path, PathBuf};

use super::{Config, StoreConfig};

/// The config, or — when it does not load — the store it names, read leniently, with the error.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// The file is valid.
    Valid(Box<Config>),
    /// The file has an error; `store` is where the store is anyway: `[store] path` when the file is
    /// still TOML and has that key, the default path otherwise.
    Invalid { store: PathBuf, error: super::ConfigError },
}

/// Loads `file`; see [`Loaded`].
pub(crate) fn load_for_reading(file: &Path) -> Loaded {
    match Config::load(file) {
        Ok(c) => Loaded::Valid(Box::new(c)),
        Err(error) => Loaded::Invalid { store: store_path_despite_errors(file), error },
    }
}

fn store_path_despite_errors(file: &Path) -> PathBuf {
    let named = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| t.get("store")?.get("path")?.as_str().map(PathBuf::from));
    match named {
        Some(path) => super::resolve(file.parent().unwrap_or(Path::new(".")), &path),
        None => StoreConfig::default().path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_still_names_its_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("dockhand.toml");
        // A wrong type (refused by the strict loader) in an otherwise readable file.
        std::fs::write(
            &file,
            "[gateway]\nid = \"gw\"\nsite = \"S\"\n[store]\npath = \"state/s.db\"\nmax_bytes = true\n",
        )
        .expect("write");
        match load_for_reading(&file) {
            Loaded::Invalid { store, error } => {
                assert_eq!(store, dir.path().join("state/s.db"));
                assert!(error.to_string().contains("max_bytes"), "{error}");
            }
            Loaded::Valid(_) => panic!("the file is invalid"),
        }
        // Not even TOML: the default store.
        std::fs::write(&file, "[store\npath = 1").expect("write");
        match load_for_reading(&file) {
            Loaded::Invalid { store, .. } => assert_eq!(store, StoreConfig::default().path),
            Loaded::Valid(_) => panic!("the file is invalid"),
        }
    }
}
