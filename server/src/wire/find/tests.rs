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
    // Three base64url segments, the first two not empty; the signature may be (an unsecured
    // JWT: the CAS decides).
    let uat = |uat: &str| {
        let b = serde_json::to_vec(&serde_json::json!({"uat": uat, "findData": {}})).unwrap();
        parse(&b).map(|_| ())
    };
    for good in ["eyJh.eyJz.c2ln", "a-b_c.d.e", "a.b."] {
        assert_eq!(uat(good), Ok(()), "{good}");
    }
    for bad in [
        "a.b.c.d", "a.b", "abc", ".b.c", "a..c", "a.b.c=", "a.b+.c", "a.b c.d", "a.b.c.",
    ] {
        assert!(matches!(uat(bad), Err(FindError::InvalidUat(_))), "{bad}");
    }
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
    assert!(nino_shape_ok("qq123456d"));
    assert!(!nino_shape_ok("QQ123456CC"));
    assert!(!nino_shape_ok(""));
}

/// The check read byte by byte agrees with its definition (spaces out, upper case, then two
/// letters, six digits and an optional A-D) on strings made of the bytes that decide it.
#[test]
fn nino_shape_agrees_with_its_definition() {
    fn defined(v: &str) -> bool {
        let s: Vec<u8> = v
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| b.to_ascii_uppercase())
            .collect();
        (s.len() == 8 || s.len() == 9)
            && s[..2].iter().all(u8::is_ascii_alphabetic)
            && s[2..8].iter().all(u8::is_ascii_digit)
            && (s.len() == 8 || matches!(s[8], b'A'..=b'D'))
    }
    use rand::{Rng, SeedableRng};
    let alphabet = ["Q", "q", "1", "9", " ", "d", "E", "\t", "é", "-"];
    // Seeded: the same strings every run.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_F491_4F6C_DD1D);
    let mut next = |n: usize| rng.gen_range(0..n);
    let mut shaped = 0;
    for _ in 0..200_000 {
        // Mostly the shape's own pattern with a symbol changed, so that both answers occur.
        let len = 6 + next(7);
        let v: String = (0..len)
            .map(|i| match (i, next(4)) {
                (0 | 1, 0..=2) => "Q",
                (2..=7, 0..=2) => "1",
                (8, 0..=2) => "d",
                _ => alphabet[next(alphabet.len())],
            })
            .collect();
        assert_eq!(nino_shape_ok(&v), defined(&v), "{v:?}");
        shaped += usize::from(defined(&v));
    }
    assert!(shaped > 1_000, "too few strings of the shape: {shaped}");
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

/// The contract's example with each field (and the body) replaced by values of every JSON
/// shape, removed, or given twice.
fn mutated_bodies() -> Vec<Vec<u8>> {
    use serde_json::{json, Value};
    let shapes = [
        json!(null),
        json!(5),
        json!("x"),
        json!(true),
        json!({}),
        json!([]),
        json!([{}]),
        json!([[]]),
        json!(["a"]),
        json!([{"value": "QQ123456C"}]),
        json!({"value": "1970-04-21", "verified": true}),
        json!([{"givenName": "A", "familyName": "B"}]),
        json!([{"familyName": "B"}, []]),
    ];
    let example = json!({"uat": UAT, "findData": spec_example()});
    // Every object member's path, the body's own first.
    fn paths(v: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let mut p = at.clone();
                    p.push(k.clone());
                    paths(v, p, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(i.to_string());
                    paths(v, p, out);
                }
            }
            _ => {}
        }
    }
    fn at<'v>(v: &'v mut Value, path: &[String]) -> &'v mut Value {
        path.iter().fold(v, |v, k| match v {
            Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
            v => &mut v[k.as_str()],
        })
    }
    assert!(typed(&serde_json::to_vec(&example).unwrap()).is_some());
    let mut all = Vec::new();
    paths(&example, Vec::new(), &mut all);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for path in &all {
        for shape in &shapes {
            let mut b = example.clone();
            *at(&mut b, path) = shape.clone();
            bodies.push(serde_json::to_vec(&b).unwrap());
        }
        if let Some((last, parent)) = path.split_last() {
            let mut b = example.clone();
            if let Value::Object(m) = at(&mut b, parent) {
                let kept = m.remove(last);
                bodies.push(serde_json::to_vec(&b).unwrap());
                // The member twice, the second time null (serde_json's value keeps the last).
                let text = serde_json::to_string(&b).unwrap();
                if let (Some(v), Some(open)) = (kept, text.find('{')) {
                    let twice = format!(
                        "{{\"{last}\":{},\"{last}\":null,{}",
                        serde_json::to_string(&v).unwrap(),
                        &text[open + 1..]
                    );
                    bodies.push(twice.into_bytes());
                }
            }
        }
    }
    bodies.push(b"[]".to_vec());
    bodies.push(b"[{}]".to_vec());
    bodies.push(b" [ ] ".to_vec());
    bodies
}

/// The one-pass reading of a body takes exactly what the checked reading takes, with the same
/// values, and every body it does not take is answered as the checked reading answers it: over
/// the contract's example with each field (and the body) replaced by values of every JSON
/// shape, removed, or given twice.
#[test]
fn the_one_pass_reading_agrees_with_the_checked_one() {
    let bodies = mutated_bodies();
    let mut taken = 0;
    for b in &bodies {
        let one_pass = parse(b);
        let checked = checked(b).and_then(validate);
        match (&one_pass, &checked) {
            (Ok(a), Ok(c)) => {
                taken += 1;
                assert_eq!(a.uat, c.uat);
                assert_eq!(
                    serde_json::to_value(&a.find_data).unwrap(),
                    serde_json::to_value(&c.find_data).unwrap(),
                    "{}",
                    String::from_utf8_lossy(b)
                );
            }
            (Err(a), Err(c)) => assert_eq!(a, c, "{}", String::from_utf8_lossy(b)),
            _ => panic!(
                "{}: {:?} vs {:?}",
                String::from_utf8_lossy(b),
                one_pass.map(|_| ()),
                checked.map(|_| ())
            ),
        }
        if typed(b).is_some() {
            assert!(checked.is_ok() || !matches!(checked, Err(FindError::InvalidJson)));
        }
    }
    assert!(
        taken > 50 && taken < bodies.len(),
        "{taken} of {}",
        bodies.len()
    );
}
