//! Secrets (passwords, tokens, API keys) are read from files named in the config, never written
//! in the config itself. A relative name is looked up in systemd's `$CREDENTIALS_DIRECTORY`
//! first (`LoadCredential=`). Secret values never appear in logs or error messages.

use std::path::{Path, PathBuf};

use tracing::warn;

/// Reads a secret file: the content without its trailing newline.
pub(crate) fn read_secret_file(path: &Path) -> Result<String, String> {
    let path = locate(path);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    warn_if_readable_by_others(&path);
    let value = text.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(format!("the secret file {} is empty", path.display()));
    }
    Ok(value)
}

/// A digest of the contents of secret `files` (or of why one cannot be read), found as
/// [`read_secret_file`] finds them: a reload compares digests to know whose secrets changed,
/// without keeping or showing the secrets.
pub(crate) fn digest(files: &[&Path]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for f in files {
        match std::fs::read(locate(f)) {
            Ok(bytes) => ctx.update(&bytes),
            Err(e) => ctx.update(e.to_string().as_bytes()),
        }
        ctx.update(b"\0");
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn locate(path: &Path) -> PathBuf {
    if path.is_relative()
        && let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY")
    {
        let candidate = Path::new(&dir).join(path);
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        warn!(file = %path.display(), "A secret file is readable by every user on this machine; restrict it (chmod 600).");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_without_the_newline_and_never_shows_the_value_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(read_secret_file(&f).unwrap(), "s3cret");
        std::fs::write(&f, "\n").unwrap();
        let e = read_secret_file(&f).unwrap_err();
        assert!(e.contains("is empty"));
        let e = read_secret_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("cannot read the secret file"));
    }
}
