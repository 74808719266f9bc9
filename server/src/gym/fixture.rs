//! A scenario's fixture made real: its plain files written into a fresh git repository (one
//! commit), its `hidden/` files set aside where only the checks use them.

use std::path::{Path, PathBuf};

use super::GymError;
use super::scenario::{GymDir, RepositorySource, Scenario};

/// Bytes of fixture files at most (a fixture is a small repository, not a dataset).
const MAX_FIXTURE_BYTES: u64 = 16 * 1024 * 1024;
/// Where a fixture file may name the attempt's directory (e.g. a hostile gate's target).
pub const WORK_PLACEHOLDER: &str = "{{gym.work}}";

/// A fixture, ready.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The git repository the run delivers into.
    pub repo: PathBuf,
    /// The fixture's `hidden/` files (may not exist).
    pub hidden: PathBuf,
}

/// The scenario's repository under `work`: its fixture written and committed, or its local
/// checkout cloned at its commit.
pub fn prepare(scenario: &Scenario, work: &Path) -> Result<Fixture, GymError> {
    match (&scenario.fixture, &scenario.repository) {
        (_, Some(source)) => clone(&scenario.gym_dir, source, work),
        (Some(name), None) => materialise(&scenario.gym_dir, name, work),
        (None, None) => Err(GymError::Fixture(format!(
            "{}: no fixture and no repository",
            scenario.name
        ))),
    }
}

/// Clones the checkout into `work/repo` with HEAD on `source.commit` (detached; the clone
/// keeps no remote, so nothing can be pushed back into the checkout).
fn clone(gym: &GymDir, source: &RepositorySource, work: &Path) -> Result<Fixture, GymError> {
    let base = match gym {
        GymDir::Dir(dir) => dir.clone(),
        GymDir::BuiltIn => PathBuf::from("."),
    };
    let from = base.join(&source.path);
    let repo_path = work.join("repo");
    let fail = |e: git2::Error| {
        GymError::Fixture(format!(
            "repository {} at {}: {}",
            from.display(),
            source.commit,
            e.message()
        ))
    };
    let repo = git2::build::RepoBuilder::new()
        .clone(&from.display().to_string(), &repo_path)
        .map_err(fail)?;
    let oid = git2::Oid::from_str(&source.commit).map_err(fail)?;
    let commit = repo.find_commit(oid).map_err(fail)?;
    repo.checkout_tree(
        commit.as_object(),
        Some(git2::build::CheckoutBuilder::new().force()),
    )
    .map_err(fail)?;
    repo.set_head_detached(oid).map_err(fail)?;
    repo.remote_delete("origin").map_err(fail)?;
    let hidden = match &source.hidden {
        Some(h) => base.join(h),
        None => work.join("hidden"),
    };
    Ok(Fixture {
        repo: repo_path,
        hidden,
    })
}

/// Writes fixture `name` of `gym` under `work` (`work/repo`, `work/hidden`) and commits the
/// repository's files. Symlinks and oversize fixtures are refused.
fn materialise(gym: &GymDir, name: &str, work: &Path) -> Result<Fixture, GymError> {
    let repo = work.join("repo");
    let hidden = work.join("hidden");
    let mut files = Vec::new();
    match gym {
        GymDir::BuiltIn => {
            let dir = super::BUILTIN
                .get_dir(format!("fixtures/{name}"))
                .ok_or_else(|| GymError::Fixture(format!("no built-in fixture `{name}`")))?;
            embedded(dir, Path::new(&format!("fixtures/{name}")), &mut files);
        }
        GymDir::Dir(root) => {
            let dir = root.join("fixtures").join(name);
            if !dir.is_dir() {
                return Err(GymError::Fixture(format!(
                    "fixture `{name}`: {} is not a directory",
                    dir.display()
                )));
            }
            on_disk(&dir, &dir, &mut files)?;
        }
    }
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    if total > MAX_FIXTURE_BYTES {
        return Err(GymError::Fixture(format!(
            "fixture `{name}` holds {total} bytes; the limit is {MAX_FIXTURE_BYTES}"
        )));
    }
    let work_text = work.display().to_string();
    for (relative, bytes) in files {
        let (base, rest) = match relative.strip_prefix("hidden") {
            Ok(rest) => (&hidden, rest.to_path_buf()),
            Err(_) => (&repo, relative),
        };
        let dest = base.join(rest);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(GymError::io(parent))?;
        }
        let bytes = match String::from_utf8(bytes) {
            Ok(text) => text.replace(WORK_PLACEHOLDER, &work_text).into_bytes(),
            Err(e) => e.into_bytes(),
        };
        std::fs::write(&dest, bytes).map_err(GymError::io(&dest))?;
        #[cfg(unix)]
        if dest.extension().is_some_and(|e| e == "sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                .map_err(GymError::io(&dest))?;
        }
    }
    std::fs::create_dir_all(&repo).map_err(GymError::io(&repo))?;
    commit(&repo).map_err(|e| GymError::Fixture(format!("fixture `{name}`: git: {e}")))?;
    Ok(Fixture { repo, hidden })
}

fn embedded(dir: &include_dir::Dir<'_>, prefix: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for file in dir.files() {
        if let Ok(relative) = file.path().strip_prefix(prefix) {
            out.push((relative.to_path_buf(), file.contents().to_vec()));
        }
    }
    for sub in dir.dirs() {
        embedded(sub, prefix, out);
    }
}

fn on_disk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) -> Result<(), GymError> {
    let entries = std::fs::read_dir(dir).map_err(GymError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(GymError::io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(GymError::io(&path))?;
        if kind.is_symlink() {
            return Err(GymError::Fixture(format!(
                "{} is a symlink: fixtures hold plain files and directories only",
                path.display()
            )));
        }
        if kind.is_dir() {
            if entry.file_name() == ".git" {
                return Err(GymError::Fixture(format!(
                    "{} is a git directory: a fixture is plain files (the gym makes the repository)",
                    path.display()
                )));
            }
            on_disk(root, &path, out)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(GymError::io(&path))?;
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push((relative, bytes));
        }
    }
    Ok(())
}

/// `git init` and one commit of every file, with a fixed author and date so a fixture's base
/// commit is the same every time.
fn commit(repo_path: &Path) -> Result<String, git2::Error> {
    let repo = git2::Repository::init(repo_path)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::FORCE, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let when = git2::Time::new(1_767_225_600, 0);
    let signature = git2::Signature::new("Factory Gym", "gym@factory.localhost", &when)?;
    let oid = repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        "The scenario's fixture",
        &tree,
        &[],
    )?;
    Ok(oid.to_string())
}
