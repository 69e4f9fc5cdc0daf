//! RFC 6455 §7.4 close status codes: the named codes soket uses and which
//! codes a peer may put on the wire. Parsing close payloads is the decoder's job.

/// A close status code as carried in a close frame payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: endpoint going away (server shutdown).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: data type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1007: payload inconsistent with its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy (an unknown session).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: message too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1013: try again later (IANA registry; soket uses it for slow readers).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// Whether a peer may send this code on the wire (RFC 6455 §7.4.1/§7.4.2).
    ///
    /// Allowed: 1000-1003, 1007-1014 and 3000-4999. 1004 is reserved, 1005,
    /// 1006 and 1015 "MUST NOT be set as a status code in a Close control
    /// frame", 1016-2999 are unassigned protocol codes and 0-999 and 5000+ are
    /// unused. 1012-1014 (service restart, try again later, bad gateway) are
    /// registered with IANA; Autobahn 7.9.x lists neither them as invalid nor
    /// 7.7.x as valid, and browsers send them, so they are accepted.
    pub fn is_allowed_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autobahn_valid_codes_are_allowed() {
        // Autobahn case 7.7.x.
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999] {
            assert!(CloseCode(code).is_allowed_on_wire(), "{code}");
        }
        for code in [1012, 1013, 1014] {
            assert!(CloseCode(code).is_allowed_on_wire(), "{code}");
        }
    }

    #[test]
    fn autobahn_invalid_codes_are_refused() {
        // Autobahn case 7.9.x, plus the edges of each refused range.
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!CloseCode(code).is_allowed_on_wire(), "{code}");
        }
    }
}
