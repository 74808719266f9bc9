//! The files a work order names, shown to the engineer in full in its first prompt, as they are
//! at the base: a model that never calls a tool can still make an exact `replace`, and a
//! `write` never overwrites a file the model has not read.
//!
//! The files share a byte budget. While they fit, each is shown whole; otherwise the smaller
//! ones stay whole and the largest are cut (each to an equal share of what is left), with a
//! note saying how much is shown. A file that does not exist is listed as new; one that cannot
//! be read safely (a symlink on the way, not a regular file, not UTF-8, over the cap) is named
//! with the reason and never read.

use std::path::Path;

use crate::delivery::repo_files;

/// Largest file read for the prompt at all; a larger one is named, not shown.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Most files shown; the rest are named.
const MAX_FILES: usize = 40;

/// One file in scope, as read.
enum Found {
    Text(String),
    New,
    Unreadable(String),
}

/// The "Files in scope" section for `files` under `root`, within `budget` bytes of file text.
pub(super) fn files_in_scope(root: &Path, files: &[String], budget: usize) -> String {
    if files.is_empty() {
        return String::new();
    }
    let found: Vec<(&str, Found)> = files
        .iter()
        .take(MAX_FILES)
        .map(|f| (f.as_str(), read(root, f)))
        .collect();
    let shares = shares(
        &found
            .iter()
            .map(|(_, f)| match f {
                Found::Text(t) => t.len(),
                _ => 0,
            })
            .collect::<Vec<_>>(),
        budget,
    );
    let mut out = String::from(
        "\n\n# Files in scope, as they are at the base\n\nThe exact text is below: a `replace` \
         must quote it exactly.",
    );
    for ((path, found), share) in found.iter().zip(shares) {
        match found {
            Found::New => out.push_str(&format!("\n\n## {path} (does not exist yet)")),
            Found::Unreadable(why) => out.push_str(&format!("\n\n## {path} (not shown: {why})")),
            Found::Text(text) => {
                let shown = cut_at_char(text, share);
                let fence = fence_for(shown);
                out.push_str(&format!(
                    "\n\n## {path} ({} bytes)\n\n{fence}\n{shown}{}{fence}",
                    text.len(),
                    if shown.ends_with('\n') { "" } else { "\n" },
                ));
                if shown.len() < text.len() {
                    out.push_str(&format!(
                        "\n(cut: the first {} of {} bytes are shown, to fit the prompt)",
                        shown.len(),
                        text.len()
                    ));
                }
            }
        }
    }
    if files.len() > MAX_FILES {
        out.push_str(&format!(
            "\n\n(and {} more files in scope, not shown: {})",
            files.len() - MAX_FILES,
            files[MAX_FILES..].join(", ")
        ));
    }
    out
}

fn read(root: &Path, path: &str) -> Found {
    let parts: Vec<&str> = path.split('/').collect();
    let plain = !path.is_empty()
        && !path.starts_with('/')
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != "..");
    if !plain {
        return Found::Unreadable(
            "not a plain path relative to the repository root (no `..`, no leading `/`)".into(),
        );
    }
    match repo_files::read(root, &parts, MAX_FILE_BYTES) {
        Ok(Some(text)) => Found::Text(text),
        Ok(None) => Found::New,
        Err(e) => Found::Unreadable(e.to_string()),
    }
}

/// Bytes shown of each file: all of every file when they fit; otherwise the smallest first,
/// each given at most an equal share of what is left, so small files stay whole.
fn shares(sizes: &[usize], budget: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut left = budget;
    let mut out = vec![0; sizes.len()];
    let texts = order.iter().filter(|&&i| sizes[i] > 0).count();
    for (n, &i) in order.iter().filter(|&&i| sizes[i] > 0).enumerate() {
        let share = left / (texts - n);
        out[i] = sizes[i].min(share);
        left -= out[i];
    }
    out
}

/// The longest prefix of `text` of at most `max` bytes ending on a character boundary.
fn cut_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A code fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_stay_whole_and_the_largest_is_cut() {
        assert_eq!(shares(&[10, 20, 30], 100), vec![10, 20, 30]);
        // 60 bytes for three: 10 whole, then 25 each for the other two.
        assert_eq!(shares(&[10, 200, 300], 60), vec![10, 25, 25]);
        assert_eq!(shares(&[0, 50], 10), vec![0, 10]);
        assert!(shares(&[7, 9, 1000, 3], 64).iter().sum::<usize>() <= 64);
    }

    #[test]
    fn files_are_shown_exactly_new_ones_named_and_unsafe_ones_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/lib.rs"), "pub const N: u32 = 7;\n").unwrap();
        std::fs::write(root.join("big.txt"), "x".repeat(5_000)).unwrap();
        std::fs::write(root.join("ticks.md"), "```rust\nfn f() {}\n```\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("leak")).unwrap();
        let files: Vec<String> = ["src/lib.rs", "src/new.rs", "big.txt", "ticks.md", "leak"]
            .map(String::from)
            .to_vec();
        let text = files_in_scope(root, &files, 1_000);
        assert!(text.contains("## src/lib.rs (22 bytes)\n\n```\npub const N: u32 = 7;\n```"));
        assert!(text.contains("## src/new.rs (does not exist yet)"));
        assert!(text.contains("(cut: the first "), "{text}");
        assert!(text.contains("of 5000 bytes are shown"), "{text}");
        assert!(text.contains("````\n```rust"), "a longer fence: {text}");
        assert!(text.contains("## leak (not shown:"), "{text}");
        assert!(!text.contains("root:"), "the symlink was not followed");
        for bad in ["../etc/passwd", "/etc/passwd", "src/../../x"] {
            let text = files_in_scope(root, &[bad.to_string()], 1_000);
            assert!(text.contains("not a plain path"), "{bad}: {text}");
        }
        assert_eq!(files_in_scope(root, &[], 1_000), "");
    }
}
