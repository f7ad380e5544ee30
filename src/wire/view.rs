//! The view data payload (SPEC §6, the data standards; MaPS' `ViewDataPayload.json`), the view
//! response and the UMA challenge.
//!
//! Every code list is an enum, so stored view data that does not follow the standard fails when
//! it is imported, by field path, and a view never fails on bad data. Objects the standard closes
//! (`possible` arrangements, contact method details) reject unknown members.

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

/// A definite match.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// One way to contact the administrator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// An email address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// The address.
    pub email: String,
}

/// A phone number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phone {
    /// `+44 ...`.
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

/// A website.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Website {
    /// The URL.
    pub url: String,
}

/// Another scheme name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// A lump sum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LumpSumPayable {
    /// CSH, CSHL, CSHN.
    pub amount_type: LumpSumAmountType,
    /// GBP.
    pub amount: f64,
    /// From.
    pub payable_date: NaiveDate,
}

/// Not provided (`reason: SML`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotProvidedPayable {
    /// `SML`.
    pub reason: NotProvidedReason,
    /// From.
    pub payable_date: NaiveDate,
    /// Amount type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_type: Option<String>,
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

/// A view data rule broken: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ViewDataError {
    /// Field path.
    pub field: String,
    /// Why.
    pub reason: String,
}

fn bad(field: impl Into<String>, reason: &str) -> ViewDataError {
    ViewDataError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn two_dp(v: f64) -> bool {
    v.is_finite() && v >= 0.0 && ((v * 100.0).round() - v * 100.0).abs() < 1e-6
}

fn len_ok(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.chars().count())
}

/// Parses and checks a stored definite arrangement; errors carry the field path.
pub fn parse_definite(v: &serde_json::Value) -> Result<DefiniteArrangement, ViewDataError> {
    let a: DefiniteArrangement = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        bad(
            if path == "." { "viewData".into() } else { path },
            "missing, unknown, not in its code list or of the wrong type",
        )
    })?;
    validate_definite(&a)?;
    Ok(a)
}

/// The rules serde cannot express.
pub fn validate_definite(a: &DefiniteArrangement) -> Result<(), ViewDataError> {
    if a.possible_match {
        return Err(bad(
            "possibleMatch",
            "a stored arrangement is definite (false)",
        ));
    }
    if !len_ok(&a.pension_provider_scheme_name, 1, 150) {
        return Err(bad("pensionProviderSchemeName", "1 to 150 characters"));
    }
    if !len_ok(&a.pension_administrator.name, 1, 150) {
        return Err(bad("pensionAdministrator.name", "1 to 150 characters"));
    }
    if a.pension_administrator.contact_methods.is_empty() {
        return Err(bad("pensionAdministrator.contactMethods", "at least one"));
    }
    for (i, c) in a.pension_administrator.contact_methods.iter().enumerate() {
        if let ContactMethodDetails::Phone(p) = &c.contact_method_details {
            if !p.number.starts_with('+') || p.usage.is_empty() {
                return Err(bad(
                    format!("pensionAdministrator.contactMethods[{i}].contactMethodDetails"),
                    "a number starting + and at least one usage",
                ));
            }
        }
    }
    if a.pension_reference
        .as_deref()
        .is_some_and(|r| !len_ok(r, 1, 50))
    {
        return Err(bad("pensionReference", "1 to 50 characters"));
    }
    if a.state_pension_message_welsh.is_some() && a.pension_type != Some(PensionType::SP) {
        return Err(bad("statePensionMessageWelsh", "state pension only"));
    }
    if a.employment_membership_periods
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        return Err(bad(
            "employmentMembershipPeriods",
            "at least one when present",
        ));
    }
    if let Some(bis) = &a.benefit_illustrations {
        if bis.is_empty() {
            return Err(bad("benefitIllustrations", "at least one when present"));
        }
        for (i, b) in bis.iter().enumerate() {
            if b.illustration_components.is_empty() {
                return Err(bad(
                    format!("benefitIllustrations[{i}].illustrationComponents"),
                    "at least one",
                ));
            }
            for (j, c) in b.illustration_components.iter().enumerate() {
                validate_component(
                    &format!("benefitIllustrations[{i}].illustrationComponents[{j}]"),
                    c,
                )?;
            }
        }
    }
    Ok(())
}

fn validate_component(path: &str, c: &IllustrationComponent) -> Result<(), ViewDataError> {
    if c.payable_details.is_none() && c.unavailable_reason.is_none() {
        return Err(bad(
            format!("{path}.payableDetails"),
            "required unless unavailableReason",
        ));
    }
    match c.illustration_type {
        IllustrationType::ERI if c.accrued_pot.is_some() => {
            return Err(bad(format!("{path}.accruedPot"), "AP only"));
        }
        IllustrationType::AP if c.estimated_pot.is_some() => {
            return Err(bad(format!("{path}.estimatedPot"), "ERI only"));
        }
        IllustrationType::ERI if c.calculation_method == Some(CalculationMethod::SM) => {
            return Err(bad(
                format!("{path}.calculationMethod"),
                "SM is for AP only",
            ));
        }
        IllustrationType::AP
            if matches!(
                c.unavailable_reason,
                Some(UnavailableReason::DB | UnavailableReason::DCHA | UnavailableReason::DCHP)
            ) =>
        {
            return Err(bad(format!("{path}.unavailableReason"), "not valid for AP"));
        }
        _ => {}
    }
    if c.illustration_warnings
        .as_ref()
        .is_some_and(|w| w.is_empty() || w.len() > 4)
    {
        return Err(bad(
            format!("{path}.illustrationWarnings"),
            "1 to 4 warnings",
        ));
    }
    for (name, v) in [
        ("estimatedPot", c.estimated_pot),
        ("accruedPot", c.accrued_pot),
    ] {
        if v.is_some_and(|v| !two_dp(v)) {
            return Err(bad(format!("{path}.{name}"), "GBP with at most 2 decimals"));
        }
    }
    match &c.payable_details {
        Some(PayableDetails::Recurring(r)) if !two_dp(r.annual_amount) => Err(bad(
            format!("{path}.payableDetails.annualAmount"),
            "GBP with at most 2 decimals",
        )),
        Some(PayableDetails::LumpSum(l)) if !two_dp(l.amount) => Err(bad(
            format!("{path}.payableDetails.amount"),
            "GBP with at most 2 decimals",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
