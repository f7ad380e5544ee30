//! `members generate --count N`: realistic synthetic members, deterministic from a seed.
//!
//! Valid-format NINOs (no D, F, I, Q, U, V; no O second; none of the prefixes HMRC never
//! issues), UK postcodes, names with accents, hyphens and apostrophes, some previous surnames and
//! addresses, one to three pensions per member with a DB/DC mix and stable asset GUIDs.
//! Generated records are the fixtures of the demo, the tests and the load tool, which also
//! derives find requests from them (see [`find_for`]). Their view data is valid against the data
//! standard's schema as written, phone numbers already in its `+44 1134960000` form.

use std::io::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use super::record::{MemberAddress, MemberName, MemberPension, MemberRecord};

const GIVEN: &[&str] = &[
    "JANE",
    "JOHN",
    "MARY",
    "DAVID",
    "SARAH",
    "JAMES",
    "EMMA",
    "ROBERT",
    "OLIVIA",
    "MICHAEL",
    "SOPHIE",
    "WILLIAM",
    "CHLOË",
    "JOSÉ",
    "ZOË",
    "SIÂN",
    "RENÉE",
    "ANNE-MARIE",
    "PRIYA",
    "MOHAMMED",
    "AISHA",
    "LIAM",
    "NIAMH",
    "CALLUM",
    "ISLA",
    "GRACE",
    "THOMAS",
    "AMELIA",
    "HARRY",
    "FREYA",
];
const FAMILY: &[&str] = &[
    "SMITH",
    "JONES",
    "WILLIAMS",
    "BROWN",
    "TAYLOR",
    "DAVIES",
    "EVANS",
    "WILSON",
    "THOMAS",
    "ROBERTS",
    "O'DONNELL",
    "O'BRIEN",
    "SMITH-JONES",
    "MCDONALD",
    "MACLEOD",
    "NGUYEN",
    "PATEL",
    "KHAN",
    "LEWIS",
    "HUGHES",
    "GRIFFITHS",
    "MORGAN",
    "DE LA CRUZ",
    "VAN DER BERG",
    "MÜLLER",
    "WRIGHT",
    "WALKER",
    "ROBINSON",
    "THOMPSON",
    "WHITE",
    "HALL",
    "GREEN",
    "CLARKE",
    "JACKSON",
];
const AREAS: &[&str] = &[
    "LS", "M", "B", "EH", "CF", "BT", "G", "L", "NE", "S", "BS", "SW", "E", "N", "NW", "SE", "OX",
    "CB", "YO", "PL", "EX", "NG", "LE", "CV", "AB", "DD",
];
const STREETS: &[&str] = &[
    "HIGH", "STATION", "CHURCH", "MILL", "PARK", "VICTORIA", "GREEN", "MANOR", "KINGS", "QUEENS",
];
const STREET_KINDS: &[&str] = &["STREET", "ROAD", "AVENUE", "LANE", "CLOSE", "DRIVE"];
const NINO_FIRST: &[u8] = b"ABCEGHJKLMNOPRSTWXYZ";
const NINO_SECOND: &[u8] = b"ABCEGHJKLMNPRSTWXYZ";
const NINO_BANNED: &[&[u8; 2]] = &[b"BG", b"GB", b"NK", b"KN", b"TN", b"NT", b"ZZ"];
const POSTCODE_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// The schemes generated members belong to: (holdername, scheme name, administrator).
pub fn schemes(seed: u64) -> Vec<(Uuid, &'static str, &'static str)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    [
        (
            "Acme Workplace Pension Scheme",
            "Acme Pensions Administration Ltd",
        ),
        (
            "Northern Counties Final Salary Scheme",
            "Northern Pension Services",
        ),
        (
            "Civic Retirement Savings Plan",
            "Civic Administration Services",
        ),
    ]
    .into_iter()
    .map(|(n, a)| (uuid(&mut rng), n, a))
    .collect()
}

fn uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

/// A valid-format NINO; `i` keeps them distinct within a file.
pub fn nino(rng: &mut StdRng, i: u64) -> String {
    loop {
        let a = *pick(rng, NINO_FIRST);
        let b = *pick(rng, NINO_SECOND);
        if NINO_BANNED.contains(&&[a, b]) {
            continue;
        }
        let suffix = b"ABCD"[rng.gen_range(0..4)];
        return format!(
            "{}{}{:06}{}",
            a as char,
            b as char,
            i % 1_000_000,
            suffix as char
        );
    }
}

/// A UK-format postcode.
pub fn postcode(rng: &mut StdRng) -> String {
    let l = |rng: &mut StdRng| POSTCODE_LETTERS[rng.gen_range(0..POSTCODE_LETTERS.len())] as char;
    format!(
        "{}{} {}{}{}",
        pick(rng, AREAS),
        rng.gen_range(1..=20),
        rng.gen_range(0..=9),
        l(rng),
        l(rng)
    )
}

fn address(rng: &mut StdRng) -> MemberAddress {
    MemberAddress {
        address_line1: Some(format!(
            "{} {} {}",
            rng.gen_range(1..=250),
            pick(rng, STREETS),
            pick(rng, STREET_KINDS)
        )),
        address_line2: None,
        postcode: Some(postcode(rng)),
        country_code: Some("GB".into()),
    }
}

fn date(rng: &mut StdRng, from_year: i32, to_year: i32) -> chrono::NaiveDate {
    let y = rng.gen_range(from_year..=to_year);
    let d = rng.gen_range(1..=365);
    chrono::NaiveDate::from_yo_opt(y, d).expect("day of year 1..=365 exists")
}

fn view_data(
    rng: &mut StdRng,
    scheme: &str,
    admin: &str,
    dob: chrono::NaiveDate,
    member_ref: &str,
) -> serde_json::Value {
    let kind = match rng.gen_range(0..10) {
        0..=5 => "DC",
        6..=8 => "DB",
        _ => "HYB",
    };
    let start = date(rng, 1995, 2020);
    let retirement = dob
        .checked_add_months(chrono::Months::new(12 * 67))
        .unwrap_or(dob);
    let illustration_date =
        chrono::Utc::now().date_naive() - chrono::Days::new(rng.gen_range(10..300));
    let (benefit, method) = if kind == "DB" {
        ("DB", "BS")
    } else {
        ("DC", "SMPI")
    };
    let annual = f64::from(rng.gen_range(1_000..40_000)) + f64::from(rng.gen_range(0..100)) / 100.0;
    let mut eri = json!({
        "illustrationType": "ERI",
        "benefitType": benefit,
        "calculationMethod": method,
        "payableDetails": {"amountType": "INC", "annualAmount": annual,
                           "payableDate": retirement.to_string(), "increasing": true}
    });
    if kind != "DB" {
        let pot = f64::from(rng.gen_range(5_000..400_000));
        eri["estimatedPot"] = json!(pot);
    }
    json!({
        "possibleMatch": false,
        "pensionProviderSchemeName": scheme,
        "pensionAdministrator": {
            "name": admin,
            "contactMethods": [
                {"preferred": true, "contactMethodDetails": {"email": "pensions@example.org"}},
                {"preferred": false, "contactMethodDetails": {"number": "+44 1134960000", "usage": ["W"]}}
            ]
        },
        "pensionReference": member_ref,
        "pensionType": kind,
        "pensionOrigin": "WM",
        "pensionStatus": if rng.gen_bool(0.7) { "A" } else { "I" },
        "pensionStartDate": start.to_string(),
        "retirementDate": retirement.to_string(),
        "dateOfBirth": dob.to_string(),
        "employmentMembershipPeriods": [{"employerName": "EXAMPLE EMPLOYER LTD",
                                          "employmentStartDate": start.to_string()}],
        "benefitIllustrations": [{"illustrationDate": illustration_date.to_string(),
                                  "illustrationComponents": [eri]}],
        "additionalDataSources": [{"url": "https://example.org/scheme/sip",
                                   "informationType": "SIP"}]
    })
}

/// Generates member `i` of a file seeded with `seed`.
pub fn member(seed: u64, i: u64, schemes: &[(Uuid, &str, &str)]) -> MemberRecord {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
    let (holdername, scheme, admin) = schemes[rng.gen_range(0..schemes.len())];
    let dob = date(&mut rng, 1950, 2000);
    let member_id = format!("M{i:08}");
    let pensions = (0..rng.gen_range(1..=3))
        .map(|k| {
            let today = chrono::Utc::now().date_naive();
            // Most values come from a recent statement; a fifth are stale and need calculating.
            let age_days = if rng.gen_bool(0.8) {
                rng.gen_range(10..300)
            } else {
                rng.gen_range(500..900)
            };
            MemberPension {
                asset_guid: uuid(&mut rng),
                view_data: view_data(&mut rng, scheme, admin, dob, &format!("{member_id}-{k}")),
                statement_date: Some(today - chrono::Days::new(age_days)),
                calculation_date: None,
            }
        })
        .collect();
    MemberRecord {
        member_id,
        holdername,
        names: vec![MemberName {
            given_name: pick(&mut rng, GIVEN).to_string(),
            family_name: pick(&mut rng, FAMILY).to_string(),
        }],
        previous_family_names: if rng.gen_bool(0.1) {
            vec![pick(&mut rng, FAMILY).to_string()]
        } else {
            vec![]
        },
        date_of_birth: dob.to_string(),
        nino: rng.gen_bool(0.95).then(|| nino(&mut rng, i)),
        addresses: vec![address(&mut rng)],
        previous_addresses: if rng.gen_bool(0.15) {
            vec![address(&mut rng)]
        } else {
            vec![]
        },
        pensions,
    }
}

/// Writes `count` members as JSON lines.
pub fn write_jsonl(out: impl std::io::Write, count: u64, seed: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    let schemes = schemes(seed);
    for i in 0..count {
        serde_json::to_writer(&mut out, &member(seed, i, &schemes))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Which outcome a derived find request should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKind {
    /// Same NINO, family name and date of birth: `match-yes`.
    Yes,
    /// Same NINO and date of birth, another family name: `match-possible`.
    Possible,
    /// Nobody in the file.
    No,
}

/// A fake UAT (the provider never verifies it; the CAS simulator reads its `sub`).
pub fn uat(sub: &str) -> String {
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let exp = chrono::Utc::now().timestamp() + 60;
    format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            &json!({"sub": sub, "iss": "http://pensionsdashboard.org/pfsissuer", "aud": "cas", "exp": exp})
        ),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"simulated-signature")
    )
}

/// A find request body for `m` with the given outcome, and a user `sub`.
pub fn find_for(m: &MemberRecord, kind: FindKind, sub: &str) -> serde_json::Value {
    let name = &m.names[0];
    let family = match kind {
        FindKind::Yes => name.family_name.clone(),
        FindKind::Possible | FindKind::No => "NOBODY-LIKETHIS".into(),
    };
    let dob = match kind {
        FindKind::No => "1931-02-03".to_string(),
        _ => m.date_of_birth.clone(),
    };
    let nino = match kind {
        // Possible needs the NINO to carry the match (family name differs).
        FindKind::Yes | FindKind::Possible => m.nino.clone().unwrap_or_else(|| "ZX000000A".into()),
        FindKind::No => "TW999999A".into(),
    };
    let addr = m.addresses.first().cloned().unwrap_or_default();
    json!({
        "uat": uat(sub),
        "findData": {
            "names": [{"givenName": crate::matching::normalise::name(&name.given_name),
                       "familyName": family, "verified": true}],
            "dateOfBirth": {"value": dob, "verified": true},
            "nino": {"value": nino, "verified": false},
            "addresses": [{"addressLine1": addr.address_line1, "postcode": addr.postcode,
                           "countryCode": "GB", "verified": true}]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_members_are_valid_and_deterministic() {
        let s = schemes(7);
        for i in 0..500 {
            let m = member(7, i, &s);
            m.validate().unwrap_or_else(|e| panic!("member {i}: {e}"));
            // Written in the standard's form: an import's normalising changes nothing.
            let mut normalised = m.clone();
            normalised.normalise().unwrap();
            assert_eq!(
                serde_json::to_value(&normalised).unwrap(),
                serde_json::to_value(&m).unwrap()
            );
            assert!(crate::wire::find::nino_shape_ok(
                m.nino.as_deref().unwrap_or("AB123456C")
            ));
        }
        let a = serde_json::to_string(&member(7, 3, &s)).unwrap();
        let b = serde_json::to_string(&member(7, 3, &s)).unwrap();
        assert_eq!(a, b, "asset GUIDs and data are stable for a seed");
    }

    #[tokio::test]
    async fn derived_finds_parse_and_match_as_intended() {
        let s = schemes(1);
        let dir = tempfile::tempdir().unwrap();
        let key =
            crate::sealed::DataKey::from_hex(&crate::sealed::DataKey::generate_hex()).unwrap();
        let store =
            crate::store::Store::open(&dir.path().join("s.sqlite"), key, Default::default())
                .unwrap();
        let index_key = store.index_key().await.unwrap();
        let members: Vec<_> = (0..200).map(|i| member(1, i, &s)).collect();
        let changes = members
            .iter()
            .map(|m| crate::store::MemberChange::Upsert(m.to_new_member(&index_key)))
            .collect();
        store.apply_members(changes, false).await.unwrap();
        let index = crate::matching::index::load(&store, &index_key)
            .await
            .unwrap()
            .index;
        let matcher =
            crate::matching::index::Matcher::new(index, index_key, store, &Default::default());
        let m = members.iter().find(|m| m.nino.is_some()).unwrap();
        for (kind, want) in [
            (FindKind::Yes, Some(crate::matching::MatchStatus::Yes)),
            (
                FindKind::Possible,
                Some(crate::matching::MatchStatus::Possible),
            ),
            (FindKind::No, None),
        ] {
            let body = serde_json::to_vec(&find_for(m, kind, "sub-1")).unwrap();
            let find = crate::wire::find::parse(&body).unwrap();
            let got = matcher.find_matches(&find.find_data).await.unwrap();
            assert_eq!(got.first().map(|p| p.status), want, "{kind:?}");
            if want.is_some() {
                assert_eq!(got.len(), m.pensions.len());
            }
        }
    }
}
