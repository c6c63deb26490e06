//! `gatehouse`: the Gatehouse server.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    api::server::exit_code(api::server::main_with(api::config::Cli::parse()))
}
