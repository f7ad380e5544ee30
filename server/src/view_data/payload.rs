//! Builds the `view_data` payload of one PeI from stored member data (wire contract §6).
//!
//! A definite match gets its stored arrangement; a possible match only the limited shape
//! (scheme, administrator, a reference). Values follow the 3/10 working-day rule: they go at
//! once when they come from a statement under 13 months old or a calculation under 12 months
//! old; otherwise each value component carries `unavailableReason` `DCC` (DC: due in 3 working
//! days) or `DBC` (DB or cash balance: 10 working days) without amounts, counted from the day
//! after the PeI was registered as a match, and the calculation owed is returned for recording.
//! Without the `value` scope, benefit illustrations are left out.

use chrono::{Months, NaiveDate};

use super::working_days::{Calendar, Nation};
use crate::store::StoredPension;
use crate::wire::view::{
    Arrangement, DefiniteArrangement, PensionType, PossibleArrangement, UnavailableReason,
    ViewDataError, ViewDataPayload,
};

/// A value calculation the view showed as pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `DCC` or `DBC`.
    pub kind: UnavailableReason,
    /// The day the PeI was registered as a match.
    pub started_on: NaiveDate,
    /// When the values are due.
    pub due_on: NaiveDate,
}

/// Whether the stored values can be shown as they are on `today`.
pub fn values_current(p: &StoredPension, today: NaiveDate) -> bool {
    let within = |d: Option<NaiveDate>, months: u32| {
        d.is_some_and(|d| {
            today
                .checked_sub_months(Months::new(months))
                .is_some_and(|cut| d > cut)
        })
    };
    within(p.statement_date, 13) || within(p.calculation_date, 12)
}

/// `DCC` for money purchase pensions, `DBC` for defined benefit and cash balance ones.
pub fn calculation_kind(t: Option<PensionType>) -> Option<UnavailableReason> {
    match t {
        Some(PensionType::DC | PensionType::AVC) | None => Some(UnavailableReason::DCC),
        Some(PensionType::DB | PensionType::CB | PensionType::HYB | PensionType::CDC) => {
            Some(UnavailableReason::DBC)
        }
        Some(PensionType::SP) => None,
    }
}

/// Replaces every value with `unavailableReason = kind`.
fn withhold_values(a: &mut DefiniteArrangement, kind: UnavailableReason) {
    for b in a.benefit_illustrations.iter_mut().flatten() {
        for c in &mut b.illustration_components {
            c.unavailable_reason = Some(kind);
            c.payable_details = None;
            c.estimated_pot = None;
            c.accrued_pot = None;
        }
    }
}

/// Everything the payload depends on besides the pension.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// `match-possible` PeIs get the limited shape.
    pub possible: bool,
    /// The RPT carries the `value` scope.
    pub value_scope: bool,
    /// When the PeI was registered as a match.
    pub registered_on: NaiveDate,
    /// Today.
    pub today: NaiveDate,
    /// Bank holidays.
    pub calendar: &'a Calendar,
    /// The scheme's nation.
    pub nation: Nation,
    /// The possible match's reference (its asset GUID).
    pub reference: &'a str,
}

/// Builds the payload, and the calculation owed if values were withheld.
pub fn build(
    p: &StoredPension,
    cx: Context<'_>,
) -> Result<(ViewDataPayload, Option<Pending>), ViewDataError> {
    let mut a = crate::wire::view::parse_definite(&p.view_data)?;
    if cx.possible {
        let limited = PossibleArrangement {
            possible_match: true,
            pension_provider_scheme_name: a.pension_provider_scheme_name,
            pension_administrator: a.pension_administrator,
            possible_match_reference: Some(cx.reference.to_owned()),
            alternate_scheme_name: a.alternate_scheme_name,
        };
        return Ok((
            ViewDataPayload {
                pension_link: None,
                arrangements: vec![Arrangement::Possible(limited)],
            },
            None,
        ));
    }
    let mut pending = None;
    if a.benefit_illustrations.is_some() && !values_current(p, cx.today) {
        if let Some(kind) = calculation_kind(a.pension_type) {
            let days = if kind == UnavailableReason::DCC {
                3
            } else {
                10
            };
            withhold_values(&mut a, kind);
            pending = Some(Pending {
                kind,
                started_on: cx.registered_on,
                due_on: cx
                    .calendar
                    .add_working_days(cx.nation, cx.registered_on, days),
            });
        }
    }
    if !cx.value_scope {
        a.benefit_illustrations = None;
    }
    Ok((
        ViewDataPayload {
            pension_link: None,
            arrangements: vec![Arrangement::Definite(Box::new(a))],
        },
        pending,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pension(kind: &str, statement: Option<&str>) -> StoredPension {
        StoredPension {
            asset_guid: uuid::Uuid::new_v4(),
            member_id: "M1".into(),
            holdername: uuid::Uuid::new_v4(),
            scheme_name: "Acme".into(),
            view_data: json!({
                "pensionProviderSchemeName": "Acme",
                "pensionAdministrator": {"name": "Acme Admin", "contactMethods": [
                    {"preferred": true, "contactMethodDetails": {"email": "a@example.org"}}]},
                "pensionType": kind,
                "benefitIllustrations": [{"illustrationComponents": [
                    {"illustrationType": "ERI", "payableDetails":
                        {"amountType": "INC", "annualAmount": 1000.0, "payableDate": "2040-01-01"}}]}]
            }),
            statement_date: statement.and_then(crate::matching::normalise::date),
            calculation_date: None,
        }
    }

    fn cx<'a>(calendar: &'a Calendar, registered: &str, today: &str) -> Context<'a> {
        Context {
            possible: false,
            value_scope: true,
            registered_on: crate::matching::normalise::date(registered).unwrap(),
            today: crate::matching::normalise::date(today).unwrap(),
            calendar,
            nation: Nation::EnglandAndWales,
            reference: "ref",
        }
    }

    fn component(p: &ViewDataPayload) -> serde_json::Value {
        serde_json::to_value(p).unwrap()["arrangements"][0]["benefitIllustrations"][0]
            ["illustrationComponents"][0]
            .clone()
    }

    #[test]
    fn recent_statements_show_values_at_once() {
        let cal = Calendar::by_rule(2026, 2027);
        let (p, pending) = build(
            &pension("DC", Some("2026-01-10")),
            cx(&cal, "2026-12-01", "2026-12-02"),
        )
        .unwrap();
        assert_eq!(pending, None);
        assert_eq!(component(&p)["payableDetails"]["annualAmount"], 1000.0);
    }

    #[test]
    fn stale_dc_values_are_dcc_due_in_3_working_days_over_christmas() {
        let cal = Calendar::by_rule(2026, 2027);
        let (p, pending) = build(
            &pension("DC", Some("2024-01-10")),
            cx(&cal, "2026-12-23", "2026-12-23"),
        )
        .unwrap();
        let c = component(&p);
        assert_eq!(c["unavailableReason"], "DCC");
        assert!(c.get("payableDetails").is_none());
        let pending = pending.unwrap();
        assert_eq!(pending.kind, UnavailableReason::DCC);
        assert_eq!(pending.due_on.to_string(), "2026-12-30");
    }

    #[test]
    fn stale_db_values_are_dbc_due_in_10_working_days_and_nations_differ() {
        let cal = Calendar::by_rule(2026, 2027);
        let (_, pending) =
            build(&pension("DB", None), cx(&cal, "2026-12-18", "2026-12-18")).unwrap();
        assert_eq!(pending.unwrap().due_on.to_string(), "2027-01-06");
        let mut c = cx(&cal, "2026-12-18", "2026-12-18");
        c.nation = Nation::Scotland;
        let (_, pending) = build(&pension("DB", None), c).unwrap();
        assert_eq!(pending.unwrap().due_on.to_string(), "2027-01-07");
    }

    #[test]
    fn possible_matches_get_the_limited_shape_and_no_value_scope_drops_illustrations() {
        let cal = Calendar::by_rule(2026, 2026);
        let mut c = cx(&cal, "2026-06-01", "2026-06-01");
        c.possible = true;
        let (p, pending) = build(&pension("DC", None), c).unwrap();
        assert!(pending.is_none());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["arrangements"][0]["possibleMatch"], true);
        assert_eq!(v["arrangements"][0]["possibleMatchReference"], "ref");
        assert!(v["arrangements"][0].get("pensionType").is_none());
        let mut c = cx(&cal, "2026-06-01", "2026-06-01");
        c.value_scope = false;
        let (p, _) = build(&pension("DC", Some("2026-05-01")), c).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert!(v["arrangements"][0].get("benefitIllustrations").is_none());
        assert_eq!(v["arrangements"][0]["pensionType"], "DC");
    }

    /// A definite arrangement with the shapes the generator does not write.
    fn every_shape() -> serde_json::Value {
        json!({
            "pensionProviderSchemeName": "Acme Cash Balance Scheme",
            "alternateSchemeName": {"name": "Acme Old Scheme", "alternateNameType": "FOR"},
            "pensionAdministrator": {"name": "Acme Admin", "contactMethods": [
                {"preferred": true, "contactMethodDetails": {"number": "0113 496 0000", "usage": ["M", "W"]}},
                {"preferred": false, "contactMethodDetails": {"email": "pensions@example.org"}},
                {"preferred": false, "contactMethodDetails": {"postalName": "Acme Pensions",
                    "line1": "1 High Street", "postcode": "LS1 1AA", "countryCode": "GB"}},
                {"preferred": false, "contactMethodDetails": {"url": "https://example.org/pensions"}}
            ]},
            "pensionReference": "REF-1",
            "pensionType": "CB",
            "pensionOrigin": "WT",
            "pensionStatus": "I",
            "contributionsFromMultipleEmployers": true,
            "benefitIllustrations": [{"illustrationDate": "2025-04-05", "illustrationComponents": [
                {"illustrationType": "ERI", "benefitType": "CBS", "calculationMethod": "CBI",
                 "payableDetails": {"amountType": "INCL", "annualAmount": 2400.5,
                                    "payableDate": "2040-04-05", "lastPaymentDate": "2060-04-05"},
                 "estimatedPot": 50000.01, "survivorBenefit": true, "illustrationWarnings": ["AVC", "PSO"]},
                {"illustrationType": "AP", "benefitType": "CBL", "calculationMethod": "SM",
                 "payableDetails": {"amountType": "CSH", "amount": 12000.0, "payableDate": "2040-04-05"},
                 "accruedPot": 30000.0, "safeguardedBenefit": false},
                {"illustrationType": "AP", "benefitType": "DB",
                 "payableDetails": {"reason": "SML", "amountType": "INC", "payableDate": "2040-04-05"}},
                {"illustrationType": "ERI", "unavailableReason": "NEW"}
            ]}],
            "additionalDataSources": [{"url": "https://example.org/charges", "informationType": "C_AND_C"}],
            "administrativeDetailsNotAvailable": false
        })
    }

    /// Every payload the view can build from generated members is valid against the data
    /// standard's schema: definite and possible, with and without the `value` scope, values
    /// current, pending as `DCC`/`DBC`, and current again from a recent calculation.
    #[test]
    fn every_payload_built_from_generated_members_is_valid_against_the_schema() {
        use crate::members::generate;
        use chrono::Datelike;
        let today = chrono::Utc::now().date_naive();
        let cal = Calendar::by_rule(today.year() - 1, today.year() + 3);
        let schemes = generate::schemes(11);
        let (mut built, mut pending_kinds) = (0, std::collections::BTreeSet::new());
        // Three hundred generated members, and one carrying every shape the generator does not
        // write (other contact methods, an AP, a lump sum, a value too small to show).
        let mut members: Vec<_> = (0..300)
            .map(|i| generate::member(11, i, &schemes))
            .collect();
        let mut rich = members[0].clone();
        rich.pensions.truncate(1);
        rich.pensions[0].view_data = every_shape();
        members.push(rich);
        for (i, mut m) in members.into_iter().enumerate() {
            m.normalise().unwrap();
            m.validate().unwrap_or_else(|e| panic!("member {i}: {e}"));
            for p in &m.pensions {
                let stored = StoredPension {
                    asset_guid: p.asset_guid,
                    member_id: m.member_id.clone(),
                    holdername: m.holdername,
                    scheme_name: crate::members::record::scheme_name(&p.view_data).into(),
                    view_data: p.view_data.clone(),
                    statement_date: p.statement_date,
                    calculation_date: p.calculation_date,
                };
                let stale = StoredPension {
                    statement_date: today.checked_sub_months(Months::new(26)),
                    ..stored.clone()
                };
                let calculated = StoredPension {
                    calculation_date: Some(today),
                    ..stale.clone()
                };
                let reference = p.asset_guid.hyphenated().to_string();
                for pension in [&stored, &stale, &calculated] {
                    for (possible, value_scope) in
                        [(false, true), (false, false), (true, true), (true, false)]
                    {
                        let cx = Context {
                            possible,
                            value_scope,
                            registered_on: today,
                            today,
                            calendar: &cal,
                            nation: Nation::EnglandAndWales,
                            reference: &reference,
                        };
                        let (payload, pending) = build(pension, cx).unwrap();
                        if let Some(p) = &pending {
                            pending_kinds.insert(format!("{:?}", p.kind));
                        }
                        let json = serde_json::to_value(&payload).unwrap();
                        let errors = crate::wire::view::schema_errors(&json);
                        assert!(
                            errors.is_empty(),
                            "member {i} (possible {possible}, value scope {value_scope}, \
                             pending {pending:?}): {errors:#?}"
                        );
                        built += 1;
                    }
                }
            }
        }
        assert!(built > 301 * 12, "{built}");
        assert_eq!(
            pending_kinds.into_iter().collect::<Vec<_>>(),
            ["DBC", "DCC"],
            "both kinds of pending values were built"
        );
    }
}
