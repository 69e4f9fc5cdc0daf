//! Name and room rules (PROTOCOL.md section 1): NFC normalisation and the
//! allowed characters. Knows nothing of who is online.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

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

/// Like [`normalize_name`] with the room limit of 64 code points.
pub fn normalize_room(raw: &str) -> Option<String> {
    normalize(raw, MAX_ROOM_CHARS)
}

/// The namespace `/NAME` for the NAME of a `/ws/NAME` path (already
/// percent-decoded): NAME follows the room rules and is stored in NFC, so
/// `cafe\u{301}` and `caf\u{e9}` are one namespace. `None` when invalid
/// (the path is then a 404).
pub fn normalize_namespace(raw: &str) -> Option<String> {
    normalize_room(raw).map(|name| format!("/{name}"))
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

/// Letters (general category L: Lu, Ll, Lt, Lm, Lo), decimal digits (Nd),
/// `_`, `-`, `.`. Not `char::is_alphabetic`, which also admits Nl (`Ⅻ`) and
/// combining vowel signs, nor `char::is_numeric`, which admits No (`²`, `½`).
fn is_name_char(c: char) -> bool {
    matches!(c, '_' | '-' | '.')
        || c.general_category_group() == GeneralCategoryGroup::Letter
        || c.general_category() == GeneralCategory::DecimalNumber
}

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
    fn letters_are_category_l_and_digits_nd() {
        // Lu, Ll, Lt (ǅ), Lm (ʰ, ー), Lo (日, ا), Nd: Arabic-Indic, Devanagari,
        // fullwidth and mathematical digits.
        for ok in [
            "Aa",
            "\u{1c5}",
            "x\u{2b0}",
            "\u{30fc}",
            "日",
            "\u{627}",
            "\u{660}\u{669}",
            "\u{966}",
            "\u{ff10}",
            "\u{1d7ce}",
        ] {
            assert_eq!(normalize_name(ok).as_deref(), Some(ok), "{ok:?}");
        }
        // Nl (Roman numeral twelve, which `char::is_alphabetic` admits), No,
        // a combining mark alone (Mn) or after a character NFC cannot
        // compose it with, a spacing mark (Mc, `is_alphabetic` too), Pc
        // other than `_`, format characters.
        for bad in ["\u{216b}", "a\u{216b}", "\u{b2}", "\u{301}", "_\u{301}", "\u{93e}", "\u{203f}", "a\u{200d}b"] {
            assert_eq!(normalize_name(bad), None, "{bad:?}");
            assert_eq!(normalize_room(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn namespaces_are_rooms_in_nfc_with_a_slash() {
        assert_eq!(normalize_namespace("cafe\u{301}").as_deref(), Some("/caf\u{e9}"));
        assert_eq!(normalize_namespace("caf\u{e9}").as_deref(), Some("/caf\u{e9}"));
        assert_eq!(normalize_namespace(&"r".repeat(64)), Some(format!("/{}", "r".repeat(64))));
        for bad in ["", "x\u{b2}", "a/b", ".a", "a..b", "\u{216b}", &"r".repeat(65)] {
            assert_eq!(normalize_namespace(bad), None, "{bad:?}");
        }
    }
}
