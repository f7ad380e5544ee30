//! The match rules as `[matching]` writes them: the compared fields, the leniency a rule may
//! accept, rules, versioned rule sets, and the default set (wire contract §5).
//! [`crate::matching::rules`] evaluates them.

use serde::{Deserialize, Serialize};

use crate::model::MatchStatus;

/// A compared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// National Insurance number (first 8 characters).
    Nino,
    /// Family name.
    FamilyName,
    /// First given name.
    GivenName,
    /// Date of birth.
    DateOfBirth,
    /// Postcode.
    Postcode,
}

/// Agreement short of exact that a rule may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leniency {
    /// A previous family name or previous postcode, on either side.
    Historic,
    /// Given and family name swapped.
    Swapped,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// `match-yes` or `match-possible`.
    pub outcome: MatchStatus,
    /// The reason code recorded with the match.
    pub reason: String,
    /// Fields that must agree.
    #[serde(default)]
    pub agree: Vec<Field>,
    /// Fields that must disagree.
    #[serde(default)]
    pub disagree: Vec<Field>,
    /// Fields that must agree or be absent.
    #[serde(default)]
    pub not_contradicted: Vec<Field>,
    /// Fields absent on at least one side.
    #[serde(default)]
    pub absent: Vec<Field>,
    /// Lenient agreement this rule accepts for `agree` fields.
    #[serde(default)]
    pub lenient: Option<Leniency>,
}

/// A versioned rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// The version recorded against each find it decides.
    pub version: String,
    /// Rules, strongest first.
    pub rules: Vec<Rule>,
}

// === impl RuleSet ===

impl RuleSet {
    /// The default rules (wire contract §5), strongest first.
    pub fn default_rules() -> RuleSet {
        use Field::*;
        let rule = |outcome, reason: &str, agree: &[Field]| Rule {
            outcome,
            reason: reason.into(),
            agree: agree.to_vec(),
            disagree: vec![],
            not_contradicted: vec![],
            absent: vec![],
            lenient: None,
        };
        RuleSet {
            version: "default-1".into(),
            rules: vec![
                rule(
                    MatchStatus::Yes,
                    "nino_family_name_dob",
                    &[Nino, FamilyName, DateOfBirth],
                ),
                Rule {
                    not_contradicted: vec![Nino],
                    ..rule(
                        MatchStatus::Yes,
                        "names_dob_postcode",
                        &[FamilyName, GivenName, DateOfBirth, Postcode],
                    )
                },
                Rule {
                    disagree: vec![FamilyName],
                    ..rule(
                        MatchStatus::Possible,
                        "family_name_mismatch",
                        &[Nino, DateOfBirth],
                    )
                },
                Rule {
                    absent: vec![Nino],
                    ..rule(
                        MatchStatus::Possible,
                        "no_nino",
                        &[GivenName, FamilyName, DateOfBirth],
                    )
                },
                Rule {
                    lenient: Some(Leniency::Historic),
                    ..rule(
                        MatchStatus::Possible,
                        "historic_data",
                        &[Nino, FamilyName, DateOfBirth],
                    )
                },
                Rule {
                    lenient: Some(Leniency::Historic),
                    not_contradicted: vec![Nino],
                    ..rule(
                        MatchStatus::Possible,
                        "historic_data",
                        &[FamilyName, GivenName, DateOfBirth, Postcode],
                    )
                },
                Rule {
                    lenient: Some(Leniency::Swapped),
                    not_contradicted: vec![Nino],
                    ..rule(
                        MatchStatus::Possible,
                        "names_swapped",
                        &[GivenName, FamilyName, DateOfBirth],
                    )
                },
            ],
        }
    }
}
