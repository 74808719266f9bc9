//! `factory gym import-swebench`: SWE-bench instances (JSON Lines: `instance_id`, `repo`,
//! `base_commit`, `problem_statement`, `test_patch`, `FAIL_TO_PASS`, `PASS_TO_PASS`) turned
//! into gym scenarios over local checkouts. The problem statement is the requirement; the
//! test patch is kept from the model and applied only when the checks run the tests after
//! delivery, as SWE-bench's harness does. The gold `patch` is never read.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::GymError;

/// Lines of a JSONL file read at most.
const MAX_INSTANCES: usize = 10_000;
/// Bytes of one line at most (a problem statement with its test patch).
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// What the import needs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub file: PathBuf,
    /// Where the checkouts are: `<repos>/<owner>__<name>`, `<repos>/<owner>/<name>` or
    /// `<repos>/<name>`.
    pub repos: PathBuf,
    /// The gym directory written: `scenarios/<id>.toml`, `hidden/<id>/test.patch`.
    pub out: PathBuf,
    /// The test command; `{tests}` becomes the instance's test names, shell-quoted.
    pub test_command: String,
}

/// The default test command (SWE-bench's Python repositories mostly use pytest).
pub const DEFAULT_TEST_COMMAND: &str = "python3 -m pytest -q {tests}";

/// One instance, as SWE-bench writes it (other fields are ignored).
#[derive(Debug, Deserialize)]
struct Instance {
    instance_id: String,
    repo: String,
    base_commit: String,
    problem_statement: String,
    test_patch: String,
    #[serde(rename = "FAIL_TO_PASS")]
    fail_to_pass: Tests,
    #[serde(rename = "PASS_TO_PASS", default)]
    pass_to_pass: Tests,
}

/// A list of test names, or that list encoded as a JSON string (as the published datasets
/// store it).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Tests {
    List(Vec<String>),
    Encoded(String),
}

impl Default for Tests {
    fn default() -> Self {
        Tests::List(Vec::new())
    }
}

impl Tests {
    fn names(&self) -> Result<Vec<String>, String> {
        match self {
            Tests::List(l) => Ok(l.clone()),
            Tests::Encoded(text) if text.trim().is_empty() => Ok(Vec::new()),
            Tests::Encoded(text) => {
                serde_json::from_str(text).map_err(|e| format!("not a list of test names: {e}"))
            }
        }
    }
}

/// Imports every instance of `options.file`; returns the scenario names written. Any bad
/// instance stops the import before anything is written, with its line and what is wrong.
pub fn import(options: &ImportOptions) -> Result<Vec<String>, GymError> {
    if !options.test_command.contains("{tests}") {
        return Err(GymError::Usage(format!(
            "--test-command `{}`: it must contain {{tests}}, where the test names go",
            options.test_command
        )));
    }
    let file = std::fs::File::open(&options.file).map_err(GymError::io(&options.file))?;
    let mut planned = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = format!("{} line {}", options.file.display(), n + 1);
        let line = line.map_err(|e| GymError::Usage(format!("{at}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            return Err(GymError::Usage(format!(
                "{at}: {} bytes; an instance may have at most {MAX_LINE_BYTES}",
                line.len()
            )));
        }
        if planned.len() == MAX_INSTANCES {
            return Err(GymError::Usage(format!(
                "{at}: more than {MAX_INSTANCES} instances; split the file"
            )));
        }
        let instance: Instance = serde_json::from_str(&line)
            .map_err(|e| GymError::Usage(format!("{at}: not a SWE-bench instance: {e}")))?;
        planned.push(plan(&instance, options).map_err(|e| GymError::Usage(format!("{at}: {e}")))?);
    }
    if planned.is_empty() {
        return Err(GymError::Usage(format!(
            "{}: no instances",
            options.file.display()
        )));
    }
    let mut names: Vec<String> = Vec::new();
    for p in &planned {
        if names.contains(&p.name) {
            return Err(GymError::Usage(format!(
                "two instances are both named `{}`",
                p.name
            )));
        }
        names.push(p.name.clone());
    }
    write_all(&options.out, &planned)?;
    Ok(names)
}

/// One instance ready to write.
struct Planned {
    name: String,
    scenario: String,
    test_patch: String,
}

fn write_all(out: &Path, planned: &[Planned]) -> Result<(), GymError> {
    let scenarios = out.join("scenarios");
    std::fs::create_dir_all(&scenarios).map_err(GymError::io(&scenarios))?;
    for p in planned {
        let hidden = out.join("hidden").join(&p.name);
        std::fs::create_dir_all(&hidden).map_err(GymError::io(&hidden))?;
        let patch = hidden.join("test.patch");
        std::fs::write(&patch, &p.test_patch).map_err(GymError::io(&patch))?;
        let file = scenarios.join(format!("{}.toml", p.name));
        std::fs::write(&file, &p.scenario).map_err(GymError::io(&file))?;
    }
    Ok(())
}

/// The scenario of one instance, checked: its checkout exists and holds the base commit.
fn plan(instance: &Instance, options: &ImportOptions) -> Result<Planned, String> {
    let name = scenario_name(&instance.instance_id)?;
    let checkout = find_checkout(&options.repos, &instance.repo)?;
    let repo = git2::Repository::open(&checkout).map_err(|e| {
        format!(
            "{} is not a git checkout: {}",
            checkout.display(),
            e.message()
        )
    })?;
    let oid = git2::Oid::from_str(&instance.base_commit)
        .map_err(|_| format!("base_commit `{}` is not a commit id", instance.base_commit))?;
    repo.find_commit(oid).map_err(|_| {
        format!(
            "{} does not hold base_commit {} (fetch it first)",
            checkout.display(),
            instance.base_commit
        )
    })?;
    let fail_to_pass = instance
        .fail_to_pass
        .names()
        .map_err(|e| format!("FAIL_TO_PASS: {e}"))?;
    let pass_to_pass = instance
        .pass_to_pass
        .names()
        .map_err(|e| format!("PASS_TO_PASS: {e}"))?;
    if fail_to_pass.is_empty() {
        return Err("FAIL_TO_PASS is empty: nothing would show the issue resolved".into());
    }
    if instance.problem_statement.trim().is_empty() {
        return Err("problem_statement is empty".into());
    }
    git2::Diff::from_buffer(instance.test_patch.as_bytes())
        .map_err(|e| format!("test_patch is not a patch: {}", e.message()))?;
    let command = |tests: &[String]| -> Result<String, String> {
        let quoted: Result<Vec<String>, _> = tests
            .iter()
            .map(|t| shlex::try_quote(t).map(|q| q.into_owned()))
            .collect();
        let quoted = quoted.map_err(|e| format!("a test name cannot be quoted: {e}"))?;
        Ok(options.test_command.replace("{tests}", &quoted.join(" ")))
    };
    let mut checks = vec![check("FAIL_TO_PASS tests pass", &command(&fail_to_pass)?)];
    if !pass_to_pass.is_empty() {
        checks.push(check(
            "PASS_TO_PASS tests still pass",
            &command(&pass_to_pass)?,
        ));
    }
    let mut table = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_string());
    table.insert("name".into(), s(&name));
    table.insert(
        "description".into(),
        s(&format!(
            "SWE-bench instance {} ({} at {})",
            instance.instance_id,
            instance.repo,
            &instance.base_commit[..instance.base_commit.len().min(12)]
        )),
    );
    table.insert("requirement".into(), s(&instance.problem_statement));
    table.insert("unverified".into(), toml::Value::Boolean(true));
    let mut repository = toml::Table::new();
    repository.insert("path".into(), s(&checkout.display().to_string()));
    repository.insert("commit".into(), s(&instance.base_commit));
    repository.insert("hidden".into(), s(&format!("hidden/{name}")));
    table.insert("repository".into(), toml::Value::Table(repository));
    let mut limits = toml::Table::new();
    limits.insert("wall_secs".into(), toml::Value::Integer(3600));
    table.insert("limits".into(), toml::Value::Table(limits));
    table.insert(
        "checks".into(),
        toml::Value::Array(checks.into_iter().map(toml::Value::Table).collect()),
    );
    let scenario = format!(
        "# Imported from SWE-bench by `factory gym import-swebench`.\n{}",
        toml::to_string(&table).map_err(|e| e.to_string())?
    );
    Ok(Planned {
        name,
        scenario,
        test_patch: instance.test_patch.clone(),
    })
}

fn check(name: &str, run: &str) -> toml::Table {
    let mut t = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_string());
    t.insert("name".into(), s(name));
    t.insert("kind".into(), s("command"));
    t.insert("run".into(), s(run));
    t.insert("patch".into(), s("test.patch"));
    t.insert("offline".into(), toml::Value::Boolean(false));
    t
}

/// A scenario name from an instance id (`django__django-11099` stays as it is; other
/// characters become `-`).
fn scenario_name(id: &str) -> Result<String, String> {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "instance_id `{id}`: give 1–64 characters to name its scenario"
        ));
    }
    Ok(name)
}

/// The checkout of `owner/name` under `repos`.
fn find_checkout(repos: &Path, repo: &str) -> Result<PathBuf, String> {
    let (owner, name) = repo
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| format!("repo `{repo}`: expected owner/name"))?;
    if [owner, name].iter().any(|p| *p == "." || *p == "..") {
        return Err(format!("repo `{repo}`: expected owner/name"));
    }
    let candidates = [
        repos.join(format!("{owner}__{name}")),
        repos.join(owner).join(name),
        repos.join(name),
    ];
    candidates
        .iter()
        .find(|c| c.join(".git").exists())
        .map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.clone()))
        .ok_or_else(|| {
            format!(
                "no checkout of {repo} under {} (looked for {})",
                repos.display(),
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}
