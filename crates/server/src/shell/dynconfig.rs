//! The configuration files of a member with `reconfigEnabled`, as ZooKeeper's
//! `QuorumPeerConfig` writes them: at start-up, a static file that still holds the ensemble
//! is copied to `<file>.bak` (`backupOldConfig`); whenever the member activates a new
//! configuration (`Output::ConfigActivated`), it is written to `<file>.dynamic.<version hex>`
//! (`writeDynamicConfig`) and the static file is rewritten without the ensemble, pointing at
//! it (`editStaticConfig`). A configuration seen proposed and not yet in force
//! (`Output::LastSeenConfig`) is `<file>.dynamic.next`, with its version
//! (`setLastSeenQuorumVerifier`), deleted once it is activated; at start-up it is read back
//! as the last configuration seen (`QuorumPeerConfig.parse`, with `dynamicConfigFile`).
//! Each write goes to a temporary file that is synced and renamed over the old one
//! (ZooKeeper's `AtomicFileWritingIdiom`). The text is rzk-config's.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `text` to `path` atomically: a synced temporary file renamed over it.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_file_name(format!("{}.tmp", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// `backupOldConfig`: `<config_file>.bak`, a copy of the static file as it was read.
pub fn backup_static(config_file: &Path) -> io::Result<PathBuf> {
    let text = std::fs::read_to_string(config_file)?;
    let bak = PathBuf::from(format!("{}.bak", config_file.display()));
    write_atomically(&bak, &text)?;
    Ok(bak)
}

/// A configuration activated: `<config_file>.dynamic.<version hex>` holds its members, and
/// the static file names it. `my_id`: this server, whose client address, if its line in
/// the new configuration names one, is erased from the static file (ZooKeeper's
/// `needEraseClientInfoFromStaticConfig`). Returns the dynamic file's path.
pub fn write_activated(config_file: &Path, membership: &str, version: i64, my_id: u64) -> io::Result<PathBuf> {
    let dynamic = PathBuf::from(format!("{}.dynamic.{version:x}", config_file.display()));
    write_atomically(&dynamic, &rzk_config::dynamic_config_text(membership))?;
    let canonical = std::fs::canonicalize(&dynamic)?;
    let erase =
        rzk_config::membership_of(membership).map(|m| m.servers.get(&my_id).is_some_and(|s| s.client_address.is_some())).unwrap_or(false);
    let text = std::fs::read_to_string(config_file)?;
    let edited = rzk_config::edit_static_config(&text, &canonical.display().to_string(), erase).map_err(io::Error::other)?;
    write_atomically(config_file, &edited)?;
    Ok(dynamic)
}

/// `<config_file>.dynamic.next`.
pub fn next_path(config_file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.dynamic.next", config_file.display()))
}

/// `writeDynamicConfig(next, qv, needKeepVersion = true)`: the configuration seen proposed,
/// its lines sorted, `version=` kept. `None`: the file is deleted (`deleteFile`: a missing
/// one is fine).
pub fn write_next(config_file: &Path, membership: Option<&str>) -> io::Result<PathBuf> {
    let next = next_path(config_file);
    match membership {
        Some(text) => write_atomically(&next, &rzk_config::next_config_text(text))?,
        None => match std::fs::remove_file(&next) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        },
    }
    Ok(next)
}

/// The `.next` file at start-up, if there is one (only read with `dynamicConfigFile`, as
/// ZooKeeper does).
pub fn read_next(config_file: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(next_path(config_file)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_as_zookeeper_writes_them() {
        let dir = std::env::temp_dir().join(format!("rzk-dynconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            "tickTime=500\ndataDir=/tmp\nclientPort=2181\nreconfigEnabled=true\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2181\n",
        )
        .unwrap();
        let bak = backup_static(&cfg).unwrap();
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), std::fs::read_to_string(&cfg).unwrap());
        let text = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=100000000";
        let dynamic = write_activated(&cfg, text, 0x100000000, 1).unwrap();
        assert!(dynamic.ends_with("zoo.cfg.dynamic.100000000"));
        assert_eq!(std::fs::read_to_string(&dynamic).unwrap(), "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181");
        let canonical = std::fs::canonicalize(&dynamic).unwrap();
        assert_eq!(
            std::fs::read_to_string(&cfg).unwrap(),
            format!("dataDir=/tmp\ntickTime=500\nreconfigEnabled=true\ndynamicConfigFile={}\n", canonical.display())
        );
        // The rewritten pair loads back to the same ensemble.
        let loaded = rzk_config::load(&cfg).unwrap();
        assert_eq!(loaded.config_version, 0x100000000);
        assert_eq!(loaded.servers[&1].client_address.as_ref().unwrap().port, 2181);
        // A configuration seen proposed: `.next`, with its version; deleted when activated
        // (twice is fine).
        let proposed = "server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\nserver.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=100000003";
        let next = write_next(&cfg, Some(proposed)).unwrap();
        assert!(next.ends_with("zoo.cfg.dynamic.next"));
        assert_eq!(
            read_next(&cfg).unwrap().unwrap(),
            "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\nversion=100000003"
        );
        write_next(&cfg, None).unwrap();
        write_next(&cfg, None).unwrap();
        assert_eq!(read_next(&cfg).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
