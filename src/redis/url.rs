//! The `--redis` URL: `redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
//!
//! Parsed once at startup, so every mistake gets a message naming it rather
//! than a connection that fails later. No I/O: the host is not resolved here.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use super::resp::encode_command;

/// Where Redis is and how to log in. `Debug` and `Display` hide the password,
/// so the value can be logged as is.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// A DNS name or an IP address; an IPv6 address without its brackets.
    pub host: String,
    /// Default 6379.
    pub port: u16,
    /// For Redis 6 ACLs (`AUTH user pass`); `None` logs in as `default`.
    pub username: Option<String>,
    /// `None`: no `AUTH` is sent.
    pub password: Option<String>,
    /// Selected with `SELECT` when not 0. Pub/sub ignores it (channels are
    /// global), keys are per database.
    pub db: u32,
    /// `rediss://`: both connections speak TLS, the host checked against the
    /// server's certificate.
    pub tls: bool,
}

/// What is wrong with a `--redis` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Neither `redis://` nor `rediss://`.
    Scheme,
    /// Nothing between `//` (or `@`) and the port or path.
    MissingHost,
    /// A host name with a character outside letters, digits, `-`, `.`, `_`.
    BadHost,
    /// An IPv6 address in brackets that does not parse, or IPv6 without brackets.
    BadIpv6,
    /// A port that is not a number in 1..=65535.
    BadPort,
    /// A path that is not `/` followed by a database number.
    BadDb,
    /// Credentials without the `:` before the password.
    MissingPassword,
    /// `USER:@` or `:@`: an empty password.
    EmptyPassword,
    /// A user or password whose percent-escapes do not decode to UTF-8.
    BadPercentEncoding,
    /// A `?query` or `#fragment`: no option is read from the URL.
    Query,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "the Redis URL must start with redis:// (or rediss:// for TLS)",
            UrlError::MissingHost => "the Redis URL has no host",
            UrlError::BadHost => "the Redis host may hold only letters, digits, '-', '.' and '_'",
            UrlError::BadIpv6 => "the Redis host is not a valid IPv6 address (write it in brackets: [::1]:6379)",
            UrlError::BadPort => "the Redis port must be a number from 1 to 65535",
            UrlError::BadDb => "the Redis URL path must be /DB, a database number",
            UrlError::MissingPassword => "Redis credentials must be USER:PASSWORD@ or :PASSWORD@",
            UrlError::EmptyPassword => "the Redis password is empty",
            UrlError::BadPercentEncoding => "the Redis user or password is not valid percent-encoded UTF-8",
            UrlError::Query => "the Redis URL takes no ?query or #fragment",
        })
    }
}

impl std::error::Error for UrlError {}

impl FromStr for RedisUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = text.split_once("://").ok_or(UrlError::Scheme)?;
        let tls = scheme.eq_ignore_ascii_case("rediss");
        if !tls && !scheme.eq_ignore_ascii_case("redis") {
            return Err(UrlError::Scheme);
        }
        if rest.contains(['?', '#']) {
            return Err(UrlError::Query);
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        // The last '@': a password with an unescaped '@' still parses.
        let (credentials, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (username, password) = match credentials {
            None => (None, None),
            Some(credentials) => {
                let (user, password) = credentials.split_once(':').ok_or(UrlError::MissingPassword)?;
                if password.is_empty() {
                    return Err(UrlError::EmptyPassword);
                }
                let user = decode(user)?;
                (Some(user).filter(|u| !u.is_empty()), Some(decode(password)?))
            }
        };
        let (host, port) = parse_host_port(host_port)?;
        let db = match path {
            "" | "/" => 0,
            _ => {
                let digits = &path[1..];
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(UrlError::BadDb);
                }
                digits.parse().map_err(|_| UrlError::BadDb)?
            }
        };
        Ok(RedisUrl { host, port, username, password, db, tls })
    }
}

fn decode(text: &str) -> Result<String, UrlError> {
    percent_decode_str(text).decode_utf8().map(|s| s.into_owned()).map_err(|_| UrlError::BadPercentEncoding)
}

fn parse_host_port(text: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or(UrlError::BadIpv6)?;
        address.parse::<Ipv6Addr>().map_err(|_| UrlError::BadIpv6)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::BadPort)?),
        };
        (address, port)
    } else {
        match text.split_once(':') {
            Some((_, port)) if port.contains(':') => return Err(UrlError::BadIpv6),
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':')) {
        return Err(UrlError::BadHost);
    }
    let port = match port {
        None => 6379,
        Some(digits) => {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UrlError::BadPort);
            }
            digits.parse::<u16>().ok().filter(|&p| p != 0).ok_or(UrlError::BadPort)?
        }
    };
    Ok((host.to_owned(), port))
}

/// What a user name must escape to read back the same from the URL shown.
const USERINFO: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b':').add(b'@').add(b'/').add(b'?').add(b'#');

impl fmt::Display for RedisUrl {
    /// `redis[s]://[USER:***@]HOST:PORT/DB`: every field but the password,
    /// so logs show where a node connects without leaking the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "rediss://" } else { "redis://" })?;
        if let Some(user) = &self.username {
            write!(f, "{}", utf8_percent_encode(user, USERINFO))?;
            if self.password.is_none() {
                f.write_str("@")?;
            }
        }
        if self.password.is_some() {
            f.write_str(":***@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisUrl {
    /// Appends the commands a fresh connection sends before anything else:
    /// `AUTH [USER] PASSWORD` when there is a password, then `SELECT DB` when
    /// the database is not 0. Returns how many were appended, so the caller
    /// knows how many replies answer them (each must be `+OK`).
    pub fn auth_and_select(&self, out: &mut Vec<u8>) -> usize {
        let mut count = 0;
        if let Some(password) = &self.password {
            match &self.username {
                Some(user) => encode_command(out, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => encode_command(out, &[b"AUTH", password.as_bytes()]),
            }
            count += 1;
        }
        if self.db != 0 {
            let mut digits = itoa::Buffer::new();
            encode_command(out, &[b"SELECT", digits.format(self.db).as_bytes()]);
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::resp::{ReplyDecoder, RespLimits};

    fn url(text: &str) -> RedisUrl {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn error(text: &str) -> UrlError {
        text.parse::<RedisUrl>().expect_err(text)
    }

    #[test]
    fn parses_the_documented_forms() {
        let plain = url("redis://localhost");
        assert_eq!((plain.host.as_str(), plain.port, plain.db), ("localhost", 6379, 0));
        assert_eq!((plain.username, plain.password), (None, None));
        let full = url("redis://alice:s3cret@redis.internal:6380/2");
        assert_eq!(full.host, "redis.internal");
        assert_eq!((full.port, full.db), (6380, 2));
        assert_eq!(full.username.as_deref(), Some("alice"));
        assert_eq!(full.password.as_deref(), Some("s3cret"));
        let password_only = url("redis://:pw@10.0.0.5/");
        assert_eq!((password_only.username, password_only.password.as_deref()), (None, Some("pw")));
        assert_eq!(password_only.host, "10.0.0.5");
        let v6 = url("redis://[::1]:6379/15");
        assert_eq!((v6.host.as_str(), v6.port, v6.db), ("::1", 6379, 15));
        assert_eq!(url("redis://[fe80::1]").port, 6379);
        assert_eq!(url("REDIS://h:1").port, 1);
        assert_eq!(url("redis://h/4294967295").db, u32::MAX);
        assert!(!plain.tls);
        let tls = url("rediss://:pw@redis.example.com:6380/1");
        assert!(tls.tls);
        assert_eq!((tls.host.as_str(), tls.port, tls.db), ("redis.example.com", 6380, 1));
        assert!(url("REDISS://h").tls);
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let u = url("redis://us%3Aer:p%40ss%2Fw%C3%B6rd@h");
        assert_eq!(u.username.as_deref(), Some("us:er"));
        assert_eq!(u.password.as_deref(), Some("p@ss/wörd"));
        // An unescaped '@' in the password still parses: the host follows the last one.
        assert_eq!(url("redis://:a@b@h").password.as_deref(), Some("a@b"));
        assert_eq!(error("redis://:%FF@h"), UrlError::BadPercentEncoding);
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        for (text, why) in [
            ("localhost:6379", UrlError::Scheme),
            ("http://h", UrlError::Scheme),
            ("unix:///tmp/redis.sock", UrlError::Scheme),
            ("redis://", UrlError::MissingHost),
            ("redis://:6379", UrlError::MissingHost),
            ("redis://:pw@/1", UrlError::MissingHost),
            ("redis://h:", UrlError::BadPort),
            ("redis://h:0", UrlError::BadPort),
            ("redis://h:65536", UrlError::BadPort),
            ("redis://h:+1", UrlError::BadPort),
            ("redis://h:x", UrlError::BadPort),
            ("redis://h/x", UrlError::BadDb),
            ("redis://h/1/2", UrlError::BadDb),
            ("redis://h/+1", UrlError::BadDb),
            ("redis://h/4294967296", UrlError::BadDb),
            ("redis://h?db=1", UrlError::Query),
            ("redis://h#x", UrlError::Query),
            ("redis://::1", UrlError::BadIpv6),
            ("redis://[::1", UrlError::BadIpv6),
            ("redis://[nope]:1", UrlError::BadIpv6),
            ("redis://[::1]6379", UrlError::BadPort),
            ("redis://ho st", UrlError::BadHost),
            ("redis://h%41", UrlError::BadHost),
            ("redis://pw@h", UrlError::MissingPassword),
            ("redis://alice:@h", UrlError::EmptyPassword),
            ("redis://:@h", UrlError::EmptyPassword),
        ] {
            assert_eq!(error(text), why, "{text}");
        }
    }

    #[test]
    fn display_and_debug_hide_the_password() {
        let u = url("redis://alice:hunter2@h:7000/3");
        assert_eq!(u.to_string(), "redis://alice:***@h:7000/3");
        assert!(!format!("{u:?}").contains("hunter2"));
        assert_eq!(url("redis://:hunter2@[::1]").to_string(), "redis://:***@[::1]:6379/0");
        assert_eq!(url("redis://h").to_string(), "redis://h:6379/0");
        assert_eq!(url("rediss://:pw@h:6380").to_string(), "rediss://:***@h:6380/0");
        assert_eq!(url("redis://a%40b%0A:x@h").to_string(), "redis://a%40b%0A:***@h:6379/0");
    }

    fn commands(wire: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut decoder = ReplyDecoder::new(RespLimits::default());
        decoder.feed(wire);
        let mut out = Vec::new();
        while let Some(reply) = decoder.next().unwrap() {
            let args = reply.into_array().unwrap().iter().map(|a| a.as_bytes().unwrap().to_vec()).collect();
            out.push(args);
        }
        out
    }

    #[test]
    fn auth_and_select_encode_what_the_url_needs() {
        let mut out = Vec::new();
        assert_eq!(url("redis://h").auth_and_select(&mut out), 0);
        assert!(out.is_empty());
        assert_eq!(url("redis://:pw@h").auth_and_select(&mut out), 1);
        assert_eq!(commands(&out), [vec![b"AUTH".to_vec(), b"pw".to_vec()]]);
        out.clear();
        assert_eq!(url("redis://al:pw@h/12").auth_and_select(&mut out), 2);
        assert_eq!(
            commands(&out),
            [vec![b"AUTH".to_vec(), b"al".to_vec(), b"pw".to_vec()], vec![b"SELECT".to_vec(), b"12".to_vec()]]
        );
        out.clear();
        assert_eq!(url("redis://h/1").auth_and_select(&mut out), 1);
        assert_eq!(out, b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n");
    }
}
