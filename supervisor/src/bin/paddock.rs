//! paddock: the client of paddockd (one request per run; see `paddock --help`).

use std::process::ExitCode;

use clap::Parser;

use paddock_supervisor::client::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match client::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("paddock: {e}");
            ExitCode::from(client::exit::ERROR)
        }
    }
}
