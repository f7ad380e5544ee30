//! The member record import format.
//!
//! One JSON object per member (JSON lines), or one CSV row per pension (see [`super::import`]).
//!
//! ```json
//! {"memberId": "M0000001", "holdername": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
//!  "names": [{"givenName": "JANE", "familyName": "O'DONNELL"}],
//!  "previousFamilyNames": ["JONES"], "dateOfBirth": "1970-04-21", "nino": "QQ123456C",
//!  "addresses": [{"addressLine1": "1 HIGH STREET", "postcode": "LS1 1AA"}],
//!  "previousAddresses": [{"postcode": "M1 1AA"}],
//!  "pensions": [{"assetGuid": "…", "viewData": { …a definite arrangement (wire contract §6) }}]}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::matching::normalise;

/// A member as matching reads it, and a name: defined with the match index that reads them.
pub use crate::matching::record::{MatchRecord, MemberName, PensionKey};
use crate::matching::record::{
    MAX_ADDRESSES, MAX_ADDRESS_LINE_CHARS, MAX_NAMES, MAX_NAME_CHARS, MAX_PENSIONS,
};

/// One member and their pensions.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberRecord {
    /// The provider's own member identifier (not personal data on its own; never sent out).
    pub member_id: String,
    /// The holdername (scheme GUID) this member belongs to.
    pub holdername: Uuid,
    /// Current names.
    pub names: Vec<MemberName>,
    /// Previous family names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_family_names: Vec<String>,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// National Insurance number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nino: Option<String>,
    /// Current addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<MemberAddress>,
    /// Previous addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_addresses: Vec<MemberAddress>,
    /// The member's pensions at this holdername.
    pub pensions: Vec<MemberPension>,
}

impl std::fmt::Debug for MemberRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberRecord")
            .field("member_id", &self.member_id)
            .field("pensions", &self.pensions.len())
            .finish_non_exhaustive()
    }
}

/// An address.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberAddress {
    /// First line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line1: Option<String>,
    /// Second line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    /// Postcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// ISO 3166 alpha-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
}

/// One pension.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberPension {
    /// The pension's stable asset GUID (its PeI's asset part on a definite match).
    pub asset_guid: Uuid,
    /// The pension's view data: a definite arrangement of the data standard (wire contract §6),
    /// valid against its schema's `definiteMatchPensionArrangement`.
    pub view_data: serde_json::Value,
    /// Date of the statement its values come from (values are served at once under 13 months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_date: Option<chrono::NaiveDate>,
    /// Date of the calculation its values come from (served at once under 12 months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculation_date: Option<chrono::NaiveDate>,
}

/// A record that failed validation: which field, and why. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Field path.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn err(field: impl Into<String>, reason: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn too_long(max: usize) -> String {
    format!("longer than {max} characters")
}

/// Refuses a list longer than `max`.
fn at_most(field: &str, len: usize, max: usize) -> Result<(), FieldError> {
    if len > max {
        return Err(err(field, &format!("more than {max} entries")));
    }
    Ok(())
}

// === impl MemberRecord ===

impl MemberRecord {
    /// Checks the record; the first problem found, by field. Each pension's view data is checked
    /// against the data standard's schema ([`crate::wire::view::check_definite`]); names,
    /// addresses and lists are held to the bounds of [`crate::matching::record`], and a pension's
    /// asset GUID may appear once.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.member_id.trim().is_empty() || self.member_id.len() > 64 {
            return Err(err("memberId", "must be 1 to 64 characters"));
        }
        self.validate_names()?;
        if normalise::date(&self.date_of_birth).is_none() {
            return Err(err("dateOfBirth", "not a date (YYYY-MM-DD)"));
        }
        if let Some(n) = &self.nino {
            if normalise::nino8(n).is_none() {
                return Err(err("nino", "not a National Insurance number"));
            }
        }
        self.validate_addresses()?;
        self.validate_pensions()
    }

    fn validate_names(&self) -> Result<(), FieldError> {
        if self.names.is_empty() {
            return Err(err("names", "at least one name is required"));
        }
        at_most("names", self.names.len(), MAX_NAMES)?;
        at_most(
            "previousFamilyNames",
            self.previous_family_names.len(),
            MAX_NAMES,
        )?;
        for (i, n) in self.names.iter().enumerate() {
            for (field, v) in [("givenName", &n.given_name), ("familyName", &n.family_name)] {
                let field = format!("names[{i}].{field}");
                if v.chars().count() > MAX_NAME_CHARS {
                    return Err(err(field, &too_long(MAX_NAME_CHARS)));
                }
                if normalise::name(v).is_empty() {
                    return Err(err(field, "must contain letters"));
                }
            }
        }
        for (i, v) in self.previous_family_names.iter().enumerate() {
            if v.chars().count() > MAX_NAME_CHARS {
                let field = format!("previousFamilyNames[{i}]");
                return Err(err(field, &too_long(MAX_NAME_CHARS)));
            }
        }
        Ok(())
    }

    fn validate_addresses(&self) -> Result<(), FieldError> {
        for (list, addrs) in [
            ("addresses", &self.addresses),
            ("previousAddresses", &self.previous_addresses),
        ] {
            at_most(list, addrs.len(), MAX_ADDRESSES)?;
            for (i, a) in addrs.iter().enumerate() {
                for (field, v) in [
                    ("addressLine1", &a.address_line1),
                    ("addressLine2", &a.address_line2),
                ] {
                    if v.as_ref()
                        .is_some_and(|v| v.chars().count() > MAX_ADDRESS_LINE_CHARS)
                    {
                        let field = format!("{list}[{i}].{field}");
                        return Err(err(field, &too_long(MAX_ADDRESS_LINE_CHARS)));
                    }
                }
                if let Some(p) = &a.postcode {
                    if !crate::wire::find::postcode_shape_ok(p) {
                        return Err(err(format!("{list}[{i}].postcode"), "not a UK postcode"));
                    }
                }
                if let Some(c) = &a.country_code {
                    if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                        let field = format!("{list}[{i}].countryCode");
                        return Err(err(field, "not an ISO 3166 alpha-2 code"));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_pensions(&self) -> Result<(), FieldError> {
        if self.pensions.is_empty() {
            return Err(err("pensions", "at least one pension is required"));
        }
        at_most("pensions", self.pensions.len(), MAX_PENSIONS)?;
        let mut seen = std::collections::HashMap::with_capacity(self.pensions.len());
        for (i, p) in self.pensions.iter().enumerate() {
            if let Some(first) = seen.insert(p.asset_guid, i) {
                let reason = format!("the same asset GUID as pensions[{first}]");
                return Err(err(format!("pensions[{i}].assetGuid"), &reason));
            }
            crate::wire::view::check_definite(&p.view_data).map_err(|e| FieldError {
                field: e.field_under(&format!("pensions[{i}].viewData")),
                reason: e.reason,
            })?;
        }
        Ok(())
    }

    /// Puts each pension's view data in the standard's form before [`Self::validate`] checks it
    /// (phone numbers as `+44 1134960000`; see [`crate::wire::view::normalise_definite`]). A
    /// number that cannot be put in that form is refused by its field, never its value.
    pub fn normalise(&mut self) -> Result<(), FieldError> {
        for (i, p) in self.pensions.iter_mut().enumerate() {
            crate::wire::view::normalise_definite(&mut p.view_data).map_err(|e| FieldError {
                field: e.field_under(&format!("pensions[{i}].viewData")),
                reason: e.reason,
            })?;
        }
        Ok(())
    }

    /// The member as the store takes it: its match record and its pensions' view data as JSON.
    /// Its look-up keys are hashed with `index_key` ([`crate::store::Store::index_key`]).
    pub fn to_new_member(&self, index_key: &crate::sealed::IndexKey) -> crate::store::NewMember {
        let record = self.match_record();
        crate::store::NewMember {
            member_id: self.member_id.clone(),
            holdername: self.holdername,
            match_keys: crate::matching::index::look_up_keys(index_key, &record.person()),
            match_record: serde_json::to_vec(&record).expect("match record serialises"),
            pensions: self
                .pensions
                .iter()
                .map(|p| crate::store::NewPension {
                    asset_guid: p.asset_guid,
                    scheme_name: scheme_name(&p.view_data).to_owned(),
                    view_data: serde_json::to_vec(&p.view_data).expect("view data serialises"),
                    statement_date: p.statement_date,
                    calculation_date: p.calculation_date,
                })
                .collect(),
        }
    }

    /// What matching needs of this member: everything but the view data.
    pub fn match_record(&self) -> MatchRecord {
        MatchRecord {
            member_id: self.member_id.clone(),
            holdername: self.holdername,
            names: self.names.clone(),
            previous_family_names: self.previous_family_names.clone(),
            date_of_birth: self.date_of_birth.clone(),
            nino: self.nino.clone(),
            postcodes: self
                .addresses
                .iter()
                .filter_map(|a| a.postcode.clone())
                .collect(),
            previous_postcodes: self
                .previous_addresses
                .iter()
                .filter_map(|a| a.postcode.clone())
                .collect(),
            pensions: self
                .pensions
                .iter()
                .map(|p| PensionKey {
                    asset_guid: p.asset_guid,
                    scheme_name: scheme_name(&p.view_data).to_owned(),
                })
                .collect(),
        }
    }
}

/// The scheme name of a pension's view data (validated present on import).
pub fn scheme_name(view_data: &serde_json::Value) -> &str {
    view_data
        .get("pensionProviderSchemeName")
        .and_then(|v| v.as_str())
        .unwrap_or("")
}
