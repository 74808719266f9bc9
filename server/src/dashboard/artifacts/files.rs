//! Reading a run's artifact from the data directory, refusing anything that could reach
//! another file: only plain relative paths, no symbolic links, regular files up to
//! [`MAX_ARTIFACT_BYTES`].

use std::io::Read;
use std::path::{Component, Path};

use app::server_fns::artifacts::MAX_ARTIFACT_BYTES;

/// Why an artifact cannot be shown.
#[derive(Debug, thiserror::Error)]
pub(in crate::dashboard) enum ArtifactError {
    #[error("{path:?} is not a plain path inside the data directory")]
    Unsafe { path: String },
    #[error("{path:?} passes through a symbolic link: only regular files are shown")]
    Symlink { path: String },
    #[error("{path:?} is not a regular file")]
    NotAFile { path: String },
    #[error("{path:?} is listed but no longer on disk")]
    Missing { path: String },
    #[error(
        "{path:?} is {bytes} bytes; the dashboard shows artifacts up to {MAX_ARTIFACT_BYTES} bytes \
         (read it from the data directory instead)"
    )]
    TooLarge { path: String, bytes: u64 },
    #[error("{path:?} is not UTF-8 text")]
    NotText { path: String },
    #[error("cannot read {path:?}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ArtifactError {
    /// True when the user can act on the message (everything but an unexpected I/O fault).
    pub(in crate::dashboard) fn is_refusal(&self) -> bool {
        !matches!(self, ArtifactError::Io { .. })
    }
}

/// The text of `relative` under `data_dir`, checked as described in the module docs.
pub(super) fn read_text(data_dir: &Path, relative: &str) -> Result<String, ArtifactError> {
    let path = || relative.to_string();
    let io = |source| ArtifactError::Io {
        path: path(),
        source,
    };
    let rel = Path::new(relative);
    if relative.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ArtifactError::Unsafe { path: path() });
    }
    let root = data_dir.canonicalize().map_err(io)?;
    let full = root.join(rel);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ArtifactError::Missing { path: path() });
        }
        Err(e) => return Err(io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(ArtifactError::Symlink { path: path() });
    }
    if !meta.is_file() {
        return Err(ArtifactError::NotAFile { path: path() });
    }
    // A directory on the way that is a link shows as a canonical path elsewhere.
    if full.canonicalize().map_err(io)? != full {
        return Err(ArtifactError::Symlink { path: path() });
    }
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(ArtifactError::TooLarge {
            path: path(),
            bytes: meta.len(),
        });
    }
    // Read at most one byte past the limit, in case the file grew since it was measured.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(&full)
        .map_err(io)?
        .take(MAX_ARTIFACT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_ARTIFACT_BYTES {
        return Err(ArtifactError::TooLarge {
            path: path(),
            bytes: bytes.len() as u64,
        });
    }
    String::from_utf8(bytes).map_err(|_| ArtifactError::NotText { path: path() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_regular_files_inside_are_read() {
        let data = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join("artifacts/r1")).unwrap();
        std::fs::write(data.path().join("artifacts/r1/a.md"), "# A\n").unwrap();
        std::fs::write(outside.path().join("secret.md"), "secret").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.md"),
            data.path().join("artifacts/r1/link.md"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), data.path().join("artifacts/out")).unwrap();

        assert_eq!(
            read_text(data.path(), "artifacts/r1/a.md").unwrap(),
            "# A\n"
        );
        for (path, expected) in [
            ("../secret.md", "plain path"),
            ("/etc/passwd", "plain path"),
            ("", "plain path"),
            ("artifacts/r1/link.md", "symbolic link"),
            ("artifacts/out/secret.md", "symbolic link"),
            ("artifacts/r1", "not a regular file"),
            ("artifacts/r1/gone.md", "no longer on disk"),
        ] {
            let err = read_text(data.path(), path).expect_err(path);
            assert!(err.to_string().contains(expected), "{path}: {err}");
        }
    }

    #[test]
    fn large_files_are_refused_with_their_size() {
        let data = tempfile::tempdir().unwrap();
        let big = vec![b'a'; MAX_ARTIFACT_BYTES as usize + 10];
        std::fs::write(data.path().join("big.md"), big).unwrap();
        let err = read_text(data.path(), "big.md").unwrap_err();
        assert!(err.to_string().contains("1048586 bytes"), "{err}");
    }
}
