use super::*;
use serde_json::json;

fn definite() -> serde_json::Value {
    json!({
        "possibleMatch": false,
        "pensionProviderSchemeName": "Acme Workplace Pension Scheme",
        "pensionAdministrator": {"name": "Acme Admin", "contactMethods": [
            {"preferred": true, "contactMethodDetails": {"email": "p@example.org"}},
            {"preferred": false, "contactMethodDetails": {"number": "+44 1134960000", "usage": ["W"]}},
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
    let a = check_definite(&definite()).unwrap();
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
    assert_eq!(check_definite(&v).unwrap_err().field, "pensionType");
    let mut v = definite();
    v["benefitIllustrations"][0]["illustrationComponents"][1]["unavailableReason"] = json!("ZZZ");
    let e = check_definite(&v).unwrap_err();
    assert_eq!(
        e.field,
        "benefitIllustrations[0].illustrationComponents[1].unavailableReason"
    );
    // DCHA is an ERI's reason only: the schema's AP code list has no DCHA.
    v["benefitIllustrations"][0]["illustrationComponents"][1]["unavailableReason"] = json!("DCHA");
    assert_eq!(
        check_definite(&v).unwrap_err().field,
        "benefitIllustrations[0].illustrationComponents[1].unavailableReason"
    );
}

#[test]
fn unknown_members_are_refused_where_the_schema_closes_the_object_and_not_served_elsewhere() {
    let mut v = definite();
    v["pensionAdministrator"]["surprise"] = json!(1);
    let e = check_definite(&v).unwrap_err();
    assert_eq!(e.field, "pensionAdministrator.surprise");
    assert_eq!(e.reason, "not a member the standard allows here");
    // The arrangement itself and the contact methods are open in the standard: taken, and the
    // view (which serves the typed model) leaves them out.
    let mut v = definite();
    v["surprise"] = json!(1);
    v["pensionAdministrator"]["contactMethods"][0]["contactMethodDetails"]["note"] = json!("x");
    let served = serde_json::to_value(check_definite(&v).unwrap()).unwrap();
    assert_eq!(served, definite());
}

#[test]
fn semantic_rules_hold() {
    let mut v = definite();
    v["benefitIllustrations"][0]["illustrationComponents"][0]
        .as_object_mut()
        .unwrap()
        .remove("payableDetails");
    assert_eq!(
        check_definite(&v).unwrap_err().field,
        "benefitIllustrations[0].illustrationComponents[0].payableDetails"
    );
    let mut v = definite();
    v["benefitIllustrations"][0]["illustrationComponents"][0]["estimatedPot"] = json!(1.234);
    let e = check_definite(&v).unwrap_err();
    assert_eq!(
        e.field,
        "benefitIllustrations[0].illustrationComponents[0].estimatedPot"
    );
    assert!(e.reason.contains("multiple of 0.01"), "{e}");
    assert!(!e.to_string().contains("1.234"), "{e}");
    let mut v = definite();
    v["pensionAdministrator"]["contactMethods"] = json!([]);
    assert_eq!(
        check_definite(&v).unwrap_err().field,
        "pensionAdministrator.contactMethods"
    );
    let mut v = definite();
    v["statePensionMessageWelsh"] = json!("Neges");
    assert_eq!(
        check_definite(&v).unwrap_err().field,
        "statePensionMessageWelsh"
    );
}

#[test]
fn the_schema_refuses_what_the_typed_model_alone_took() {
    let method = "/pensionAdministrator/contactMethods";
    for (pointer, value, field) in [
        (
            format!("{method}/1/contactMethodDetails/number"),
            "+44 113 496 0000",
            "pensionAdministrator.contactMethods[1].contactMethodDetails.number",
        ),
        (
            format!("{method}/2/contactMethodDetails/countryCode"),
            "GBR",
            "pensionAdministrator.contactMethods[2].contactMethodDetails.countryCode",
        ),
        (
            format!("{method}/3/contactMethodDetails/url"),
            "example.org",
            "pensionAdministrator.contactMethods[3].contactMethodDetails.url",
        ),
        (
            format!("{method}/0/contactMethodDetails/email"),
            "pensions",
            "pensionAdministrator.contactMethods[0].contactMethodDetails.email",
        ),
        (
            "/additionalDataSources/0/url".into(),
            "sip",
            "additionalDataSources[0].url",
        ),
    ] {
        let mut v = definite();
        *v.pointer_mut(&pointer).unwrap() = json!(value);
        assert!(
            parse_definite(&v).is_ok(),
            "{field}: the typed model takes it"
        );
        assert_eq!(check_definite(&v).unwrap_err().field, field);
    }
    let mut v = definite();
    v.as_object_mut().unwrap().remove("possibleMatch");
    assert!(parse_definite(&v).is_ok());
    assert_eq!(check_definite(&v).unwrap_err().field, "possibleMatch");
}

#[test]
fn phone_numbers_are_put_in_the_standards_form_or_refused_by_path() {
    let mut v = definite();
    v.as_object_mut().unwrap().remove("possibleMatch");
    v["pensionAdministrator"]["contactMethods"][1]["contactMethodDetails"]["number"] =
        json!("(0113) 496 0000");
    normalise_definite(&mut v).unwrap();
    assert_eq!(v, definite());
    v["pensionAdministrator"]["contactMethods"][1]["contactMethodDetails"]["number"] =
        json!("0113 496 0000 ext 9");
    let e = normalise_definite(&mut v).unwrap_err();
    assert_eq!(
        e.field,
        "pensionAdministrator.contactMethods[1].contactMethodDetails.number"
    );
    assert!(!e.to_string().contains("496"), "{e}");
    assert_eq!(
        e.field_under("pensions[2].viewData"),
        "pensions[2].viewData.pensionAdministrator.contactMethods[1].contactMethodDetails.number"
    );
}

#[test]
fn a_possible_arrangement_has_only_its_limited_shape() {
    let a = check_definite(&definite()).unwrap();
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
