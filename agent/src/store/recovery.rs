//! What happens when the store file is damaged: detect it, move the file (and its `-wal` and
//! `-shm`) aside with a timestamp suffix, and let the caller start a fresh store that carries an
//! alarm. The damaged file is never deleted: a technician can still salvage it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tracing::error;

use crate::timestamp::Timestamp;

/// Files at or below this size are verified completely at open (`PRAGMA quick_check` reads every
/// page: about a second per few hundred MB here). Larger files open at once and are verified by
/// a background pass, so a big backlog never delays start-up.
pub(crate) const VERIFY_AT_OPEN_MAX_BYTES: u64 = 64 << 20;

/// Why a store file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage(pub String);

/// Marker left next to the store by a run that found damage it could not repair while running;
/// the next open moves the file aside.
pub(crate) fn marker_path(store: &Path) -> PathBuf {
    with_suffix(store, ".damaged")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Checks an existing store file: the header, the schema, the tables dockhand reads at start-up,
/// and — for files up to `full_check_max_bytes` — every page.
pub(crate) fn inspect(path: &Path, full_check_max_bytes: u64) -> Result<(), Damage> {
    if let Ok(reason) = std::fs::read_to_string(marker_path(path)) {
        return Err(Damage(format!("an earlier run found damage: {}", reason.trim())));
    }
    let mut header = [0u8; 16];
    match std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header)) {
        Ok(()) if &header == b"SQLite format 3\0" => {}
        Ok(()) => return Err(Damage("the file is not an SQLite database (bad header)".into())),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Damage("the file is truncated (shorter than an SQLite header)".into()));
        }
        Err(e) => return Err(Damage(format!("cannot read the file: {e}"))),
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| Damage(e.to_string()))?;
    let probe =
        |sql: &str| conn.query_row(sql, [], |_| Ok(())).map_err(|e| Damage(format!("{e} (while running `{sql}`)")));
    probe("SELECT count(*) FROM sqlite_schema")?;
    probe("SELECT count(*) FROM meta")?;
    probe("SELECT count(*) FROM sinks")?;
    probe("SELECT max(seq), min(seq) FROM events")?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size <= full_check_max_bytes {
        quick_check(&conn)?;
    }
    Ok(())
}

/// `PRAGMA quick_check`: verifies every page and b-tree of the file.
pub(crate) fn quick_check(conn: &Connection) -> Result<(), Damage> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(|e| Damage(e.to_string()))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| Damage(e.to_string()))?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(Damage(format!("integrity check failed: {}", rows.join("; "))))
    }
}

/// Renames the store and its `-wal`/`-shm` files to `<name>.corrupt-<UTC time>` and removes the
/// marker. Returns the new path of the main file.
pub(crate) fn move_aside(path: &Path, damage: &Damage) -> std::io::Result<PathBuf> {
    let stamp = Timestamp::now().to_string().replace([':', '-'], "").replace(".000Z", "Z");
    let aside = with_suffix(path, &format!(".corrupt-{stamp}"));
    for suffix in ["-wal", "-shm"] {
        let from = with_suffix(path, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, suffix))?;
        }
    }
    std::fs::rename(path, &aside)?;
    let _ = std::fs::remove_file(marker_path(path));
    error!(
        store = %path.display(),
        moved_to = %aside.display(),
        reason = %damage.0,
        "The store file is damaged; it was moved aside and a fresh store is starting. Events in the old file were not delivered."
    );
    Ok(aside)
}
