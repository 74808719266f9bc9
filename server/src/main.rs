//! The `factory` binary: parses the command line, sets up logging, runs the command and maps
//! the outcome to a documented exit code.

use std::process::ExitCode;

use clap::Parser;
use factory_server::cli::{self, Cli, Command};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    if !serving {
        // One-shot commands piped into `head` should end quietly like other Unix tools, not
        // panic on a closed stdout. (The server keeps Rust's default: a client that hangs up
        // must never kill it.)
        sigpipe::reset();
    }
    init_logging(if serving { "info" } else { "warn" });
    cli::run(cli).await.into()
}

/// Logs to stderr; `RUST_LOG` overrides the default level, `FACTORY_LOG_FORMAT=json` gives
/// one JSON object per line.
fn init_logging(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("FACTORY_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
