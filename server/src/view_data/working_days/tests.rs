use super::*;

use Nation::{EnglandAndWales as EW, NorthernIreland as NI, Scotland as SC};

const CONFIG_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/bank-holidays.json");

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// The bank holidays of `nation` in `year`, in date order.
fn holidays_in(cal: &Calendar, nation: Nation, year: i32) -> Vec<NaiveDate> {
    cal.holidays[&nation]
        .keys()
        .copied()
        .filter(|x| x.year() == year)
        .collect()
}

fn title(cal: &Calendar, nation: Nation, date: NaiveDate) -> (&str, &str) {
    let h = &cal.holidays[&nation][&date];
    (h.title.as_str(), h.notes.as_str())
}

/// The obvious day-by-day count, to check the faster arithmetic against.
fn naive_add(cal: &Calendar, nation: Nation, start: NaiveDate, n: u32) -> NaiveDate {
    let mut day = start;
    let mut left = n;
    while left > 0 {
        day = day.succ_opt().unwrap();
        if cal.is_working_day(nation, day) {
            left -= 1;
        }
    }
    day
}

fn parse_reason(text: &str) -> String {
    match Calendar::from_json(text) {
        Err(CalendarError::Parse { path, reason }) => {
            assert_eq!(path, PathBuf::from("<json>"));
            assert!(!reason.is_empty());
            reason
        }
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

/// A minimal valid document with the given England and Wales events.
fn doc_with_ew_events(events: &str) -> String {
    let one = r#"[{"title": "New Year’s Day", "date": "2026-01-01"}]"#;
    format!(
        r#"{{"england-and-wales": {{"division": "england-and-wales", "events": {events}}},
            "scotland": {{"division": "scotland", "events": {one}}},
            "northern-ireland": {{"division": "northern-ireland", "events": {one}}}}}"#
    )
}

// --- Easter and the rules ---

#[test]
fn easter_sunday_matches_known_dates() {
    for (year, m, day) in [
        (2019, 4, 21),
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2027, 3, 28),
        (2038, 4, 25), // the latest possible
        (2285, 3, 22), // the earliest possible
    ] {
        assert_eq!(easter_sunday(year), Some(d(year, m, day)), "{year}");
    }
}

#[test]
fn england_and_wales_2025_matches_gov_uk() {
    let cal = Calendar::by_rule(2025, 2025);
    assert_eq!(
        holidays_in(&cal, EW, 2025),
        vec![
            d(2025, 1, 1),
            d(2025, 4, 18),
            d(2025, 4, 21),
            d(2025, 5, 5),
            d(2025, 5, 26),
            d(2025, 8, 25),
            d(2025, 12, 25),
            d(2025, 12, 26),
        ]
    );
}

#[test]
fn england_and_wales_2026_matches_gov_uk_with_boxing_day_substitute() {
    let cal = Calendar::by_rule(2026, 2026);
    assert_eq!(
        holidays_in(&cal, EW, 2026),
        vec![
            d(2026, 1, 1),
            d(2026, 4, 3),
            d(2026, 4, 6),
            d(2026, 5, 4),
            d(2026, 5, 25),
            d(2026, 8, 31),
            d(2026, 12, 25),
            d(2026, 12, 28),
        ]
    );
    assert_eq!(
        title(&cal, EW, d(2026, 12, 28)),
        ("Boxing Day", "Substitute day")
    );
    assert_eq!(title(&cal, EW, d(2026, 4, 3)), ("Good Friday", ""));
}

#[test]
fn scotland_and_northern_ireland_2024_match_gov_uk() {
    let cal = Calendar::by_rule(2024, 2024);
    assert_eq!(
        holidays_in(&cal, SC, 2024),
        vec![
            d(2024, 1, 1),
            d(2024, 1, 2),
            d(2024, 3, 29),
            d(2024, 5, 6),
            d(2024, 5, 27),
            d(2024, 8, 5),
            d(2024, 12, 2),
            d(2024, 12, 25),
            d(2024, 12, 26),
        ]
    );
    assert_eq!(
        holidays_in(&cal, NI, 2024),
        vec![
            d(2024, 1, 1),
            d(2024, 3, 18),
            d(2024, 3, 29),
            d(2024, 4, 1),
            d(2024, 5, 6),
            d(2024, 5, 27),
            d(2024, 7, 12),
            d(2024, 8, 26),
            d(2024, 12, 25),
            d(2024, 12, 26),
        ]
    );
}

#[test]
fn every_year_has_eight_nine_and_ten_holidays_all_on_weekdays() {
    let cal = Calendar::by_rule(1990, 2060);
    for year in 1990..=2060 {
        for (nation, count) in [(EW, 8), (SC, 9), (NI, 10)] {
            let days = holidays_in(&cal, nation, year);
            assert_eq!(days.len(), count, "{nation} {year}");
            assert!(days.iter().all(|x| is_weekday(*x)), "{nation} {year}");
        }
    }
}

#[test]
fn christmas_on_saturday_gives_monday_and_tuesday() {
    // 2021 and 2027: 25 Saturday, 26 Sunday.
    for year in [2021, 2027] {
        let cal = Calendar::by_rule(year, year);
        for nation in Nation::ALL {
            assert!(!cal.is_bank_holiday(nation, d(year, 12, 25)));
            assert!(!cal.is_bank_holiday(nation, d(year, 12, 26)));
            assert_eq!(
                title(&cal, nation, d(year, 12, 27)),
                ("Christmas Day", "Substitute day")
            );
            assert_eq!(
                title(&cal, nation, d(year, 12, 28)),
                ("Boxing Day", "Substitute day")
            );
        }
    }
}

#[test]
fn christmas_on_sunday_keeps_boxing_day_and_moves_christmas_to_tuesday() {
    // 2022: 25 Sunday, 26 Monday.
    let cal = Calendar::by_rule(2022, 2022);
    for nation in Nation::ALL {
        assert!(!cal.is_bank_holiday(nation, d(2022, 12, 25)));
        assert_eq!(title(&cal, nation, d(2022, 12, 26)), ("Boxing Day", ""));
        assert_eq!(
            title(&cal, nation, d(2022, 12, 27)),
            ("Christmas Day", "Substitute day")
        );
    }
}

#[test]
fn christmas_on_friday_moves_boxing_day_to_monday() {
    // 2020 and 2026: 25 Friday, 26 Saturday.
    for year in [2020, 2026] {
        let cal = Calendar::by_rule(year, year);
        assert!(cal.is_bank_holiday(EW, d(year, 12, 25)));
        assert!(!cal.is_bank_holiday(EW, d(year, 12, 26)));
        assert!(cal.is_bank_holiday(EW, d(year, 12, 28)));
        assert!(!cal.is_bank_holiday(EW, d(year, 12, 29)));
    }
}

#[test]
fn new_year_on_a_weekend_moves_to_monday() {
    // 2022: 1 Jan Saturday; 2023: Sunday.
    let cal = Calendar::by_rule(2022, 2023);
    assert!(!cal.is_bank_holiday(EW, d(2022, 1, 1)));
    assert!(cal.is_bank_holiday(EW, d(2022, 1, 3)));
    assert!(!cal.is_bank_holiday(EW, d(2022, 1, 4)));
    assert_eq!(
        title(&cal, EW, d(2023, 1, 2)),
        ("New Year’s Day", "Substitute day")
    );
}

#[test]
fn scotland_has_2_january_with_substitutes() {
    let cal = Calendar::by_rule(2021, 2027);
    // Weekdays: both kept.
    assert!(cal.is_bank_holiday(SC, d(2025, 1, 2)));
    assert!(!cal.is_bank_holiday(EW, d(2025, 1, 2)));
    assert!(!cal.is_bank_holiday(NI, d(2025, 1, 2)));
    // 2021 and 2027: 1 Jan Friday, 2 Jan Saturday → Monday 4.
    for year in [2021, 2027] {
        assert_eq!(
            holidays_in(&cal, SC, year)[..2],
            [d(year, 1, 1), d(year, 1, 4)]
        );
        assert_eq!(
            title(&cal, SC, d(year, 1, 4)),
            ("2nd January", "Substitute day")
        );
    }
    // 2022: Saturday and Sunday → Monday 3 and Tuesday 4.
    assert_eq!(
        holidays_in(&cal, SC, 2022)[..2],
        [d(2022, 1, 3), d(2022, 1, 4)]
    );
    // 2023: 1 Jan Sunday → New Year Monday 2, 2nd January Tuesday 3 (as gov.uk lists them).
    assert_eq!(
        title(&cal, SC, d(2023, 1, 2)),
        ("New Year’s Day", "Substitute day")
    );
    assert_eq!(
        title(&cal, SC, d(2023, 1, 3)),
        ("2nd January", "Substitute day")
    );
}

#[test]
fn scotland_has_no_easter_monday() {
    let cal = Calendar::by_rule(2025, 2026);
    for monday in [d(2025, 4, 21), d(2026, 4, 6)] {
        assert!(cal.is_bank_holiday(EW, monday));
        assert!(cal.is_bank_holiday(NI, monday));
        assert!(!cal.is_bank_holiday(SC, monday));
        assert!(cal.is_working_day(SC, monday));
    }
    // Good Friday everywhere.
    for nation in Nation::ALL {
        assert!(cal.is_bank_holiday(nation, d(2026, 4, 3)));
    }
}

#[test]
fn scotland_summer_holiday_is_first_monday_of_august_not_last() {
    let cal = Calendar::by_rule(2025, 2026);
    for (first, last) in [
        (d(2025, 8, 4), d(2025, 8, 25)),
        (d(2026, 8, 3), d(2026, 8, 31)),
    ] {
        assert!(cal.is_bank_holiday(SC, first));
        assert!(!cal.is_bank_holiday(SC, last));
        assert!(cal.is_bank_holiday(EW, last));
        assert!(!cal.is_bank_holiday(EW, first));
        assert!(cal.is_bank_holiday(NI, last));
    }
}

#[test]
fn st_andrews_day_is_scottish_with_monday_substitute() {
    let cal = Calendar::by_rule(2024, 2027);
    // 2026: Monday 30 November.
    assert_eq!(title(&cal, SC, d(2026, 11, 30)), ("St Andrew’s Day", ""));
    assert!(!cal.is_bank_holiday(EW, d(2026, 11, 30)));
    assert!(!cal.is_bank_holiday(NI, d(2026, 11, 30)));
    // 2025: Sunday → Monday 1 December; 2024: Saturday → Monday 2 December.
    assert_eq!(
        title(&cal, SC, d(2025, 12, 1)),
        ("St Andrew’s Day", "Substitute day")
    );
    assert!(cal.is_bank_holiday(SC, d(2024, 12, 2)));
    assert!(!cal.is_bank_holiday(SC, d(2024, 12, 1)));
}

#[test]
fn northern_ireland_st_patricks_day_with_monday_substitute() {
    let cal = Calendar::by_rule(2024, 2030);
    // 2025, 2026: weekdays. 2024: Sunday → Monday 18. 2029: Saturday → Monday 19.
    assert_eq!(title(&cal, NI, d(2025, 3, 17)), ("St Patrick’s Day", ""));
    assert!(cal.is_bank_holiday(NI, d(2026, 3, 17)));
    assert_eq!(
        title(&cal, NI, d(2024, 3, 18)),
        ("St Patrick’s Day", "Substitute day")
    );
    assert!(cal.is_bank_holiday(NI, d(2029, 3, 19)));
    assert!(!cal.is_bank_holiday(NI, d(2029, 3, 17)));
    for nation in [EW, SC] {
        assert!(!cal.is_bank_holiday(nation, d(2025, 3, 17)));
    }
}

#[test]
fn northern_ireland_battle_of_the_boyne_with_monday_substitute() {
    let cal = Calendar::by_rule(2024, 2027);
    // 2024 Friday; 2025 Saturday → Monday 14; 2026 Sunday → Monday 13; 2027 Monday.
    assert!(cal.is_bank_holiday(NI, d(2024, 7, 12)));
    assert_eq!(
        title(&cal, NI, d(2025, 7, 14)),
        ("Battle of the Boyne (Orangemen’s Day)", "Substitute day")
    );
    assert!(cal.is_bank_holiday(NI, d(2026, 7, 13)));
    assert!(!cal.is_bank_holiday(NI, d(2026, 7, 12)));
    assert!(cal.is_bank_holiday(NI, d(2027, 7, 12)));
    for nation in [EW, SC] {
        assert!(!cal.is_bank_holiday(nation, d(2027, 7, 12)));
    }
}

#[test]
fn by_rule_with_no_years_or_extreme_years_does_not_panic() {
    let empty = Calendar::by_rule(2030, 2024);
    assert!(Nation::ALL
        .iter()
        .all(|n| empty.covered_years(*n).is_none()));
    assert!(empty.is_working_day(EW, d(2026, 12, 25)));
    let edge = Calendar::by_rule(i32::MAX - 1, i32::MAX);
    assert_eq!(edge, Calendar::by_rule(1, 0));
    let last = NaiveDate::MAX.year();
    let _ = Calendar::by_rule(last - 2, last);
    let _ = Calendar::by_rule(NaiveDate::MIN.year(), NaiveDate::MIN.year() + 2);
}

// --- working-day arithmetic ---

#[test]
fn friday_plus_one_working_day_is_monday() {
    let cal = Calendar::by_rule(2025, 2025);
    assert_eq!(cal.add_working_days(EW, d(2025, 3, 7), 1), d(2025, 3, 10));
    // Registered at a weekend: the first working day is still the Monday.
    assert_eq!(cal.add_working_days(EW, d(2025, 3, 8), 1), d(2025, 3, 10));
    assert_eq!(cal.add_working_days(EW, d(2025, 3, 9), 1), d(2025, 3, 10));
    // Within a week.
    assert_eq!(cal.add_working_days(EW, d(2025, 3, 10), 3), d(2025, 3, 13));
}

#[test]
fn zero_working_days_returns_start_even_at_a_weekend_or_holiday() {
    let cal = Calendar::by_rule(2026, 2026);
    for start in [d(2026, 3, 7), d(2026, 12, 25), d(2026, 3, 4)] {
        assert_eq!(cal.add_working_days(EW, start, 0), start);
    }
}

#[test]
fn dc_three_working_days_across_christmas() {
    // Wed 23 Dec 2026: 24 Thu (1), 25 Fri holiday, weekend, 28 Mon substitute, 29 (2), 30 (3).
    let cal = Calendar::by_rule(2026, 2027);
    for nation in Nation::ALL {
        assert_eq!(
            cal.add_working_days(nation, d(2026, 12, 23), 3),
            d(2026, 12, 30),
            "{nation}"
        );
    }
}

#[test]
fn dc_three_working_days_across_easter_differs_in_scotland() {
    // Thu 2 Apr 2026: Good Friday 3, weekend, Easter Monday 6, then 7, 8, 9.
    let cal = Calendar::by_rule(2026, 2026);
    assert_eq!(cal.add_working_days(EW, d(2026, 4, 2), 3), d(2026, 4, 9));
    assert_eq!(cal.add_working_days(NI, d(2026, 4, 2), 3), d(2026, 4, 9));
    // Easter Monday is a working day in Scotland: 6, 7, 8.
    assert_eq!(cal.add_working_days(SC, d(2026, 4, 2), 3), d(2026, 4, 8));
}

#[test]
fn db_ten_working_days_across_christmas_and_new_year() {
    // Fri 18 Dec 2026: 21-24 (4), 29-31 (7), 1 Jan holiday, 4-6 Jan (10).
    let cal = Calendar::by_rule(2026, 2027);
    assert_eq!(cal.add_working_days(EW, d(2026, 12, 18), 10), d(2027, 1, 6));
    assert_eq!(cal.add_working_days(NI, d(2026, 12, 18), 10), d(2027, 1, 6));
    // Scotland also has 2 January, a Saturday in 2027, so Monday 4 January too.
    assert_eq!(cal.add_working_days(SC, d(2026, 12, 18), 10), d(2027, 1, 7));
}

#[test]
fn db_ten_working_days_across_easter() {
    // Wed 16 Apr 2025: 17 (1), Good Friday, Easter Monday, 22-25 (5), 28-30 (8), 1-2 May (10).
    let cal = Calendar::by_rule(2025, 2025);
    assert_eq!(cal.add_working_days(EW, d(2025, 4, 16), 10), d(2025, 5, 2));
    assert_eq!(cal.add_working_days(SC, d(2025, 4, 16), 10), d(2025, 5, 1));
    // Without holidays: two calendar weeks.
    assert_eq!(cal.add_working_days(EW, d(2025, 6, 4), 10), d(2025, 6, 18));
}

#[test]
fn add_working_days_agrees_with_a_day_by_day_count() {
    let cal = Calendar::by_rule(2024, 2027);
    let mut start = d(2024, 11, 1);
    while start <= d(2027, 2, 1) {
        for nation in Nation::ALL {
            for n in [0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 15, 23, 60] {
                let due = cal.add_working_days(nation, start, n);
                assert_eq!(
                    due,
                    naive_add(&cal, nation, start, n),
                    "{nation} {start} +{n}"
                );
                assert_eq!(cal.working_days_between(nation, start, due), n);
                if n > 0 {
                    assert!(cal.is_working_day(nation, due));
                }
            }
        }
        start = start.succ_opt().unwrap();
    }
}

#[test]
fn add_working_days_saturates_at_the_last_date() {
    let cal = Calendar::by_rule(2026, 2026);
    let near_end = NaiveDate::MAX.checked_sub_days(Days::new(3)).unwrap();
    assert_eq!(cal.add_working_days(EW, near_end, 10), NaiveDate::MAX);
    assert_eq!(
        cal.add_working_days(EW, d(2026, 1, 1), u32::MAX),
        NaiveDate::MAX
    );
}

#[test]
fn working_days_between_counts_after_from_up_to_to() {
    let cal = Calendar::by_rule(2024, 2026);
    assert_eq!(
        cal.working_days_between(EW, d(2026, 12, 23), d(2026, 12, 30)),
        3
    );
    assert_eq!(
        cal.working_days_between(EW, d(2025, 3, 7), d(2025, 3, 10)),
        1
    );
    // Weekend only.
    assert_eq!(
        cal.working_days_between(EW, d(2025, 3, 7), d(2025, 3, 9)),
        0
    );
    // Empty or backwards.
    assert_eq!(
        cal.working_days_between(EW, d(2025, 3, 10), d(2025, 3, 10)),
        0
    );
    assert_eq!(
        cal.working_days_between(EW, d(2025, 3, 12), d(2025, 3, 10)),
        0
    );
    // All of 2025: 261 weekdays less 8 bank holidays (9 in Scotland, 10 in Northern Ireland).
    assert_eq!(
        cal.working_days_between(EW, d(2024, 12, 31), d(2025, 12, 31)),
        253
    );
    assert_eq!(
        cal.working_days_between(SC, d(2024, 12, 31), d(2025, 12, 31)),
        252
    );
    assert_eq!(
        cal.working_days_between(NI, d(2024, 12, 31), d(2025, 12, 31)),
        251
    );
    // Easter: Scotland works Easter Monday.
    assert_eq!(
        cal.working_days_between(EW, d(2026, 4, 2), d(2026, 4, 9)),
        3
    );
    assert_eq!(
        cal.working_days_between(SC, d(2026, 4, 2), d(2026, 4, 9)),
        4
    );
}

#[test]
fn working_days_between_over_the_whole_date_range_does_not_overflow() {
    let cal = Calendar::by_rule(2026, 2026);
    let n = cal.working_days_between(EW, NaiveDate::MIN, NaiveDate::MAX);
    assert!(n > 100_000_000);
}

#[test]
fn covered_years_reports_the_span_of_the_calendar() {
    let cal = Calendar::by_rule(2024, 2030);
    for nation in Nation::ALL {
        assert_eq!(cal.covered_years(nation), Some(2024..=2030));
    }
}

// --- the gov.uk file ---

#[test]
fn config_file_loads_and_equals_by_rule_2024_to_2030() {
    let loaded = Calendar::load(Path::new(CONFIG_FILE)).unwrap();
    assert_eq!(loaded, Calendar::by_rule(2024, 2030));
}

#[test]
fn to_json_round_trips_through_from_json() {
    let cal = Calendar::by_rule(2020, 2023);
    let text = cal.to_json();
    assert_eq!(Calendar::from_json(&text).unwrap(), cal);
    // It is the gov.uk shape.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let event = &v["scotland"]["events"][0];
    assert_eq!(v["scotland"]["division"], "scotland");
    assert_eq!(event["title"], "New Year’s Day");
    assert_eq!(event["date"], "2020-01-01");
    assert_eq!(event["notes"], "");
    assert_eq!(event["bunting"], true);
}

#[test]
fn from_json_accepts_gov_uk_events_with_one_offs() {
    let text = doc_with_ew_events(
        r#"[{"title": "Bank holiday for the coronation of King Charles III",
             "date": "2023-05-08", "notes": "", "bunting": true},
            {"title": "New Year’s Day", "date": "2023-01-02", "notes": "Substitute day",
             "bunting": true}]"#,
    );
    let cal = Calendar::from_json(&text).unwrap();
    assert!(cal.is_bank_holiday(EW, d(2023, 5, 8)));
    assert!(!cal.is_working_day(EW, d(2023, 5, 8)));
    assert!(!cal.is_bank_holiday(SC, d(2023, 5, 8)));
    assert_eq!(cal.add_working_days(EW, d(2023, 5, 5), 1), d(2023, 5, 9));
    assert_eq!(cal.covered_years(EW), Some(2023..=2023));
}

#[test]
fn from_json_rejects_malformed_input_with_a_reason() {
    parse_reason("");
    parse_reason("not json");
    parse_reason("[]");
    parse_reason("{}");
    // A nation missing.
    let reason = parse_reason(
        r#"{"england-and-wales": {"events": [{"title": "x", "date": "2026-01-01"}]},
            "scotland": {"events": [{"title": "x", "date": "2026-01-01"}]}}"#,
    );
    assert!(reason.contains("northern-ireland"), "{reason}");
    // Unknown division (a typo).
    let reason = parse_reason(&doc_with_ew_events("[]").replace("\"scotland\":", "\"scotlan\":"));
    assert!(reason.contains("scotlan"), "{reason}");
    // Bad dates and types.
    parse_reason(&doc_with_ew_events(
        r#"[{"title": "x", "date": "2026-02-30"}]"#,
    ));
    parse_reason(&doc_with_ew_events(
        r#"[{"title": "x", "date": "26/12/2026"}]"#,
    ));
    parse_reason(&doc_with_ew_events(r#"[{"title": "x", "date": 20261226}]"#));
    parse_reason(&doc_with_ew_events(r#"[{"date": "2026-12-26"}]"#));
    parse_reason(&doc_with_ew_events(
        r#"[{"title": "x", "date": "2026-12-26", "bunting": "yes"}]"#,
    ));
    parse_reason(&doc_with_ew_events(r#"{"title": "x"}"#));
    // Truncated.
    let full = Calendar::by_rule(2026, 2026).to_json();
    parse_reason(&full[..full.len() / 2]);
}

#[test]
fn from_json_rejects_empty_duplicate_and_mismatched_divisions() {
    let reason = parse_reason(&doc_with_ew_events("[]"));
    assert!(reason.contains("england-and-wales: no events"), "{reason}");
    let reason = parse_reason(&doc_with_ew_events(
        r#"[{"title": "a", "date": "2026-12-25"}, {"title": "b", "date": "2026-12-25"}]"#,
    ));
    assert!(reason.contains("2026-12-25 listed twice"), "{reason}");
    let one = r#"[{"title": "x", "date": "2026-01-01"}]"#;
    let reason = parse_reason(&format!(
        r#"{{"england-and-wales": {{"division": "scotland", "events": {one}}},
            "scotland": {{"events": {one}}}, "northern-ireland": {{"events": {one}}}}}"#
    ));
    assert!(reason.contains("division is \"scotland\""), "{reason}");
}

#[test]
fn load_reports_a_missing_file_with_its_path() {
    let path = Path::new("/nonexistent/bank-holidays.json");
    match Calendar::load(path) {
        Err(e @ CalendarError::Read { .. }) => {
            assert!(e.to_string().contains("/nonexistent/bank-holidays.json"));
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn load_reports_parse_errors_with_the_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank-holidays.json");
    std::fs::write(&path, "{").unwrap();
    match Calendar::load(&path) {
        Err(CalendarError::Parse { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(!reason.is_empty());
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

// --- Nation ---

#[test]
fn nation_defaults_to_england_and_wales_and_parses_its_names() {
    assert_eq!(Nation::default(), EW);
    for nation in Nation::ALL {
        assert_eq!(nation.to_string().parse::<Nation>().unwrap(), nation);
        let json = serde_json::to_string(&nation).unwrap();
        assert_eq!(json, format!("\"{}\"", nation.as_str()));
        assert_eq!(serde_json::from_str::<Nation>(&json).unwrap(), nation);
    }
    assert_eq!("scotland".parse::<Nation>().unwrap(), SC);
    assert_eq!("northern-ireland".parse::<Nation>().unwrap(), NI);
    assert!(matches!(
        "wales".parse::<Nation>(),
        Err(CalendarError::UnknownNation { name }) if name == "wales"
    ));
    assert!("Scotland".parse::<Nation>().is_err());
}
