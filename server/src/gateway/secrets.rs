//! Keys typed into the dashboard or the CLI, kept out of the event log in one file,
//! `<data_dir>/secrets`, readable by its owner only (`0600`). It is rewritten whole through a
//! new temp file in the same directory (created `0600`) renamed over it, so a reader sees the
//! old keys or the new ones, never half a file. A file others may read is refused, not used.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The secrets file's name in the data directory.
pub const SECRETS_FILE: &str = "secrets";

/// Longest key accepted (cloud keys are around 200 characters).
pub const MAX_KEY_CHARS: usize = 4096;

/// Keys shorter than this are shown only as "set": their last four characters would say too
/// much of them.
const HINT_MIN_CHARS: usize = 12;

/// A key. Its `Debug` shows nothing of it; only [`Secret::expose`] gives the value, to the
/// provider client that sends it as a header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// A key as typed, checked: 1 to 4096 visible ASCII characters (it travels in a header).
    pub fn new(key: &str) -> Result<Secret, String> {
        let key = key.trim();
        if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
            return Err(format!(
                "api_key: a key has 1 to {MAX_KEY_CHARS} characters"
            ));
        }
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(
                "api_key: a key is visible ASCII characters only (no spaces, line breaks or \
                 other characters)"
                    .into(),
            );
        }
        Ok(Secret(key.to_string()))
    }

    /// The value, for the request header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// How a person sees it: `key set, ends in …1234` (or `key set` for a short key).
    pub fn hint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < HINT_MIN_CHARS {
            return "key set".to_string();
        }
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("key set, ends in …{tail}")
    }
}

/// Why the secrets file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "{path} may be read by others (mode {mode:03o}), so Factory does not use it: run \
         `chmod 600 {path}`"
    )]
    Loose { path: String, mode: u32 },
    #[error("{path} is not a regular file (a symbolic link or a directory): remove it")]
    NotAFile { path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a secrets file Factory wrote ({message}): remove it and set the keys again"
    )]
    Corrupt { path: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The keys, by provider name.
pub type Keys = BTreeMap<String, Secret>;

/// What the file holds.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    keys: BTreeMap<String, String>,
}

/// The secrets file of one data directory.
#[derive(Debug, Clone)]
pub struct SecretsFile {
    path: PathBuf,
}

impl SecretsFile {
    /// `<data_dir>/secrets`.
    pub fn in_dir(data_dir: &Path) -> SecretsFile {
        SecretsFile {
            path: data_dir.join(SECRETS_FILE),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    /// Every stored key. A missing file holds none; a file others may read, a symbolic link
    /// or something Factory did not write is refused.
    pub fn load(&self) -> Result<Keys, SecretsError> {
        let path = self.shown();
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&self.path);
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Keys::new()),
            // O_NOFOLLOW on a symbolic link.
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(SecretsError::NotAFile { path });
            }
            Err(source) => return Err(SecretsError::Read { path, source }),
        };
        let meta = file.metadata().map_err(|source| SecretsError::Read {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(SecretsError::NotAFile { path });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::Loose { path, mode });
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|source| SecretsError::Read {
                path: path.clone(),
                source,
            })?;
        let body: Body = serde_json::from_str(&text).map_err(|e| SecretsError::Corrupt {
            path: path.clone(),
            // Line and column only: serde's message never quotes a string value, but say
            // nothing of the content anyway.
            message: format!("line {}, column {}", e.line(), e.column()),
        })?;
        body.keys
            .into_iter()
            .map(|(name, key)| {
                Secret::new(&key)
                    .map(|s| (name.clone(), s))
                    .map_err(|_| SecretsError::Corrupt {
                        path: path.clone(),
                        message: format!("the key of `{name}` is not a valid key"),
                    })
            })
            .collect()
    }

    /// Sets (`Some`) or removes (`None`) the key of `provider`, rewriting the file atomically;
    /// returns the key it had, so a change that cannot be recorded can put it back.
    pub fn set(
        &self,
        provider: &str,
        key: Option<&Secret>,
    ) -> Result<Option<Secret>, SecretsError> {
        let mut keys = self.load()?;
        let previous = match key {
            Some(key) => keys.insert(provider.to_string(), key.clone()),
            None => keys.remove(provider),
        };
        if key.is_none() && previous.is_none() {
            return Ok(None);
        }
        self.write(&keys)?;
        Ok(previous)
    }

    fn write(&self, keys: &Keys) -> Result<(), SecretsError> {
        let failed = |source| SecretsError::Write {
            path: self.shown(),
            source,
        };
        let body = Body {
            keys: keys
                .iter()
                .map(|(n, k)| (n.clone(), k.expose().to_string()))
                .collect(),
        };
        let text = serde_json::to_string_pretty(&body).map_err(|e| failed(e.into()))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        // tempfile creates the file 0600 (O_EXCL, a random name): the key is never readable
        // by others, not even for a moment.
        let mut tmp = tempfile::Builder::new()
            .prefix(".secrets.")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(failed)?;
        tmp.write_all(text.as_bytes()).map_err(failed)?;
        tmp.as_file().sync_all().map_err(failed)?;
        tmp.persist(&self.path).map_err(|e| failed(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_in_a_0600_file_and_loose_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretsFile::in_dir(dir.path());
        assert!(file.load().unwrap().is_empty());
        let key = Secret::new("sk-test-0123456789abcd").unwrap();
        assert_eq!(file.set("acme", Some(&key)).unwrap(), None);
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(file.load().unwrap()["acme"], key);
        assert_eq!(file.set("acme", None).unwrap(), Some(key));
        assert!(file.load().unwrap().is_empty());

        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = file.load().unwrap_err().to_string();
        assert!(err.contains("chmod 600") && err.contains("644"), "{err}");
    }

    #[test]
    fn a_key_shows_only_its_last_four_characters_and_never_in_debug() {
        let key = Secret::new("sk-live-abcdefgh1234").unwrap();
        assert_eq!(key.hint(), "key set, ends in …1234");
        assert_eq!(Secret::new("short-key").unwrap().hint(), "key set");
        assert!(!format!("{key:?}").contains("abcdefgh"));
        assert!(Secret::new("has space").is_err());
        assert!(Secret::new("").is_err());
        assert!(Secret::new("line\nbreak").is_err());
    }

    #[test]
    fn a_symbolic_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "{\"keys\":{}}").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(SECRETS_FILE)).unwrap();
        let err = SecretsFile::in_dir(dir.path()).load().unwrap_err();
        assert!(matches!(err, SecretsError::NotAFile { .. }), "{err}");
    }
}
