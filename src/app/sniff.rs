//! Tells what a connection speaks from its first bytes: a table of
//! recognisers, one row per protocol that announces itself (an HTTP request
//! line, a STOMP `CONNECT` frame), and the legacy line protocol for
//! everything else. TLS is told apart below this, by the transport, which
//! hands the sniffer the plaintext inside. Owns only the decision; the
//! flush-delay timeout is the caller's.

/// What a connection's first bytes say it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// An HTTP request line: hand the connection to the HTTP layer.
    Http,
    /// The legacy line protocol: no recogniser claims the bytes.
    Legacy,
    /// A whole STOMP `CONNECT` or `STOMP` frame: a STOMP client over raw TCP.
    Stomp,
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
const RECOGNISERS: &[Recogniser] = &[
    Recogniser { claims: Sniff::Http, recognise: http_request_line },
    Recogniser { claims: Sniff::Stomp, recognise: stomp_connect_frame },
];

/// The most bytes a STOMP `CONNECT` frame may take to be recognised; past
/// it, the bytes are legacy lines.
const MAX_STOMP_CONNECT_BYTES: usize = 16 * 1024;

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

/// A STOMP client's first frame, whole: `CONNECT` or `STOMP`, header lines
/// that each hold a `:`, a blank line, a body and its NUL (STOMP 1.2 §2.2,
/// line ends `\n` or `\r\n`). Only the whole frame is a `Yes`: a legacy
/// user may be called `CONNECT`, and its next line (no `:`) or the flush
/// delay makes it a legacy connection.
fn stomp_connect_frame(first_bytes: &[u8]) -> Verdict {
    const COMMANDS: [&[u8]; 2] = [b"CONNECT", b"STOMP"];
    let Some(command) = COMMANDS.iter().find(|c| first_bytes.starts_with(c)) else {
        let prefix = COMMANDS.iter().any(|c| c.starts_with(first_bytes));
        return if prefix { Verdict::Maybe } else { Verdict::No };
    };
    let mut lines = first_bytes.get(command.len()..).unwrap_or_default();
    let mut first = true;
    loop {
        let Some(end) = lines.iter().position(|&b| b == b'\n') else {
            // An unfinished line: a header (or the command's line end) may follow.
            let plausible = if first { lines.is_empty() || lines == b"\r" } else { !lines.contains(&0) };
            return if plausible && first_bytes.len() < MAX_STOMP_CONNECT_BYTES { Verdict::Maybe } else { Verdict::No };
        };
        let line = lines.get(..end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        lines = lines.get(end + 1..).unwrap_or_default();
        if first {
            if !line.is_empty() {
                return Verdict::No;
            }
            first = false;
        } else if line.is_empty() {
            break;
        } else if !line.contains(&b':') || line.contains(&0) {
            return Verdict::No;
        }
    }
    if lines.contains(&0) {
        Verdict::Yes
    } else if first_bytes.len() < MAX_STOMP_CONNECT_BYTES {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Classifies the first bytes of a connection (everything received so far).
///
/// A method token followed by a space is [`Sniff::Http`], a whole STOMP
/// `CONNECT` frame [`Sniff::Stomp`]. A proper prefix of either (the empty
/// input included) is [`Sniff::NeedMore`]; a one-line legacy message like
/// `G\n` is [`Sniff::Legacy`] at once. Anything else is [`Sniff::Legacy`]
/// (a user may be called `GET`).
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
            (b"CONNECT\naccept-version:1.2\nhost:x\n\n\0", Sniff::Stomp),
            (b"STOMP\r\naccept-version:1.2\r\n\r\n\0\n", Sniff::Stomp),
            (b"CONNECT\n\n\0", Sniff::Stomp),
            (b"CONNECT\nlogin:alice\n\n\0CONNECT", Sniff::Stomp),
            (b"C", Sniff::NeedMore),
            (b"CONN", Sniff::NeedMore),
            (b"STOM", Sniff::NeedMore),
            (b"CONNECT", Sniff::NeedMore),
            (b"CONNECT\r", Sniff::NeedMore),
            (b"CONNECT\n", Sniff::NeedMore),
            (b"CONNECT\nlogin:al", Sniff::NeedMore),
            (b"CONNECT\nlogin:alice\n", Sniff::NeedMore),
            (b"CONNECT\nlogin:alice\n\n", Sniff::NeedMore),
            // A legacy user called CONNECT: its next line has no `:`.
            (b"CONNECT\nhello everyone\n", Sniff::Legacy),
            (b"CONNECTED\n", Sniff::Legacy),
            (b"CONNECTx", Sniff::Legacy),
            (b"CONNECT me\n", Sniff::Legacy),
            (b"Carol\n", Sniff::Legacy),
            (b"STOMPY\n", Sniff::Legacy),
        ];
        for (input, want) in cases {
            assert_eq!(sniff(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
