//! Response bytes: status line, headers, body; and the RFC 6455 accept key.
//! Doesn't decide which response; see [`super::routes`].

use base64::prelude::{BASE64_STANDARD, Engine as _};
use sha1::{Digest, Sha1};

use super::request::HttpError;

/// RFC 6455 §1.3: the GUID appended to the client's key.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Serialises a complete response with `Content-Length` always set.
///
/// `content_type` is omitted when empty. With `head_only` (a HEAD request)
/// the body is left out but its length is still announced (RFC 7231 §4.3.2).
/// With `close`, `Connection: close` is sent; if `extra_headers` already has
/// a `Connection` field, `close` is appended to it rather than repeating it.
pub fn write_response(
    status: u16,
    extra_headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    head_only: bool,
    close: bool,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    let mut close_pending = close;
    for (name, value) in extra_headers {
        if close_pending && name.eq_ignore_ascii_case("Connection") {
            head.push_str(&format!("{name}: {value}, close\r\n"));
            close_pending = false;
        } else {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if close_pending {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// The plain-text response for a refused request: the status, headers and
/// reason of [`HttpError`]. The caller answers a scanner's
/// [`HttpError::HeadTooLarge`] with `error_response(e, false, true)`.
pub fn error_response(error: HttpError, head_only: bool, close: bool) -> Vec<u8> {
    let body = format!("{error}\n");
    let text = "text/plain; charset=utf-8";
    write_response(error.status(), error.extra_headers(), text, body.as_bytes(), head_only, close)
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
///
/// RFC 6455 §4.2.2: "concatenate this with the Globally Unique Identifier
/// ... take the SHA-1 hash of this concatenated value ... base64-encode".
pub fn accept_key(sec_websocket_key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(sec_websocket_key.as_bytes());
    sha.update(WS_GUID.as_bytes());
    BASE64_STANDARD.encode(sha.finalize())
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_vector() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn plain_response() {
        let r = write_response(200, &[], "text/plain", b"ok\n", false, false);
        assert_eq!(r, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n");
        let r = write_response(200, &[], "text/plain", b"ok\n", true, true);
        assert_eq!(r, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn close_merges_into_connection() {
        let r = error_response(HttpError::UpgradeRequired, false, true);
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n"));
        assert_eq!(text.matches("Connection").count(), 1);
        assert!(text.ends_with("\r\n\r\nthis is a WebSocket endpoint: upgrade required\n"));
    }
}
