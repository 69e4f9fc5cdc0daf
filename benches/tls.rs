//! The server's TLS work per echoed 64 KiB WebSocket message (docs/PERFORMANCE.md, issue 10):
//! what soket's TLS layer asks of rustls (decrypt the message's four records, take the plaintext
//! out, encrypt the 64 KiB answer) beside the AES-128-GCM alone over the same bytes, the floor
//! no TLS layer on this provider and machine can go under. Everything runs in memory: the
//! kernel's share, the same with or without TLS, is the load benchmark's to measure.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

const MESSAGE_BYTES: usize = 64 * 1024;
const RECORD_BYTES: usize = 16 * 1024;

/// soket's own server configuration (suite order included) from a fresh self-signed
/// certificate, and a rustls client that trusts it.
fn configs() -> (Arc<rustls::ServerConfig>, Arc<ClientConfig>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let dir = std::env::temp_dir().join(format!("soket-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("cert.pem written");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("key.pem written");
    let server = soket::tls::load_server_config(&cert, &key).expect("soket loads the certificate");
    let _ = std::fs::remove_dir_all(&dir);
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(generated.cert.der().to_vec())).expect("a root");
    let client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, Arc::new(client))
}

/// Runs the server over `incoming` until it waits for input; what it encodes is appended to
/// `to_client`, the plaintext it decrypts to `plaintext`. Returns the bytes consumed and
/// whether it may write application data.
fn pump_server(
    server: &mut UnbufferedServerConnection,
    incoming: &mut [u8],
    to_client: &mut Vec<u8>,
    plaintext: &mut Vec<u8>,
) -> (usize, bool) {
    let mut consumed = 0;
    loop {
        let UnbufferedStatus { discard, state } =
            server.process_tls_records(incoming.get_mut(consumed..).unwrap_or_default());
        consumed += discard;
        match state.expect("the in-memory session stays healthy") {
            ConnectionState::EncodeTlsData(mut encoder) => {
                let required = match encoder.encode(&mut []) {
                    Err(EncodeError::InsufficientSize(size)) => size.required_size,
                    _ => 0,
                };
                let at = to_client.len();
                to_client.resize(at + required, 0);
                let written = encoder.encode(&mut to_client[at..]).expect("room for the encoded message");
                to_client.truncate(at + written);
            }
            ConnectionState::TransmitTlsData(transmit) => transmit.done(),
            ConnectionState::ReadTraffic(mut records) => {
                while let Some(record) = records.next_record() {
                    let record = record.expect("a record the client encrypted");
                    consumed += record.discard;
                    plaintext.extend_from_slice(record.payload);
                }
            }
            ConnectionState::BlockedHandshake => return (consumed, false),
            ConnectionState::WriteTraffic(_) => return (consumed, true),
            other => panic!("unexpected TLS state {other:?}"),
        }
    }
}

/// A finished TLS 1.3 handshake between a rustls client and soket's unbuffered server.
fn connected() -> (ClientConnection, UnbufferedServerConnection) {
    let (server_config, client_config) = configs();
    let mut client = ClientConnection::new(client_config, ServerName::try_from("localhost").expect("a name"))
        .expect("a client session");
    let mut server = UnbufferedServerConnection::new(server_config).expect("a server session");
    let mut to_server = Vec::new();
    for _ in 0..16 {
        while client.wants_write() {
            client.write_tls(&mut to_server).expect("into memory");
        }
        let mut to_client = Vec::new();
        let (consumed, traffic) = pump_server(&mut server, &mut to_server, &mut to_client, &mut Vec::new());
        to_server.drain(..consumed);
        let mut reader = &to_client[..];
        while !reader.is_empty() {
            client.read_tls(&mut reader).expect("from memory");
            client.process_new_packets().expect("the server's flight");
        }
        if traffic && !client.is_handshaking() && !client.wants_write() {
            return (client, server);
        }
    }
    panic!("the handshake did not finish");
}

/// A TLS 1.3-style nonce: a direction and a record sequence number.
fn nonce(direction: u8, sequence: u64) -> Nonce {
    let mut bytes = [0; 12];
    bytes[0] = direction;
    bytes[4..].copy_from_slice(&sequence.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn echo_64kib(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls_echo_64KiB");
    group.throughput(Throughput::Bytes(MESSAGE_BYTES as u64));

    // The floor: AES-128-GCM sealing four 16 KiB records and opening four, nothing else.
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).expect("a key"));
    // Opened records and sealed answers count apart, as a connection's two directions do.
    let (mut opened_sequence, mut sealed_sequence) = (0u64, 0u64);
    let mut message = vec![0x5a; MESSAGE_BYTES];
    group.bench_function("aes128gcm_floor", |b| {
        b.iter_batched(
            || {
                // Four records to open, each behind its nonce, sealed outside the measurement.
                (0..MESSAGE_BYTES / RECORD_BYTES)
                    .map(|_| {
                        opened_sequence += 1;
                        let n = nonce(0, opened_sequence);
                        let mut record = n.as_ref().to_vec();
                        record.resize(12 + RECORD_BYTES, 0xa5);
                        let tag =
                            key.seal_in_place_separate_tag(n, Aad::from([0; 5]), &mut record[12..]).expect("sealed");
                        record.extend_from_slice(tag.as_ref());
                        record
                    })
                    .collect::<Vec<_>>()
            },
            |mut records| {
                for record in &mut records {
                    let (n, body) = record.split_at_mut(12);
                    let n = Nonce::try_assume_unique_for_key(n).expect("12 bytes");
                    black_box(key.open_in_place(n, Aad::from([0; 5]), body).expect("opened"));
                }
                for chunk in message.chunks_mut(RECORD_BYTES) {
                    sealed_sequence += 1;
                    let n = nonce(1, sealed_sequence);
                    black_box(key.seal_in_place_separate_tag(n, Aad::from([0; 5]), chunk).expect("sealed").as_ref());
                }
            },
            BatchSize::PerIteration,
        )
    });

    // What soket's TLS stream has rustls do for the same echo: the client's four records
    // decrypted and their plaintext taken out, the answer encrypted into one buffer.
    let (mut client, mut server) = connected();
    let payload = vec![0x3c; MESSAGE_BYTES];
    let mut plaintext = Vec::with_capacity(MESSAGE_BYTES);
    let mut sealed = vec![0; MESSAGE_BYTES + 1024];
    let mut to_client = Vec::new();
    group.bench_function("rustls_unbuffered_server", |b| {
        b.iter_batched(
            || {
                client.writer().write_all(&payload).expect("into the client");
                let mut records = Vec::with_capacity(MESSAGE_BYTES + 1024);
                while client.wants_write() {
                    client.write_tls(&mut records).expect("into memory");
                }
                records
            },
            |mut records| {
                plaintext.clear();
                let (consumed, traffic) = pump_server(&mut server, &mut records, &mut to_client, &mut plaintext);
                assert!(traffic && consumed == records.len() && plaintext.len() == MESSAGE_BYTES);
                let UnbufferedStatus { state, .. } = server.process_tls_records(&mut []);
                let Ok(ConnectionState::WriteTraffic(mut traffic)) = state else {
                    panic!("the server would not write");
                };
                black_box(traffic.encrypt(&plaintext, &mut sealed).expect("room for the answer"));
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, echo_64kib);
criterion_main!(benches);
