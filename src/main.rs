//! The `hearth` binary: parse the command line, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = hearth::cli::Args::parse();
    hearth::cli::run(args)
}
