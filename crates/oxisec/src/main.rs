use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    oxisec::commands::dispatch(oxisec::cli::Cli::parse())
}
