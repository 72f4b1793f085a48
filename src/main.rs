//! `ctower`: the industrial plant control tower.
//!
//! With no arguments it runs the demo (embedded broker, looping replay of the
//! recorded plants at 10x, the pipeline, the journal and the dashboard).
//! See `ctower --help` and the README. The application is the `ctower`
//! library; this is its command line.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match ctower::commands::dispatch(ctower::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes, plainly: no backtrace for a user.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
