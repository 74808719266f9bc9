//! Limits, budgets, the per-commit cache and the scope check, on fixture repositories.

use std::process::Command;
use std::sync::Arc;

use super::*;
use crate::engine::repo_map::{LeftOutReason, Limits, RepoMap, RepoMapCache, estimate_tokens};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A repository of `n` Rust files, each defining a few symbols and calling the previous file.
fn many_files(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let calls = if i > 0 {
            format!("    helper_{}();\n", i - 1)
        } else {
            String::new()
        };
        let text = format!(
            "pub struct Thing{i} {{ pub id: u32 }}\n\npub fn helper_{i}() {{\n{calls}}}\n\npub const LIMIT_{i}: u32 = {i};\n"
        );
        write(dir.path(), &[(&format!("src/module_{i:03}.rs"), &text)]);
    }
    dir
}

#[test]
fn the_budget_is_never_exceeded_and_says_what_is_not_shown() {
    let repo = many_files(60);
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    assert_eq!(map.files().len(), 60);
    for budget in [0, 5, 12, 40, 100, 300, 700, 2_000, 100_000] {
        let text = map.render(budget);
        assert!(
            estimate_tokens(&text) <= budget,
            "budget {budget}: {} tokens\n{text}",
            estimate_tokens(&text)
        );
        let listed = text.lines().filter(|l| l.starts_with("src/")).count();
        let hidden = 60 - listed;
        if hidden == 0 {
            assert!(!text.contains("more files not shown"), "budget {budget}");
        } else if budget >= 12 {
            assert!(
                text.ends_with(&format!("… {hidden} more files not shown\n")),
                "budget {budget}:\n{text}"
            );
        }
    }
    let small = map.render(100);
    assert!(
        small.contains("  3: fn helper_"),
        "symbols come first:\n{small}"
    );
    let medium = map.render(700);
    assert!(
        medium
            .lines()
            .any(|l| l.starts_with("src/module_") && !medium.contains(&format!("{l}\n  1:"))),
        "past the symbols, paths alone:\n{medium}"
    );
    let all = map.render(100_000);
    assert!(!all.contains("more files not shown"));
    assert_eq!(all.matches("struct Thing").count(), 60);
}

#[test]
fn limits_leave_files_out_and_the_map_says_so() {
    let repo = many_files(5);
    write(repo.path(), &[("notes.md", "# notes\n")]);
    std::fs::write(
        repo.path().join("logo.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
    )
    .unwrap();
    std::fs::write(repo.path().join("big.rs"), "// x\n".repeat(100)).unwrap();
    let limits = Limits {
        max_files: 6,
        max_file_bytes: 300,
        ..Limits::default()
    };
    let map = RepoMap::build(repo.path(), &limits).unwrap();
    let reasons: Vec<(&str, LeftOutReason)> = map
        .left_out()
        .iter()
        .map(|f| (f.path.as_str(), f.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("big.rs", LeftOutReason::TooLarge),
            ("logo.png", LeftOutReason::Binary),
            ("notes.md", LeftOutReason::OverFileLimit),
        ]
    );
    // Source files win the limited places, then the shallowest other files by path.
    let mapped: Vec<&str> = map.files().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(mapped.len(), 5, "{mapped:?}");
    assert!(
        mapped.iter().all(|p| p.starts_with("src/module_")),
        "{mapped:?}"
    );
    let text = map.render(10_000);
    assert!(
        text.contains("Left out: 1 over the size cap, 1 binary, 1 over the file limit.\n"),
        "{text}"
    );
}

#[test]
fn odd_ignore_files_and_fifos_are_never_opened() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("ignore-all"), "*\n").unwrap();
    let repo = many_files(2);
    write(repo.path(), &[("sub/kept.rs", "pub fn kept() {}\n")]);
    std::os::unix::fs::symlink(
        outside.path().join("ignore-all"),
        repo.path().join("sub/.gitignore"),
    )
    .unwrap();
    let status = Command::new("mkfifo")
        .arg(repo.path().join("pipe.rs"))
        .status()
        .unwrap();
    assert!(status.success());
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    let left_out: Vec<(&str, LeftOutReason)> = map
        .left_out()
        .iter()
        .map(|f| (f.path.as_str(), f.reason))
        .collect();
    assert_eq!(
        left_out,
        [
            ("pipe.rs", LeftOutReason::Unreadable),
            ("sub/.gitignore", LeftOutReason::Unreadable),
        ]
    );
    assert_eq!(
        map.files().len(),
        2,
        "the directory with the odd ignore file is skipped"
    );

    // At the root such a file means no ignore rules, not no map.
    std::fs::remove_file(repo.path().join("pipe.rs")).unwrap();
    write(repo.path(), &[("target/built.rs", "pub fn built() {}\n")]);
    std::os::unix::fs::symlink(
        outside.path().join("ignore-all"),
        repo.path().join(".gitignore"),
    )
    .unwrap();
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    assert!(map.file("target/built.rs").is_some());
    assert!(map.left_out().iter().any(|f| f.path == ".gitignore"));
}

#[test]
fn a_file_past_its_parse_time_is_marked_incomplete() {
    let repo = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..4_000 {
        text.push_str(&format!("fn f{i}() {{ g(1, 2, 3); }}\n"));
    }
    write(repo.path(), &[("huge.rs", &text)]);
    let limits = Limits {
        parse_timeout: std::time::Duration::ZERO,
        ..Limits::default()
    };
    let map = RepoMap::build(repo.path(), &limits).unwrap();
    let file = map.file("huge.rs").unwrap();
    assert!(file.incomplete);
    assert!(map.render(10_000).contains("huge.rs (parse cut short"));
    let whole = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    assert_eq!(
        whole.file("huge.rs").unwrap().symbols.len(),
        500,
        "capped per file"
    );
}

#[test]
fn maps_are_cached_per_commit_and_a_corrupt_file_is_rebuilt() {
    let repo = rust_repo();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = RepoMapCache::new(Limits::default(), Some(cache_dir.path().to_path_buf()));
    let first = cache.for_commit(repo.path(), COMMIT).unwrap();
    assert_eq!(first.commit.as_deref(), Some(COMMIT));
    assert!(
        first
            .render(1_000)
            .starts_with("Repository map at 0123456789ab: ")
    );
    let again = cache.for_commit(repo.path(), COMMIT).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second call is answered from memory"
    );

    // The tree changes (it cannot at one commit, which is the point): a fresh cache over the
    // same directory answers from disk, so it does not see the change.
    write(
        repo.path(),
        &[("src/late.rs", "pub fn arrived_late() {}\n")],
    );
    let from_disk = RepoMapCache::new(Limits::default(), Some(cache_dir.path().to_path_buf()))
        .for_commit(repo.path(), COMMIT)
        .unwrap();
    assert_eq!(*from_disk, *first);

    let files: Vec<_> = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one file, no temp files left: {files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&files[0], &bytes).unwrap();

    let rebuilt = RepoMapCache::new(Limits::default(), Some(cache_dir.path().to_path_buf()))
        .for_commit(repo.path(), COMMIT)
        .unwrap();
    assert!(
        rebuilt.file("src/late.rs").is_some(),
        "rebuilt from the tree"
    );
    let reread = RepoMapCache::new(Limits::default(), Some(cache_dir.path().to_path_buf()))
        .for_commit(repo.path(), COMMIT)
        .unwrap();
    assert_eq!(
        *reread, *rebuilt,
        "the rebuilt map replaced the corrupt file"
    );

    let err = cache.for_commit(repo.path(), "HEAD").unwrap_err();
    assert!(err.to_string().contains("40 or 64"), "{err}");
}

#[test]
fn the_memory_cache_is_bounded() {
    let repo = many_files(3);
    let cache = RepoMapCache::new(Limits::default(), None).with_memory_entries(2);
    let commit = |c: char| c.to_string().repeat(40);
    let a = cache.for_commit(repo.path(), &commit('a')).unwrap();
    cache.for_commit(repo.path(), &commit('b')).unwrap();
    assert!(Arc::ptr_eq(
        &a,
        &cache.for_commit(repo.path(), &commit('a')).unwrap()
    ));
    cache.for_commit(repo.path(), &commit('c')).unwrap();
    // 'b' was the least recently used and went; 'a' stayed.
    assert!(Arc::ptr_eq(
        &a,
        &cache.for_commit(repo.path(), &commit('a')).unwrap()
    ));
    let b = cache.for_commit(repo.path(), &commit('b')).unwrap();
    assert_eq!(b.commit.as_deref(), Some(commit('b').as_str()));
}

#[test]
fn scope_check_sorts_existing_new_and_invalid_paths() {
    let repo = rust_repo();
    std::fs::write(repo.path().join("logo.png"), b"\0\0binary").unwrap();
    let map = RepoMap::build(repo.path(), &Limits::default()).unwrap();
    let check = map.check_files_in_scope(&[
        "src/config.rs",
        "./src/a.rs",
        "logo.png",
        "src/config.rs",
        "src/new.rs",
        "src/net/http.rs",
        "docs/design.md",
        "Makefile",
        "/etc/passwd",
        "../outside.rs",
        "src/../secret.rs",
        "src/deep/er/file.rs",
        "src/config.rs/inner.rs",
        "src",
        "link.rs",
        "src/new.xyz",
        ".git/config",
        "",
    ]);
    assert_eq!(check.existing, ["src/config.rs", "src/a.rs", "logo.png"]);
    assert_eq!(
        check.new,
        [
            "src/new.rs",
            "src/net/http.rs",
            "docs/design.md",
            "Makefile"
        ]
    );
    let invalid: Vec<&str> = check.invalid.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        invalid,
        [
            "/etc/passwd",
            "../outside.rs",
            "src/../secret.rs",
            "src/deep/er/file.rs",
            "src/config.rs/inner.rs",
            "src",
            "link.rs",
            "src/new.xyz",
            ".git/config",
            "",
        ]
    );
    assert!(!check.is_valid());
    for (invalid, fragment) in check.invalid.iter().zip([
        "is absolute",
        "`..` component",
        "`..` component",
        "neither does its directory `src/deep/er`",
        "which is a file",
        "is a directory",
        "symbolic link",
        "extension",
        "inside `.git`",
        "is empty",
    ]) {
        assert!(
            invalid.message.contains(fragment),
            "{}: {}",
            invalid.path,
            invalid.message
        );
        assert!(
            invalid.message.contains("accepted: an existing file"),
            "{}",
            invalid.message
        );
    }
    assert!(
        map.check_files_in_scope(&["src/lonely.rs", "src/fresh.rs"])
            .is_valid()
    );
}
