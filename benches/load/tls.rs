//! TLS for the `soket-tls` server: a self-signed certificate made once per run, and the client
//! configuration that trusts it, used by every engine while a `soket-tls` case runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

struct Made {
    cert: PathBuf,
    key: PathBuf,
    client: Arc<ClientConfig>,
}

static MADE: OnceLock<Result<Made, String>> = OnceLock::new();
/// The client configuration engines use now; `None` is plaintext.
static ACTIVE: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);

fn made() -> Result<&'static Made, String> {
    MADE.get_or_init(|| {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).map_err(|e| e.to_string())?;
        let dir = std::env::temp_dir().join(format!("soket-load-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).map_err(|e| e.to_string())?;
        std::fs::write(&key, generated.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(generated.cert.der().to_vec())).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Made { cert, key, client: Arc::new(client) })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The certificate and key files for the server.
pub fn server_files() -> Result<(PathBuf, PathBuf), String> {
    let made = made()?;
    Ok((made.cert.clone(), made.key.clone()))
}

/// Engines made from now on speak TLS (`on`) or plaintext.
pub fn use_tls(on: bool) -> Result<(), String> {
    let config = if on { Some(made()?.client.clone()) } else { None };
    *ACTIVE.lock().map_err(|_| "poisoned")? = config;
    Ok(())
}

pub fn active() -> Option<Arc<ClientConfig>> {
    ACTIVE.lock().ok().and_then(|c| c.clone())
}
