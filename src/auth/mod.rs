//! Connection tokens (JWT, docs/AUTH.md): who a client is and which rooms
//! it may join, signed by the application that issues them.
//!
//! Sans-IO: token bytes and a clock value (seconds since the Unix epoch) go
//! in, [`Claims`] or a [`Refusal`] come out. The signature check is the
//! `jsonwebtoken` crate's, but for ES256, which `ring` checks (already the
//! TLS provider, and about 4 times faster than jsonwebtoken's pure-Rust
//! P-256, which matters when a connect flood brings forged tokens); the
//! algorithm is pinned to the one the configured key is for, so `alg: none`
//! or an HS256 token signed with a public key as its secret never verifies.
//! `exp` and `nbf` are checked here against the caller's clock, not the
//! crate's.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::Deserialize;

use crate::chat::{normalize_name, normalize_room};

/// Most entries of a `rooms` claim; a longer list is refused (the token is
/// already held to `--token-max-bytes`, this bounds the matching work).
pub const MAX_ROOM_PATTERNS: usize = 256;

/// Why a token was not accepted. Every variant is `unauthorized` on the
/// wire; the variant is for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than `--token-max-bytes`: refused before any parsing.
    TooLong,
    /// Not three base64url parts of JSON, an unknown or unexpected `alg`
    /// (`none` among them), or claims of the wrong shape.
    Malformed,
    /// The signature does not match the configured key.
    BadSignature,
    /// `exp` is absent.
    NoExpiry,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// `sub` breaks the name rules, or `rooms` holds a bad pattern or too many.
    BadClaims,
}

impl Refusal {
    /// A short reason for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::TooLong => "token too long",
            Refusal::Malformed => "malformed token",
            Refusal::BadSignature => "bad signature",
            Refusal::NoExpiry => "token without exp",
            Refusal::Expired => "token expired",
            Refusal::NotYetValid => "token not yet valid",
            Refusal::BadClaims => "bad claims",
        }
    }
}

/// What a verified token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// `sub`, in NFC: the only name the holder may take.
    pub name: String,
    /// `rooms`: the rooms the holder may join (`None`: any room).
    pub rooms: Option<Vec<RoomPattern>>,
    /// `exp`, seconds since the epoch.
    pub expires: u64,
}

/// One `rooms` entry: a room name, or one with `*` standing for any run of
/// characters (`team-*`, `*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPattern(String);

impl RoomPattern {
    /// A pattern from a claim: each part between `*`s is normalised like a
    /// room name (NFC), so `café` written either way matches. `None` when
    /// empty or holding characters a room cannot.
    pub fn parse(raw: &str) -> Option<RoomPattern> {
        if raw.is_empty() || raw.len() > 1024 {
            return None;
        }
        let mut pattern = String::with_capacity(raw.len());
        for (i, part) in raw.split('*').enumerate() {
            if i > 0 {
                pattern.push('*');
            }
            if part.is_empty() {
                continue;
            }
            // A part may start or end with `.` or `-` next to a `*`; only
            // the characters are checked, by wrapping them in letters.
            let checked = normalize_room(&format!("a{part}a"))?;
            pattern.push_str(checked.get(1..checked.len() - 1)?);
        }
        Some(RoomPattern(pattern))
    }

    /// Whether `room` (already normalised) matches: `*` is any run,
    /// everything else compares exactly. Greedy with one backtrack point,
    /// so linear in practice and never exponential.
    pub fn matches(&self, room: &str) -> bool {
        let (p, s) = (self.0.as_bytes(), room.as_bytes());
        let (mut pi, mut si) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, si));
                pi += 1;
            } else if pi < p.len() && p[pi] == s[si] {
                pi += 1;
                si += 1;
            } else if let Some((star_p, star_s)) = star {
                pi = star_p + 1;
                si = star_s + 1;
                star = Some((star_p, star_s + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&b| b == b'*')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key tokens are checked with, and the rules around it.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    /// ES256: the P-256 point `ring` checks signatures with.
    p256: Option<UnparsedPublicKey<Vec<u8>>>,
    max_bytes: usize,
    leeway: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .field("max_bytes", &self.max_bytes)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Verifier {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8], max_bytes: usize, leeway: u64) -> Verifier {
        Verifier::with(DecodingKey::from_secret(secret), Algorithm::HS256, max_bytes, leeway)
    }

    /// RS256 or ES256 (P-256), whichever public key `pem` holds.
    pub fn public_key(pem: &[u8], max_bytes: usize, leeway: u64) -> Result<Verifier, String> {
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            // Another curve would load and then verify no token at all.
            if !names_p256(pem) {
                return Err("an EC key on another curve than P-256: only ES256 is supported".into());
            }
            let mut verifier = Verifier::with(key, Algorithm::ES256, max_bytes, leeway);
            verifier.p256 = p256_point(pem).map(|point| UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point));
            return Ok(verifier);
        }
        match DecodingKey::from_rsa_pem(pem) {
            Ok(key) => Ok(Verifier::with(key, Algorithm::RS256, max_bytes, leeway)),
            Err(e) => Err(format!("not an EC (P-256) or RSA public key in PEM: {e}")),
        }
    }

    fn with(key: DecodingKey, alg: Algorithm, max_bytes: usize, leeway: u64) -> Verifier {
        let mut validation = Validation::new(alg);
        // Time is checked in `verify` against the caller's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Verifier { key, validation, p256: None, max_bytes, leeway }
    }

    /// The algorithm tokens must name.
    pub fn algorithm(&self) -> Algorithm {
        self.validation.algorithms.first().copied().unwrap_or(Algorithm::HS256)
    }

    /// `--token-max-bytes`.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// Checks `token` at `now` (seconds since the epoch). The size limit
    /// comes first; the claims are read into a fixed shape (unknown claims
    /// are skipped without being kept, duplicates refused).
    pub fn verify(&self, token: &[u8], now: u64) -> Result<Claims, Refusal> {
        if token.len() > self.max_bytes {
            return Err(Refusal::TooLong);
        }
        let wire = match &self.p256 {
            Some(key) => es256_claims(key, token)?,
            None => {
                let data = jsonwebtoken::decode::<Wire>(token, &self.key, &self.validation).map_err(|e| {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::InvalidSignature => Refusal::BadSignature,
                        _ => Refusal::Malformed,
                    }
                })?;
                data.claims
            }
        };
        let expires = wire.exp.ok_or(Refusal::NoExpiry)?;
        if expires.saturating_add(self.leeway) <= now {
            return Err(Refusal::Expired);
        }
        if wire.nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(Refusal::NotYetValid);
        }
        let name = wire.sub.as_deref().and_then(normalize_name).ok_or(Refusal::BadClaims)?;
        let rooms = match wire.rooms {
            None => None,
            Some(list) if list.len() > MAX_ROOM_PATTERNS => return Err(Refusal::BadClaims),
            Some(list) => Some(
                list.iter().map(|raw| RoomPattern::parse(raw)).collect::<Option<Vec<_>>>().ok_or(Refusal::BadClaims)?,
            ),
        };
        Ok(Claims { name, rooms, expires })
    }

    /// When a connection holding a token that expires at `expires` must
    /// end, in milliseconds since the epoch (the leeway included).
    pub fn cutoff_ms(&self, expires: u64) -> u64 {
        expires.saturating_add(self.leeway).saturating_mul(1000)
    }
}

/// The claims of an ES256 token whose signature `key` accepts: three
/// base64url parts, a header naming ES256, a 64-byte `r || s` signature
/// over the first two parts.
fn es256_claims(key: &UnparsedPublicKey<Vec<u8>>, token: &[u8]) -> Result<Wire, Refusal> {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header_json = URL_SAFE_NO_PAD.decode(header).map_err(|_| Refusal::Malformed)?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| Refusal::Malformed)?;
    if header.alg != "ES256" {
        return Err(Refusal::Malformed);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Refusal::Malformed)?;
    let signed = token.get(..signed_len(token)).ok_or(Refusal::Malformed)?;
    key.verify(signed, &signature).map_err(|_| Refusal::BadSignature)?;
    let claims = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Refusal::Malformed)?;
    serde_json::from_slice(&claims).map_err(|_| Refusal::Malformed)
}

/// The length of `header.payload`, the signed part of a token.
fn signed_len(token: &[u8]) -> usize {
    token.iter().rposition(|&b| b == b'.').unwrap_or(0)
}

/// The uncompressed P-256 point of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo),
/// when it has the usual 91-byte form; `None` leaves the key to jsonwebtoken.
fn p256_point(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::SubjectPublicKeyInfoDer;
    use rustls_pki_types::pem::PemObject;
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes, 0 unused bits) }.
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x06, 0x08, 0x2A, 0x86, 0x48,
        0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem).ok()?;
    let der: &[u8] = spki.as_ref();
    let point = der.strip_prefix(&PREFIX[..])?;
    (point.len() == 65 && point[0] == 0x04).then(|| point.to_vec())
}

/// Whether the PEM's key names the P-256 curve (OID 1.2.840.10045.3.1.7).
fn names_p256(pem: &[u8]) -> bool {
    const P256: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    let text = String::from_utf8_lossy(pem);
    let body: String = text.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .is_ok_and(|der| der.windows(P256.len()).any(|window| window == P256))
}

/// The claims soket reads. `exp` and `nbf` are integers (a fraction or a
/// string is a malformed token).
#[derive(Deserialize)]
struct Wire {
    sub: Option<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    rooms: Option<Vec<String>>,
}

/// The wall clock in milliseconds since the epoch: the one clock reading
/// token checks need (`exp` is wall-clock time, unlike every deadline).
pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The token of a WebSocket upgrade: `Authorization: Bearer TOKEN` first,
/// else the first `token` parameter of the query (percent-decoded).
pub fn token_of_upgrade(query: Option<&str>, authorization: Option<&[u8]>) -> Option<String> {
    if let Some(value) = authorization {
        let value = std::str::from_utf8(value).ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    let value = query?.split('&').find_map(|pair| pair.strip_prefix("token="))?;
    Some(percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests;
