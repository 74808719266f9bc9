//! Reading a repository Factory does not trust (its `.factory/` settings, pipelines, team
//! overrides, `Makefile`): only regular files, reached without passing through a symlink at any
//! component, and only up to a size cap. A repository can commit a symlink to `/etc/shadow` or
//! a 10 GiB file; neither is read.

use std::path::{Path, PathBuf};

/// Largest repository settings file read (project.toml, pipelines, team files, Makefile).
pub const MAX_SETTINGS_BYTES: u64 = 256 * 1024;

/// Why a repository file was not read.
#[derive(Debug, thiserror::Error)]
pub enum RepoFileError {
    #[error("{path} must be a regular file inside the repository, not a symlink or a directory")]
    NotRegular { path: String },
    #[error("{path} is {size} bytes; files over {max} bytes are not read")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// `root/relative`, refusing any symlink on the way (each component is checked, not only the
/// last). `Ok(None)` when some component does not exist.
fn walk(
    root: &Path,
    relative: &[&str],
) -> Result<Option<(PathBuf, std::fs::Metadata)>, RepoFileError> {
    let mut path = root.to_path_buf();
    let mut meta = None;
    for part in relative {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(RepoFileError::NotRegular {
                    path: path.display().to_string(),
                });
            }
            Ok(m) => meta = Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RepoFileError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(meta.map(|m| (path, m)))
}

/// The text of `root/relative` when it exists: a regular file of at most `max` bytes.
pub fn read(root: &Path, relative: &[&str], max: u64) -> Result<Option<String>, RepoFileError> {
    let Some((path, meta)) = walk(root, relative)? else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err(RepoFileError::NotRegular {
            path: path.display().to_string(),
        });
    }
    if meta.len() > max {
        return Err(RepoFileError::TooLarge {
            path: path.display().to_string(),
            size: meta.len(),
            max,
        });
    }
    let io = |source| RepoFileError::Io {
        path: path.display().to_string(),
        source,
    };
    // Read at most `max + 1` bytes: the file may have grown since it was measured.
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(&path)
        .map_err(io)?
        .take(max + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() as u64 > max {
        return Err(RepoFileError::TooLarge {
            path: path.display().to_string(),
            size: text.len() as u64,
            max,
        });
    }
    Ok(Some(text))
}

/// The names of the entries of directory `root/relative` (none when it does not exist),
/// sorted; the directory is reached without passing through a symlink.
pub fn list(root: &Path, relative: &[&str]) -> Result<Vec<String>, RepoFileError> {
    let Some((path, meta)) = walk(root, relative)? else {
        return Ok(Vec::new());
    };
    if !meta.is_dir() {
        return Err(RepoFileError::NotRegular {
            path: path.display().to_string(),
        });
    }
    let entries = std::fs::read_dir(&path).map_err(|source| RepoFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let repo = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
        std::fs::create_dir(repo.path().join(".factory")).unwrap();
        std::fs::write(repo.path().join(".factory/ok.toml"), "a = 1").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            repo.path().join(".factory/link.toml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.path().join("linked-dir")).unwrap();
        std::fs::write(repo.path().join("big"), vec![b'x'; 2_000]).unwrap();

        assert_eq!(
            read(repo.path(), &[".factory", "ok.toml"], 100)
                .unwrap()
                .as_deref(),
            Some("a = 1")
        );
        assert!(
            read(repo.path(), &[".factory", "absent"], 100)
                .unwrap()
                .is_none()
        );
        for relative in [
            &[".factory", "link.toml"][..],
            &["linked-dir", "secret"][..],
        ] {
            let e = read(repo.path(), relative, 100).unwrap_err();
            assert!(matches!(e, RepoFileError::NotRegular { .. }), "{e}");
        }
        assert!(matches!(
            read(repo.path(), &["big"], 1_000).unwrap_err(),
            RepoFileError::TooLarge { .. }
        ));
        assert!(list(repo.path(), &["linked-dir"]).is_err());
        assert_eq!(
            list(repo.path(), &[".factory"]).unwrap(),
            ["link.toml", "ok.toml"]
        );
    }
}
