//! paddockd: the Paddock daemon (`serve`, the default), plus `run` and `check`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::time::Duration;

use paddock_supervisor::{daemon, result_json, run};

#[derive(Debug, Parser)]
#[command(
    name = "paddockd",
    version,
    about = "Run untrusted functions in Linux sandboxes"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve invocations on the Unix socket (the default).
    Serve {
        /// Daemon configuration (default /etc/paddock/paddockd.toml, or the embedded default).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen here instead of the configured socket. A missing directory is
        /// created 0750 root:paddock (0700 root); an existing one is never
        /// chmod'ed or chown'ed, and is refused unless only root can write it
        /// and every directory above it (sticky ones such as /tmp allowed).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Read policies from here instead of the configured functions directory.
        #[arg(long)]
        functions: Option<PathBuf>,
        /// Keep deployed functions here instead of the configured state directory.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// On SIGTERM, let running invocations finish for this long before killing them.
        #[arg(long, default_value_t = 10_000)]
        drain_timeout_ms: u64,
        /// Close a connection quiet for this long with nothing pending, or
        /// whose request line is unfinished for this long.
        #[arg(long, default_value_t = 30_000)]
        idle_timeout_ms: u64,
        /// Close a connection that takes none of its answers for this long.
        #[arg(long, default_value_t = 30_000)]
        write_timeout_ms: u64,
    },
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

/// Bad usage: one line on stderr (clap's own text is several, with the
/// usage block) and exit status 2. `--help` and `--version` print as usual.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    // clap's message is its text up to the first blank line, minus "error: ".
    let text = e.to_string();
    let message = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let command = match std::env::args().nth(1).as_deref() {
        Some(sub @ ("run" | "check" | "serve")) => format!("paddockd {sub}"),
        _ => "paddockd".to_owned(),
    };
    eprintln!("{command}: {message} (try '{command} --help')");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let command = cli.command.unwrap_or(Command::Serve {
        config: None,
        socket: None,
        functions: None,
        state_dir: None,
        drain_timeout_ms: 10_000,
        idle_timeout_ms: 30_000,
        write_timeout_ms: 30_000,
    });
    match command {
        Command::Serve {
            config,
            socket,
            functions,
            state_dir,
            drain_timeout_ms,
            idle_timeout_ms,
            write_timeout_ms,
        } => {
            let opts = daemon::ServeOptions {
                config,
                socket,
                functions,
                state_dir,
                drain_timeout: Duration::from_millis(drain_timeout_ms),
                idle_timeout: Duration::from_millis(idle_timeout_ms),
                write_timeout: Duration::from_millis(write_timeout_ms),
            };
            match daemon::serve(opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("paddockd: {e}");
                    ExitCode::from(1)
                }
            }
        }
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
                    let line = format!("{}\n", result_json::to_json(report));
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
