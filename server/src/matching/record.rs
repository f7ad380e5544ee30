//! A member as matching reads it: the part of a member record that is stored apart from its
//! pensions' view data, so that building the match index at start-up parses no view data. The
//! import ([`crate::members::record`]) writes it; the index reads it back.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::rules::{Person, RawIdentity};

// The bounds an import holds a member to (`crate::members::record` checks them). The data
// standard bounds the view data (its schema does) but not these fields, so they follow the UK
// Government Data Standards Catalogue's person name (35 characters each for given and family
// name), doubled for names written in full, and allow far more entries than a member has.

/// Longest given name, family name or previous family name, in characters.
pub const MAX_NAME_CHARS: usize = 70;
/// Most current names, and most previous family names, a member has.
pub const MAX_NAMES: usize = 10;
/// Most current addresses, and most previous addresses, a member has.
pub const MAX_ADDRESSES: usize = 20;
/// Longest address line, in characters: the data standard's postal address line.
pub const MAX_ADDRESS_LINE_CHARS: usize = 70;
/// Most pensions a member has at one holdername.
pub const MAX_PENSIONS: usize = 100;

/// The part of a member record that matching reads, stored apart from the view data so that
/// building the index at start-up does not parse view data.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRecord {
    /// The member ID.
    pub member_id: String,
    /// The holdername.
    pub holdername: Uuid,
    /// Current names.
    pub names: Vec<MemberName>,
    /// Previous family names.
    #[serde(default)]
    pub previous_family_names: Vec<String>,
    /// Date of birth.
    pub date_of_birth: String,
    /// NINO.
    #[serde(default)]
    pub nino: Option<String>,
    /// Current postcodes.
    #[serde(default)]
    pub postcodes: Vec<String>,
    /// Previous postcodes.
    #[serde(default)]
    pub previous_postcodes: Vec<String>,
    /// The member's pensions.
    pub pensions: Vec<PensionKey>,
}

/// A pension as matching knows it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PensionKey {
    /// Its stable asset GUID.
    pub asset_guid: Uuid,
    /// The scheme name, exactly as in its view data.
    pub scheme_name: String,
}

// === impl MatchRecord ===

impl MatchRecord {
    /// The normalised identity for matching.
    pub fn person(&self) -> Person {
        Person::normalise(RawIdentity {
            names: self
                .names
                .iter()
                .map(|n| (n.given_name.as_str(), n.family_name.as_str())),
            previous_family_names: self.previous_family_names.iter().map(String::as_str),
            date_of_birth: Some(self.date_of_birth.as_str()),
            nino: self.nino.as_deref(),
            postcodes: self.postcodes.iter().map(String::as_str),
            previous_postcodes: self.previous_postcodes.iter().map(String::as_str),
        })
    }
}

/// A member's name, as the import format writes it (`givenName`, `familyName`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberName {
    /// Given name(s).
    pub given_name: String,
    /// Family name.
    pub family_name: String,
}
