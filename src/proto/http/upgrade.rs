//! The RFC 6455 §4.2 opening handshake, server side: validating an upgrade
//! request and the 101, with the subprotocol the endpoint prefers among
//! those offered, and the permessage-deflate offers for the connection to
//! choose from (every other extension is declined, as RFC 6455 §4.2.2 lets
//! a server do). Routing is the caller's.

use base64::prelude::{BASE64_STANDARD, Engine as _};

use super::request::{HttpError, Request, list_items, percent_decode};
use super::response::accept_key;
use super::{Accepted, HttpConfig};
use crate::proto::ws::deflate::{self, DeflateOffer};

/// Validates an upgrade request and builds the 101.
///
/// `query` is the request target after `?`, if any; its `name` parameter
/// becomes [`Upgrade::name`] and never fails the upgrade. `subprotocols` are
/// the endpoint's, most preferred first: the first of them the client
/// offers in `Sec-WebSocket-Protocol` is selected; none offered (or none
/// known) selects none, and the upgrade stands (§4.2.2: the client decides
/// whether to go on without one).
pub fn accept_upgrade(
    req: &Request<'_, '_>,
    query: Option<&str>,
    config: &HttpConfig,
    subprotocols: &[&'static str],
) -> Result<Accepted, HttpError> {
    // RFC 6455 §4.2.1, in its order. 1: "An HTTP/1.1 or higher GET request".
    if req.method != "GET" {
        return Err(HttpError::UpgradeMethod);
    }
    if req.minor_version < 1 {
        return Err(HttpError::UpgradeHttpVersion);
    }
    // 2: "A |Host| header field"; RFC 7230 §5.4: more than one is a 400.
    req.required("Host")?;
    // 3 (`Upgrade` holding `websocket`) is how the caller chose us.
    // 4: "A |Connection| header field that includes the token "Upgrade",
    // treated as an ASCII case-insensitive value."
    if !req.has_token("Connection", "upgrade") {
        return Err(HttpError::ConnectionNotUpgrade);
    }
    // 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value
    // that, when decoded, is 16 bytes in length." §11.3.1: at most once.
    let key = req.required("Sec-WebSocket-Key")?;
    let key = match BASE64_STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => std::str::from_utf8(key).map_err(|_| HttpError::BadKey)?,
        _ => return Err(HttpError::BadKey),
    };
    // 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
    // §4.4: another version gets a 426-style refusal naming the ones we speak.
    if req.required("Sec-WebSocket-Version")? != b"13" {
        return Err(HttpError::UnsupportedVersion);
    }
    // 7: "Optionally, an |Origin| header field." §4.2.2: a server checking it
    // "MAY ... respond ... with an appropriate error code (such as 403)".
    if let Some(origin) = req.single("Origin")?
        && !config.allow_origins.is_empty()
        && !config.allow_origins.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(origin))
    {
        return Err(HttpError::OriginNotAllowed);
    }
    // Bytes after the head are frames once we answer 101; a body would be
    // misread as frames.
    if req.has_body() {
        return Err(HttpError::UpgradeBody);
    }

    // §4.2.2: the subprotocol and the extensions are the server's choice; no
    // `Sec-WebSocket-Extensions` in the 101, so a client must not use any it
    // offered.
    let subprotocol = select_subprotocol(req, subprotocols);
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(selected) = subprotocol {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(selected);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    let subprotocol = subprotocol.map(str::to_owned);
    Ok(Accepted {
        response: response.into_bytes(),
        name: query.and_then(name_param),
        subprotocol,
        deflate_offers: deflate_offers(req),
    })
}

/// The first of `supported` that any `Sec-WebSocket-Protocol` line offers
/// (tokens compare exactly: subprotocol names are case-sensitive, §11.3.4).
fn select_subprotocol(req: &Request<'_, '_>, supported: &[&'static str]) -> Option<&'static str> {
    supported.iter().copied().find(|wanted| {
        req.values("Sec-WebSocket-Protocol").flat_map(list_items).any(|offered| offered == wanted.as_bytes())
    })
}

/// The valid permessage-deflate offers of `Sec-WebSocket-Extensions`. A
/// header that does not parse, or an offer with bad parameters, is
/// declined rather than refused: RFC 7692 §5 has the server decline what it
/// cannot accept, and the upgrade stands without the extension.
fn deflate_offers(req: &Request<'_, '_>) -> Vec<DeflateOffer> {
    let Some(offers) = parse_extensions(req.values("Sec-WebSocket-Extensions")) else {
        return Vec::new();
    };
    offers
        .iter()
        .filter(|offer| offer.name.eq_ignore_ascii_case(deflate::NAME))
        .filter_map(|offer| DeflateOffer::from_params(&offer.params))
        .collect()
}

/// One offer from `Sec-WebSocket-Extensions`: a name and its parameters,
/// quoted values unescaped (RFC 6455 §9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionOffer<'a> {
    pub name: &'a str,
    pub params: Vec<(&'a str, Option<String>)>,
}

/// Parses every `Sec-WebSocket-Extensions` value in one pass (RFC 6455 §9.1:
/// `extension = token *( ";" param )`, `param = token [ "=" (token |
/// quoted-string) ]`, comma lists). None when malformed, e.g. an unclosed
/// quote.
pub fn parse_extensions<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<ExtensionOffer<'a>>> {
    let mut offers = Vec::new();
    for value in values {
        let mut c = Cursor { s: value, i: 0 };
        loop {
            c.skip_ows();
            // RFC 7230 §7: empty list elements are allowed.
            if c.eat(b',') {
                continue;
            }
            if c.at_end() {
                break;
            }
            let name = c.token()?;
            let mut params = Vec::new();
            loop {
                c.skip_ows();
                if !c.eat(b';') {
                    break;
                }
                c.skip_ows();
                let param = c.token()?;
                c.skip_ows();
                let value = if !c.eat(b'=') {
                    None
                } else {
                    c.skip_ows();
                    Some(if c.peek() == Some(b'"') { c.quoted()? } else { c.token()?.to_owned() })
                };
                params.push((param, value));
            }
            offers.push(ExtensionOffer { name, params });
            if !c.at_end() && !c.eat(b',') {
                return None;
            }
        }
    }
    Some(offers)
}

/// The first `name` parameter of the query, percent-decoded as UTF-8. `+` is
/// kept as `+` (not a space), since names never hold spaces. A bad escape
/// keeps the raw text and bad UTF-8 becomes U+FFFD, so the chat layer sees
/// an invalid name and answers `name_invalid` after the upgrade.
fn name_param(query: &str) -> Option<String> {
    let raw = query.split('&').find_map(|pair| match pair.split_once('=') {
        Some(("name", v)) => Some(v),
        None if pair == "name" => Some(""),
        _ => None,
    })?;
    Some(match percent_decode(raw.as_bytes()) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => raw.to_owned(),
    })
}

/// A read position in one header value; every method advances or fails,
/// so parsing is a single linear pass.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// RFC 7230 §3.2.6: `token = 1*tchar`.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        let t = self.s.get(start..self.i).filter(|t| !t.is_empty())?;
        std::str::from_utf8(t).ok()
    }

    /// RFC 7230 §3.2.6: `quoted-string = DQUOTE *( qdtext / quoted-pair )
    /// DQUOTE`, `quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )`.
    fn quoted(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    out.push(self.peek()?);
                    self.i += 1;
                }
                _ => out.push(b),
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(value: &[u8]) -> Option<Vec<ExtensionOffer<'_>>> {
        parse_extensions([value])
    }

    #[test]
    fn extension_offers() {
        let offers = ext(b"permessage-deflate; client_max_window_bits, x-foo ; a=\"q\\\"v\";b=1,,").unwrap();
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].name, "permessage-deflate");
        assert_eq!(offers[0].params, vec![("client_max_window_bits", None)]);
        assert_eq!(offers[1].name, "x-foo");
        assert_eq!(offers[1].params, vec![("a", Some("q\"v".to_owned())), ("b", Some("1".to_owned()))]);
        assert_eq!(ext(b"").unwrap(), vec![]);
        for bad in [&b"a; b=\"unclosed"[..], b"a; b=\"x\\", b"a b", b"a;", b";", b"a; =1", b"a; b=", b"a,\"x\""] {
            assert_eq!(ext(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn unclosed_quote_is_linear() {
        let mut v = b"a; b=\"".to_vec();
        v.resize(1 << 20, b'x');
        assert_eq!(ext(&v), None);
        let mut v = b"a".to_vec();
        v.resize(1 << 20, b';');
        assert_eq!(ext(&v), None);
    }

    #[test]
    fn name_query() {
        assert_eq!(name_param("name=alice"), Some("alice".to_owned()));
        assert_eq!(name_param("x=1&name=%C3%A9mile&name=bob"), Some("émile".to_owned()));
        assert_eq!(name_param("name=a+b"), Some("a+b".to_owned()));
        assert_eq!(name_param("name=%zz"), Some("%zz".to_owned()));
        assert_eq!(name_param("name=%ff"), Some("\u{fffd}".to_owned()));
        assert_eq!(name_param("name"), Some(String::new()));
        assert_eq!(name_param("names=x"), None);
        assert_eq!(name_param(""), None);
    }

    /// The 101 and the selected subprotocol for an upgrade offering `protocols` (header lines).
    fn upgrade_offering(protocols: &[&str], supported: &[&'static str]) -> (String, Option<String>) {
        let mut head = String::from(
            "GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        );
        for line in protocols {
            head.push_str(&format!("Sec-WebSocket-Protocol: {line}\r\n"));
        }
        head.push_str("\r\n");
        let mut headers = vec![httparse::EMPTY_HEADER; 16];
        let req = Request::parse(head.as_bytes(), &mut headers).unwrap();
        let config = HttpConfig {
            max_head_bytes: 8192,
            max_body_bytes: 0,
            max_headers: 16,
            allow_origins: Vec::new(),
            echo_enabled: true,
            engineio_test_suite: false,
            sockjs_test_suite: false,
            files: Default::default(),
        };
        let accepted = accept_upgrade(&req, None, &config, supported).unwrap();
        (String::from_utf8(accepted.response).unwrap(), accepted.subprotocol)
    }

    #[test]
    fn the_endpoints_preferred_subprotocol_among_those_offered() {
        const STOMP: &[&str] = &["v12.stomp", "v11.stomp", "v10.stomp"];
        let (response, selected) = upgrade_offering(&["v10.stomp, v11.stomp"], STOMP);
        assert_eq!(selected.as_deref(), Some("v11.stomp"));
        assert!(response.contains("\r\nSec-WebSocket-Protocol: v11.stomp\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\n"));
        // Offers on several lines count alike; the server's order decides.
        let (_, selected) = upgrade_offering(&["v10.stomp", "x, v12.stomp"], STOMP);
        assert_eq!(selected.as_deref(), Some("v12.stomp"));
        // Names are case-sensitive; nothing known offered: no header, the upgrade stands.
        for offers in [&["V12.STOMP"][..], &["mqtt"], &[]] {
            let (response, selected) = upgrade_offering(offers, STOMP);
            assert_eq!(selected, None);
            assert!(!response.contains("Sec-WebSocket-Protocol"), "{response}");
        }
        // An endpoint without subprotocols selects none whatever is offered.
        assert_eq!(upgrade_offering(&["v12.stomp"], &[]).1, None);
    }
}
