//! `factory gym run|list|import-swebench`: scenario evaluation of the whole factory.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{Exit, UsageError};
use crate::config::{EnvSnapshot, FactoryConfig};
use crate::gym::{self, GymError, GymOptions};

#[derive(Debug, Subcommand)]
pub enum GymCommand {
    /// Run scenarios as real runs, check them, write report.json and report.html, and record
    /// each attempt. Exit 1 when an attempt of a critical scenario fails.
    Run(GymArgs),
    /// List the scenarios (built-in and those of --dir / --project).
    List(GymArgs),
    /// Turn SWE-bench instances (JSON Lines) into scenarios over local checkouts; run them
    /// with `factory gym run --no-builtin --dir OUT`.
    ImportSwebench {
        /// The instances: one JSON object per line.
        file: PathBuf,
        /// Where the checkouts are (`<owner>__<name>`, `<owner>/<name>` or `<name>`).
        #[arg(long, value_name = "DIR")]
        repos: PathBuf,
        /// The gym directory to write (scenarios/, hidden/).
        #[arg(long, value_name = "DIR", default_value = "swebench-gym")]
        out: PathBuf,
        /// The test command; `{tests}` becomes the instance's test names.
        #[arg(long, value_name = "CMD", default_value = gym::swebench::DEFAULT_TEST_COMMAND)]
        test_command: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct GymArgs {
    /// Only scenarios whose name matches this glob (repeatable).
    #[arg(long = "scenario", value_name = "GLOB")]
    scenarios: Vec<String>,
    /// Replace an alias's chain for every scenario: ALIAS=provider:model,… (`*` for every
    /// alias; repeatable).
    #[arg(long = "model", value_name = "ALIAS=CHAIN")]
    models: Vec<String>,
    /// Attempts per scenario (pass@k and spread).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Where reports and each attempt's data go (default: <data>/gym/<time>).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// A gym directory (scenarios/*.toml, fixtures/<name>/) besides the built-in one
    /// (repeatable).
    #[arg(long = "dir", value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// A project whose .factory/gym/ holds scenarios.
    #[arg(long, value_name = "PATH")]
    project: Option<PathBuf>,
    /// Leave the built-in scenarios out.
    #[arg(long)]
    no_builtin: bool,
}

impl GymArgs {
    fn options(&self, data_dir: &Path) -> GymOptions {
        let mut dirs = self.dirs.clone();
        if let Some(project) = &self.project {
            dirs.push(project.join(".factory").join("gym"));
        }
        GymOptions {
            patterns: self.scenarios.clone(),
            dirs,
            no_builtin: self.no_builtin,
            repeat: self.repeat,
            jobs: self.jobs,
            report_dir: self
                .report
                .clone()
                .unwrap_or_else(|| gym::default_report_dir(data_dir)),
        }
    }
}

fn usage(e: GymError) -> anyhow::Error {
    match e {
        GymError::Store(e) => e.into(),
        other => UsageError(other.to_string()).into(),
    }
}

pub(super) async fn run(
    data_dir: &Path,
    config_file: Option<&Path>,
    command: GymCommand,
) -> anyhow::Result<Exit> {
    match command {
        GymCommand::ImportSwebench {
            file,
            repos,
            out,
            test_command,
        } => {
            let options = gym::swebench::ImportOptions {
                file,
                repos,
                out: out.clone(),
                test_command,
            };
            let names = gym::swebench::import(&options).map_err(usage)?;
            for name in &names {
                println!("{name}");
            }
            println!(
                "{} scenario(s) written to {}; run them with `factory gym run --no-builtin --dir {}` \
                 and a model (--model ALIAS=CHAIN)",
                names.len(),
                out.display(),
                out.display()
            );
            Ok(Exit::Success)
        }
        GymCommand::List(args) => {
            let scenarios = gym::select(&args.options(data_dir)).map_err(usage)?;
            for s in scenarios {
                println!(
                    "{:<28} {:<9} {}",
                    s.name,
                    if s.critical { "critical" } else { "" },
                    s.source
                );
            }
            Ok(Exit::Success)
        }
        GymCommand::Run(args) => {
            let options = args.options(data_dir);
            let scenarios = gym::select(&options).map_err(usage)?;
            let mut config = FactoryConfig::load(config_file, &EnvSnapshot::from_env())
                .and_then(|c| c.gateway.check_keys(super::serve::env_is_set).map(|()| c))
                .map_err(|e| UsageError(e.to_string()))?;
            gym::apply_models(&mut config, &args.models).map_err(usage)?;
            let history = super::open_store(data_dir).await?;
            eprintln!(
                "gym: {} scenario(s) × {} attempt(s), {} at once; reports in {}",
                scenarios.len(),
                options.repeat,
                options.jobs,
                options.report_dir.display()
            );
            let report = gym::run(scenarios, &options, &config, Some(&history), |r| {
                let failed: Vec<&str> = r.failures().map(|c| c.name.as_str()).collect();
                eprintln!(
                    "{} {} #{}: run {} in {:.1}s, {} call(s){}, ${:.4}{}",
                    if r.passed { "PASS" } else { "FAIL" },
                    r.scenario,
                    r.attempt,
                    r.run_status,
                    r.run_ms as f64 / 1000.0,
                    r.model_calls,
                    if r.offline {
                        " (offline templates)"
                    } else {
                        ""
                    },
                    r.cost_usd,
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!(" — failed: {}", failed.join("; "))
                    }
                );
                if !r.passed
                    && let Some(reason) = &r.reason
                {
                    eprintln!("     the run: {reason}");
                }
            })
            .await
            .map_err(usage)?;
            for changed in report
                .scenarios
                .iter()
                .flat_map(|s| &s.attempts)
                .filter_map(|a| a.changed.as_deref())
            {
                println!("{changed}");
            }
            let dir = std::fs::canonicalize(&options.report_dir)
                .unwrap_or_else(|_| options.report_dir.clone());
            println!(
                "{} of {} scenario(s) passed{}; report: {}",
                report.summary.passed,
                report.summary.scenarios,
                if report.critical_failed() {
                    format!(
                        "; critical failed: {}",
                        report.summary.critical_failed.join(", ")
                    )
                } else {
                    String::new()
                },
                dir.join("report.html").display()
            );
            Ok(if report.critical_failed() {
                Exit::Failure
            } else {
                Exit::Success
            })
        }
    }
}
