//! Token verification per connect (docs/AUTH.md): HS256 and ES256 through
//! `Verifier::verify`, beside the plain connect's hub work (attach, hello,
//! detach) that every connect pays with or without a token.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use soket::auth::Verifier;
use soket::chat::{ChatConfig, Command, Dialect, Endpoint, Hub, Outbox, Request};
use soket::ids::ConnId;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn claims() -> serde_json::Value {
    serde_json::json!({"sub": "alice", "exp": now() + 3600, "rooms": ["team-*", "news"]})
}

fn verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_verify");
    let hs = Verifier::hs256(b"bench-secret", 8192, 5);
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(b"bench-secret"))
            .expect("signs");
    group.bench_function("hs256", |b| b.iter(|| black_box(hs.verify(black_box(token.as_bytes()), now()))));

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    let es = Verifier::public_key(key.public_key_pem().as_bytes(), 8192, 5).expect("an EC public key");
    let private = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("an EC private key");
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims(), &private).expect("signs");
    group.bench_function("es256", |b| b.iter(|| black_box(es.verify(black_box(token.as_bytes()), now()))));

    // The hub's side of any connect, for scale.
    let mut hub = Hub::new(ChatConfig::default());
    let mut out = Outbox::default();
    let mut slot = 0;
    group.bench_function("plain_connect_hub", |b| {
        b.iter(|| {
            slot += 1;
            let member = hub.attach(Endpoint::Conn(ConnId { slot, generation: 1 }), Dialect::Events, "/");
            hub.handle(member, Request::new(Command::Hello { name: "alice".into() }), &mut out);
            hub.detach(member, &mut out);
            out.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, verification);
criterion_main!(benches);
