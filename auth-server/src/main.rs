//! The `auth-server` binary: loads `.env`, parses the command line, and hands over to
//! [`auth_server::cli`]. Everything else lives in the library so that tests drive it directly.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Variables already in the environment win over `.env`; a missing file is fine.
    if let Err(err) = dotenvy::dotenv() {
        if !err.not_found() {
            eprintln!("error: cannot read .env: {err}");
            return ExitCode::from(2);
        }
    }
    auth_server::cli::run(auth_server::cli::Cli::parse())
}
