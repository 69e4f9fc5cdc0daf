//! Name and room rules (PROTOCOL.md section 1): NFC normalisation and the
//! allowed characters. Knows nothing of who is online.

use unicode_normalization::UnicodeNormalization;

/// Longest user name, in code points after NFC.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room (and namespace) name, in code points after NFC.
pub const MAX_ROOM_CHARS: usize = 64;

/// Normalises `raw` to NFC and returns it if it is a valid user name: 1 to 32
/// code points, letters, Nd digits, `_`, `-`, `.`, no `..`, no leading or
/// trailing `.`. `None` when invalid. Names compare equal iff their NFC
/// forms do (case-sensitive), so the returned form is the one to store.
pub fn normalize_name(raw: &str) -> Option<String> {
    normalize(raw, MAX_NAME_CHARS)
}

/// Like [`normalize_name`] with the room limit of 64 code points. Namespace
/// names (`/ws/NAME`) follow the same rules.
pub fn normalize_room(raw: &str) -> Option<String> {
    normalize(raw, MAX_ROOM_CHARS)
}

fn normalize(raw: &str, max_chars: usize) -> Option<String> {
    // Cheap pre-check so a 64 KiB "name" is not normalised in full: one NFC
    // character comes from at most 4 code points (the longest canonical
    // decomposition) of at most 4 bytes each.
    if raw.is_empty() || raw.len() > max_chars * 4 * 4 {
        return None;
    }
    let nfc: String = raw.nfc().collect();
    is_valid(&nfc, max_chars).then_some(nfc)
}

/// The section 1 rules on an already-normalised string.
fn is_valid(s: &str, max_chars: usize) -> bool {
    let chars = s.chars().count();
    (1..=max_chars).contains(&chars)
        && s.chars().all(is_name_char)
        && !s.contains("..")
        && !s.starts_with('.')
        && !s.ends_with('.')
}

/// Letters (approximated by Unicode `Alphabetic`, which is category L plus Nl
/// and some combining vowel signs), decimal digits (Nd), `_`, `-`, `.`.
fn is_name_char(c: char) -> bool {
    c.is_alphabetic() || is_decimal_digit(c) || matches!(c, '_' | '-' | '.')
}

/// Unicode category Nd. `char::is_numeric` alone would also admit No and Nl
/// (`²`, `½`, `①`), which section 1 excludes.
fn is_decimal_digit(c: char) -> bool {
    if c.is_ascii_digit() {
        return true;
    }
    // The table is Unicode 14 plus the later digit blocks; intersecting with
    // is_numeric keeps a stale or wrong range from admitting non-numbers.
    c.is_numeric()
        && ND_RANGES
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
}

/// Inclusive ranges of category Nd, sorted, disjoint.
const ND_RANGES: &[(char, char)] = &[
    ('\u{30}', '\u{39}'),
    ('\u{660}', '\u{669}'),
    ('\u{6F0}', '\u{6F9}'),
    ('\u{7C0}', '\u{7C9}'),
    ('\u{966}', '\u{96F}'),
    ('\u{9E6}', '\u{9EF}'),
    ('\u{A66}', '\u{A6F}'),
    ('\u{AE6}', '\u{AEF}'),
    ('\u{B66}', '\u{B6F}'),
    ('\u{BE6}', '\u{BEF}'),
    ('\u{C66}', '\u{C6F}'),
    ('\u{CE6}', '\u{CEF}'),
    ('\u{D66}', '\u{D6F}'),
    ('\u{DE6}', '\u{DEF}'),
    ('\u{E50}', '\u{E59}'),
    ('\u{ED0}', '\u{ED9}'),
    ('\u{F20}', '\u{F29}'),
    ('\u{1040}', '\u{1049}'),
    ('\u{1090}', '\u{1099}'),
    ('\u{17E0}', '\u{17E9}'),
    ('\u{1810}', '\u{1819}'),
    ('\u{1946}', '\u{194F}'),
    ('\u{19D0}', '\u{19D9}'),
    ('\u{1A80}', '\u{1A89}'),
    ('\u{1A90}', '\u{1A99}'),
    ('\u{1B50}', '\u{1B59}'),
    ('\u{1BB0}', '\u{1BB9}'),
    ('\u{1C40}', '\u{1C49}'),
    ('\u{1C50}', '\u{1C59}'),
    ('\u{A620}', '\u{A629}'),
    ('\u{A8D0}', '\u{A8D9}'),
    ('\u{A900}', '\u{A909}'),
    ('\u{A9D0}', '\u{A9D9}'),
    ('\u{A9F0}', '\u{A9F9}'),
    ('\u{AA50}', '\u{AA59}'),
    ('\u{ABF0}', '\u{ABF9}'),
    ('\u{FF10}', '\u{FF19}'),
    ('\u{104A0}', '\u{104A9}'),
    ('\u{10D30}', '\u{10D39}'),
    ('\u{10D40}', '\u{10D49}'),
    ('\u{11066}', '\u{1106F}'),
    ('\u{110F0}', '\u{110F9}'),
    ('\u{11136}', '\u{1113F}'),
    ('\u{111D0}', '\u{111D9}'),
    ('\u{112F0}', '\u{112F9}'),
    ('\u{11450}', '\u{11459}'),
    ('\u{114D0}', '\u{114D9}'),
    ('\u{11650}', '\u{11659}'),
    ('\u{116C0}', '\u{116C9}'),
    ('\u{116D0}', '\u{116E3}'),
    ('\u{11730}', '\u{11739}'),
    ('\u{118E0}', '\u{118E9}'),
    ('\u{11950}', '\u{11959}'),
    ('\u{11BF0}', '\u{11BF9}'),
    ('\u{11C50}', '\u{11C59}'),
    ('\u{11D50}', '\u{11D59}'),
    ('\u{11DA0}', '\u{11DA9}'),
    ('\u{11F50}', '\u{11F59}'),
    ('\u{16130}', '\u{16139}'),
    ('\u{16A60}', '\u{16A69}'),
    ('\u{16AC0}', '\u{16AC9}'),
    ('\u{16B50}', '\u{16B59}'),
    ('\u{16D70}', '\u{16D79}'),
    ('\u{1CCF0}', '\u{1CCF9}'),
    ('\u{1D7CE}', '\u{1D7FF}'),
    ('\u{1E140}', '\u{1E149}'),
    ('\u{1E2F0}', '\u{1E2F9}'),
    ('\u{1E4F0}', '\u{1E4F9}'),
    ('\u{1E5F1}', '\u{1E5FA}'),
    ('\u{1E950}', '\u{1E959}'),
    ('\u{1FBF0}', '\u{1FBF9}'),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_and_punctuation() {
        for ok in ["alice", "Bob_2", "a-b.c", "é", "日本語", "Ωmega", "x", "٣٤", "a.b.c"] {
            assert_eq!(normalize_name(ok).as_deref(), Some(ok), "{ok}");
        }
        assert!(normalize_name(&"a".repeat(32)).is_some());
        assert!(normalize_room(&"r".repeat(64)).is_some());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in
            ["", " ", "a b", ".a", "a.", "a..b", "..", ".", "a/b", "a:b", "a$b", "a\nb", "x²", "½", "①", "😀", "/quit"]
        {
            assert_eq!(normalize_name(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_name(&"a".repeat(33)), None);
        assert_eq!(normalize_room(&"r".repeat(65)), None);
        assert_eq!(normalize_name(&"a".repeat(70_000)), None);
    }

    #[test]
    fn nfc_makes_composed_and_decomposed_equal() {
        let composed = "caf\u{e9}";
        let decomposed = "cafe\u{301}";
        assert_eq!(normalize_name(decomposed).as_deref(), Some(composed));
        assert_eq!(normalize_name(composed).as_deref(), Some(composed));
        // 32 decomposed characters are 64 code points before NFC, 32 after.
        assert!(normalize_name(&"e\u{301}".repeat(32)).is_some());
    }

    #[test]
    fn nd_table_is_sorted_and_matches_known_digits() {
        assert!(ND_RANGES.windows(2).all(|w| w[0].1 < w[1].0));
        for digit in ['0', '9', '\u{660}', '\u{FF10}', '\u{1D7CE}', '\u{1D7FF}'] {
            assert!(is_decimal_digit(digit), "{digit:?}");
        }
        for other in ['²', '½', '①', 'Ⅻ', 'a'] {
            assert!(!is_decimal_digit(other), "{other:?}");
        }
    }
}
