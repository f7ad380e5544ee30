//! The data standard's own schema decides what view data is valid.
//!
//! `schemas/ViewDataPayload.json` is MaPS' schema of the `view_data` claim, vendored byte for
//! byte (its source and commit are in `schemas/README.md`). It is compiled once, on first use,
//! into three validators over the one document, each asserting `format` (dates, `email`, `uri`,
//! `uuid`):
//!
//! - the whole payload, `{"pensionLink"?, "arrangements": [definite | possible, ...]}`: what the
//!   view serves ([`schema_errors`]);
//! - `$defs/definiteMatchPensionArrangement`: the definite arrangement stored per pension, which
//!   the view embeds as it is ([`check_definite`]); validating it there rather than wrapped in a
//!   payload keeps the errors precise (a wrapped one fails the payload's `oneOf` as a whole);
//! - `$defs/phoneNumber/properties/number`: the standard's form of a phone number
//!   ([`phone_number_ok`]).
//!
//! Errors give the JSON path and the rule broken, never the value: the messages are the crate's
//! masked ones ("value is longer than 150 characters"). Where an `anyOf` or a `oneOf` refuses a
//! value (a contact method, an illustration component, payable details), the error is taken from
//! the one branch whose shape the value has, so a bad number is reported at the phone number's
//! `number`, not as "matches none of the four contact methods".

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use jsonschema::{Registry, ValidationError, Validator};
use serde_json::{json, Value};

/// The vendored schema, as published.
pub const SCHEMA_JSON: &str = include_str!("../../../../schemas/ViewDataPayload.json");

/// The URI the vendored schema is registered under: it has no `$id`, and its own references are
/// relative (`#/%24defs/...`).
const SCHEMA_URI: &str = "urn:pdp-provider:schemas:ViewDataPayload.json";

/// The validators, compiled once.
struct Compiled {
    /// The whole `view_data` payload.
    payload: Validator,
    /// A definite arrangement.
    definite: Validator,
    /// A phone number's `number`.
    phone_number: Validator,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA_JSON).expect("the vendored schema is JSON");
    let registry = Registry::new()
        .add(SCHEMA_URI, schema)
        .and_then(|r| r.prepare())
        .expect("the vendored schema registers");
    let build = |pointer: &str| {
        jsonschema::options()
            .should_validate_formats(true)
            .with_registry(&registry)
            .build(&json!({ "$ref": format!("{SCHEMA_URI}#{pointer}") }))
            .expect("the vendored schema compiles")
    };
    Compiled {
        payload: build(""),
        definite: build("/$defs/definiteMatchPensionArrangement"),
        phone_number: build("/$defs/phoneNumber/properties/number"),
    }
});

/// One step of a path into the validated value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// One rule broken, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    /// Where, from the validated value.
    path: Vec<Step>,
    /// Which rule, without the value.
    reason: String,
}

// === impl Refusal ===

impl Refusal {
    /// As a JSON pointer: `/arrangements/0/pensionType`.
    fn pointer(&self) -> String {
        self.path
            .iter()
            .map(|s| match s {
                Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                Step::Index(i) => format!("/{i}"),
            })
            .collect()
    }

    /// As the importer spells fields: `benefitIllustrations[0].illustrationComponents[1]`;
    /// empty for the value itself.
    fn dotted(&self) -> String {
        let mut out = String::new();
        for s in &self.path {
            match s {
                Step::Key(k) if out.is_empty() => out.push_str(k),
                Step::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

fn path_of(e: &ValidationError<'_>) -> Vec<Step> {
    e.instance_path()
        .segments()
        .map(|s| match s {
            LocationSegment::Property(p) => Step::Key(p.into_owned()),
            LocationSegment::Index(i) => Step::Index(i),
        })
        .collect()
}

/// How surely a branch of an `anyOf`/`oneOf` at depth `depth` refused the value for having
/// another shape: 2 when a constant (`illustrationType`, `possibleMatch`) or the value's type
/// names another shape, 1 when a member the branch requires is missing from the value itself, 0
/// when the value has the branch's shape and broke a rule inside it.
fn other_shape(branch: &[ValidationError<'_>], depth: usize) -> u8 {
    let mut sure = 0;
    for e in branch {
        let at = e.instance_path().segments().count();
        sure = sure.max(match e.kind() {
            ValidationErrorKind::Constant { .. } if at <= depth + 1 => 2,
            ValidationErrorKind::Type { .. } if at == depth => 2,
            ValidationErrorKind::Required { .. } if at == depth => 1,
            _ => 0,
        });
    }
    sure
}

/// The one branch whose shape the value has: among the branches not refused for a constant or
/// a type, the only one, or else the only one with every required member present.
fn shaped<'e, 'a>(
    context: &'e [Vec<ValidationError<'a>>],
    depth: usize,
) -> Option<&'e [ValidationError<'a>]> {
    let sure: Vec<u8> = context.iter().map(|b| other_shape(b, depth)).collect();
    let only = |at_most: u8| {
        let mut it = context.iter().zip(&sure).filter(|(_, s)| **s <= at_most);
        match (it.next(), it.next()) {
            (Some((b, _)), None) => Some(b.as_slice()),
            _ => None,
        }
    };
    only(1).or_else(|| only(0))
}

/// The refusals one error stands for, in the schema's order.
fn refusals(e: &ValidationError<'_>, out: &mut Vec<Refusal>) {
    let path = path_of(e);
    let with = |step: Step| {
        let mut p = path.clone();
        p.push(step);
        p
    };
    match e.kind() {
        ValidationErrorKind::Required { property } => out.push(Refusal {
            path: with(Step::Key(property.as_str().unwrap_or_default().to_owned())),
            reason: "required".into(),
        }),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            out.extend(unexpected.iter().map(|k| Refusal {
                path: with(Step::Key(k.clone())),
                reason: "not a member the standard allows here".into(),
            }))
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            match shaped(context, path.len()) {
                Some(branch) => branch.iter().for_each(|b| refusals(b, out)),
                None => out.push(Refusal {
                    path,
                    reason: "has none of the shapes the standard allows here".into(),
                }),
            }
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => out.push(Refusal {
            path,
            reason: "has more than one of the shapes the standard allows here".into(),
        }),
        _ => out.push(Refusal {
            path,
            reason: e.masked().to_string(),
        }),
    }
}

fn all_refusals(validator: &Validator, v: &Value) -> Vec<Refusal> {
    let mut out = Vec::new();
    // The common case, without collecting errors' context.
    if validator.is_valid(v) {
        return out;
    }
    for e in validator.iter_errors(v) {
        refusals(&e, &mut out);
    }
    out
}

/// Everything the schema refuses in a whole `view_data` payload, as `"<JSON pointer>: <rule>"`;
/// empty when it is valid. Values are never quoted.
pub fn schema_errors(payload: &Value) -> Vec<String> {
    all_refusals(&COMPILED.payload, payload)
        .iter()
        .map(|r| format!("{}: {}", r.pointer(), r.reason))
        .collect()
}

/// Checks a definite arrangement against the schema's `definiteMatchPensionArrangement`; the
/// first refusal, by field path (empty for the arrangement itself).
pub fn check_definite(arrangement: &Value) -> Result<(), super::ViewDataError> {
    match all_refusals(&COMPILED.definite, arrangement)
        .into_iter()
        .next()
    {
        None => Ok(()),
        Some(r) => Err(super::ViewDataError {
            field: r.dotted(),
            reason: r.reason,
        }),
    }
}

/// Whether `number` is a phone number in the standard's form (`+44 1134960000`).
pub fn phone_number_ok(number: &str) -> bool {
    COMPILED.phone_number.is_valid(&Value::from(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_schema_compiles_and_refuses_its_own_examples_precisely() {
        // MaPS' examples predate its rules: neither names the scheme, and the first one's
        // illustration has no components.
        let schema: Value = serde_json::from_str(SCHEMA_JSON).unwrap();
        let examples = schema["examples"].as_array().unwrap();
        assert_eq!(
            schema_errors(&examples[0]),
            [
                "/arrangements/0/pensionProviderSchemeName: required",
                "/arrangements/0/benefitIllustrations/0/illustrationComponents: required",
            ]
        );
        assert_eq!(
            schema_errors(&examples[1]),
            ["/arrangements/0/pensionProviderSchemeName: required"]
        );
        let mut fixed = examples[1].clone();
        fixed["arrangements"][0]["pensionProviderSchemeName"] = json!("Acme");
        assert_eq!(schema_errors(&fixed), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_path_and_the_rule_never_the_value() {
        let payload = json!({"arrangements": [{
            "possibleMatch": false,
            "pensionProviderSchemeName": "S".repeat(151),
            "pensionAdministrator": {"name": "Admin", "contactMethods": [
                {"preferred": true, "contactMethodDetails": {"number": "+44 113 496 0000", "usage": ["M"]}},
                {"preferred": true, "contactMethodDetails": {"email": "not-an-email-address"}}
            ]},
            "pensionType": "XX",
            "benefitIllustrations": [{"illustrationComponents": [
                {"illustrationType": "AP", "unavailableReason": "DCHA"},
                {"illustrationType": "ERI", "payableDetails":
                    {"amountType": "INC", "annualAmount": 1.005, "payableDate": "2040-02-30"}}
            ]}]
        }]});
        let errors = schema_errors(&payload);
        let mut paths: Vec<&str> = errors
            .iter()
            .map(|e| e.split(": ").next().unwrap())
            .collect();
        paths.sort();
        paths.dedup(); // the email breaks both its pattern and its format
        assert_eq!(
            paths,
            [
                "/arrangements/0/benefitIllustrations/0/illustrationComponents/0/unavailableReason",
                "/arrangements/0/benefitIllustrations/0/illustrationComponents/1/payableDetails/annualAmount",
                "/arrangements/0/benefitIllustrations/0/illustrationComponents/1/payableDetails/payableDate",
                "/arrangements/0/pensionAdministrator/contactMethods/0/contactMethodDetails/number",
                "/arrangements/0/pensionAdministrator/contactMethods/1/contactMethodDetails/email",
                "/arrangements/0/pensionProviderSchemeName",
                "/arrangements/0/pensionType",
            ],
            "{errors:#?}"
        );
        let all = errors.concat();
        for value in [
            "SSSS",
            "XX",
            "496",
            "not-an-email",
            "1.005",
            "2040-02-30",
            "DCHA",
        ] {
            assert!(!all.contains(value), "{value} quoted in {all}");
        }
    }

    #[test]
    fn a_definite_arrangement_is_checked_by_field_path() {
        let mut a = json!({
            "possibleMatch": false,
            "pensionProviderSchemeName": "Acme",
            "pensionAdministrator": {"name": "Acme Admin", "contactMethods": [
                {"preferred": true, "contactMethodDetails": {"url": "https://example.org"}}]}
        });
        assert_eq!(check_definite(&a), Ok(()));
        a["pensionAdministrator"]["contactMethods"][0]["contactMethodDetails"]["url"] =
            json!("no scheme");
        let e = check_definite(&a).unwrap_err();
        assert_eq!(
            e.field,
            "pensionAdministrator.contactMethods[0].contactMethodDetails.url"
        );
        a.as_object_mut().unwrap().remove("pensionAdministrator");
        assert_eq!(
            check_definite(&a).unwrap_err(),
            crate::wire::view::ViewDataError {
                field: "pensionAdministrator".into(),
                reason: "required".into()
            }
        );
    }

    #[test]
    #[ignore = "a timing, not a test: cargo test --release --lib -- --ignored schema_cost --nocapture"]
    fn schema_cost() {
        let schemes = crate::members::generate::schemes(1);
        let mut views: Vec<Value> = (0..2_000)
            .flat_map(|i| crate::members::generate::member(1, i, &schemes).pensions)
            .map(|p| p.view_data)
            .collect();
        let started = std::time::Instant::now();
        for v in &views {
            check_definite(v).unwrap();
        }
        let check = started.elapsed() / views.len() as u32;
        let started = std::time::Instant::now();
        for v in &mut views {
            crate::wire::view::normalise_definite(v).unwrap();
        }
        let normalise = started.elapsed() / views.len() as u32;
        println!("per pension: schema {check:?}, normalise {normalise:?}");
    }

    #[test]
    fn the_standards_phone_form_is_country_code_space_digits() {
        for ok in ["+44 1134960000", "+1 2025550123", "+353 18510000"] {
            assert!(phone_number_ok(ok), "{ok}");
        }
        for bad in [
            "+44 113 496 0000",
            "+441134960000",
            "0113 496 0000",
            "44 1134960000",
            "+44 113-4960000",
        ] {
            assert!(!phone_number_ok(bad), "{bad}");
        }
    }
}
