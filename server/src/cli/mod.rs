//! The `factory` command line: argument parsing (clap, with `FACTORY_*` environment
//! equivalents) and one function per subcommand. Exit codes are in [`Exit`].

mod approvals;
mod audit;
mod gym;
mod mcp;
mod memory;
pub mod models;
mod project;
mod run;
mod serve;
mod teams;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use token::TokenCommand;

use crate::config::default_data_dir;
use crate::store::{Store, StoreError};

/// Factory turns requirements into reviewed artifacts and tested code, with humans in control.
#[derive(Debug, Parser)]
#[command(name = "factory", version)]
#[command(after_help = "With no subcommand, `factory` runs `serve`.\n\n\
Exit codes: 0 success; 1 failure; 2 invalid usage; 3 data directory or database unusable \
(not writable, not a database, or written by a newer Factory); 4 audit found a broken chain.")]
pub struct Cli {
    /// Directory holding factory.db and everything Factory stores.
    #[arg(long, global = true, env = "FACTORY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Gateway configuration file (default: factory.toml in the data directory, if present).
    #[arg(long, global = true, env = "FACTORY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server and dashboard (the default).
    Serve(ServeArgs),
    /// Create the database or bring it to this build's schema, then exit.
    Migrate,
    /// Check or rebuild what is derived from the event log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Create, list and revoke tokens (admin, operator or viewer; optionally limited to
    /// projects).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show model aliases, their fallback chains and the providers behind them (no secrets).
    Models {
        #[command(subcommand)]
        action: Option<ModelsCommand>,
    },
    /// Run a requirement through a pipeline, headless, with live progress. Exit 0 when the run
    /// succeeds, 1 when it fails or is canceled (Ctrl-C cancels), 2 when it waits for a person.
    Run {
        /// The requirement, in plain words.
        requirement: String,
        /// The project's directory (a git repository; its .factory/ may override teams and
        /// add pipelines).
        #[arg(long, value_name = "PATH")]
        project: Option<PathBuf>,
        /// Pipeline name: `default` (5 stages) or `full` (all 17 teams), or the project's own.
        #[arg(long, value_name = "NAME")]
        pipeline: Option<String>,
        /// Print the finished run as JSON on stdout instead of the summary.
        #[arg(long)]
        json: bool,
        /// Decide plan and review approvals automatically (recorded as automatic, with this
        /// policy); other approvals still wait for a person.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Register and list projects (repositories Factory may deliver into).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// List and decide approvals (decisions waiting for a person).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// List the team catalogue (with a project's overrides when --project is given).
    Teams {
        #[arg(long, value_name = "PATH")]
        project: Option<PathBuf>,
    },
    /// Search memory.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Scenario evaluation of the whole factory: run scenarios, check and report them.
    #[command(subcommand)]
    Gym(gym::GymCommand),
    /// Serve the Model Context Protocol on stdin/stdout for an agent on this machine (Claude
    /// Desktop or Code, an IDE), as the local operator; logs go to stderr. Over HTTP the
    /// running server offers the same at /mcp (see docs/mcp.md).
    Mcp,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Check and register a repository.
    Add {
        path: PathBuf,
        /// Name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// The `origin` remote must be this URL.
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        /// `owner/repo` for pull requests.
        #[arg(long, value_name = "OWNER/REPO")]
        github: Option<String>,
        /// A gate command (repeatable), run in the sandbox before a change is applied.
        #[arg(long = "gate", value_name = "CMD")]
        gates: Vec<String>,
        /// Refuse a repository whose working tree has uncommitted changes.
        #[arg(long)]
        require_clean: bool,
        #[command(flatten)]
        policy: project::PolicyArgs,
    },
    /// List registered projects.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals with their options (and how to decide each).
    List {
        /// pending, decided or all.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Only this run's approvals.
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
    },
    /// Decide an approval: one of the options it offers.
    Decide {
        id: String,
        option: String,
        /// The answer, guidance or feedback (required by options that need words).
        #[arg(long)]
        text: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Search memory: BM25, fused with vector similarity when a local embedding model answers.
    Search {
        /// Words to look for.
        query: String,
        /// Only this bank (a team name, or factory-shared-world).
        #[arg(long)]
        bank: Option<String>,
        /// Only this project's items (its path as given to `run --project`).
        #[arg(long)]
        project: Option<String>,
        /// At most this many results (1–50).
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Send a tiny prompt to an alias (or `provider:model`) and print who answered, latency,
    /// tokens, cost and the model's capabilities.
    Test {
        /// An alias such as `factory/fast`, or `provider:model`.
        target: String,
    },
    /// Add a provider (recorded like a change in the dashboard's Settings; a running server on
    /// this data directory applies it within seconds).
    Add(models::AddArgs),
    /// Remove a provider, its stored key and its entries in every chain.
    Remove {
        /// The provider's name.
        name: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FACTORY_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Extra origin allowed to open the WebSocket (repeatable; comma-separated in the env var).
    #[arg(
        long = "allowed-origin",
        env = "FACTORY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allowed_origins: Vec<String>,
    /// Mark the session cookie Secure (when served behind HTTPS).
    #[arg(long, env = "FACTORY_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Directory of the compiled dashboard (found automatically when omitted).
    #[arg(long, env = "FACTORY_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and name the first broken link (exit 4 if there is one).
    Verify,
    /// Drop every projection and rebuild it by replaying the log.
    Rebuild,
}

/// Process exit statuses (documented in the README and in `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Failure = 1,
    Usage = 2,
    UnusableDatabase = 3,
    BrokenChain = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Exit {
    let data_dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let outcome = match cli.command {
        None => serve::run(data_dir, cli.config, cli.serve).await,
        Some(Command::Serve(args)) => serve::run(data_dir, cli.config, args).await,
        Some(Command::Migrate) => migrate(&data_dir).await,
        Some(Command::Audit(AuditCommand::Verify)) => audit::verify(&data_dir).await,
        Some(Command::Audit(AuditCommand::Rebuild)) => audit::rebuild(&data_dir).await,
        Some(Command::Token(command)) => token::run(&data_dir, command).await,
        Some(Command::Models { action }) => {
            let file = models::config_path(cli.config.as_deref(), &data_dir);
            match action {
                None => models::list(file.as_deref(), &data_dir)
                    .await
                    .map_err(|e| UsageError(e.to_string()).into()),
                Some(ModelsCommand::Test { target }) => {
                    models::test(file.as_deref(), &data_dir, &target).await
                }
                Some(ModelsCommand::Add(args)) => {
                    models::add(file.as_deref(), &data_dir, args).await
                }
                Some(ModelsCommand::Remove { name }) => {
                    models::remove(file.as_deref(), &data_dir, &name).await
                }
            }
        }
        Some(Command::Run {
            requirement,
            project,
            pipeline,
            json,
            auto_approve,
        }) => {
            let file = models::config_path(cli.config.as_deref(), &data_dir);
            let args = run::RunArgs {
                requirement,
                project,
                pipeline,
                json,
                auto_approve,
            };
            run::run(&data_dir, file.as_deref(), args).await
        }
        Some(Command::Teams { project }) => teams::list(project.as_deref()),
        Some(Command::Project(ProjectCommand::Add {
            path,
            name,
            remote,
            github,
            gates,
            require_clean,
            policy,
        })) => {
            let new = crate::delivery::project::NewProject {
                path: path.display().to_string(),
                name,
                remote,
                github,
                gates,
                require_clean,
                policy: policy.into_policy(),
            };
            project::add(&data_dir, new).await
        }
        Some(Command::Project(ProjectCommand::List)) => project::list(&data_dir).await,
        Some(Command::Approvals(ApprovalsCommand::List { status, run })) => {
            approvals::list(&data_dir, &status, run.as_deref()).await
        }
        Some(Command::Approvals(ApprovalsCommand::Decide { id, option, text })) => {
            approvals::decide(&data_dir, &id, &option, text).await
        }
        Some(Command::Memory(MemoryCommand::Search {
            query,
            bank,
            project,
            limit,
        })) => {
            let file = models::config_path(cli.config.as_deref(), &data_dir);
            memory::search(&data_dir, file.as_deref(), &query, bank, project, limit).await
        }
        Some(Command::Mcp) => {
            let file = models::config_path(cli.config.as_deref(), &data_dir);
            mcp::run(&data_dir, file.as_deref()).await
        }
        Some(Command::Gym(command)) => {
            let file = models::config_path(cli.config.as_deref(), &data_dir);
            gym::run(&data_dir, file.as_deref(), command).await
        }
    };
    match outcome {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("factory: {err:#}");
            exit_for(&err)
        }
    }
}

/// Invalid input from the user (configuration, arguments): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to its exit code.
fn exit_for(err: &anyhow::Error) -> Exit {
    let unusable = err.chain().any(|cause| {
        cause
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_unusable_database)
    });
    if unusable {
        Exit::UnusableDatabase
    } else if err.chain().any(|c| {
        c.is::<UsageError>()
            || matches!(
                c.downcast_ref::<crate::startup::StartupError>(),
                Some(crate::startup::StartupError::Config(_))
            )
    }) {
        Exit::Usage
    } else {
        Exit::Failure
    }
}

/// Opens the store (applying migrations) for a one-shot command.
async fn open_store(data_dir: &std::path::Path) -> anyhow::Result<Store> {
    Ok(Store::open(data_dir).await?)
}

async fn migrate(data_dir: &std::path::Path) -> anyhow::Result<Exit> {
    let store = open_store(data_dir).await?;
    println!(
        "database {} is at schema version {}",
        store.path().display(),
        crate::store::schema_version()
    );
    Ok(Exit::Success)
}
