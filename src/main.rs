//! The `soket` daemon: flags to [`Config`], logging, signals, and the reactor.

use std::process::ExitCode;

use clap::Parser;
use log::{error, info};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use soket::{Config, Server};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = Config::parse();
    let server = match Server::bind(&config) {
        Ok(server) => server,
        Err(e) => {
            error!("cannot serve on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    // Scripts and tests that pass port 0 learn the real port from this line.
    println!("soket listening on {}", server.local_addr());

    let shutdown = server.shutdown_handle();
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            seen += 1;
            if seen == 1 {
                info!("signal {signal}: shutting down gracefully");
                shutdown.shutdown();
            } else {
                // A second signal means the operator will not wait.
                error!("signal {signal} again: exiting now");
                std::process::exit(1);
            }
        }
    });

    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("reactor failed: {e}");
            ExitCode::FAILURE
        }
    }
}
