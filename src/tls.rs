//! The TLS server configuration: a certificate chain and its private key,
//! read from PEM files at start-up and again on each reload (SIGHUP). The
//! byte stream itself is [`crate::conn::TlsStream`], under the connection.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::ring;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocols soket offers: HTTP/1.1 carries every protocol behind
/// TLS (a WebSocket upgrade, Socket.IO, SockJS); raw protocols (legacy
/// lines, STOMP) offer none, which is accepted too.
const ALPN: &[&[u8]] = &[b"http/1.1"];

/// Reads `cert` (a PEM chain, leaf first) and `key` (a PEM private key,
/// PKCS#8, PKCS#1 or SEC1) into a server configuration with the `ring`
/// provider. The error names the file at fault and says why.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("--tls-cert {}: no PEM certificate in the file", cert.display()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    // AES-128-GCM first, chosen over the client's order: with AES-NI it
    // costs about two thirds of AES-256-GCM per byte, at a strength no
    // attack on a chat session comes near.
    let mut provider = ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| format!("--tls-cert {} with --tls-key {}: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.ignore_client_order = true;
    // Resumption tickets would cost a ticketer per config and bytes per
    // handshake; a reconnecting client does a full handshake (about a
    // millisecond of CPU), which a chat daemon's reconnect rate affords.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let missing = Path::new("/nonexistent/soket-cert.pem");
        let error = load_server_config(missing, missing).unwrap_err();
        assert!(error.contains("--tls-cert /nonexistent/soket-cert.pem"), "{error}");
    }
}
