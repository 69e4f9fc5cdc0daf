use std::time::Instant;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

const NOW: u64 = 1_800_000_000;

fn verifier() -> Verifier {
    Verifier::hs256(b"secret", 8192, 5)
}

fn sign(claims: &Value) -> Vec<u8> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(b"secret"))
        .expect("encodes")
        .into_bytes()
}

#[test]
fn claims_are_read_and_checked_against_the_given_clock() {
    let v = verifier();
    let claims = v.verify(&sign(&json!({"sub": "cafe\u{301}", "exp": NOW + 10, "rooms": ["a-*"]})), NOW).unwrap();
    assert_eq!(claims.name, "caf\u{e9}");
    assert_eq!(claims.expires, NOW + 10);
    assert!(claims.rooms.unwrap()[0].matches("a-b"));
    // Leeway of 5 s on both sides, no more.
    assert!(v.verify(&sign(&json!({"sub": "a", "exp": NOW - 4})), NOW).is_ok());
    assert_eq!(v.verify(&sign(&json!({"sub": "a", "exp": NOW - 5})), NOW), Err(Refusal::Expired));
    assert_eq!(v.verify(&sign(&json!({"sub": "a", "exp": NOW + 60, "nbf": NOW + 6})), NOW), Err(Refusal::NotYetValid));
    assert_eq!(v.verify(&sign(&json!({"sub": "a"})), NOW), Err(Refusal::NoExpiry));
    assert_eq!(v.verify(&sign(&json!({"sub": "a b", "exp": NOW + 60})), NOW), Err(Refusal::BadClaims));
    assert_eq!(v.verify(&sign(&json!({"exp": NOW + 60})), NOW), Err(Refusal::BadClaims));
    assert_eq!(v.verify(&sign(&json!({"sub": "a", "exp": "soon"})), NOW), Err(Refusal::Malformed));
    assert_eq!(
        v.verify(&sign(&json!({"sub": "a", "exp": NOW + 60, "rooms": ["bad room"]})), NOW),
        Err(Refusal::BadClaims)
    );
    let many: Vec<String> = (0..=MAX_ROOM_PATTERNS).map(|i| format!("r{i}")).collect();
    let big = Verifier::hs256(b"secret", 1 << 20, 5);
    assert_eq!(big.verify(&sign(&json!({"sub": "a", "exp": NOW + 60, "rooms": many})), NOW), Err(Refusal::BadClaims));
}

#[test]
fn forged_and_oversized_tokens_are_refused() {
    let v = verifier();
    let other = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "a", "exp": NOW + 60}),
        &EncodingKey::from_secret(b"other"),
    )
    .unwrap();
    assert_eq!(v.verify(other.as_bytes(), NOW), Err(Refusal::BadSignature));
    // alg none: no signature, refused whatever the claims.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
    assert_eq!(v.verify(none.as_bytes(), NOW), Err(Refusal::Malformed));
    assert_eq!(v.verify(&vec![b'a'; 1 << 20], NOW), Err(Refusal::TooLong));
    assert_eq!(v.verify(b"", NOW), Err(Refusal::Malformed));
    assert_eq!(v.verify(b"...", NOW), Err(Refusal::Malformed));
    // A duplicate claim is not silently resolved either way.
    let head = "eyJhbGciOiJIUzI1NiJ9";
    let dup = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"a","sub":"b","exp":9999999999}"#,
    );
    assert!(v.verify(format!("{head}.{dup}.x").as_bytes(), NOW).is_err());
}

#[test]
fn ten_thousand_claims_cost_bounded_time() {
    // Even with the size limit raised far past the default, unknown claims
    // are skipped in one pass, not kept.
    let big = Verifier::hs256(b"secret", 1 << 20, 5);
    let mut claims: serde_json::Map<String, Value> = (0..10_000).map(|i| (format!("c{i}"), json!(i))).collect();
    claims.insert("sub".into(), json!("a"));
    claims.insert("exp".into(), json!(NOW + 60));
    let token = sign(&Value::Object(claims));
    let started = Instant::now();
    assert!(big.verify(&token, NOW).is_ok());
    assert!(started.elapsed().as_secs() < 2);
    assert_eq!(verifier().verify(&token, NOW), Err(Refusal::TooLong));
}

#[test]
fn room_patterns() {
    let p = |s: &str| RoomPattern::parse(s).unwrap();
    assert!(p("*").matches("anything"));
    assert!(p("team-*").matches("team-"));
    assert!(p("team-*").matches("team-blue"));
    assert!(!p("team-*").matches("teams"));
    assert!(p("*-ops").matches("eu-ops"));
    assert!(p("a*b*c").matches("aXXbYYc"));
    assert!(!p("a*b*c").matches("aXXbYY"));
    assert!(p("news").matches("news") && !p("news").matches("newsroom"));
    assert!(p("caf\u{e9}").matches("caf\u{e9}") && p("cafe\u{301}").matches("caf\u{e9}"));
    assert!(RoomPattern::parse("").is_none() && RoomPattern::parse("a b").is_none());
    // Many stars against a long room: still quick (no exponential backtracking).
    let stars = RoomPattern::parse(&"a*".repeat(30)).unwrap();
    assert!(!stars.matches(&"a".repeat(29)));
    assert!(stars.matches(&"a".repeat(64)));
}

#[test]
fn upgrade_tokens() {
    assert_eq!(token_of_upgrade(Some("name=a&token=x.y.z"), None).as_deref(), Some("x.y.z"));
    assert_eq!(token_of_upgrade(Some("token=x%2Ey"), None).as_deref(), Some("x.y"));
    assert_eq!(token_of_upgrade(Some("token=q"), Some(b"Bearer  h.e.d ")).as_deref(), Some("h.e.d"));
    assert_eq!(token_of_upgrade(None, Some(b"Basic abc")), None);
    assert_eq!(token_of_upgrade(Some("name=a"), None), None);
}

#[test]
fn an_exp_at_the_end_of_time_does_not_overflow() {
    let v = verifier();
    let claims = v.verify(&sign(&json!({"sub": "a", "exp": u64::MAX})), NOW).unwrap();
    assert_eq!(v.cutoff_ms(claims.expires), u64::MAX);
    assert_eq!(v.verify(&sign(&json!({"sub": "a", "exp": -1})), NOW), Err(Refusal::Malformed));
    assert_eq!(v.verify(&sign(&json!({"sub": "a", "exp": 1.5})), NOW), Err(Refusal::Malformed));
}

#[test]
fn es256_is_checked_by_ring_and_refuses_what_it_must() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    let verifier = Verifier::public_key(key.public_key_pem().as_bytes(), 8192, 0).expect("a P-256 public key loads");
    assert!(verifier.p256.is_some(), "a P-256 key in the usual form is checked by ring");
    let private = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("the private key");
    let now = 1_000_000;
    let good = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": "ec", "exp": now + 60, "rooms": ["a-*"]}),
        &private,
    )
    .expect("signs");
    let claims = verifier.verify(good.as_bytes(), now).expect("a good ES256 token");
    assert_eq!(claims.name, "ec");
    assert_eq!(verifier.verify(good.as_bytes(), now + 61), Err(Refusal::Expired));

    // One bit of the payload changed: the signature no longer matches.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":2000000000}"#);
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(verifier.verify(forged.as_bytes(), now), Err(Refusal::BadSignature));
    // Another algorithm named in the header, `none` among them, or a fourth part.
    for alg in ["HS256", "none", "ES384"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
        let token = format!("{header}.{}.{}", parts[1], parts[2]);
        assert_eq!(verifier.verify(token.as_bytes(), now), Err(Refusal::Malformed), "{alg}");
    }
    for junk in [format!("{good}.x"), parts[..2].join("."), "a.b.c".to_owned(), String::new()] {
        assert_eq!(verifier.verify(junk.as_bytes(), now), Err(Refusal::Malformed), "{junk}");
    }
}
