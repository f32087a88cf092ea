//! `dockhand check-config [--connect]`: the config is read and validated; with `--connect` the
//! store folder, the broker, every sink and every device are tried once.
//!
//! A check never writes. Run as root (the usual case on a gateway), creating a folder or a probe
//! file would leave it owned by root, and the service user could then not use it. Whether the daemon
//! could create the store or a sink file is judged from permissions instead, for the service user
//! when the check runs as root.

use std::path::Path;

use crate::config::Config;
use crate::exit;
use crate::store::StoreReader;

use super::devices;

/// The user the systemd unit runs the daemon as (`systemd/dockhand.service`, `User=`).
const SERVICE_USER: &str = "dockhand";

pub(crate) fn check_config(path: &std::path::Path, connect: bool) -> i32 {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            println!("✗ config {}", path.display());
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    println!(
        "✓ config {}: gateway {} at site {}, {} sink(s), {} device(s)",
        path.display(),
        config.gateway.id,
        config.gateway.site,
        config.sinks.len(),
        config.devices.len()
    );
    for (i, device) in config.devices.iter().enumerate() {
        for warning in device.warnings() {
            println!("! device[{i}].{} ({}): {}", warning.key, device.name, warning.message);
        }
    }
    if !connect {
        return exit::OK;
    }
    let mut failed = 0;
    let mut check = |ok: Result<String, String>, what: String| match ok {
        Ok(detail) => println!("✓ {what}: {detail}"),
        Err(reason) => {
            failed += 1;
            println!("✗ {what}: {reason}");
        }
    };
    let writer = Writer::for_daemon();
    check(check_store(&config, &writer), format!("store {}", config.store.path.display()));
    if let Some(settings) = config.mqtt_settings() {
        let what = format!("mqtt broker {}:{}", settings.mqtt.host, settings.mqtt.port);
        let probe = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(check_broker(&settings)),
            Err(e) => Err(e.to_string()),
        };
        check(probe, what);
    }
    let writable = |path: &Path| writer.can_create_or_append(path);
    for sink in &config.sinks {
        let mut built = crate::sinks::Sink::build(sink, &config.gateway.id, &config.gateway.site);
        let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(built.check(&writable)),
            Err(e) => Err(e.to_string()),
        };
        check(result, format!("sink {} ({})", sink.name(), sink.type_name()));
    }
    for (what, result) in devices::check_all(&config) {
        check(result, what);
    }
    if failed > 0 {
        println!("{failed} check(s) failed");
        exit::FAILURE
    } else {
        exit::OK
    }
}

/// An existing store is opened read-only; a missing one is judged by who could create it.
fn check_store(config: &Config, writer: &Writer) -> Result<String, String> {
    let path = &config.store.path;
    if path.exists() {
        let reader = StoreReader::open(path).map_err(|e| e.to_string())?;
        let s = reader.summary().map_err(|e| e.to_string())?;
        return Ok(format!("readable, {} events kept, last seq {}", s.events, s.last_seq));
    }
    writer.can_create_or_append(path)
}

/// Connects once to the broker and waits for its answer.
async fn check_broker(settings: &crate::mqtt::MqttSettings) -> Result<String, String> {
    let session = crate::mqtt::Session::plain(format!("dockhand-{}-check-{}", settings.gateway, std::process::id()));
    let (client, mut events) = crate::mqtt::connect(settings, &session)?;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let crate::mqtt::Received::Connected { .. } = events.poll().await? {
                return Ok(());
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 5 s".into()));
    let _ = client.try_disconnect();
    answer.map(|()| {
        format!(
            "connected with MQTT {}; handheld topics under {}/handheld/, answers under {}",
            settings.mqtt.protocol,
            settings.prefix,
            settings.reply_filter("<device>")
        )
    })
}

/// Who would write: the user running the check, or the service user when that is root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Writer {
    name: String,
    uid: u32,
    groups: Vec<u32>,
}

impl Writer {
    /// Read from `/proc/self/status` and `/etc/passwd`/`/etc/group` (no unsafe calls needed).
    fn for_daemon() -> Writer {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let me = Writer::from_proc_status(&status);
        if me.uid != 0 {
            return me;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        Writer::from_user_database(SERVICE_USER, &passwd, &group).unwrap_or(me)
    }

    fn from_proc_status(status: &str) -> Writer {
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("");
        // `Uid:` lists real, effective, saved and filesystem ids; permissions use the effective one.
        let uid = field("Uid:").split_whitespace().nth(1).and_then(|u| u.parse().ok()).unwrap_or(u32::MAX);
        let mut groups: Vec<u32> = field("Groups:").split_whitespace().filter_map(|g| g.parse().ok()).collect();
        if let Some(gid) = field("Gid:").split_whitespace().nth(1).and_then(|g| g.parse().ok()) {
            groups.push(gid);
        }
        Writer { name: if uid == 0 { "root".into() } else { format!("uid {uid}") }, uid, groups }
    }

    fn from_user_database(user: &str, passwd: &str, group: &str) -> Option<Writer> {
        let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.first() == Some(&user))?;
        let uid = entry.get(2)?.parse().ok()?;
        let gid: u32 = entry.get(3)?.parse().ok()?;
        let mut groups = vec![gid];
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.get(3).is_some_and(|members| members.split(',').any(|m| m == user))
                && let Some(g) = f.get(2).and_then(|g| g.parse().ok())
            {
                groups.push(g);
            }
        }
        Some(Writer { name: format!("the service user `{user}`"), uid, groups })
    }

    /// Whether the permission bits of `meta` grant `bits` (`0o2` write, `0o1` search) to this user.
    fn allowed(&self, meta: &std::fs::Metadata, bits: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        let shift = if meta.uid() == self.uid {
            6
        } else if self.groups.contains(&meta.gid()) {
            3
        } else {
            0
        };
        (mode >> shift) & bits == bits
    }

    /// `Ok(what happens)` when this user could create or append to `path`, judged without writing.
    fn can_create_or_append(&self, path: &Path) -> Result<String, String> {
        let who = &self.name;
        if let Ok(meta) = std::fs::metadata(path) {
            if !self.allowed(&meta, 0o2) {
                return Err(format!("{} exists but {who} may not write it", path.display()));
            }
            self.can_reach(path)?;
            return Ok(format!("{who} can append to it"));
        }
        // The nearest folder that exists is where the daemon starts creating.
        let existing = path.ancestors().skip(1).find(|a| a.as_os_str().is_empty() || a.exists());
        let existing = match existing {
            Some(a) if a.as_os_str().is_empty() => Path::new("."),
            Some(a) => a,
            None => Path::new("/"),
        };
        let meta = std::fs::metadata(existing).map_err(|e| format!("cannot read {}: {e}", existing.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is a file, not a folder", existing.display()));
        }
        if !self.allowed(&meta, 0o3) {
            return Err(format!("not created yet, and {who} may not create anything in {}", existing.display()));
        }
        self.can_reach(existing)?;
        Ok(format!("not created yet; {who} can create it in {}", existing.display()))
    }

    /// Every folder above `path` must be searchable to open it.
    fn can_reach(&self, path: &Path) -> Result<(), String> {
        for folder in path.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
            if let Ok(meta) = std::fs::metadata(folder)
                && !self.allowed(&meta, 0o1)
            {
                return Err(format!("{} may not enter {}", self.name, folder.display()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\ndockhand:x:998:997:dockhand:/var/lib/dockhand:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\ndialout:x:20:dockhand\ndockhand:x:997:\nstaff:x:50:alice\n";

    #[test]
    fn the_service_user_is_read_with_its_supplementary_groups() {
        let w = Writer::from_user_database("dockhand", PASSWD, GROUP).expect("dockhand is in the passwd text");
        assert_eq!(w.uid, 998);
        assert_eq!(w.groups, vec![997, 20]);
        assert!(Writer::from_user_database("nobody-here", PASSWD, GROUP).is_none());
    }

    #[test]
    fn the_effective_ids_are_read_from_proc_status() {
        let w = Writer::from_proc_status("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\nGroups:\t20 27\n");
        assert_eq!(w.uid, 0, "the effective uid decides, not the real one");
        assert_eq!(w.groups, vec![20, 27, 100]);
    }

    #[test]
    fn a_missing_store_is_judged_without_creating_anything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("state/dockhand/store.db");
        let me = Writer::for_daemon();
        let answer = me.can_create_or_append(&target).expect("the test folder is ours");
        assert!(answer.contains("not created yet"), "{answer}");
        assert!(!dir.path().join("state").exists(), "the check created a folder");
    }

    #[test]
    fn permission_bits_are_read_for_owner_group_and_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("sink.jsonl");
        std::fs::write(&file, b"").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let meta = std::fs::metadata(&file).expect("stat");
        use std::os::unix::fs::MetadataExt;
        let owner = Writer { name: "owner".into(), uid: meta.uid(), groups: vec![] };
        let group = Writer { name: "group".into(), uid: meta.uid().wrapping_add(1), groups: vec![meta.gid()] };
        let other = Writer { name: "other".into(), uid: meta.uid().wrapping_add(1), groups: vec![] };
        assert!(owner.allowed(&meta, 0o2));
        assert!(!group.allowed(&meta, 0o2), "0640 gives the group read only");
        assert!(!other.allowed(&meta, 0o2));
        let root = Writer { name: "root".into(), uid: 0, groups: vec![] };
        assert!(root.allowed(&meta, 0o2));
    }
}
