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
    let index_key = rt.block_on(store.index_key()).unwrap();
    let index = rt
        .block_on(crate::matching::index::load(&store, &index_key))
        .unwrap()
        .index;
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

/// A JSON-lines record of member `id` with one name and the given pensions (by GUID suffix).
fn member_line(id: &str, given: &str, guids: &[u8]) -> serde_json::Value {
    let view: serde_json::Value = serde_json::from_str(VIEW).unwrap();
    let pensions: Vec<serde_json::Value> = guids
        .iter()
        .map(|g| {
            serde_json::json!({"assetGuid": format!("0b5c3f1e-1f6c-4a8e-9d1e-{g:012x}"),
                               "viewData": view})
        })
        .collect();
    serde_json::json!({"memberId": id, "holdername": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "names": [{"givenName": given, "familyName": "DOE"}], "dateOfBirth": "1970-04-21",
        "pensions": pensions})
}

fn write_lines(dir: &tempfile::TempDir, name: &str, lines: &[serde_json::Value]) -> PathBuf {
    let path = dir.path().join(name);
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&path, text.join("\n")).unwrap();
    path
}

fn errors(report: &Report) -> Vec<String> {
    report.errors.iter().map(|e| e.to_string()).collect()
}

use std::path::PathBuf;

#[test]
fn a_member_or_an_asset_guid_repeated_in_a_file_is_refused_by_line() {
    let (dir, store, rt) = setup();
    let lines = [
        member_line("M1", "JANE", &[1]),
        member_line("M2", "JOHN", &[2, 3, 2]),
        member_line("M1", "JANET", &[4]),
        serde_json::json!({"action": "remove", "memberId": "M1"}),
        member_line("M3", "JO", &[5]),
        member_line("M4", "JILL", &[6, 5]),
    ];
    let path = write_lines(&dir, "dups.jsonl", &lines);
    let report = import(&path, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!(
        errors(&report),
        [
            "line 2: pensions[2].assetGuid: the same asset GUID as pensions[0]",
            "line 3: memberId: the member is already in this file (line 1)",
            "line 4: memberId: the member is already in this file (line 1)",
            "line 6: pensions[1].assetGuid: another member's record in this file has it (line 5)",
        ]
    );
    assert_eq!((report.added, report.updated, report.removed), (2, 0, 0));
    let stored = rt.block_on(store.member_record("M1")).unwrap().unwrap();
    let stored: MatchRecord = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored.names[0].given_name, "JANE", "the first line wins");
}

use crate::matching::record::{MatchRecord, MAX_NAMES, MAX_NAME_CHARS, MAX_PENSIONS};

#[test]
fn names_lists_and_lines_are_bounded() {
    let (dir, store, rt) = setup();
    let long = "A".repeat(MAX_NAME_CHARS + 1);
    let mut many_names = member_line("M2", "JANE", &[2]);
    many_names["names"] = serde_json::json!(vec![
        serde_json::json!({"givenName": "JANE", "familyName": "DOE"});
        MAX_NAMES + 1
    ]);
    let mut previous = member_line("M3", "JANE", &[3]);
    previous["previousFamilyNames"] = serde_json::json!([long]);
    let mut line = member_line("M4", "JANE", &[4]);
    line["addresses"] = serde_json::json!([{"addressLine1": "B".repeat(71)}]);
    let guids: Vec<u8> = (0..=MAX_PENSIONS as u8).collect();
    let many_pensions = member_line("M5", "JANE", &guids);
    let mut huge = member_line("M6", "JANE", &[6]);
    huge["names"][0]["familyName"] = serde_json::json!("C".repeat(MAX_LINE));
    let lines = [
        member_line("M1", &long, &[1]),
        many_names,
        previous,
        line,
        many_pensions,
        huge,
        member_line("M7", &"D".repeat(MAX_NAME_CHARS), &[7]),
    ];
    let path = write_lines(&dir, "bounds.jsonl", &lines);
    let report = import(&path, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!(
        errors(&report),
        [
            "line 1: names[0].givenName: longer than 70 characters",
            "line 2: names: more than 10 entries",
            "line 3: previousFamilyNames[0]: longer than 70 characters",
            "line 4: addresses[0].addressLine1: longer than 70 characters",
            "line 5: pensions: more than 100 entries",
            "line 6: line: longer than 8388608 bytes",
        ]
    );
    assert_eq!(report.added, 1, "a name of the longest length loads");
}

#[test]
fn lines_are_read_whole_up_to_the_bound_and_skipped_beyond_it() {
    let text = b"short\r\n0123456789\nlast";
    let mut reader = std::io::BufReader::with_capacity(4, &text[..]);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    while let Some(fits) = next_line(&mut reader, &mut buf, 6).unwrap() {
        got.push((fits, String::from_utf8(buf.clone()).unwrap()));
    }
    assert_eq!(
        got,
        [
            (true, "short".to_owned()),
            (false, String::new()),
            (true, "last".to_owned())
        ]
    );
}

#[test]
fn a_pension_another_member_holds_is_refused_unless_moved() {
    let (dir, store, rt) = setup();
    let first = write_lines(&dir, "a.jsonl", &[member_line("A", "JANE", &[1, 2])]);
    import(&first, &store, rt.handle(), Options::default()).unwrap();

    // B claims A's pension 2: refused, naming both, nothing written for B.
    let lines = [
        member_line("C", "JO", &[3]),
        member_line("B", "JOHN", &[4, 2]),
    ];
    let claim = write_lines(&dir, "b.jsonl", &lines);
    let report = import(&claim, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!(
        errors(&report),
        ["line 2: pensions[1].assetGuid: the pension is member A's; --move-pensions moves it to member B"]
    );
    assert_eq!((report.added, report.pensions), (1, 1));
    assert!(rt.block_on(store.member_record("B")).unwrap().is_none());
    let guid = |g: u8| uuid::Uuid::parse_str(&format!("0b5c3f1e-1f6c-4a8e-9d1e-{g:012x}")).unwrap();
    let owner = |g| {
        rt.block_on(store.pension(guid(g)))
            .unwrap()
            .map(|p| p.member_id)
    };
    assert_eq!(owner(2).as_deref(), Some("A"));
    assert_eq!(owner(4), None);

    // With the flag (after a dry run that keeps nothing), the pension moves: A's record lacks it.
    let moving = Options {
        move_pensions: true,
        ..Options::default()
    };
    let dry = Options {
        dry_run: true,
        ..moving
    };
    let report = import(&claim, &store, rt.handle(), dry).unwrap();
    assert_eq!(report.moved.len(), 1);
    assert_eq!(owner(2).as_deref(), Some("A"));
    let report = import(&claim, &store, rt.handle(), moving).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report
            .moved
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>(),
        ["line 2: pensions[1].assetGuid: moved from member A to member B"]
    );
    assert_eq!(owner(2).as_deref(), Some("B"));
    let a = rt.block_on(store.member_record("A")).unwrap().unwrap();
    let a: MatchRecord = serde_json::from_slice(&a).unwrap();
    let kept: Vec<_> = a.pensions.iter().map(|p| p.asset_guid).collect();
    assert_eq!(kept, [guid(1)]);
    let index_key = rt.block_on(store.index_key()).unwrap();
    let index = rt
        .block_on(crate::matching::index::load(&store, &index_key))
        .unwrap()
        .index;
    assert_eq!(index.len(), 3);

    // A's old record again is now refused: the pension is B's.
    let report = import(&first, &store, rt.handle(), Options::default()).unwrap();
    assert_eq!(
        errors(&report),
        ["line 1: pensions[1].assetGuid: the pension is member B's; --move-pensions moves it to member A"]
    );
}

#[test]
fn an_import_under_a_key_that_does_not_open_the_store_writes_nothing() {
    let (dir, store, rt) = setup();
    // An empty store has nothing to check.
    let first = write_lines(&dir, "a.jsonl", &[member_line("A", "JANE", &[1])]);
    import(&first, &store, rt.handle(), Options::default()).unwrap();
    rt.block_on(store.close());
    let other = DataKey::from_hex(&"33".repeat(32)).unwrap();
    let path = dir.path().join("db.sqlite");
    let wrong = Store::open(&path, other, StoreLimits::default()).unwrap();
    let second = write_lines(&dir, "b.jsonl", &[member_line("A", "JANET", &[1, 2])]);
    let before = rt.block_on(wrong.data_version()).unwrap();
    match import(&second, &wrong, rt.handle(), Options::default()) {
        Err(
            e @ ImportError::WrongKey {
                checked: 2,
                failed: 2,
            },
        ) => {
            assert!(e.to_string().contains("2 of 2"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rt.block_on(wrong.data_version()).unwrap(), before);
    rt.block_on(wrong.close());
    let right = DataKey::from_hex(&"22".repeat(32)).unwrap();
    let store = Store::open(&path, right, StoreLimits::default()).unwrap();
    let a = rt.block_on(store.member_record("A")).unwrap().unwrap();
    let a: MatchRecord = serde_json::from_slice(&a).unwrap();
    assert_eq!(a.names[0].given_name, "JANE");
}
