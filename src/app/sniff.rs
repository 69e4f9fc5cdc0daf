//! Tells what a connection speaks from its first bytes: a table of
//! recognisers, one row per protocol that announces itself (an HTTP request
//! line today; a TLS record or a STOMP frame adds a row), and the legacy line
//! protocol for everything else. Owns only the decision; the flush-delay
//! timeout is the caller's.

/// What a connection's first bytes say it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// An HTTP request line: hand the connection to the HTTP layer.
    Http,
    /// The legacy line protocol: no recogniser claims the bytes.
    Legacy,
    /// Some recogniser could still claim the bytes: wait for more, at most
    /// the legacy flush delay, then treat the connection as legacy.
    NeedMore,
}

/// One recogniser's verdict on the bytes so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Yes,
    /// A proper prefix of something this recogniser would claim.
    Maybe,
    No,
}

/// A protocol that announces itself in its first bytes.
struct Recogniser {
    claims: Sniff,
    recognise: fn(&[u8]) -> Verdict,
}

/// The rows, tried in order; the first `Yes` wins.
const RECOGNISERS: &[Recogniser] = &[Recogniser { claims: Sniff::Http, recognise: http_request_line }];

/// The method tokens we recognise, each with the space that ends it
/// (RFC 7230 §3.1.1: `request-line = method SP request-target SP HTTP-version`).
const METHODS: [&[u8]; 7] = [b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH "];

fn http_request_line(first_bytes: &[u8]) -> Verdict {
    if METHODS.iter().any(|m| first_bytes.starts_with(m)) {
        Verdict::Yes
    } else if METHODS.iter().any(|m| m.starts_with(first_bytes)) {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Classifies the first bytes of a connection (everything received so far).
///
/// A method token followed by a space is [`Sniff::Http`]. A proper prefix of
/// one (the empty input included) is [`Sniff::NeedMore`]; such a prefix never
/// holds `\n`, so a one-line legacy message like `G\n` is [`Sniff::Legacy`]
/// at once. Anything else is [`Sniff::Legacy`] (a user may be called `GET`).
pub fn sniff(first_bytes: &[u8]) -> Sniff {
    let mut undecided = false;
    for row in RECOGNISERS {
        match (row.recognise)(first_bytes) {
            Verdict::Yes => return row.claims,
            Verdict::Maybe => undecided = true,
            Verdict::No => {}
        }
    }
    if undecided { Sniff::NeedMore } else { Sniff::Legacy }
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
