use super::*;
use crate::matching::{normalise, MatchStatus};

fn person(
    given: &str,
    family: &str,
    dob: &str,
    nino: Option<&str>,
    postcode: Option<&str>,
) -> Person {
    Person {
        names: vec![(normalise::first_given_name(given), normalise::name(family))],
        previous_family_names: vec![],
        date_of_birth: normalise::date(dob),
        nino8: nino.and_then(normalise::nino8),
        postcodes: postcode.map(normalise::postcode).into_iter().collect(),
        previous_postcodes: vec![],
    }
}

fn decide(find: &Person, member: &Person) -> Option<(MatchStatus, String)> {
    RuleSet::default_rules()
        .evaluate(find, member)
        .map(|r| (r.outcome, r.reason.clone()))
}

fn member() -> Person {
    person(
        "Jane",
        "O'Donnell",
        "1970-04-21",
        Some("QQ123456C"),
        Some("LS1 1AA"),
    )
}

#[test]
fn nino_family_name_and_dob_is_a_yes() {
    let find = person(
        "JANE",
        "ODONNELL",
        "1970-04-21",
        Some("QQ 12 34 56 A"),
        None,
    );
    assert_eq!(
        decide(&find, &member()),
        Some((MatchStatus::Yes, "nino_family_name_dob".into()))
    );
}

#[test]
fn nino_suffix_and_spaces_do_not_matter() {
    let find = person("X", "O DONNELL", "1970-04-21", Some("qq123456"), None);
    assert_eq!(decide(&find, &member()).unwrap().0, MatchStatus::Yes);
}

#[test]
fn names_dob_and_postcode_without_contradicting_nino_is_a_yes() {
    let find = person("JANE", "O'DONNELL", "1970-04-21", None, Some("ls11aa"));
    assert_eq!(
        decide(&find, &member()),
        Some((MatchStatus::Yes, "names_dob_postcode".into()))
    );
    // A contradicting NINO stops that yes; names + DOB with both NINOs present is not "no_nino".
    let find = person(
        "JANE",
        "O'DONNELL",
        "1970-04-21",
        Some("AB999999C"),
        Some("LS1 1AA"),
    );
    assert_eq!(decide(&find, &member()), None);
}

#[test]
fn family_name_mismatch_is_possible() {
    let find = person("JANE", "SMITH", "1970-04-21", Some("QQ123456C"), None);
    assert_eq!(
        decide(&find, &member()),
        Some((MatchStatus::Possible, "family_name_mismatch".into()))
    );
}

#[test]
fn names_and_dob_without_a_nino_is_possible() {
    let find = person("JANE", "O'DONNELL", "1970-04-21", None, Some("M1 1AA"));
    assert_eq!(
        decide(&find, &member()),
        Some((MatchStatus::Possible, "no_nino".into()))
    );
    let mut m = member();
    m.nino8 = None;
    let find = person("JANE", "O'DONNELL", "1970-04-21", Some("QQ123456C"), None);
    assert_eq!(
        decide(&find, &m),
        Some((MatchStatus::Possible, "no_nino".into()))
    );
}

#[test]
fn historic_surname_on_either_side_is_possible() {
    // The member married: the find carries the maiden name as a previous family name... and
    // the current name differs from the scheme's record.
    let mut find = person("JANE", "BROWN", "1970-04-21", Some("QQ123456C"), None);
    find.previous_family_names = vec![normalise::name("O'Donnell")];
    assert_eq!(
        decide(&find, &member()),
        Some((MatchStatus::Possible, "historic_data".into()))
    );
    // The scheme holds the previous name.
    let mut m = person("JANE", "BROWN", "1970-04-21", Some("QQ123456C"), None);
    m.previous_family_names = vec![normalise::name("SMITH")];
    let find = person("JANE", "SMITH", "1970-04-21", Some("QQ123456C"), None);
    assert_eq!(
        decide(&find, &m),
        Some((MatchStatus::Possible, "historic_data".into()))
    );
}

#[test]
fn previous_address_is_possible() {
    let mut find = person(
        "JANE",
        "O'DONNELL",
        "1970-04-21",
        Some("QQ123456C"),
        Some("B1 1AA"),
    );
    find.nino8 = None;
    find.previous_postcodes = vec![normalise::postcode("LS1 1AA")];
    let mut m = member();
    m.nino8 = None;
    // no_nino fires first for names + DOB when a NINO is absent: still a possible.
    assert_eq!(decide(&find, &m).unwrap().0, MatchStatus::Possible);
    // With the NINO present on the member only, the historic postcode rule decides.
    let m = member();
    assert_eq!(decide(&find, &m).unwrap().0, MatchStatus::Possible);
}

#[test]
fn hyphenated_and_accented_names_agree() {
    let m = person("Zoë", "Smith-Jones", "1980-01-02", Some("AB123456C"), None);
    let find = person("ZOE", "SMITH JONES", "1980-01-02", Some("AB123456C"), None);
    assert_eq!(decide(&find, &m).unwrap().0, MatchStatus::Yes);
    let find = person("ZOE", "SMITHJONES", "1980-01-02", Some("AB123456"), None);
    assert_eq!(decide(&find, &m).unwrap().0, MatchStatus::Yes);
}

#[test]
fn swapped_given_and_family_names_are_possible() {
    let m = person("JOHN", "SMITH", "1980-01-02", None, None);
    let find = person("SMITH", "JOHN", "1980-01-02", None, None);
    assert_eq!(
        decide(&find, &m),
        Some((MatchStatus::Possible, "names_swapped".into()))
    );
}

#[test]
fn different_people_do_not_match() {
    let find = person(
        "JANE",
        "O'DONNELL",
        "1971-04-21",
        Some("AB999999C"),
        Some("LS1 1AA"),
    );
    assert_eq!(decide(&find, &member()), None);
    let find = person("JOHN", "SMITH", "1970-04-21", None, None);
    assert_eq!(decide(&find, &member()), None);
    // A NINO and DOB with nothing else is not enough on its own when the name is absent.
    let find = Person {
        nino8: normalise::nino8("QQ123456C"),
        date_of_birth: normalise::date("1970-04-21"),
        ..Person::default()
    };
    assert_eq!(decide(&find, &member()), None);
}

#[test]
fn rules_are_configuration() {
    let toml_text = r#"
        version = "acme-2"
        [[rules]]
        outcome = "match-yes"
        reason = "nino_dob"
        agree = ["nino", "date_of_birth"]
    "#;
    let set: RuleSet = toml::from_str(toml_text).unwrap();
    let find = person("X", "SMITH", "1970-04-21", Some("QQ123456C"), None);
    assert_eq!(set.evaluate(&find, &member()).unwrap().reason, "nino_dob");
    assert!(toml::from_str::<RuleSet>(
        "version = \"x\"\n[[rules]]\noutcome = \"maybe\"\nreason = \"r\""
    )
    .is_err());
}
