//! The `tracelink` binary: parses the command line and hands it to `app`.

mod app;
mod cli;
mod progress;

fn main() {
    let cli = <cli::Cli as clap::Parser>::parse();
    std::process::exit(app::main(cli));
}
