//! The `geosr` command line: parse the arguments, run the command, exit with its status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cli::process::setup();
    let cli = cli::Cli::parse();
    cli::exit::code(cli.run())
}
