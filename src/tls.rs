//! The TLS configurations: the server's (a certificate chain and its private
//! key, read from PEM files at start-up and again on each reload, SIGHUP),
//! whose byte stream is [`crate::conn::TlsStream`] under the connection; and
//! the client's toward Redis (`rediss://`), whose stream is the cluster's.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
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
    let chain = load_certificates(cert, "--tls-cert")?;
    let private_key = load_key(key, "--tls-key")?;
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

/// The certificates of a PEM file, at least one; errors name `flag` and the file.
fn load_certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{flag} {}: no PEM certificate in the file", path.display()));
    }
    Ok(certificates)
}

fn load_key(path: &Path, flag: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// How a node checks Redis and shows itself over `rediss://`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisTlsFiles {
    /// PEM certificates to trust instead of the system's store.
    pub ca: Option<std::path::PathBuf>,
    /// A client certificate chain and its key, for a Redis that asks for one
    /// (`tls-auth-clients yes`, its own default).
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

/// The client configuration toward Redis, with the `ring` provider: the
/// roots of `files.ca`, or the system's trust store; a client certificate
/// when one is given. Every TLS version rustls offers by default; no ALPN
/// (Redis does not negotiate one).
pub fn load_redis_client_config(files: &RedisTlsFiles) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            for certificate in load_certificates(ca, "--redis-tls-ca")? {
                roots.add(certificate).map_err(|e| format!("--redis-tls-ca {}: {e}", ca.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            // Unreadable entries of the store are skipped as other TLS
            // clients skip them; an empty store is an error below.
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "rediss://: no trusted certificate in the system's store ({}); give --redis-tls-ca",
                    found.errors.first().map_or_else(|| "it is empty".to_string(), |e| e.to_string())
                ));
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certificates(cert, "--redis-tls-cert")?, load_key(key, "--redis-tls-key")?)
            .map_err(|e| format!("--redis-tls-cert {} with --redis-tls-key {}: {e}", cert.display(), key.display()))?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("--redis-tls-cert and --redis-tls-key go together".into()),
    };
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
