//! The gateway's virtual IP leases on disk, so that a client that
//! reconnects after a restart of the daemon gets its address back (and open
//! connections of other clients are not handed an address still in use in
//! someone's sessions).
//!
//! One JSON file, `leases.json` in the state directory, rewritten through a
//! temporary file after each change; mode 0600 since it maps user
//! identities to addresses.
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oxisec_ike::Lease;
use serde::{Deserialize, Serialize};

/// A leases file larger than this is not ours (a /16 pool fully leased is
/// about 6 MB).
const MAX_FILE: u64 = 32 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    pool: String,
    identity: String,
    address: IpAddr,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    leases: Vec<Entry>,
}

/// Where the leases live.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("leases.json")
}

/// The saved leases; none when there is no file yet.
pub fn load(path: &Path) -> io::Result<Vec<Lease>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if meta.len() > MAX_FILE {
        return Err(io::Error::other(format!(
            "{} is {} bytes, more than a leases file can be",
            path.display(),
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path)?;
    let f: File = serde_json::from_str(&text)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    Ok(f.leases
        .into_iter()
        .map(|e| Lease {
            pool: e.pool,
            identity: e.identity,
            address: e.address,
        })
        .collect())
}

/// Replaces the file with `leases`.
pub fn save(path: &Path, leases: &[Lease]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = File {
        leases: leases
            .iter()
            .map(|l| Entry {
                pool: l.pool.clone(),
                identity: l.identity.clone(),
                address: l.address,
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&f).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_round_trip_privately() {
        let dir = std::env::temp_dir().join(format!("oxisec-leases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = path(&dir);
        assert!(load(&p).unwrap().is_empty());
        let leases = vec![
            Lease {
                pool: "staff".into(),
                identity: "alice@example.com".into(),
                address: "10.3.0.1".parse().unwrap(),
            },
            Lease {
                pool: "staff6".into(),
                identity: "alice@example.com".into(),
                address: "2001:db8:3::1".parse().unwrap(),
            },
        ];
        save(&p, &leases).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&p).unwrap(), leases);
        std::fs::write(&p, "{not json").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("leases.json"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
