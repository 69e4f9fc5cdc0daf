//! Tells HTTP from the legacy line protocol by a connection's first bytes.
//! Owns only the decision; the flush-delay timeout is the caller's.

/// What a connection's first bytes say it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// An HTTP request line: hand the connection to the HTTP layer.
    Http,
    /// The legacy line protocol.
    Legacy,
    /// Could still become a method token: wait for more bytes, at most the
    /// legacy flush delay, then treat the connection as legacy.
    NeedMore,
}

/// The method tokens we recognise, each with the space that ends it
/// (RFC 7230 §3.1.1: `request-line = method SP request-target SP HTTP-version`).
const METHODS: [&[u8]; 7] = [b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH "];

/// Classifies the first bytes of a connection (everything received so far).
///
/// A method token followed by a space is [`Sniff::Http`]. A proper prefix of
/// one (the empty input included) is [`Sniff::NeedMore`]; such a prefix never
/// holds `\n`, so a one-line legacy message like `G\n` is [`Sniff::Legacy`]
/// at once. Anything else is [`Sniff::Legacy`] (a user may be called `GET`).
pub fn sniff(first_bytes: &[u8]) -> Sniff {
    if METHODS.iter().any(|m| first_bytes.starts_with(m)) {
        Sniff::Http
    } else if METHODS.iter().any(|m| m.starts_with(first_bytes)) {
        Sniff::NeedMore
    } else {
        Sniff::Legacy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], Sniff)] = &[
            (b"GET /", Sniff::Http),
            (b"GET ", Sniff::Http),
            (b"HEAD /", Sniff::Http),
            (b"POST /x HTTP/1.1\r\n", Sniff::Http),
            (b"OPTIONS *", Sniff::Http),
            (b"PATCH /", Sniff::Http),
            (b"DELETE /", Sniff::Http),
            (b"PUT /", Sniff::Http),
            (b"", Sniff::NeedMore),
            (b"G", Sniff::NeedMore),
            (b"GE", Sniff::NeedMore),
            (b"GET", Sniff::NeedMore),
            (b"OPTIO", Sniff::NeedMore),
            (b"GEX", Sniff::Legacy),
            (b"GETX", Sniff::Legacy),
            (b"get /", Sniff::Legacy),
            (b"alice", Sniff::Legacy),
            (b"G\n", Sniff::Legacy),
            (b"GET\n", Sniff::Legacy),
            (b"GET\r\n", Sniff::Legacy),
            (b"PRI * HTTP/2.0", Sniff::Legacy),
            (b"\xff\xfe", Sniff::Legacy),
        ];
        for (input, want) in cases {
            assert_eq!(sniff(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
