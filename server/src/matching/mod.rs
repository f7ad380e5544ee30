//! Matching: is this find request one of our members, and which pensions?
//!
//! PDP sets no rules (CoCo2.1.2, 2.2.3; Regulation 23): these are the provider's own, held as
//! configuration per holdername, versioned, and the version that decided each find is recorded.
//!
//! - [`normalise`]: case, spaces, punctuation, diacritics; NINO, postcode, dates.
//! - [`record`]: a member as matching reads it (names, date of birth, NINO, postcodes).
//! - [`rules`]: the rule set (yes / possible / no, with reason codes) and its evaluation.
//! - [`index`]: the in-memory member indexes (dashmap) that turn a find into a few candidates.
//! - [`live`]: keeps the index current while member data changes, without a restart.

pub mod index;
pub mod live;
pub mod normalise;
pub mod record;
pub mod rules;

use uuid::Uuid;

pub use crate::model::MatchStatus;

/// One pension a find matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PensionMatch {
    /// The holdername the pension belongs to.
    pub holdername: Uuid,
    /// The member.
    pub member_id: String,
    /// The pension's own, stable asset GUID.
    pub pension_asset_guid: Uuid,
    /// The scheme name, exactly as in the view data (the PeI's `description`).
    pub scheme_name: String,
    /// Yes or possible.
    pub status: MatchStatus,
    /// The rule's reason code.
    pub reason: String,
    /// The rules version that decided it.
    pub rules_version: String,
}

/// The asset GUID of a PeI (wire contract §2): a definite match uses the pension's own GUID; a
/// possible match a UUIDv5 of the pension's GUID and the UAT's `sub`, so several users can hold
/// possible matches on one pension and a repeat find by the same user gives the same PeI.
pub fn pei_asset_guid(status: MatchStatus, pension: Uuid, uat_sub: &str) -> Uuid {
    match status {
        MatchStatus::Yes => pension,
        MatchStatus::Possible => Uuid::new_v5(&pension, uat_sub.as_bytes()),
    }
}

/// `urn:pei:<holdername>:<assetGuid>`, lower-case hex.
pub fn pei(holdername: Uuid, asset_guid: Uuid) -> String {
    format!(
        "urn:pei:{}:{}",
        holdername.hyphenated(),
        asset_guid.hyphenated()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pei_shape_and_possible_guids() {
        let h = Uuid::parse_str("3FA85F64-5717-4562-B3FC-2C963F66AFA6").unwrap();
        let p = Uuid::new_v4();
        let s = pei(h, p);
        assert!(s.starts_with("urn:pei:3fa85f64-5717-4562-b3fc-2c963f66afa6:"));
        assert_eq!(s.len(), "urn:pei:".len() + 36 + 1 + 36);
        assert_eq!(pei_asset_guid(MatchStatus::Yes, p, "u1"), p);
        let a = pei_asset_guid(MatchStatus::Possible, p, "u1");
        let b = pei_asset_guid(MatchStatus::Possible, p, "u2");
        assert_ne!(a, b);
        assert_ne!(a, p);
        assert_eq!(a, pei_asset_guid(MatchStatus::Possible, p, "u1"));
    }
}
