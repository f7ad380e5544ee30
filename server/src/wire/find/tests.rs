use super::*;

const UAT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln";

fn body(find_data: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"uat": UAT, "findData": find_data})).unwrap()
}

fn spec_example() -> serde_json::Value {
    serde_json::json!({
        "names": [{"givenName": "JANE", "familyName": "O'DONNELL", "verified": true}],
        "previousFamilyNames": [{"familyName": "JONES", "verified": false}],
        "dateOfBirth": {"value": "1970-04-21", "verified": true},
        "nino": {"value": "QQ123456C", "verified": false},
        "addresses": [{"addressLine1": "1 HIGH STREET", "addressLine2": "LEEDS", "postcode": "LS1 1AA",
                       "countryCode": "GB", "verified": true}],
        "previousAddresses": [{"addressLine1": "2 LOW ROAD", "postcode": "M1 1AA", "verified": false}],
        "emails": [{"value": "jane@example.org", "verified": true}],
        "mobiles": [{"value": "+447700900123", "verified": true}]
    })
}

#[test]
fn the_spec_example_parses() {
    let f = parse(&body(spec_example())).unwrap();
    assert_eq!(f.find_data.names[0].family_name, "O'DONNELL");
    assert_eq!(f.uat.subject().as_deref(), Some("1234"));
}

#[test]
fn syntax_errors_are_invalid_json() {
    assert_eq!(parse(b"{\"uat\": ").unwrap_err(), FindError::InvalidJson);
    assert_eq!(parse(b"not json").unwrap_err(), FindError::InvalidJson);
}

#[test]
fn uat_must_be_three_segments() {
    let b = serde_json::to_vec(&serde_json::json!({"uat": "abc.def", "findData": {}})).unwrap();
    assert!(matches!(parse(&b), Err(FindError::InvalidUat(_))));
    let b = serde_json::to_vec(&serde_json::json!({"findData": {}})).unwrap();
    assert_eq!(
        parse(&b).unwrap_err(),
        FindError::InvalidUat("uat: missing")
    );
    let b = serde_json::to_vec(&serde_json::json!({"uat": 5, "findData": {}})).unwrap();
    assert!(matches!(parse(&b), Err(FindError::InvalidUat(_))));
}

#[test]
fn bad_date_names_the_path_and_not_the_value() {
    let mut d = spec_example();
    d["dateOfBirth"]["value"] = "21/04/1970".into();
    let err = parse(&body(d)).unwrap_err();
    assert_eq!(
        err,
        FindError::InvalidFindData("findData.dateOfBirth.value: not a date (YYYY-MM-DD)".into())
    );
    assert!(!err.to_string().contains("1970"));
}

#[test]
fn wrong_types_name_the_path_only() {
    let mut d = spec_example();
    d["names"][0]["familyName"] = serde_json::json!(42);
    let err = parse(&body(d)).unwrap_err().to_string();
    assert!(err.starts_with("findData.names[0].familyName"), "{err}");
    assert!(!err.contains("42"));
}

#[test]
fn nino_shapes() {
    assert!(nino_shape_ok("QQ 12 34 56 C"));
    assert!(nino_shape_ok("qq123456"));
    assert!(!nino_shape_ok("QQ12345"));
    assert!(!nino_shape_ok("1Q123456C"));
    assert!(!nino_shape_ok("QQ123456Z"));
}

#[test]
fn postcodes_and_missing_find_data() {
    let mut d = spec_example();
    d["addresses"][0]["postcode"] = "NOT A POSTCODE!".into();
    assert!(matches!(
        parse(&body(d)),
        Err(FindError::InvalidFindData(_))
    ));
    let b = serde_json::to_vec(&serde_json::json!({"uat": UAT})).unwrap();
    assert_eq!(
        parse(&b).unwrap_err(),
        FindError::InvalidFindData("findData: missing".into())
    );
}

#[test]
fn empty_names_and_future_dates_are_refused() {
    let mut d = spec_example();
    d["names"][0]["givenName"] = "  ".into();
    assert!(parse(&body(d)).is_err());
    let mut d = spec_example();
    d["dateOfBirth"]["value"] = "2999-01-01".into();
    assert!(parse(&body(d)).is_err());
}

#[test]
fn debug_never_prints_personal_data() {
    let f = parse(&body(spec_example())).unwrap();
    let s = format!("{f:?}");
    assert!(!s.contains("DONNELL") && !s.contains(UAT), "{s}");
}

#[test]
fn anything_after_the_json_value_is_invalid_json() {
    let good = body(spec_example());
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"xyz");
    assert_eq!(parse(&trailing).unwrap_err(), FindError::InvalidJson);
    let twice = [good.clone(), good.clone()].concat();
    assert_eq!(parse(&twice).unwrap_err(), FindError::InvalidJson);
    // Whitespace after it is still fine.
    let mut spaced = good;
    spaced.extend_from_slice(b" \r\n");
    assert!(parse(&spaced).is_ok());
}

#[test]
fn arrays_are_refused_where_the_contract_has_objects() {
    let invalid = |b: Vec<u8>| match parse(&b) {
        Err(FindError::InvalidFindData(d)) => d,
        other => panic!("{other:?}"),
    };
    let whole = serde_json::to_vec(&serde_json::json!([UAT, spec_example()])).unwrap();
    assert_eq!(invalid(whole), "body: must be an object");
    let mut f = spec_example();
    f["names"] = serde_json::json!([["JANE", "DOE", true]]);
    assert_eq!(invalid(body(f)), "findData.names[0]: must be an object");
    let mut f = spec_example();
    f["dateOfBirth"] = serde_json::json!(["1970-01-01", true]);
    assert_eq!(invalid(body(f)), "findData.dateOfBirth: must be an object");
    let mut f = spec_example();
    f["nino"] = serde_json::json!(["QQ123456C", false]);
    assert_eq!(invalid(body(f)), "findData.nino: must be an object");
    let arr = serde_json::to_vec(&serde_json::json!({"uat": UAT, "findData": [[]]})).unwrap();
    assert_eq!(invalid(arr), "findData: must be an object");
    assert_eq!(
        invalid(b"\"just a string\"".to_vec()),
        "body: must be an object"
    );
}
