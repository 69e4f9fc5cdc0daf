//! The `soket` daemon: flags to [`Config`], logging, signals, and the reactor.
//!
//! The library forbids unsafe code; the binary has one documented call, to
//! tune the allocator at start-up.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use log::{error, info};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use soket::config::ConfigError;
use soket::{Config, Server};

fn main() -> ExitCode {
    return_large_buffers_to_the_kernel();
    let mut config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Flags(e)) => e.exit(),
        Err(ConfigError::File(e)) => {
            soket::logging::init(soket::logging::LogFormat::Text);
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    soket::logging::init(config.log_format);
    if let Err(e) = config.load_files() {
        error!("{e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = config.validate() {
        error!("{e}");
        return ExitCode::from(2);
    }
    if let Some(verifier) = &config.token_verifier {
        info!(
            "event=tokens_on algorithm={:?} max_bytes={} legacy_anonymous={}",
            verifier.algorithm(),
            verifier.max_bytes(),
            config.legacy_anonymous
        );
    }
    let (files, bytes) = config.files.totals();
    if files > 0 {
        info!("serving {files} static files ({bytes} bytes) from memory");
    }
    let server = match Server::bind(&config) {
        Ok(server) => server,
        Err(e) => {
            error!("cannot serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Scripts and tests that pass port 0 learn the real port from this line
    // (the first address's comes first).
    for addr in server.local_addrs() {
        println!("soket listening on {addr}");
    }
    info!(
        "event=started version={} listen={} max_connections={} max_message={} max_line={} max_queued={} \
         ping_interval={:?} handshake_timeout={:?} echo={} allow_origin={} log_format={}",
        env!("CARGO_PKG_VERSION"),
        server.local_addr(),
        config.max_connections,
        config.max_message_bytes,
        config.max_line_bytes,
        config.max_queued_bytes,
        config.ping_interval,
        config.handshake_timeout,
        !config.no_echo,
        soket::logging::quote(&config.allow_origins.join(",")),
        format!("{:?}", config.log_format).to_lowercase(),
    );

    let shutdown = server.shutdown_handle();
    let reload = server.reload_handle();
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            error!("cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            if signal == SIGHUP {
                reload_files(&config, &reload);
                continue;
            }
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

/// Reads again what SIGHUP reloads (a renewed certificate, Redis's TLS
/// files, a rotated token key) and hands it to the reactor; a file that does not load leaves the
/// old one in use and the daemon serving.
fn reload_files(config: &soket::Config, handle: &soket::ReloadHandle) {
    let tls = config.tls_cert.is_some();
    let redis_tls = config.redis_tls.is_some();
    // An inline --token-secret has no file to read again.
    let token_key = config.token_secret_file.is_some() || config.token_public_key.is_some();
    if !tls && !redis_tls && !token_key {
        info!("SIGHUP: nothing to reload (no --tls-cert, rediss://, --token-secret-file or --token-public-key)");
    }
    if redis_tls {
        match config.load_redis_tls() {
            Ok(Some(client)) => handle.reload_redis_tls(client),
            Ok(None) => {}
            Err(e) => error!("event=redis_tls_reload_failed error={} (the old files stay)", soket::logging::quote(&e)),
        }
    }
    if tls {
        match config.load_tls() {
            Ok(Some(tls)) => {
                info!("SIGHUP: reloading the TLS certificate");
                handle.reload_tls(tls);
            }
            Ok(None) => {}
            Err(e) => error!("SIGHUP: TLS reload failed, the old certificate stays: {e}"),
        }
    }
    if token_key {
        match config.load_token_verifier() {
            Ok(Some(verifier)) => handle.reload_token_key(std::sync::Arc::new(verifier)),
            Ok(None) => {}
            Err(e) => error!("event=token_key_reload_failed error={} (the old key stays)", soket::logging::quote(&e)),
        }
    }
}

/// An idle daemon goes back to its idle size. glibc serves a large block
/// (a 16 MiB message being reassembled or echoed) with its own mapping and
/// unmaps it when freed, but then raises its mmap threshold (up to 32 MiB)
/// and its trim threshold with it: later blocks of that size come from the
/// heap and, once freed, stay resident, 30 to 50 MiB after a burst of big
/// messages. A fixed mmap threshold keeps every block over 256 KiB in a
/// mapping of its own; blocks that size are rare (a reassembly buffer is kept
/// up to 128 KiB, the read buffer and pooled write buffers are smaller), so
/// the extra mmap per large message costs little. Fixing it also fixes the
/// trim threshold, which at its 128 KiB default would return and take back
/// heap top on every mid-sized message: 4 MiB keeps that churn in the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_to_the_kernel() {
    const MMAP_THRESHOLD_BYTES: libc::c_int = 256 * 1024;
    const TRIM_THRESHOLD_BYTES: libc::c_int = 4 * 1024 * 1024;
    for (parameter, value, name) in [
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES, "M_MMAP_THRESHOLD"),
        (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES, "M_TRIM_THRESHOLD"),
    ] {
        // SAFETY: mallopt only sets an allocator parameter. It runs first
        // thing in main, before any other thread exists or any allocation is
        // in flight elsewhere; the parameters are documented ones and the
        // values are in their ranges.
        let accepted = unsafe { libc::mallopt(parameter, value) };
        if accepted == 0 {
            eprintln!("soket: mallopt({name}) refused; freed large buffers may stay resident");
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_to_the_kernel() {}
