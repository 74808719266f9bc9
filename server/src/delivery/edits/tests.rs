//! Tests of the edit applier: refused paths, protected files, planted symlinks, bounded hints.
use super::*;

fn write(path: &str, content: &str) -> Edit {
    Edit::Write {
        path: path.into(),
        content: content.into(),
    }
}

#[test]
fn writes_replaces_and_deletes_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let changed = apply(
        root,
        &[
            write("src/lib.rs", "fn a() {}\nfn b() {}\n"),
            Edit::Replace {
                path: "src/lib.rs".into(),
                search: "fn b() {}".into(),
                replace: "fn b() -> u8 { 1 }".into(),
            },
            write("old.txt", "x"),
            Edit::Delete {
                path: "old.txt".into(),
            },
        ],
        &EditLimits::default(),
    )
    .unwrap();
    assert_eq!(changed, ["old.txt", "src/lib.rs"]);
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).unwrap(),
        "fn a() {}\nfn b() -> u8 { 1 }\n"
    );
    assert!(!root.join("old.txt").exists());
}

#[test]
fn bad_paths_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
    for (path, needle) in [
        ("/etc/passwd", "absolute"),
        ("../escape", "`..`"),
        ("a/../../escape", "`..`"),
        (".git/config", "`.git`"),
        ("sub/.GIT/hooks/x", "`.git`"),
        ("link/file", "symlink"),
        ("", "empty"),
        ("a//b", "empty or `.`"),
        ("a\\b", "backslashes"),
    ] {
        let err = apply(dir.path(), &[write(path, "x")], &EditLimits::default()).unwrap_err();
        assert!(err.to_string().contains(needle), "{path}: {err}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn ci_and_factory_files_are_refused_unless_the_policy_allows_them() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        ".factory/project.toml",
        ".github/workflows/ci.yml",
        ".gitignore",
        ".gitlab-ci.yml",
        "Jenkinsfile",
        ".circleci/config.yml",
        ".envrc",
    ] {
        let err = apply(dir.path(), &[write(path, "x")], &EditLimits::default()).unwrap_err();
        assert!(
            err.to_string().contains("--allow-ci-edits"),
            "{path}: {err}"
        );
        assert!(!dir.path().join(path).exists(), "{path} was written");
        let allowed = EditLimits {
            allow_protected: true,
            ..EditLimits::default()
        };
        apply(dir.path(), &[write(path, "x")], &allowed).unwrap();
    }
    for path in [
        "src/github.rs",
        "docs/.factory-notes.md",
        "ci/run.sh",
        "a/Jenkinsfile",
    ] {
        assert_eq!(protected(path), None, "{path}");
    }
}

#[test]
fn a_planted_symlink_at_any_temp_name_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("authorized_keys");
    std::fs::write(&secret, "keep").unwrap();
    std::fs::write(dir.path().join("README.md"), "old\n").unwrap();
    // What a repository could commit: links at the names a writer might choose.
    for name in [".README.md.factory-tmp", ".README.md.tmp", "README.md.tmp"] {
        std::os::unix::fs::symlink(&secret, dir.path().join(name)).unwrap();
    }
    apply(
        dir.path(),
        &[write("README.md", "new\n")],
        &EditLimits::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "keep");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "new\n"
    );
    let meta = std::fs::symlink_metadata(dir.path().join("README.md")).unwrap();
    assert!(meta.is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
}

#[test]
fn the_hint_after_a_missed_replace_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(200_000);
    std::fs::write(dir.path().join("min.js"), format!("{long}\n{long}\n")).unwrap();
    let err = apply(
        dir.path(),
        &[Edit::Replace {
            path: "min.js".into(),
            search: "y".repeat(100_000),
            replace: "z".into(),
        }],
        &EditLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.len() < 2_000, "{} bytes of hint", err.len());
}

#[test]
fn a_missed_replace_names_the_file_and_the_nearest_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "def total(x):\n    return x\n\ndef main():\n    pass\n",
    )
    .unwrap();
    let err = apply(
        dir.path(),
        &[Edit::Replace {
            path: "app.py".into(),
            search: "def totals(x):".into(),
            replace: "def total(xs):".into(),
        }],
        &EditLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("replace in `app.py`: the search text was not found"),
        "{err}"
    );
    assert!(err.contains("  1: def total(x):"), "{err}");
}

#[test]
fn sizes_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let limits = EditLimits {
        max_file_bytes: 10,
        max_edits: 2,
        allow_protected: false,
    };
    let err = apply(dir.path(), &[write("a", &"x".repeat(11))], &limits).unwrap_err();
    assert!(err.to_string().contains("at most 10"), "{err}");
    let err = apply(
        dir.path(),
        &[write("a", ""), write("b", ""), write("c", "")],
        &limits,
    )
    .unwrap_err();
    assert!(err.to_string().contains("at most 2 per result"), "{err}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just(".git".to_string()),
            Just("link".to_string()),
            Just(String::new()),
            Just("/".to_string()),
            "[a-z]{1,3}",
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..5).prop_map(|s| s.join("/"))
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (path(), "[a-z]{0,8}").prop_map(|(path, content)| Edit::Write { path, content }),
            (path(), "[a-z]{0,3}", "[a-z]{0,3}").prop_map(|(path, search, replace)| {
                Edit::Replace {
                    path,
                    search,
                    replace,
                }
            }),
            path().prop_map(|path| Edit::Delete { path }),
        ]
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
                }
            }
        }
        out.sort();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics_and_never_writes_outside_the_root(edits in prop::collection::vec(edit(), 1..6)) {
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("secret"), "keep").unwrap();
            let parent = tempfile::tempdir().unwrap();
            let root = parent.path().join("repo");
            std::fs::create_dir_all(root.join(".git")).unwrap();
            std::fs::write(root.join(".git/config"), "cfg").unwrap();
            std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
            let before_outside = snapshot(outside.path());
            let before_git = std::fs::read(root.join(".git/config")).unwrap();
            let _ = apply(&root, &edits, &EditLimits::default());
            prop_assert_eq!(snapshot(outside.path()), before_outside);
            prop_assert_eq!(std::fs::read(root.join(".git/config")).unwrap(), before_git);
            // Nothing appeared beside the root either.
            let siblings: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
            prop_assert_eq!(siblings.len(), 1);
        }
    }
}
