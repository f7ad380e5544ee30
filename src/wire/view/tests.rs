use super::*;
use serde_json::json;

fn definite() -> serde_json::Value {
    json!({
        "possibleMatch": false,
        "pensionProviderSchemeName": "Acme Workplace Pension Scheme",
        "pensionAdministrator": {"name": "Acme Admin", "contactMethods": [
            {"preferred": true, "contactMethodDetails": {"email": "p@example.org"}},
            {"preferred": false, "contactMethodDetails": {"number": "+44 113 496 0000", "usage": ["W"]}},
            {"preferred": false, "contactMethodDetails": {"postalName": "Acme", "line1": "1 High St", "countryCode": "GB"}},
            {"preferred": false, "contactMethodDetails": {"url": "https://example.org"}}
        ]},
        "pensionType": "DC",
        "benefitIllustrations": [{"illustrationDate": "2026-01-01", "illustrationComponents": [
            {"illustrationType": "ERI", "benefitType": "DC", "calculationMethod": "SMPI",
             "payableDetails": {"amountType": "INC", "annualAmount": 1234.5, "payableDate": "2040-01-01"},
             "estimatedPot": 20000.25},
            {"illustrationType": "AP", "unavailableReason": "DCC"}
        ]}],
        "additionalDataSources": [{"url": "https://example.org/sip", "informationType": "SIP"}]
    })
}

#[test]
fn a_full_definite_arrangement_parses_and_round_trips() {
    let a = parse_definite(&definite()).unwrap();
    assert!(matches!(
        a.pension_administrator.contact_methods[2].contact_method_details,
        ContactMethodDetails::Postal(_)
    ));
    let back = serde_json::to_value(&a).unwrap();
    assert_eq!(back, definite());
}

#[test]
fn code_lists_are_enforced_by_path() {
    let mut v = definite();
    v["pensionType"] = json!("XX");
    assert_eq!(parse_definite(&v).unwrap_err().field, "pensionType");
    let mut v = definite();
    v["benefitIllustrations"][0]["illustrationComponents"][1]["unavailableReason"] = json!("ZZZ");
    let e = parse_definite(&v).unwrap_err();
    assert_eq!(
        e.field,
        "benefitIllustrations[0].illustrationComponents[1].unavailableReason"
    );
    let mut v = definite();
    v["surprise"] = json!(1);
    assert_eq!(parse_definite(&v).unwrap_err().field, "surprise");
}

#[test]
fn semantic_rules_hold() {
    let mut v = definite();
    v["benefitIllustrations"][0]["illustrationComponents"][0]
        .as_object_mut()
        .unwrap()
        .remove("payableDetails");
    assert_eq!(
        parse_definite(&v).unwrap_err().field,
        "benefitIllustrations[0].illustrationComponents[0].payableDetails"
    );
    let mut v = definite();
    v["benefitIllustrations"][0]["illustrationComponents"][0]["estimatedPot"] = json!(1.234);
    assert!(parse_definite(&v)
        .unwrap_err()
        .reason
        .contains("2 decimals"));
    let mut v = definite();
    v["pensionAdministrator"]["contactMethods"] = json!([]);
    assert_eq!(
        parse_definite(&v).unwrap_err().field,
        "pensionAdministrator.contactMethods"
    );
    let mut v = definite();
    v["statePensionMessageWelsh"] = json!("Neges");
    assert_eq!(
        parse_definite(&v).unwrap_err().field,
        "statePensionMessageWelsh"
    );
}

#[test]
fn a_possible_arrangement_has_only_its_limited_shape() {
    let a = parse_definite(&definite()).unwrap();
    let p = Arrangement::Possible(PossibleArrangement {
        possible_match: true,
        pension_provider_scheme_name: a.pension_provider_scheme_name.clone(),
        pension_administrator: a.pension_administrator.clone(),
        possible_match_reference: Some("REF1".into()),
        alternate_scheme_name: None,
    });
    let v = serde_json::to_value(&p).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "pensionAdministrator",
            "pensionProviderSchemeName",
            "possibleMatch",
            "possibleMatchReference"
        ]
    );
}

#[test]
fn the_uma_challenge_parses_the_way_maps_splits_it() {
    let h = uma_challenge("https://cas.example.org/token", "dGlja2V0+/=");
    // MaPS: header.Split("ticket=")[1].Split(",")[0].Replace("\"", "")
    let split = |key: &str| {
        h.split(key)
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .replace('"', "")
    };
    assert_eq!(split("ticket="), "dGlja2V0+/=");
    assert_eq!(split("as_uri="), "https://cas.example.org/token");
    assert!(h.starts_with("UMA realm=\"PensionDashboard\""));
}
