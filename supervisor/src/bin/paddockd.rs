//! paddockd: the Paddock daemon. This build: `run` and `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use paddock_supervisor::{result_json, run};

#[derive(Debug, Parser)]
#[command(
    name = "paddockd",
    version,
    about = "Run untrusted functions in Linux sandboxes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one command in the sandbox a policy describes; print one JSON result.
    Run {
        /// The policy file (its stem is the function name).
        #[arg(long)]
        policy: PathBuf,
        /// A file whose bytes are the function's input (stdin, or $INPUT_FILE); `-` reads our stdin.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Daemon configuration (default /etc/paddock/paddockd.toml, or the embedded default).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The command, replacing the policy's.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Validate policy files (default: the configured functions directory).
    Check {
        /// Daemon configuration (default /etc/paddock/paddockd.toml, or the embedded default).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Policy files or directories.
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            policy,
            input,
            config,
            command,
        } => {
            let req = run::RunRequest {
                policy,
                input,
                config,
                command,
            };
            match run::run(&req) {
                Ok(report) => {
                    // A closed stdout (`| head`) is the reader's choice, not our failure.
                    let line = format!("{}\n", result_json::to_json(&report));
                    let _ = std::io::Write::write_all(&mut std::io::stdout(), line.as_bytes());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("paddockd run: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Check { config, files } => paddock_supervisor::check::main(config, files),
    }
}
