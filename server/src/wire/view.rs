//! The view data payload (wire contract §6, the data standards; MaPS' `ViewDataPayload.json`),
//! the view response and the UMA challenge.
//!
//! The data standard's own schema, vendored in `schemas/`, decides what view data is valid
//! ([`schema`]): stored view data is checked against it when it is imported ([`check_definite`]),
//! after phone numbers are put in the standard's form ([`normalise_definite`], [`phone`]).
//!
//! The typed model below is how the view reads stored view data and builds its payload. It
//! takes everything the schema takes: every code list is an enum, and only the objects the
//! schema closes (`additionalProperties: false`) reject unknown members; members of the open
//! ones are taken and not served. Its only rules of its own ([`validate_definite`]) are the ones
//! the schema states in words and cannot express. Stored view data that fails it fails when it
//! is imported, by field path, so a view never fails on bad data.

pub mod phone;
pub mod schema;

pub use schema::schema_errors;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// `{"view_data_token": "<compact JWS>"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ViewDataResponse {
    /// The signed view data token.
    pub view_data_token: String,
}

/// `WWW-Authenticate` for a UMA challenge, exactly as MaPS' dashboard parses it: lower-case
/// parameter names, quoted values, no commas inside values.
pub fn uma_challenge(as_uri: &str, ticket: &str) -> String {
    format!("UMA realm=\"PensionDashboard\", as_uri=\"{as_uri}\", ticket=\"{ticket}\"")
}

/// The `view_data` claim's content.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ViewDataPayload {
    /// Links arrangements of one pension across PeIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pension_link: Option<uuid::Uuid>,
    /// At least one.
    pub arrangements: Vec<Arrangement>,
}

/// A definite or possible arrangement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Arrangement {
    /// A possible match: the limited shape.
    Possible(PossibleArrangement),
    /// A definite match.
    Definite(Box<DefiniteArrangement>),
}

/// A possible match: scheme and administrator only; nothing else allowed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PossibleArrangement {
    /// Always `true`.
    pub possible_match: bool,
    /// The scheme name.
    pub pension_provider_scheme_name: String,
    /// Who to contact.
    pub pension_administrator: PensionAdministrator,
    /// A reference the member can quote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub possible_match_reference: Option<String>,
    /// Another name of the scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_scheme_name: Option<AlternateSchemeName>,
}

/// A definite match. The standard leaves it open: members it does not name are taken and not
/// served.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DefiniteArrangement {
    /// Always `false`.
    #[serde(default)]
    pub possible_match: bool,
    /// 1 to 150 characters.
    pub pension_provider_scheme_name: String,
    /// Who administers it.
    pub pension_administrator: PensionAdministrator,
    /// Another name of the scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_scheme_name: Option<AlternateSchemeName>,
    /// 1 to 50 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pension_reference: Option<String>,
    /// The pension type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pension_type: Option<PensionType>,
    /// Where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pension_origin: Option<PensionOrigin>,
    /// Active, inactive, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pension_status: Option<PensionStatus>,
    /// Start date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pension_start_date: Option<NaiveDate>,
    /// Retirement date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement_date: Option<NaiveDate>,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<NaiveDate>,
    /// State pension date (SP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_pension_date: Option<NaiveDate>,
    /// State pension message, English (SP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_pension_message_eng: Option<String>,
    /// State pension message, Welsh (SP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_pension_message_welsh: Option<String>,
    /// Contributions from several employers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributions_from_multiple_employers: Option<bool>,
    /// At least one when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employment_membership_periods: Option<Vec<EmploymentMembershipPeriod>>,
    /// At least one when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit_illustrations: Option<Vec<BenefitIllustration>>,
    /// Links to more information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_data_sources: Option<Vec<AdditionalDataSource>>,
    /// Status flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrative_details_not_available: Option<bool>,
    /// Status flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_scheme: Option<bool>,
    /// Status flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporary_system_error: Option<bool>,
}

/// Scheme administrator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PensionAdministrator {
    /// 1 to 150 characters.
    pub name: String,
    /// At least one.
    pub contact_methods: Vec<ContactMethod>,
}

/// One way to contact the administrator (open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContactMethod {
    /// The preferred method.
    pub preferred: bool,
    /// The details.
    pub contact_method_details: ContactMethodDetails,
}

/// Email, phone, postal address or website.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ContactMethodDetails {
    /// `{email}`.
    Email(Email),
    /// `{number, usage}`.
    Phone(Phone),
    /// `{postalName, line1, ...}`.
    Postal(Postal),
    /// `{url}`.
    Website(Website),
}

/// An email address (open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Email {
    /// The address.
    pub email: String,
}

/// A phone number (open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phone {
    /// In the standard's form: `+44 1134960000` (see [`phone`]).
    pub number: String,
    /// What it is for.
    pub usage: Vec<PhoneUsage>,
}

/// A postal address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Postal {
    /// Addressee.
    pub postal_name: String,
    /// Line 1.
    pub line1: String,
    /// Line 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// Line 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line3: Option<String>,
    /// Line 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line4: Option<String>,
    /// Line 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line5: Option<String>,
    /// Postcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// ISO 3166 alpha-2.
    pub country_code: String,
}

/// A website (open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Website {
    /// The URL.
    pub url: String,
}

/// Another scheme name (open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlternateSchemeName {
    /// The name.
    pub name: String,
    /// FOR (former) or OTH (other).
    pub alternate_name_type: AlternateNameType,
}

/// An employment / membership period.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmploymentMembershipPeriod {
    /// Employer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employer_name: Option<String>,
    /// Current or historic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employer_status: Option<EmployerStatus>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employment_start_date: Option<NaiveDate>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employment_end_date: Option<NaiveDate>,
}

/// A benefit illustration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BenefitIllustration {
    /// As at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illustration_date: Option<NaiveDate>,
    /// At least one.
    pub illustration_components: Vec<IllustrationComponent>,
}

/// An ERI or accrued value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IllustrationComponent {
    /// ERI or AP.
    pub illustration_type: IllustrationType,
    /// Why the value is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<UnavailableReason>,
    /// Benefit type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefit_type: Option<BenefitType>,
    /// Calculation method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calculation_method: Option<CalculationMethod>,
    /// Required unless `unavailableReason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payable_details: Option<PayableDetails>,
    /// ERI pot (GBP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_pot: Option<f64>,
    /// AP pot (GBP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accrued_pot: Option<f64>,
    /// Survivor benefit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survivor_benefit: Option<bool>,
    /// Safeguarded benefit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safeguarded_benefit: Option<bool>,
    /// 1 to 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illustration_warnings: Option<Vec<IllustrationWarning>>,
}

/// How a value is payable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PayableDetails {
    /// An income.
    Recurring(RecurringPayable),
    /// A lump sum.
    LumpSum(LumpSumPayable),
    /// Too small to illustrate.
    NotProvided(NotProvidedPayable),
}

/// An income.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecurringPayable {
    /// INC, INCL, INCN.
    pub amount_type: RecurringAmountType,
    /// GBP a year.
    pub annual_amount: f64,
    /// From.
    pub payable_date: NaiveDate,
    /// Until.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_payment_date: Option<NaiveDate>,
    /// Increases in payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increasing: Option<bool>,
}

/// A lump sum (open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LumpSumPayable {
    /// CSH, CSHL, CSHN.
    pub amount_type: LumpSumAmountType,
    /// GBP.
    pub amount: f64,
    /// From.
    pub payable_date: NaiveDate,
}

/// Not provided (`reason: SML`; open in the standard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotProvidedPayable {
    /// `SML`.
    pub reason: NotProvidedReason,
    /// From.
    pub payable_date: NaiveDate,
    /// Amount type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_type: Option<RecurringAmountType>,
    /// Until.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_payment_date: Option<NaiveDate>,
}

/// A link to more information.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdditionalDataSource {
    /// The URL.
    pub url: String,
    /// What it is.
    pub information_type: InformationType,
}

macro_rules! code_list {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }
    };
}

code_list!(
    /// Pension type.
    PensionType { /// Additional voluntary contributions.
        AVC, /// Cash balance.
        CB, /// Collective defined contribution.
        CDC, /// Defined benefit.
        DB, /// Defined contribution.
        DC, /// Hybrid.
        HYB, /// State pension.
        SP }
);
code_list!(
    /// Pension origin.
    PensionOrigin { /// A.
        A, /// PC.
        PC, /// PM.
        PM, /// PT.
        PT, /// WC.
        WC, /// WM.
        WM, /// WT.
        WT }
);
code_list!(
    /// Pension status.
    PensionStatus { /// Active.
        A, /// Inactive.
        I, /// In the PPF.
        IPPF, /// Winding up.
        IWU }
);
code_list!(
    /// Alternate name type.
    AlternateNameType { /// Former.
        FOR, /// Other.
        OTH }
);
code_list!(
    /// Employer status.
    EmployerStatus { /// Current.
        C, /// Historic.
        H }
);
code_list!(
    /// Phone usage.
    PhoneUsage { /// Any.
        A, /// Main.
        M, /// Non-UK.
        N, /// Special needs.
        S, /// Welsh.
        W }
);
code_list!(
    /// Illustration type.
    IllustrationType { /// Estimated retirement income.
        ERI, /// Accrued.
        AP }
);
code_list!(
    /// Why a value is unavailable.
    UnavailableReason { /// ANO.
        ANO, /// DB.
        DB, /// DB calculation: within 10 working days.
        DBC, /// DC calculation: within 3 working days.
        DCC, /// DCHA.
        DCHA, /// DCHP.
        DCHP, /// MEM.
        MEM, /// NEW.
        NEW, /// PPF.
        PPF, /// TRN.
        TRN, /// WU.
        WU, /// NET.
        NET }
);
code_list!(
    /// Benefit type.
    BenefitType { /// AVC.
        AVC, /// CBL.
        CBL, /// CBS.
        CBS, /// CDI.
        CDI, /// CDL.
        CDL, /// DB.
        DB, /// DBL.
        DBL, /// DC.
        DC }
);
code_list!(
    /// Calculation method.
    CalculationMethod { /// Benefit specific.
        BS, /// Cash balance.
        CBI, /// SMPI.
        SMPI, /// Statutory money purchase (AP only).
        SM }
);
code_list!(
    /// Recurring amount type.
    RecurringAmountType { /// Income.
        INC, /// Income, lifetime.
        INCL, /// Income, not lifetime.
        INCN }
);
code_list!(
    /// Lump sum amount type.
    LumpSumAmountType { /// Cash.
        CSH, /// Cash, lifetime.
        CSHL, /// Cash, not lifetime.
        CSHN }
);
code_list!(
    /// Why payable details are not provided.
    NotProvidedReason { /// Too small.
        SML }
);
code_list!(
    /// Illustration warnings.
    IllustrationWarning { /// AVC.
        AVC, /// CUR.
        CUR, /// DEF.
        DEF, /// FAS.
        FAS, /// PEO.
        PEO, /// PNR.
        PNR, /// PSO.
        PSO, /// SCP.
        SCP, /// TVI.
        TVI, /// UNP.
        UNP }
);
code_list!(
    /// Additional data source type.
    InformationType { /// Costs and charges.
        #[serde(rename = "C_AND_C")]
        CAndC, /// Statement of investment principles.
        SIP, /// Implementation statement.
        IMP, /// Annual report.
        ANR, /// State pension.
        SP }
);

/// A view data rule broken: which field, and why (never the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", if .field.is_empty() { "viewData" } else { .field.as_str() }, .reason)]
pub struct ViewDataError {
    /// Field path in the arrangement (`pensionAdministrator.contactMethods[1]`); empty for the
    /// arrangement itself.
    pub field: String,
    /// Why.
    pub reason: String,
}

// === impl ViewDataError ===

impl ViewDataError {
    /// The field path under `prefix`, the arrangement's own path (`pensions[0].viewData`).
    pub fn field_under(&self, prefix: &str) -> String {
        if self.field.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.field)
        }
    }
}

fn bad(field: impl Into<String>, reason: &str) -> ViewDataError {
    ViewDataError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Puts a stored definite arrangement in the standard's form before it is checked: each phone
/// number of its administrator in `+<country code> <digits>` form ([`phone::normalise`]), and
/// `possibleMatch: false` where it is left out (a stored arrangement is definite, and the view
/// says so). A number that cannot be put in that form is refused by its field path.
pub fn normalise_definite(v: &mut serde_json::Value) -> Result<(), ViewDataError> {
    let Some(a) = v.as_object_mut() else {
        return Ok(()); // not an object: the schema says so
    };
    a.entry("possibleMatch")
        .or_insert(serde_json::Value::Bool(false));
    let methods = a
        .get_mut("pensionAdministrator")
        .and_then(|p| p.get_mut("contactMethods"))
        .and_then(|m| m.as_array_mut());
    for (i, m) in methods.into_iter().flatten().enumerate() {
        let number = m
            .get_mut("contactMethodDetails")
            .and_then(|d| d.get_mut("number"));
        if let Some(n) = number {
            if let Some(text) = n.as_str() {
                *n = phone::normalise(text)
                    .ok_or_else(|| {
                        bad(
                            format!(
                                "pensionAdministrator.contactMethods[{i}].contactMethodDetails.number"
                            ),
                            "not a phone number that can be put in the standard's form \
                             (+<country code> <digits>)",
                        )
                    })?
                    .into();
            }
        }
    }
    Ok(())
}

/// Checks a definite arrangement as it is imported: the schema decides
/// ([`schema::check_definite`]), then the typed model reads it ([`parse_definite`]). Errors carry
/// the field path.
pub fn check_definite(v: &serde_json::Value) -> Result<DefiniteArrangement, ViewDataError> {
    schema::check_definite(v)?;
    parse_definite(v)
}

/// Reads a stored definite arrangement into the typed model, with the rules the schema states
/// only in words; errors carry the field path. This is the view's read of data that was checked
/// with [`check_definite`] when it was imported: it does not run the schema.
pub fn parse_definite(v: &serde_json::Value) -> Result<DefiniteArrangement, ViewDataError> {
    let a: DefiniteArrangement = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        bad(
            if path == "." { String::new() } else { path },
            "missing, unknown, not in its code list or of the wrong type",
        )
    })?;
    validate_definite(&a)?;
    Ok(a)
}

/// The rules the schema states in its descriptions but cannot express: a value component has
/// `payableDetails` unless it has an `unavailableReason` ("Must be provided unless an
/// unavailableReason has been provided"), and only a state pension has a Welsh state pension
/// message ("Must not be provided for any other pension type"). Everything else (lengths, code
/// lists, amounts in pence, which reasons and methods an ERI or an AP may have) is the schema's.
pub fn validate_definite(a: &DefiniteArrangement) -> Result<(), ViewDataError> {
    if a.state_pension_message_welsh.is_some() && a.pension_type != Some(PensionType::SP) {
        return Err(bad("statePensionMessageWelsh", "state pension only"));
    }
    for (i, b) in a.benefit_illustrations.iter().flatten().enumerate() {
        for (j, c) in b.illustration_components.iter().enumerate() {
            if c.payable_details.is_none() && c.unavailable_reason.is_none() {
                return Err(bad(
                    format!("benefitIllustrations[{i}].illustrationComponents[{j}].payableDetails"),
                    "required unless unavailableReason",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
