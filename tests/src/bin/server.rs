//! The `gatehouse` server, built inside the test package so that tests can
//! start it as a child process (`CARGO_BIN_EXE_gatehouse-it-server`) and
//! kill it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    api::server::exit_code(api::server::main_with(api::config::Cli::parse()))
}
