//! The `factory` binary: parses the command line, sets up logging, runs the command and maps
//! the outcome to a documented exit code.

use std::process::ExitCode;

use clap::Parser;
use factory_server::cli::{self, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    if !serving && !matches!(cli.command, Some(Command::Mcp)) {
        // One-shot commands piped into `head` should end quietly like other Unix tools, not
        // panic on a closed stdout. (The servers keep Rust's default: a client that hangs up
        // must never kill them — `factory mcp` stops its runs' drivers cleanly instead.)
        sigpipe::reset();
    }
    let telemetry = factory_server::telemetry::init(if serving { "info" } else { "warn" });
    let code = cli::run(cli).await.into();
    drop(telemetry);
    code
}
