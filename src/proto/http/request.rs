//! Request heads: parsing with httparse, header lookup, and [`HttpError`],
//! the rule each refused request broke. No routing, no responses.

use std::fmt;

use super::body::{self, BodyError, BodyKind};

/// Why a request was refused. Each variant maps to exactly one status
/// ([`HttpError::status`]) and its extra headers ([`HttpError::extra_headers`]);
/// `Display` gives the reason sent as the plain-text body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// `max_head_bytes` received without the blank line ending the head. 431.
    HeadTooLarge,
    /// More header fields than `max_headers`. 400.
    TooManyHeaders,
    /// Not a well-formed HTTP/1.0 or HTTP/1.1 request head. 400.
    Malformed,
    /// No resource at this path. 404.
    NotFound,
    /// A known path with a method other than GET or HEAD. 405.
    MethodNotAllowed,
    /// A WebSocket path requested without `Upgrade: websocket`. 426.
    UpgradeRequired,
    /// An upgrade with a method other than GET. 400.
    UpgradeMethod,
    /// An upgrade over HTTP/1.0. 400.
    UpgradeHttpVersion,
    /// An upgrade announcing a body, which would be mistaken for frames. 400.
    UpgradeBody,
    /// A required header is absent or empty. 400.
    MissingHeader(&'static str),
    /// A header allowed once appears more often. 400.
    DuplicateHeader(&'static str),
    /// An upgrade whose `Connection` lacks the `upgrade` token. 400.
    ConnectionNotUpgrade,
    /// `Sec-WebSocket-Key` is not base64 of 16 bytes. 400.
    BadKey,
    /// `Sec-WebSocket-Version` is not 13. 426.
    UnsupportedVersion,
    /// `Origin` is not in `allow_origins`. 403.
    OriginNotAllowed,
    /// The body's framing or size broke a rule: 400, 413 or 501 as
    /// [`BodyError::status`] says.
    Body(BodyError),
}

impl From<BodyError> for HttpError {
    fn from(e: BodyError) -> Self {
        HttpError::Body(e)
    }
}

impl HttpError {
    /// The status this rule answers with.
    pub fn status(self) -> u16 {
        match self {
            HttpError::HeadTooLarge => 431,
            HttpError::NotFound => 404,
            HttpError::MethodNotAllowed => 405,
            HttpError::UpgradeRequired | HttpError::UnsupportedVersion => 426,
            HttpError::OriginNotAllowed => 403,
            HttpError::Body(e) => e.status(),
            HttpError::TooManyHeaders
            | HttpError::Malformed
            | HttpError::UpgradeMethod
            | HttpError::UpgradeHttpVersion
            | HttpError::UpgradeBody
            | HttpError::MissingHeader(_)
            | HttpError::DuplicateHeader(_)
            | HttpError::ConnectionNotUpgrade
            | HttpError::BadKey => 400,
        }
    }

    /// Headers the status requires besides Content-Type/Length.
    pub fn extra_headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            // RFC 7231 §6.5.5: a 405 "MUST generate an Allow header field".
            HttpError::MethodNotAllowed => &[("Allow", "GET, HEAD")],
            // RFC 7231 §6.5.15: a 426 "MUST send an Upgrade header field".
            HttpError::UpgradeRequired => &[("Upgrade", "websocket"), ("Connection", "Upgrade")],
            // RFC 6455 §4.4: answer an unsupported version with "a
            // |Sec-WebSocket-Version| header field indicating the version(s)
            // the server is capable of understanding".
            HttpError::UnsupportedVersion => &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge => f.write_str("request head too large"),
            HttpError::TooManyHeaders => f.write_str("too many header fields"),
            HttpError::Malformed => f.write_str("malformed request head"),
            HttpError::NotFound => f.write_str("not found"),
            HttpError::MethodNotAllowed => f.write_str("method not allowed"),
            HttpError::UpgradeRequired => f.write_str("this is a WebSocket endpoint: upgrade required"),
            HttpError::UpgradeMethod => f.write_str("a WebSocket upgrade must be a GET request"),
            HttpError::UpgradeHttpVersion => f.write_str("a WebSocket upgrade requires HTTP/1.1"),
            HttpError::UpgradeBody => f.write_str("a WebSocket upgrade must not have a body"),
            HttpError::MissingHeader(name) => write!(f, "missing or empty {name} header"),
            HttpError::DuplicateHeader(name) => write!(f, "more than one {name} header"),
            HttpError::ConnectionNotUpgrade => f.write_str("Connection header lacks the upgrade token"),
            HttpError::BadKey => f.write_str("Sec-WebSocket-Key is not base64 of 16 bytes"),
            HttpError::UnsupportedVersion => f.write_str("unsupported Sec-WebSocket-Version; use 13"),
            HttpError::OriginNotAllowed => f.write_str("origin not allowed"),
            HttpError::Body(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HttpError {}

/// A parsed request head, borrowing the head bytes.
#[derive(Debug)]
pub struct Request<'h, 'b> {
    /// The method token, e.g. `GET`.
    pub method: &'b str,
    /// The request target as sent, query string included.
    pub target: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header fields in order.
    pub headers: &'h [httparse::Header<'b>],
}

impl<'h, 'b> Request<'h, 'b> {
    /// Parses one complete head, using `headers` (its length is the
    /// `max_headers` limit) for the fields.
    pub fn parse(head: &'b [u8], headers: &'h mut [httparse::Header<'b>]) -> Result<Self, HttpError> {
        let mut req = httparse::Request::new(headers);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
            Ok(httparse::Status::Partial) | Err(_) => return Err(HttpError::Malformed),
        }
        let httparse::Request { method, path, version, headers } = req;
        match (method, path, version) {
            (Some(method), Some(target), Some(minor_version)) => Ok(Request { method, target, minor_version, headers }),
            _ => Err(HttpError::Malformed),
        }
    }

    /// Values of every field called `name` (RFC 7230 §3.2: field names are
    /// case-insensitive), with surrounding whitespace trimmed.
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim_ascii())
    }

    /// The value of a field that may appear at most once.
    pub fn single(&self, name: &'static str) -> Result<Option<&'b [u8]>, HttpError> {
        let mut values = self.values(name);
        let first = values.next();
        match values.next() {
            Some(_) => Err(HttpError::DuplicateHeader(name)),
            None => Ok(first),
        }
    }

    /// The value of a field that must appear exactly once, non-empty.
    pub fn required(&self, name: &'static str) -> Result<&'b [u8], HttpError> {
        match self.single(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(HttpError::MissingHeader(name)),
        }
    }

    /// Whether any `name` field's comma-separated list holds `token`
    /// (case-insensitive). RFC 7230 §7: "a recipient MUST accept empty list
    /// elements", so `keep-alive, ,Upgrade` holds `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).any(|v| list_items(v).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
    }

    /// How the body after this head is delimited (RFC 7230 §3.3.3), or the
    /// framing rule the head breaks; [`body::BodyDecoder`] reads it.
    pub fn body_kind(&self) -> Result<BodyKind, BodyError> {
        body::body_kind(self)
    }

    /// Whether body bytes may follow the head: a non-zero length, chunked,
    /// or framing we can't trust ([`Request::body_kind`] fails).
    pub fn has_body(&self) -> bool {
        !matches!(self.body_kind(), Ok(BodyKind::None | BodyKind::Length(0)))
    }
}

/// The non-empty, trimmed elements of a comma-separated header list.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// Decodes `%XX` escapes; `None` when an escape is cut short or not hex.
/// `+` stays `+`: it means a space only in form bodies, not in URLs.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    // The crate passes a malformed escape through as text; we refuse it, so
    // that `/ws/%zz` is a 404 rather than a namespace named `%zz`. What
    // follows each `%` must start with two hex digits.
    let well_formed = s
        .split(|&b| b == b'%')
        .skip(1)
        .all(|after| matches!(after, [hi, lo, ..] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit()));
    well_formed.then(|| percent_encoding::percent_decode(s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::MissingHeader("Host").status(), 400);
        assert_eq!(HttpError::UnsupportedVersion.status(), 426);
        assert_eq!(HttpError::OriginNotAllowed.status(), 403);
        assert_eq!(HttpError::MissingHeader("Host").to_string(), "missing or empty Host header");
        assert_eq!(HttpError::from(BodyError::TooLarge).status(), 413);
        assert_eq!(HttpError::Body(BodyError::UnsupportedTransferCoding).status(), 501);
        assert_eq!(HttpError::Body(BodyError::DuplicateLength).to_string(), "more than one Content-Length header");
    }

    #[test]
    fn parse_and_lookup() {
        let head = b"GET /x?y HTTP/1.1\r\nHost: a\r\nconnection: keep-alive, ,Upgrade\r\nX: 1\r\nx: 2\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let req = Request::parse(head, &mut headers).unwrap();
        assert_eq!((req.method, req.target, req.minor_version), ("GET", "/x?y", 1));
        assert!(req.has_token("Connection", "upgrade"));
        assert!(!req.has_token("Connection", "close"));
        assert_eq!(req.required("host"), Ok(&b"a"[..]));
        assert_eq!(req.single("X"), Err(HttpError::DuplicateHeader("X")));
        assert_eq!(req.required("Origin"), Err(HttpError::MissingHeader("Origin")));
        assert!(!req.has_body());
    }

    #[test]
    fn parse_errors() {
        let mut headers = [httparse::EMPTY_HEADER; 1];
        let two = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(Request::parse(two, &mut headers).unwrap_err(), HttpError::TooManyHeaders);
        for bad in [&b"GET / HTTP/1.1\r\n"[..], b"\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n", b"GET\r\n\r\n", b"\xff\r\n\r\n"]
        {
            let mut headers = [httparse::EMPTY_HEADER; 4];
            assert_eq!(Request::parse(bad, &mut headers).unwrap_err(), HttpError::Malformed);
        }
    }

    #[test]
    fn body_detection() {
        for (h, body) in [
            ("Content-Length: 0", false),
            ("Content-Length: 00", false),
            ("Content-Length: 5", true),
            ("Content-Length: x", true),
            ("Transfer-Encoding: chunked", true),
            ("Transfer-Encoding: gzip", true),
            ("Content-Length: 0\r\nContent-Length: 0", true),
            ("Content-Length: 0\r\nTransfer-Encoding: chunked", true),
        ] {
            let head = format!("POST / HTTP/1.1\r\n{h}\r\n\r\n");
            let mut headers = [httparse::EMPTY_HEADER; 4];
            assert_eq!(Request::parse(head.as_bytes(), &mut headers).unwrap().has_body(), body, "{h}");
        }
    }

    #[test]
    fn percent() {
        assert_eq!(percent_decode(b"a%20b+c%C3%A9").unwrap(), "a b+cé".as_bytes());
        assert_eq!(percent_decode(b"%"), None);
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"%zz"), None);
        assert_eq!(percent_decode(b"%ff").unwrap(), [0xff]);
        assert_eq!(percent_decode(b"%4a%4A%25").unwrap(), b"JJ%");
        assert_eq!(percent_decode(b"").unwrap(), b"");
        for bad in [&b"%%41"[..], b"%4%41", b"a%", b"%g0", b"%0g", b"%\xd9\xa0"] {
            assert_eq!(percent_decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
