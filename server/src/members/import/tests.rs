use super::*;
use crate::sealed::DataKey;
use crate::store::StoreLimits;

fn setup() -> (tempfile::TempDir, Store, tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::from_hex(&"22".repeat(32)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite"), key, StoreLimits::default()).unwrap();
    (dir, store, rt)
}

const VIEW: &str = r#"{"pensionProviderSchemeName":"Acme Pension","pensionAdministrator":{"name":"Acme Admin","contactMethods":[{"preferred":true,"contactMethodDetails":{"email":"a@b.example"}}]},"pensionType":"DC"}"#;

#[test]
fn jsonl_loads_good_records_and_reports_bad_ones_by_line_and_field() {
    let (dir, store, rt) = setup();
    let good = format!(
        r#"{{"memberId":"M1","holdername":"3fa85f64-5717-4562-b3fc-2c963f66afa6","names":[{{"givenName":"JANE","familyName":"DOE"}}],"dateOfBirth":"1970-04-21","nino":"QQ123456C","pensions":[{{"assetGuid":"0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d9e","viewData":{VIEW}}}]}}"#
    );
    let bad_date = good.replace("1970-04-21", "21/04/1970").replace("M1", "M2");
    let bad_type = good.replace("\"DC\"", "\"XX\"").replace("M1", "M3");
    let unknown = good.replace("\"nino\"", "\"ninoo\"").replace("M1", "M4");
    let text = format!("{good}\n{bad_date}\nnot json\n\n{bad_type}\n{unknown}\n");
    let path = dir.path().join("members.jsonl");
    std::fs::write(&path, text).unwrap();
    let report = import(&path, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!(report.loaded(), 1);
    assert_eq!(report.pensions, 1);
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        [
            "line 2: dateOfBirth: not a date (YYYY-MM-DD)",
            "line 3: record: not valid JSON",
            "line 5: pensions[0].viewData.pensionType: value is not one of \"AVC\", \"CB\" or 5 other candidates",
            "line 6: ninoo: missing, unknown or of the wrong type",
        ]
    );
    assert!(!errors.concat().contains("21/04"));
    assert_eq!(rt.block_on(store.member_count()).unwrap(), 1);
    let p = rt
        .block_on(
            store.pension(uuid::Uuid::parse_str("0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d9e").unwrap()),
        )
        .unwrap()
        .unwrap();
    assert_eq!(p.scheme_name, "Acme Pension");
    assert_eq!(p.member_id, "M1");
}

#[test]
fn view_data_is_normalised_then_checked_against_the_standards_schema() {
    let (dir, store, rt) = setup();
    let record = |id: &str, guid: &str, number: &str, url: &str| {
        let view: serde_json::Value = serde_json::from_str(VIEW).unwrap();
        let mut view = view;
        view["pensionAdministrator"]["contactMethods"] = serde_json::json!([
            {"preferred": true, "contactMethodDetails": {"number": number, "usage": ["M"]}},
            {"preferred": false, "contactMethodDetails": {"url": url}}
        ]);
        serde_json::json!({"memberId": id, "holdername": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "names": [{"givenName": "JANE", "familyName": "DOE"}], "dateOfBirth": "1970-04-21",
            "pensions": [{"assetGuid": guid, "viewData": view}]})
        .to_string()
    };
    let text = [
        record(
            "M1",
            "0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d91",
            "(0113) 496 0000",
            "https://example.org",
        ),
        record(
            "M2",
            "0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d92",
            "0113 496 0000 ext 12",
            "https://example.org",
        ),
        record(
            "M3",
            "0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d93",
            "+44 113 496 0000",
            "example.org/pensions",
        ),
    ]
    .join("\n");
    let path = dir.path().join("members.jsonl");
    std::fs::write(&path, text).unwrap();
    let report = import(&path, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!(report.loaded(), 1);
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        [
            "line 2: pensions[0].viewData.pensionAdministrator.contactMethods[0].contactMethodDetails.number: \
             not a phone number that can be put in the standard's form (+<country code> <digits>)",
            "line 3: pensions[0].viewData.pensionAdministrator.contactMethods[1].contactMethodDetails.url: \
             value is not a \"uri\"",
        ]
    );
    assert!(!errors.concat().contains("496"));
    // Stored as normalised, with the definite arrangement's constant filled in.
    let p = rt
        .block_on(
            store.pension(uuid::Uuid::parse_str("0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d91").unwrap()),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        p.view_data["pensionAdministrator"]["contactMethods"][0]["contactMethodDetails"]["number"],
        "+44 1134960000"
    );
    assert_eq!(p.view_data["possibleMatch"], false);
    assert_eq!(
        crate::wire::view::schema::check_definite(&p.view_data),
        Ok(())
    );
}

#[test]
fn csv_groups_consecutive_rows_into_members() {
    let (dir, store, rt) = setup();
    let view = VIEW.replace('"', "\"\"");
    let h = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let text = format!(
        "{}\n\
         M1,{h},JANE,DOE,JONES;SMITH,1970-04-21,QQ123456C,1 HIGH ST,LS1 1AA,M1 1AA,0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d91,\"{view}\"\n\
         M1,{h},JANE,DOE,,1970-04-21,QQ123456C,,,,0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d92,\"{view}\"\n\
         M2,{h},JOHN,ROE,,1970-13-01,,,,,0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d93,\"{view}\"\n\
         M3,{h},JOHN,ROE,,1970-01-01,,,,,not-a-guid,\"{view}\"\n",
        CSV_HEADER.join(",")
    );
    let path = dir.path().join("members.csv");
    std::fs::write(&path, text).unwrap();
    let report = import(&path, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!((report.loaded(), report.pensions), (1, 2));
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        [
            "line 4: dateOfBirth: not a date (YYYY-MM-DD)",
            "line 5: asset_guid: not a GUID",
        ]
    );
    let index = rt.block_on(crate::matching::index::load(&store)).unwrap();
    assert_eq!(index.len(), 1);
}

#[test]
fn a_csv_with_the_wrong_header_is_refused() {
    let (dir, store, rt) = setup();
    let path = dir.path().join("m.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    assert!(matches!(
        import(&path, &store, rt.handle(), Options::default()),
        Err(ImportError::Header { .. })
    ));
}

#[test]
fn a_csv_whose_member_rows_are_not_consecutive_is_refused_whole() {
    let (dir, store, rt) = setup();
    let view = VIEW.replace('"', "\"\"");
    let h = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let row = |m: &str, g: u8| {
        format!("{m},{h},JANE,DOE,,1970-04-21,QQ123456C,,,,0b5c3f1e-1f6c-4a8e-9d1e-5b2f6a7c8d{g:02},\"{view}\"\n")
    };
    let text = format!(
        "{}\n{}{}{}",
        CSV_HEADER.join(","),
        row("M1", 1),
        row("M2", 2),
        row("M1", 3)
    );
    let path = dir.path().join("members.csv");
    std::fs::write(&path, text).unwrap();
    assert!(matches!(
        import(&path, &store, rt.handle(), Options::default()),
        Err(ImportError::NotGrouped { line: 4 })
    ));
    assert_eq!(rt.block_on(store.member_count()).unwrap(), 0);
}
