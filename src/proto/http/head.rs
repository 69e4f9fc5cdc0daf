//! Finds where a request head ends in bytes that arrive in arbitrary pieces.
//! Doesn't parse the head; see [`super::request`].

use super::request::HttpError;

/// Incremental search for the blank line that ends a request head.
///
/// Keeps the position reached so far, so feeding a head one byte per call
/// costs O(n) in total: each byte is examined once, plus a look-back of at
/// most two bytes at each `\n`.
#[derive(Clone, Debug, Default)]
pub struct HeadScanner {
    /// Bytes of the current request already examined.
    scanned: usize,
    /// Bytes examined by every call so far, for tests and metrics to check
    /// the O(n) claim by counting rather than by timing.
    examined_total: u64,
}

impl HeadScanner {
    /// `buf` holds the bytes of this request so far (starting at its first
    /// byte); only bytes not scanned before are examined.
    ///
    /// `Ok(Some(n))`: the head is `buf[..n]`, through its blank line; bytes
    /// after it are the caller's (pipelined requests, WebSocket frames).
    /// `Ok(None)`: need more bytes. `Err(HttpError::HeadTooLarge)` (431) as
    /// soon as `buf.len() >= max_head_bytes` with no end found in the first
    /// `max_head_bytes` bytes. Call [`HeadScanner::reset`] before the next request.
    pub fn scan(&mut self, buf: &[u8], max_head_bytes: usize) -> Result<Option<usize>, HttpError> {
        let limit = buf.len().min(max_head_bytes);
        let start = self.scanned.min(limit);
        let fresh = buf.get(start..limit).unwrap_or_default();
        for (j, _) in (start..).zip(fresh).filter(|(_, b)| **b == b'\n') {
            // RFC 7230 §3.5: "a recipient MAY recognize a single LF as a line
            // terminator and ignore any preceding CR". So the head ends at an
            // LF preceded by LF or by CR LF (CRLFCRLF, LFLF and the mixes).
            let back = |k: usize| j.checked_sub(k).and_then(|p| buf.get(p)).copied();
            if back(1) == Some(b'\n') || (back(1) == Some(b'\r') && back(2) == Some(b'\n')) {
                self.examined_total += (j + 1 - start) as u64;
                // Stay on the final LF so a repeated call answers the same.
                self.scanned = j;
                return Ok(Some(j + 1));
            }
        }
        self.examined_total += fresh.len() as u64;
        self.scanned = limit;
        if buf.len() >= max_head_bytes {
            return Err(HttpError::HeadTooLarge);
        }
        Ok(None)
    }

    /// Forgets the current request, for the next one on the connection.
    pub fn reset(&mut self) {
        self.scanned = 0;
    }

    /// Bytes examined by all [`HeadScanner::scan`] calls since creation
    /// (not cleared by [`HeadScanner::reset`]), not counting the look-back
    /// of at most two bytes at each `\n`. Linear scanning keeps it within
    /// the bytes received plus one per call.
    pub fn bytes_scanned(&self) -> u64 {
        self.examined_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(input: &[u8], max: usize) -> Result<Option<usize>, HttpError> {
        let mut s = HeadScanner::default();
        for n in 1..=input.len() {
            match s.scan(&input[..n], max) {
                Ok(None) => {}
                other => return other,
            }
        }
        Ok(None)
    }

    #[test]
    fn finds_end_whole_and_bytewise() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Some(27)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x", Some(27)),
            (b"GET / HTTP/1.1\nHost: a\n\n", Some(24)),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", Some(26)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", Some(26)),
            (b"GET / HTTP/1.1\r\nHost: a\r\n", None),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r", None),
            (b"GET / HTTP/1.1\r\r\n", None),
        ];
        for (input, want) in cases {
            let whole = HeadScanner::default().scan(input, 8192);
            assert_eq!(whole, Ok(*want), "{:?}", String::from_utf8_lossy(input));
            assert_eq!(bytewise(input, 8192), whole);
        }
    }

    #[test]
    fn repeated_call_and_reset() {
        let mut s = HeadScanner::default();
        let buf = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(s.scan(buf, 100), Ok(Some(18)));
        assert_eq!(s.scan(buf, 100), Ok(Some(18)));
        s.reset();
        assert_eq!(s.scan(b"GET", 100), Ok(None));
    }

    #[test]
    fn too_large_exactly_at_limit() {
        let max = 64;
        let mut s = HeadScanner::default();
        let pad = vec![b'a'; max];
        for n in 1..max {
            assert_eq!(s.scan(&pad[..n], max), Ok(None));
        }
        assert_eq!(s.scan(&pad, max), Err(HttpError::HeadTooLarge));
        // A head of exactly max_head_bytes is still accepted ...
        let mut head = vec![b'a'; max - 4];
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(HeadScanner::default().scan(&head, max), Ok(Some(max)));
        // ... but an end found only past the limit is not.
        head.insert(0, b'a');
        assert_eq!(HeadScanner::default().scan(&head, max), Err(HttpError::HeadTooLarge));
    }

    #[test]
    fn one_megabyte_header_whole() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(1 << 20, b'x');
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(HeadScanner::default().scan(&big, 8192), Err(HttpError::HeadTooLarge));
    }

    /// Feeds `n` bytes of a head that never ends (lines of `a\r\n`), one
    /// more byte per call as a dribbling peer would, and returns the work
    /// `scan` reports: (bytes examined, answer to the last call).
    fn dribble(n: usize, mut scan: impl FnMut(&[u8]) -> (Result<Option<usize>, HttpError>, u64)) -> u64 {
        let input: Vec<u8> = b"a\r\n".iter().copied().cycle().take(n).collect();
        let mut examined = 0;
        for len in 1..=n {
            let (answer, work) = scan(&input[..len]);
            let want = if len == n { Err(HttpError::HeadTooLarge) } else { Ok(None) };
            assert_eq!(answer, want, "at {len}");
            examined = work;
        }
        examined
    }

    /// Whether `work(n)` (bytes examined for `n` bytes fed) is linear: at
    /// most two per byte at both sizes, and doubling the input at most
    /// doubles the work (a quadratic rescan quadruples it).
    fn is_linear(n: usize, work: impl Fn(usize) -> u64) -> bool {
        let (small, large) = (work(n), work(2 * n));
        small <= 2 * n as u64 && large <= 4 * n as u64 && large <= 2 * small + 2
    }

    #[test]
    fn one_megabyte_one_byte_at_a_time_is_linear() {
        let scanner = |n: usize| {
            let mut s = HeadScanner::default();
            dribble(n, |buf| (s.scan(buf, n), s.bytes_scanned()))
        };
        // Small sizes first, so a regression fails here instead of hanging below.
        assert!(is_linear(1 << 12, scanner));
        // Each byte is examined exactly once.
        assert_eq!(scanner(1 << 20), 1 << 20);
        // The check catches a scanner that rescans the whole head per call
        // (~5e11 steps for a megabyte, so shown on a smaller input).
        let rescanning = |n: usize| {
            let mut examined = 0;
            dribble(n, |buf| {
                examined += buf.len() as u64;
                (HeadScanner::default().scan(buf, n), examined)
            })
        };
        assert!(!is_linear(1 << 10, rescanning));
    }
}
