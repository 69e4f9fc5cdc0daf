//! Log lines for people and for log shippers. soket's messages are written
//! as `event=NAME key=value ...` (a value with spaces or quotes is quoted),
//! so the text format is already parseable; `--log-format json` turns each
//! line into one JSON object with those fields beside `ts`, `level`,
//! `target` and the whole `msg`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::SystemTime;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-27T10:00:00Z DEBUG soket::conn] event=close conn=3 code=1000`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the logger: `RUST_LOG` filters (default `info`), lines go to stderr.
pub fn init(format: LogFormat) {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|out, record| {
            let line =
                json_line(SystemTime::now(), record.level().as_str(), record.target(), &record.args().to_string());
            writeln!(out, "{line}")
        });
    }
    builder.init();
}

/// One log record as a JSON object: `ts` (RFC 3339, UTC), `level`,
/// `target`, `msg`, and each `key=value` field of the message (a field
/// named like one of those four is left in `msg` only).
pub fn json_line(at: SystemTime, level: &str, target: &str, message: &str) -> String {
    let mut object = serde_json::Map::new();
    object.insert("ts".into(), humantime::format_rfc3339_millis(at).to_string().into());
    object.insert("level".into(), level.into());
    object.insert("target".into(), target.into());
    object.insert("msg".into(), message.into());
    for (key, value) in fields(message) {
        object.entry(key).or_insert_with(|| value.into());
    }
    serde_json::Value::Object(object).to_string()
}

/// The `key=value` fields of a message, in order: a key is letters, digits,
/// `_`, `-` and `.`; a value runs to the next space, or is a double-quoted
/// string with `\"` and `\\` escapes.
pub fn fields(message: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = message;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let key_len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || b"_-.".contains(b)).count();
        let (key, after) = rest.split_at(key_len);
        let Some(after) = after.strip_prefix('=').filter(|_| !key.is_empty()) else {
            // Not a field: skip this word.
            rest = rest.split_once(' ').map_or("", |(_, tail)| tail);
            continue;
        };
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted),
            None => after.split_once(' ').map_or((after.to_owned(), ""), |(v, t)| (v.to_owned(), t)),
        };
        out.push((key.to_owned(), value));
        rest = tail;
    }
    out
}

/// A quoted value (after its opening quote) and what follows it.
fn unquote(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, text.get(at + 1..).unwrap_or_default()),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            c => value.push(c),
        }
    }
    (value, "")
}

/// `value` as a field value: as it is when it has no space, quote or
/// backslash and is not empty, else quoted with `\"` and `\\`.
pub fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '"', '\\', '=']) && !value.contains(char::is_control) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn fields_are_read_back_from_a_message() {
        let message = format!("event=http conn=3 method=GET path={} status=404 free text", quote("/a b\"c"));
        assert_eq!(
            fields(&message),
            [("event", "http"), ("conn", "3"), ("method", "GET"), ("path", "/a b\"c"), ("status", "404")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(fields("no fields here = at all"), []);
        assert_eq!(fields("reason=\"unterminated"), [("reason".to_owned(), "unterminated".to_owned())]);
    }

    #[test]
    fn quoting_leaves_plain_values_alone() {
        assert_eq!(quote("lobby"), "lobby");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("slow reader"), "\"slow reader\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("tab\there"), "\"tab\\u{9}here\"");
    }

    #[test]
    fn a_json_line_has_the_record_and_its_fields() {
        let at = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        let line = json_line(at, "DEBUG", "soket::conn", "event=close conn=7 code=1000 reason=\"bye now\" level=x");
        let value: serde_json::Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(value["ts"], "2027-01-15T08:00:00.123Z");
        assert_eq!(value["level"], "DEBUG", "a field cannot replace the record's own");
        assert_eq!(value["target"], "soket::conn");
        assert_eq!(value["event"], "close");
        assert_eq!(value["code"], "1000");
        assert_eq!(value["reason"], "bye now");
        assert!(!line.contains('\n'));
    }
}
