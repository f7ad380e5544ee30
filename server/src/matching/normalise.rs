//! Normalisation before comparison: the same person written two ways compares equal.
//!
//! Names: transliterated to ASCII (diacritics dropped, `ß` to `SS`), upper case, and everything
//! but letters removed, so `O'Donnell`, `O DONNELL` and `ODONNELL` agree, as do `Smith-Jones` and
//! `SMITH JONES`. NINO: no spaces, upper case, the first 8 characters (the suffix letter is often
//! wrong). Postcode: no spaces, upper case. Dates are parsed to dates.

/// `s` transliterated to ASCII: `deunicode::deunicode`'s text, borrowed when `s` is ASCII
/// already (as nearly every name is), not copied.
fn ascii(s: &str) -> std::borrow::Cow<'_, str> {
    // deunicode's own placeholder for a character it cannot transliterate.
    deunicode::deunicode_with_tofu_cow(s, "[?]")
}

/// A name for comparison.
pub fn name(s: &str) -> String {
    ascii(s)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The first given name, for comparison (`JANE MARY` and `JANE` agree on `JANE`).
pub fn first_given_name(s: &str) -> String {
    let t = ascii(s);
    t.split(|c: char| c.is_whitespace() || c == '-')
        .find(|p| !p.is_empty())
        .map(name)
        .unwrap_or_default()
}

/// The first 8 characters of a NINO without spaces, or `None` if it has the wrong shape.
pub fn nino8(s: &str) -> Option<[u8; 8]> {
    if !crate::wire::find::nino_shape_ok(s) {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, b) in s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .take(8)
        .enumerate()
    {
        out[i] = b.to_ascii_uppercase();
    }
    Some(out)
}

/// A postcode without spaces, upper case.
pub fn postcode(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A `YYYY-MM-DD` date.
pub fn date(s: &str) -> Option<chrono::NaiveDate> {
    crate::parse_ymd(s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name("O'Donnell"), "ODONNELL");
        assert_eq!(name("O DONNELL"), name("o'donnell"));
        assert_eq!(name("Smith-Jones"), name("SMITH JONES"));
        assert_eq!(name("Zoë"), "ZOE");
        assert_eq!(name("José"), "JOSE");
        assert_eq!(name("Strauß"), "STRAUSS");
        assert_eq!(name("  "), "");
        assert_eq!(first_given_name("Jane Mary"), "JANE");
        assert_eq!(first_given_name("Anne-Marie"), "ANNE");
        assert_eq!(first_given_name("Zoë Ann"), "ZOE");
    }

    /// The borrowed transliteration is deunicode's, ASCII or not.
    #[test]
    fn ascii_is_deunicodes_text() {
        for s in [
            "O'Donnell",
            "Zoë",
            "Strauß",
            "北京",
            "a\u{7f}b",
            "",
            "José-María",
            "\u{1F600}x",
        ] {
            assert_eq!(ascii(s), deunicode::deunicode(s), "{s:?}");
        }
    }

    #[test]
    fn ninos() {
        assert_eq!(nino8("qq 12 34 56 c"), Some(*b"QQ123456"));
        assert_eq!(nino8("QQ123456A"), nino8("QQ123456D"));
        assert_eq!(nino8("QQ123456"), Some(*b"QQ123456"));
        assert_eq!(nino8("12345678"), None);
    }

    #[test]
    fn postcodes_and_dates() {
        assert_eq!(postcode("ls1 1aa"), "LS11AA");
        assert_eq!(postcode(" LS11AA "), "LS11AA");
        assert_eq!(
            date("1970-04-21"),
            chrono::NaiveDate::from_ymd_opt(1970, 4, 21)
        );
        assert_eq!(date("21/04/1970"), None);
    }
}
