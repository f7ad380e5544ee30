//! The find request (wire contract §3.1, reconstructed): envelope, find items, and validation.
//!
//! PDP's `find_request_token_payload` schema is not public. This is our reconstruction; the
//! envelope is read by one function, [`parse`], so following a published schema (or a signed JWT
//! carrying the same claims) is a change in this file only. Unknown fields are ignored for forward
//! compatibility; known fields are checked strictly. Errors name a field path and never quote a
//! value, because every value here is personal data.

use serde::{Deserialize, Serialize};

/// Most entries accepted in any list of find items.
pub const MAX_ITEMS: usize = 20;
/// Longest free-text value accepted (names, address lines).
pub const MAX_TEXT: usize = 200;
/// Longest UAT accepted.
pub const MAX_UAT: usize = 16 * 1024;

/// Why a find request body was refused. Each maps to one `errors[].code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// Not JSON at all.
    #[error("body is not valid JSON")]
    InvalidJson,
    /// The UAT is missing or malformed.
    #[error("{0}")]
    InvalidUat(&'static str),
    /// A find item is missing, of the wrong type, or out of range; the string is `path: reason`.
    #[error("{0}")]
    InvalidFindData(String),
}

/// A user access token: a bearer credential, so it never prints.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Uat(String);

impl Uat {
    /// The compact JWT, for the CAS token exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The JWT's `sub` claim (not verified: the CAS verifies the UAT), used to derive
    /// possible-match asset GUIDs (wire contract §2).
    pub fn subject(&self) -> Option<String> {
        let v = super::jwt::unverified_claims(&self.0)?;
        v.get("sub")?.as_str().map(str::to_owned)
    }
}

impl std::fmt::Debug for Uat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Uat([redacted])")
    }
}

/// Where the contract has objects: the body, `findData` and its two object fields, and the
/// elements of its lists. Serde would also accept a struct written as an array of its field
/// values (`["<uat>", {...}]`); the contract has none, so [`parse`] refuses arrays there.
/// Only the contract's own field names are looked at (and named in errors): other members are
/// ignored, as serde ignores them.
const OBJECT_FIELDS: [&str; 2] = ["dateOfBirth", "nino"];
/// The lists of `findData`, whose elements are objects.
const LIST_FIELDS: [&str; 6] = [
    "names",
    "previousFamilyNames",
    "addresses",
    "previousAddresses",
    "emails",
    "mobiles",
];

/// Refuses an array where the contract has an object (see [`OBJECT_FIELDS`]).
fn objects_where_the_contract_has_objects(body: &serde_json::Value) -> Result<(), FindError> {
    let wrong = |p: String| {
        Err(FindError::InvalidFindData(format!(
            "{p}: must be an object"
        )))
    };
    let Some(fields) = body.as_object() else {
        return wrong("body".into());
    };
    let Some(find_data) = fields.get("findData").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(find_data) = find_data.as_object() else {
        return wrong("findData".into());
    };
    for name in OBJECT_FIELDS {
        if find_data.get(name).is_some_and(|v| v.is_array()) {
            return wrong(format!("findData.{name}"));
        }
    }
    for name in LIST_FIELDS {
        if let Some(items) = find_data.get(name).and_then(|v| v.as_array()) {
            if let Some(i) = items.iter().position(|item| !item.is_object()) {
                return wrong(format!("findData.{name}[{i}]"));
            }
        }
    }
    Ok(())
}

/// The find request body.
#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct FindRequest {
    /// The user access token the PFS issued; swapped for a PAT at the CAS.
    pub uat: Option<Uat>,
    /// The user's verified and self-asserted identity data.
    pub find_data: Option<FindData>,
}

impl std::fmt::Debug for FindRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FindRequest([personal data redacted])")
    }
}

/// The user's identity data. Every item is optional and carries its own verification flag.
#[derive(Deserialize, Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct FindData {
    /// Current names; given and family name always both present.
    #[serde(default)]
    pub names: Vec<Name>,
    /// Previous family names.
    #[serde(default)]
    pub previous_family_names: Vec<PreviousName>,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: Option<Verified>,
    /// National Insurance number (self-asserted today).
    pub nino: Option<Verified>,
    /// Current addresses.
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// Previous addresses.
    #[serde(default)]
    pub previous_addresses: Vec<Address>,
    /// Email addresses.
    #[serde(default)]
    pub emails: Vec<Verified>,
    /// Mobile numbers.
    #[serde(default)]
    pub mobiles: Vec<Verified>,
}

impl std::fmt::Debug for FindData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FindData([personal data redacted])")
    }
}

/// A current name.
#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Name {
    /// Given name(s), upper case, ICAO transliterated.
    pub given_name: String,
    /// Family name, upper case, ICAO transliterated.
    pub family_name: String,
    /// Verified by the identity service.
    #[serde(default)]
    pub verified: bool,
}

/// A previous family name.
#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PreviousName {
    /// The family name.
    pub family_name: String,
    /// Verified by the identity service.
    #[serde(default)]
    pub verified: bool,
}

/// A single value with its verification flag.
#[derive(Deserialize, Serialize, Clone)]
pub struct Verified {
    /// The value.
    pub value: String,
    /// Verified by the identity service.
    #[serde(default)]
    pub verified: bool,
}

/// A UK (or other) postal address.
#[derive(Deserialize, Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// First line.
    #[serde(default)]
    pub address_line1: Option<String>,
    /// Second line.
    #[serde(default)]
    pub address_line2: Option<String>,
    /// Third line.
    #[serde(default)]
    pub address_line3: Option<String>,
    /// Fourth line.
    #[serde(default)]
    pub address_line4: Option<String>,
    /// Fifth line.
    #[serde(default)]
    pub address_line5: Option<String>,
    /// Postcode.
    #[serde(default)]
    pub postcode: Option<String>,
    /// ISO 3166 alpha-2 country.
    #[serde(default)]
    pub country_code: Option<String>,
    /// Verified by the identity service.
    #[serde(default)]
    pub verified: bool,
}

/// A find request that passed validation.
#[derive(Debug, Clone)]
pub struct ValidFind {
    /// The UAT.
    pub uat: Uat,
    /// The find data.
    pub find_data: FindData,
}

/// Parses and validates a find request body. The one entry point for the envelope.
pub fn parse(body: &[u8]) -> Result<ValidFind, FindError> {
    let req = match typed(body) {
        Some(req) => req,
        None => checked(body)?,
    };
    validate(req)
}

/// A find request read into its types, validated.
fn validate(req: FindRequest) -> Result<ValidFind, FindError> {
    let uat = req.uat.ok_or(FindError::InvalidUat("uat: missing"))?;
    validate_uat(&uat)?;
    let find_data = req
        .find_data
        .ok_or_else(|| FindError::InvalidFindData("findData: missing".into()))?;
    validate_find_data(&find_data)?;
    Ok(ValidFind { uat, find_data })
}

/// A well-formed body in one pass, straight into its types; `None` for anything else, which
/// [`checked`] reads again to say what is wrong with it. What this takes, [`checked`] takes
/// the same: serde would read an array as a struct, but in a body whose every `[` opens a list
/// of objects, or an empty list as a member's value, no array stands where the contract has an
/// object (no struct of the contract begins with a field read from an object, and the one read
/// from `[]` whole, an address, is only ever a list's element).
fn typed(body: &[u8]) -> Option<FindRequest> {
    if !every_array_is_a_list(body) {
        return None;
    }
    // Exactly one JSON value: anything after it is an error, which `checked` reports.
    serde_json::from_slice(body).ok()
}

/// Whether each `[` in `body` (in a string or not) is followed by `{`, or by `]` after a `:`
/// (white space aside).
fn every_array_is_a_list(body: &[u8]) -> bool {
    let space = |b: &&u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    memchr::memchr_iter(b'[', body).all(|open| match body[open + 1..].iter().find(|b| !space(b)) {
        Some(b'{') => true,
        Some(b']') => body[..open].iter().rev().find(|b| !space(b)) == Some(&b':'),
        _ => false,
    })
}

/// Any body, read as a JSON value first: the path of the first field missing or of the wrong
/// type (never its value), and arrays refused where the contract has objects.
fn checked(body: &[u8]) -> Result<FindRequest, FindError> {
    // Exactly one JSON value: anything after it (a second body, trailing bytes) is refused.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| FindError::InvalidJson)?;
    objects_where_the_contract_has_objects(&value)?;
    match serde_path_to_error::deserialize(&value) {
        Ok(r) => Ok(r),
        Err(e) => {
            let path = e.path().to_string();
            // Never echo serde's message: it can quote the offending value.
            Err(if path.starts_with("uat") {
                FindError::InvalidUat("uat: must be a string")
            } else {
                FindError::InvalidFindData(format!("{path}: missing or of the wrong type"))
            })
        }
    }
}

fn validate_uat(uat: &Uat) -> Result<(), FindError> {
    let s = uat.expose();
    if s.is_empty() {
        return Err(FindError::InvalidUat("uat: missing"));
    }
    if s.len() > MAX_UAT {
        return Err(FindError::InvalidUat("uat: too long"));
    }
    let b64url = |seg: &str| {
        seg.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut segments = s.split('.');
    let three = match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(header), Some(claims), Some(signature), None) => {
            !header.is_empty()
                && !claims.is_empty()
                && [header, claims, signature].into_iter().all(b64url)
        }
        _ => false,
    };
    if !three {
        return Err(FindError::InvalidUat(
            "uat: not a compact JWT (three base64url segments)",
        ));
    }
    Ok(())
}

fn bad(path: impl std::fmt::Display, reason: &str) -> FindError {
    FindError::InvalidFindData(format!("{path}: {reason}"))
}

fn check_text(path: impl std::fmt::Display, v: &str, required: bool) -> Result<(), FindError> {
    if required && v.trim().is_empty() {
        return Err(bad(path, "must not be empty"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(bad(path, "too long"));
    }
    if v.chars().any(char::is_control) {
        return Err(bad(path, "contains control characters"));
    }
    Ok(())
}

fn check_len<T>(path: &str, items: &[T]) -> Result<(), FindError> {
    if items.len() > MAX_ITEMS {
        return Err(bad(path, "too many entries"));
    }
    Ok(())
}

/// Checks a NINO's shape: two letters, six digits, optional suffix A-D; spaces ignored.
pub fn nino_shape_ok(v: &str) -> bool {
    let mut n = 0;
    for b in v.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let fits = match n {
            0 | 1 => b.is_ascii_alphabetic(),
            2..=7 => b.is_ascii_digit(),
            8 => matches!(b.to_ascii_uppercase(), b'A'..=b'D'),
            _ => false,
        };
        if !fits {
            return false;
        }
        n += 1;
    }
    n == 8 || n == 9
}

/// Checks a postcode's shape: 5 to 8 letters and digits once spaces are removed.
pub fn postcode_shape_ok(v: &str) -> bool {
    let n = v.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    (5..=8).contains(&n)
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_whitespace())
}

fn validate_address(path: &str, i: usize, a: &Address) -> Result<(), FindError> {
    for (name, line) in [
        ("addressLine1", &a.address_line1),
        ("addressLine2", &a.address_line2),
        ("addressLine3", &a.address_line3),
        ("addressLine4", &a.address_line4),
        ("addressLine5", &a.address_line5),
    ] {
        if let Some(l) = line {
            check_text(format_args!("{path}[{i}].{name}"), l, false)?;
        }
    }
    if let Some(p) = &a.postcode {
        let is_gb = a
            .country_code
            .as_deref()
            .is_none_or(|c| c.eq_ignore_ascii_case("GB"));
        if is_gb && !postcode_shape_ok(p) {
            return Err(bad(
                format_args!("{path}[{i}].postcode"),
                "not a UK postcode",
            ));
        }
        check_text(format_args!("{path}[{i}].postcode"), p, false)?;
    }
    if let Some(c) = &a.country_code {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad(
                format_args!("{path}[{i}].countryCode"),
                "not an ISO 3166 alpha-2 code",
            ));
        }
    }
    Ok(())
}

fn validate_find_data(d: &FindData) -> Result<(), FindError> {
    check_len("findData.names", &d.names)?;
    for (i, n) in d.names.iter().enumerate() {
        check_text(
            format_args!("findData.names[{i}].givenName"),
            &n.given_name,
            true,
        )?;
        check_text(
            format_args!("findData.names[{i}].familyName"),
            &n.family_name,
            true,
        )?;
    }
    check_len("findData.previousFamilyNames", &d.previous_family_names)?;
    for (i, n) in d.previous_family_names.iter().enumerate() {
        check_text(
            format_args!("findData.previousFamilyNames[{i}].familyName"),
            &n.family_name,
            true,
        )?;
    }
    if let Some(dob) = &d.date_of_birth {
        let date = crate::parse_ymd(&dob.value)
            .filter(|_| dob.value.len() == 10)
            .ok_or_else(|| bad("findData.dateOfBirth.value", "not a date (YYYY-MM-DD)"))?;
        let today = chrono::Utc::now().date_naive();
        if date > today || date < chrono::NaiveDate::from_ymd_opt(1890, 1, 1).expect("valid") {
            return Err(bad("findData.dateOfBirth.value", "out of range"));
        }
    }
    if let Some(nino) = &d.nino {
        if !nino_shape_ok(&nino.value) {
            return Err(bad(
                "findData.nino.value",
                "not a National Insurance number",
            ));
        }
    }
    check_len("findData.addresses", &d.addresses)?;
    for (i, a) in d.addresses.iter().enumerate() {
        validate_address("findData.addresses", i, a)?;
    }
    check_len("findData.previousAddresses", &d.previous_addresses)?;
    for (i, a) in d.previous_addresses.iter().enumerate() {
        validate_address("findData.previousAddresses", i, a)?;
    }
    check_len("findData.emails", &d.emails)?;
    for (i, e) in d.emails.iter().enumerate() {
        if e.value.len() > 254 || !e.value.contains('@') {
            return Err(bad(
                format_args!("findData.emails[{i}].value"),
                "not an email address",
            ));
        }
    }
    check_len("findData.mobiles", &d.mobiles)?;
    for (i, m) in d.mobiles.iter().enumerate() {
        let ok = m.value.len() <= 20
            && m.value.bytes().filter(u8::is_ascii_digit).count() >= 7
            && m.value
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'+' || b == b' ');
        if !ok {
            return Err(bad(
                format_args!("findData.mobiles[{i}].value"),
                "not a phone number",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
