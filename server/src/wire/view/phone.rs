//! Phone numbers in the data standard's form: `+<country code> <number>`, one space, digits only
//! after it (the schema's `^\+(?:[0-9]?){1,3}\s(?:[0-9]?){3,14}[0-9]$`), e.g. `+44 1134960000`.
//!
//! Numbers are parsed by libphonenumber's rules (the `phonenumber` crate) with the UK as the
//! region of numbers written without a country code, so the common UK forms all come out the
//! same: `+44 113 496 0000`, `0113 496 0000`, `+441134960000`, `(0113) 4960000`,
//! `0044 113 496 0000`, `+44 (0)113 496 0000`. Normalising puts a number in the standard's form;
//! it does not judge whether the number is in service: libphonenumber's tables refuse Ofcom's
//! drama ranges (`07700 900xxx`), which test data uses.
//!
//! A number already in the standard's form is kept as it is (the schema takes it, and most
//! numbers are stored so: parsing is the costly part of an import's normalising). Other
//! countries' numbers need their `+` or `00`, and are taken from the parser only when its tables
//! know them as valid: the crate drops a leading zero that is part of the number (Italy's
//! `+39 06...`), and an invalid result is the sign; such a number must come in the standard's
//! form. Anything else (letters, an extension, a number that cannot be read) is refused: the
//! caller reports the field, never the value.

use phonenumber::{country, Mode};

/// The country code of numbers written without one.
const UK: u16 = 44;

/// `number` in the standard's form, or `None` when it cannot be put in it.
pub fn normalise(number: &str) -> Option<String> {
    if super::schema::phone_number_ok(number) {
        return Some(number.to_owned());
    }
    // libphonenumber reads letters as keypad digits (`0800 FLOWERS`); a data file's letters are
    // more likely a mistake, or an extension ("ext 12") the standard's form cannot carry.
    if number.chars().any(char::is_alphabetic) {
        return None;
    }
    let parsed = phonenumber::parse(Some(country::Id::GB), number)
        .ok()
        .filter(|n| n.extension().is_none())
        .filter(|n| n.code().value() == UK || phonenumber::is_valid(n));
    if let Some(n) = parsed {
        let e164 = n.format().mode(Mode::E164).to_string();
        let code = n.code().value().to_string();
        let national = e164.strip_prefix('+')?.strip_prefix(code.as_str())?;
        let standard = format!("+{code} {national}");
        return super::schema::phone_number_ok(&standard).then_some(standard);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_uk_forms_come_out_in_the_standards_form() {
        for form in [
            "+44 1134960000",
            "+44 113 496 0000",
            "0113 496 0000",
            "+441134960000",
            "(0113) 4960000",
            "01134960000",
            "0044 113 496 0000",
            "+44 (0)113 496 0000",
            "+44 113-496-0000",
            " 0113 496 0000 ",
        ] {
            assert_eq!(normalise(form).as_deref(), Some("+44 1134960000"), "{form}");
        }
        assert_eq!(normalise("07700 900123").as_deref(), Some("+44 7700900123"));
        assert_eq!(
            normalise("0800 123 4567").as_deref(),
            Some("+44 8001234567")
        );
    }

    #[test]
    fn other_countries_keep_their_code() {
        assert_eq!(
            normalise("+353 1 851 0000").as_deref(),
            Some("+353 18510000")
        );
        assert_eq!(
            normalise("+1 (202) 555-0123").as_deref(),
            Some("+1 2025550123")
        );
        // Italy's leading zero is part of the number, and the parser drops it: such a number
        // is refused unless it is given in the standard's form, which is kept as it is.
        assert_eq!(normalise("+39 06 1234 5678"), None);
        assert_eq!(
            normalise("+39 0612345678").as_deref(),
            Some("+39 0612345678")
        );
    }

    #[test]
    fn what_cannot_be_normalised_is_refused() {
        for bad in [
            "",
            "n/a",
            "0800 FLOWERS",
            "0113 496 0000 ext 12",
            "0113 496 0000 x12",
            "+",
            "+44",
            "call the office",
        ] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
