//! `gatehouse`: the Gatehouse server.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    api::server::main_with(api::config::Cli::parse())?;
    Ok(())
}
