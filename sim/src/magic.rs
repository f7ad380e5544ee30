//! MaPS' C&A stub's magic values, as its controllers answer them (`AbstractApiController`,
//! `UserDbInitializer`, `ResourceDbInitializer`, `IntrospectService` of
//! `moneyadviceservice/pdp-test-harness` v1.1.5).
//!
//! Each CAS endpoint checks its input against the constants of [`values`] before its normal
//! logic: `POST /token` the assertion (the UAT), `POST /rreguri`, `PATCH` and `DELETE
//! /rreguri/{id}` and `POST /perm` the bearer PAT, `POST /introspect` the RPT. A match answers as
//! the constant's name says ([`Scripted`]): `400` with an OAuth error body for the three
//! `ASSERTION_UAT_FOR_400_*`, `429` with `Retry-After` (a random 2 to 10 seconds), any other
//! status with an empty body. The stub's users ([`USERS`]) swap a fixed UAT for a fixed PAT, so a
//! find carrying `ASSERTION_UAT_<X>` makes the provider's next call carry `ASSERTION_PAT_<X>`
//! and fail as scripted; `HAPPY_PATH_UAT_01..20` swap for `HAPPY_PATH_PAT_01..20`. Its seeded
//! resources ([`SEEDED_RPTS`]) make introspection of the RPT constants answer `200` with the
//! body each names (inactive, or flawed in one way a provider must refuse).

pub mod values;

#[cfg(test)]
mod tests;

use values::*;

/// What the stub answers for a magic value, before its normal logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// The status, with an empty body.
    Empty(u16),
    /// `400` with `{"error": <code>}` (the token endpoint's OAuth error body).
    OAuthError(&'static str),
    /// `429` with `Retry-After`: a random whole number of seconds from 2 to 10, empty body.
    TooManyRequests,
}

/// The status a constant's name scripts, from its `_<status>_` part.
fn scripted(name: &str) -> Scripted {
    match name {
        n if n.ends_with("_400_INVALID_REQUEST") => Scripted::OAuthError("invalid_request"),
        n if n.ends_with("_400_INVALID_GRANT") => Scripted::OAuthError("invalid_grant"),
        n if n.ends_with("_400_UNAUTHORISED_CLIENT") => Scripted::OAuthError("unauthorised_client"),
        n if n.contains("_429_") => Scripted::TooManyRequests,
        n => Scripted::Empty(
            [
                "_400_", "_401_", "_404_", "_500_", "_502_", "_503_", "_504_",
            ]
            .iter()
            .find(|s| n.contains(*s))
            .and_then(|s| s.trim_matches('_').parse().ok())
            .unwrap_or(500),
        ),
    }
}

/// The first constant named with `prefix` whose value is `token`.
fn lookup(prefixes: &[&str], token: &str) -> Option<Scripted> {
    ALL.iter()
        .find(|(name, value)| *value == token && prefixes.iter().any(|p| name.starts_with(p)))
        .map(|(name, _)| scripted(name))
}

/// `POST /token`: the assertion (`checkTokenForAssertionsForToken`).
pub fn on_token(uat: &str) -> Option<Scripted> {
    lookup(&["ASSERTION_UAT_FOR_400_", "ASSERTION_UAT_TOKEN_"], uat)
}

/// `POST /rreguri`: the bearer PAT.
pub fn on_register(pat: &str) -> Option<Scripted> {
    lookup(&["ASSERTION_PAT_RREGURI_POST_"], pat)
}

/// `PATCH /rreguri/{id}`: the bearer PAT.
pub fn on_update(pat: &str) -> Option<Scripted> {
    lookup(&["ASSERTION_PAT_RREGURI_PATCH_"], pat)
}

/// `DELETE /rreguri/{id}`: the bearer PAT.
pub fn on_delete(pat: &str) -> Option<Scripted> {
    lookup(&["ASSERTION_PAT_RREGURI_DELETE_"], pat)
}

/// `POST /perm`: the bearer PAT.
pub fn on_perm(pat: &str) -> Option<Scripted> {
    lookup(&["ASSERTION_PAT_PERM_"], pat)
}

/// `POST /introspect`: the RPT in the form.
pub fn on_introspect(rpt: &str) -> Option<Scripted> {
    lookup(&["ASSERTION_RPT_INTROSPECT_"], rpt)
}

/// The name of a magic value, for call logs (`A / B` when two constants share it).
pub fn name_of(token: &str) -> Option<String> {
    let names: Vec<&str> = ALL
        .iter()
        .filter(|(_, v)| *v == token)
        .map(|(n, _)| *n)
        .collect();
    (!names.is_empty()).then(|| names.join(" / "))
}

/// The claim by which a UAT of the simulator's stands for one of the stub's UATs: its value is
/// the constant's name (`"pdp_stub_uat": "HAPPY_PATH_UAT_03"`).
///
/// The stub's UATs carry no `sub`, which an endpoint needs to derive possible-match PeIs (wire
/// contract §1). A UAT with a `sub` and this claim is swapped by the simulator exactly as the
/// constant it names: MaPS' stub knows only the constants themselves.
pub const ALIAS_CLAIM: &str = "pdp_stub_uat";

/// The stub's UAT constant a UAT stands for through [`ALIAS_CLAIM`].
pub fn aliased_uat(uat: &str) -> Option<&'static str> {
    let claims = pdp_provider::wire::jwt::unverified_claims(uat)?;
    let name = claims.get(ALIAS_CLAIM)?.as_str()?;
    ALL.iter()
        .find(|(n, _)| *n == name && n.contains("UAT"))
        .map(|(_, v)| *v)
}

/// A UAT with a fresh `sub` standing for the stub's UAT constant named `name`.
pub fn alias_for(name: &str) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = chrono::Utc::now().timestamp();
    // JWT-shaped; the signature means nothing (the endpoint does not verify UATs, the
    // simulator neither).
    format!(
        "{}.{}.{}",
        b64(serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        b64(
            serde_json::json!({"sub": uuid::Uuid::new_v4().to_string(), ALIAS_CLAIM: name,
                               "iat": now, "exp": now + 300})
        ),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
    )
}

/// The name of the stub's UAT constant with this value (the UAT-named one where two share it).
pub fn uat_name(uat: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|(n, v)| *v == uat && n.contains("UAT"))
        .map(|(n, _)| *n)
}

/// One of the stub's users: its UAT swaps for its PAT.
#[derive(Debug, Clone, Copy)]
pub struct User {
    /// The stub's `friendlyName`.
    pub name: &'static str,
    /// Its UAT.
    pub uat: &'static str,
    /// Its PAT.
    pub pat: &'static str,
}

macro_rules! users {
    ($($name:literal: $uat:ident => $pat:ident),* $(,)?) => {
        /// The stub's users, in its order (`UserDbInitializer`).
        pub const USERS: &[User] = &[$(User { name: $name, uat: $uat, pat: $pat }),*];
    };
}

users! {
    "Valid UAT and PAT": NOT_EXPIRED_TOKEN_UAT => NOT_EXPIRED_TOKEN_PAT,
    "Expired PAT": EXPIRED_TOKEN_UAT => EXPIRED_TOKEN_PAT,
    "Happy path user 01": HAPPY_PATH_UAT_01 => HAPPY_PATH_PAT_01,
    "Happy path user 02": HAPPY_PATH_UAT_02 => HAPPY_PATH_PAT_02,
    "Happy path user 03": HAPPY_PATH_UAT_03 => HAPPY_PATH_PAT_03,
    "Happy path user 04": HAPPY_PATH_UAT_04 => HAPPY_PATH_PAT_04,
    "Happy path user 05": HAPPY_PATH_UAT_05 => HAPPY_PATH_PAT_05,
    "Happy path user 06": HAPPY_PATH_UAT_06 => HAPPY_PATH_PAT_06,
    "Happy path user 07": HAPPY_PATH_UAT_07 => HAPPY_PATH_PAT_07,
    "Happy path user 08": HAPPY_PATH_UAT_08 => HAPPY_PATH_PAT_08,
    "Happy path user 09": HAPPY_PATH_UAT_09 => HAPPY_PATH_PAT_09,
    "Happy path user 10": HAPPY_PATH_UAT_10 => HAPPY_PATH_PAT_10,
    "Happy path user 11": HAPPY_PATH_UAT_11 => HAPPY_PATH_PAT_11,
    "Happy path user 12": HAPPY_PATH_UAT_12 => HAPPY_PATH_PAT_12,
    "Happy path user 13": HAPPY_PATH_UAT_13 => HAPPY_PATH_PAT_13,
    "Happy path user 14": HAPPY_PATH_UAT_14 => HAPPY_PATH_PAT_14,
    "Happy path user 15": HAPPY_PATH_UAT_15 => HAPPY_PATH_PAT_15,
    "Happy path user 16": HAPPY_PATH_UAT_16 => HAPPY_PATH_PAT_16,
    "Happy path user 17": HAPPY_PATH_UAT_17 => HAPPY_PATH_PAT_17,
    "Happy path user 18": HAPPY_PATH_UAT_18 => HAPPY_PATH_PAT_18,
    "Happy path user 19": HAPPY_PATH_UAT_19 => HAPPY_PATH_PAT_19,
    "Happy path user 20": HAPPY_PATH_UAT_20 => HAPPY_PATH_PAT_20,
    "Assertion User for /rreguri POST 401 expired PAT scenario":
        ASSERTION_UAT_RREGURI_POST_401_EXPIRED_PAT => ASSERTION_PAT_RREGURI_POST_401_EXPIRED_PAT,
    "Assertion User for /rreguri POST 404 user removed scenario":
        ASSERTION_UAT_RREGURI_POST_404_USER_REMOVED => ASSERTION_PAT_RREGURI_POST_404_USER_REMOVED,
    "Assertion User for /rreguri POST 429 too many requests scenario":
        ASSERTION_UAT_RREGURI_POST_429_TOO_MANY_REQUESTS
            => ASSERTION_PAT_RREGURI_POST_429_TOO_MANY_REQUESTS,
    "Assertion User for /rreguri POST 500 server error scenario":
        ASSERTION_UAT_RREGURI_POST_500_SERVER_ERROR => ASSERTION_PAT_RREGURI_POST_500_SERVER_ERROR,
    "Assertion User for /rreguri POST 502 bad gateway scenario":
        ASSERTION_UAT_RREGURI_POST_502_BAD_GATEWAY => ASSERTION_PAT_RREGURI_POST_502_BAD_GATEWAY,
    "Assertion User for /rreguri POST 503 service unavailable scenario":
        ASSERTION_UAT_RREGURI_POST_503_SERVICE_UNAVAILABLE
            => ASSERTION_PAT_RREGURI_POST_503_SERVICE_UNAVAILABLE,
    "Assertion User for /rreguri POST 504 gateway timeout scenario":
        ASSERTION_UAT_RREGURI_POST_504_GATEWAY_TIMEOUT
            => ASSERTION_PAT_RREGURI_POST_504_GATEWAY_TIMEOUT,
    "Assertion User for /rreguri PATCH 401 expired PAT scenario":
        ASSERTION_UAT_RREGURI_PATCH_401_EXPIRED_PAT => ASSERTION_PAT_RREGURI_PATCH_401_EXPIRED_PAT,
    "Assertion User for /rreguri PATCH 404 resource not found scenario":
        ASSERTION_UAT_RREGURI_PATCH_404_RESOURCE_NOT_FOUND
            => ASSERTION_PAT_RREGURI_PATCH_404_RESOURCE_NOT_FOUND,
    "Assertion User for /rreguri PATCH 429 too many requests scenario":
        ASSERTION_UAT_RREGURI_PATCH_429_TOO_MANY_REQUESTS
            => ASSERTION_PAT_RREGURI_PATCH_429_TOO_MANY_REQUESTS,
    "Assertion User for /rreguri PATCH 500 server error scenario":
        ASSERTION_UAT_RREGURI_PATCH_500_SERVER_ERROR
            => ASSERTION_PAT_RREGURI_PATCH_500_SERVER_ERROR,
    "Assertion User for /rreguri PATCH 502 bad gateway scenario":
        ASSERTION_UAT_RREGURI_PATCH_502_BAD_GATEWAY => ASSERTION_PAT_RREGURI_PATCH_502_BAD_GATEWAY,
    "Assertion User for /rreguri PATCH 503 service unavailable scenario":
        ASSERTION_UAT_RREGURI_PATCH_503_SERVICE_UNAVAILABLE
            => ASSERTION_PAT_RREGURI_PATCH_503_SERVICE_UNAVAILABLE,
    "Assertion User for /rreguri PATCH 504 gateway timeout scenario":
        ASSERTION_UAT_RREGURI_PATCH_504_GATEWAY_TIMEOUT
            => ASSERTION_PAT_RREGURI_PATCH_504_GATEWAY_TIMEOUT,
    "Assertion User for /rreguri DELETE 401 invalid mtls scenario":
        ASSERTION_UAT_RREGURI_DELETE_401_EXPIRED_PAT
            => ASSERTION_PAT_RREGURI_DELETE_401_EXPIRED_PAT,
    "Assertion User for /rreguri DELETE 429 too many requests scenario":
        ASSERTION_UAT_RREGURI_DELETE_429_TOO_MANY_REQUESTS
            => ASSERTION_PAT_RREGURI_DELETE_429_TOO_MANY_REQUESTS,
    "Assertion User for /rreguri DELETE 500 server error scenario":
        ASSERTION_UAT_RREGURI_DELETE_500_SERVER_ERROR
            => ASSERTION_PAT_RREGURI_DELETE_500_SERVER_ERROR,
    "Assertion User for /rreguri DELETE 502 bad gateway scenario":
        ASSERTION_UAT_RREGURI_DELETE_502_BAD_GATEWAY
            => ASSERTION_PAT_RREGURI_DELETE_502_BAD_GATEWAY,
    "Assertion User for /rreguri DELETE 503 service unavailable scenario":
        ASSERTION_UAT_RREGURI_DELETE_503_SERVICE_UNAVAILABLE
            => ASSERTION_PAT_RREGURI_DELETE_503_SERVICE_UNAVAILABLE,
    "Assertion User for /rreguri PATCH 504 gateway timeout scenario":
        ASSERTION_UAT_RREGURI_DELETE_504_GATEWAY_TIMEOUT
            => ASSERTION_PAT_RREGURI_DELETE_504_GATEWAY_TIMEOUT,
    "Assertion User for /perm 401 expired PAT scenario":
        ASSERTION_UAT_PERM_401_EXPIRED_PAT => ASSERTION_PAT_PERM_401_EXPIRED_PAT,
    "Assertion User for /perm 404 resource not found scenario":
        ASSERTION_UAT_PERM_404_RESOURCE_NOT_FOUND => ASSERTION_PAT_PERM_404_RESOURCE_NOT_FOUND,
    "Assertion User for /perm 500 server error scenario":
        ASSERTION_UAT_PERM_500_SERVER_ERROR => ASSERTION_PAT_PERM_500_SERVER_ERROR,
    "Assertion User for /perm 502 bad gateway scenario":
        ASSERTION_UAT_PERM_502_BAD_GATEWAY => ASSERTION_PAT_PERM_502_BAD_GATEWAY,
    "Assertion User for /perm 503 service unavailable scenario":
        ASSERTION_UAT_PERM_503_SERVICE_UNAVAILABLE => ASSERTION_PAT_PERM_503_SERVICE_UNAVAILABLE,
    "Assertion User for /perm 504 gateway timeout scenario":
        ASSERTION_UAT_PERM_504_GATEWAY_TIMEOUT => TOKEN_WITH_VALID_SIGNATURE,
    "Assertion User for /token 500 server error scenario":
        ASSERTION_UAT_TOKEN_500_SERVER_ERROR => TOKEN_WITH_VALID_SIGNATURE,
    "Assertion User for /token 502 bad gateway scenario":
        ASSERTION_UAT_TOKEN_502_BAD_GATEWAY => TOKEN_WITH_VALID_SIGNATURE,
    "Assertion User for /token 503 service unavailable scenario":
        ASSERTION_UAT_TOKEN_503_SERVICE_UNAVAILABLE => TOKEN_WITH_VALID_SIGNATURE,
    "Assertion User for /token 504 gateway timeout scenario":
        ASSERTION_UAT_TOKEN_504_GATEWAY_TIMEOUT => TOKEN_WITH_VALID_SIGNATURE,
}

/// The stub's user whose UAT this is (`TokenService.retrievePAT`).
pub fn user_by_uat(uat: &str) -> Option<&'static User> {
    USERS.iter().find(|u| u.uat == uat)
}

/// The stub's user whose PAT this is (the first: some share one).
pub fn user_by_pat(pat: &str) -> Option<&'static User> {
    USERS.iter().find(|u| u.pat == pat)
}

/// How a seeded RPT's introspection body departs from a sound one (`IntrospectService`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RptFlaw {
    /// None: the token's own `exp` decides `active`.
    None,
    /// `token_type` is `pension_dashboard_pmt`.
    WrongTokenType,
    /// `permissions` is empty.
    EmptyPermissions,
    /// The permission's scopes lack `owner`.
    ScopesNoOwner,
    /// `active: true` with an `exp` three years past.
    ExpiredButActive,
    /// The permission's `exp` is three years past.
    ExpiredPermission,
}

/// A resource the stub seeds with an RPT (`ResourceDbInitializer`).
#[derive(Debug, Clone, Copy)]
pub struct SeededRpt {
    /// The RPT constant.
    pub rpt: &'static str,
    /// The seeded resource's id.
    pub resource_id: &'static str,
    /// The PAT that owns it: another PAT introspecting it gets `401`.
    pub owner_pat: &'static str,
    /// How its body is flawed.
    pub flaw: RptFlaw,
}

/// The stub's resources with an RPT (the `ASSERTION_RPT_INTROSPECT_*` ones answer before these).
pub const SEEDED_RPTS: &[SeededRpt] = &[
    SeededRpt {
        rpt: VALID_RPT_TOKEN,
        resource_id: "92476c2f-25b8-4d87-afde-18a9ee2631dc",
        owner_pat: HAPPY_PATH_PAT_01,
        flaw: RptFlaw::None,
    },
    SeededRpt {
        rpt: EXPIRED_RPT_TOKEN,
        resource_id: "62933ca9-447e-4ce0-bb39-124e9fa3214f",
        owner_pat: HAPPY_PATH_PAT_02,
        flaw: RptFlaw::None,
    },
    SeededRpt {
        rpt: RPT_WRONG_TOKEN_TYPE,
        resource_id: "e54a365a-a80a-489a-a13d-7dc269c2aaaf",
        owner_pat: HAPPY_PATH_PAT_02,
        flaw: RptFlaw::WrongTokenType,
    },
    SeededRpt {
        rpt: RPT_EMPTY_PERM_ARRAY,
        resource_id: "6e401326-690d-4481-87a4-5da57dec742b",
        owner_pat: HAPPY_PATH_PAT_02,
        flaw: RptFlaw::EmptyPermissions,
    },
    SeededRpt {
        rpt: RPT_SCOPES_NO_OWNER,
        resource_id: "3cbfea2f-66db-4654-ae24-ad6d8d777ccd",
        owner_pat: HAPPY_PATH_PAT_02,
        flaw: RptFlaw::ScopesNoOwner,
    },
    SeededRpt {
        rpt: RPT_EXPIRED_ACTIVE_TOKEN,
        resource_id: "4b45b78c-61a8-468a-96db-1fe8f0d61656",
        owner_pat: HAPPY_PATH_PAT_02,
        flaw: RptFlaw::ExpiredButActive,
    },
    SeededRpt {
        rpt: RPT_EXPIRED_PERMISSION,
        resource_id: "21762ed0-8dde-429e-a48a-bdf52073e582",
        owner_pat: HAPPY_PATH_PAT_02,
        flaw: RptFlaw::ExpiredPermission,
    },
];

/// The seeded resource of an RPT constant.
pub fn seeded_rpt(rpt: &str) -> Option<&'static SeededRpt> {
    SEEDED_RPTS.iter().find(|s| s.rpt == rpt)
}

/// Three years, as the stub puts a flawed `exp` in the past (`getExpiredTimestampInSeconds`).
const THREE_YEARS_S: i64 = 1095 * 86_400;

/// The claims of a seeded RPT's access token (`resourceScopes` or `resource_scopes`, `exp`,
/// `iss`).
fn rpt_claims(rpt: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(rpt).ok()?;
    let wrapper: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    pdp_provider::wire::jwt::unverified_claims(wrapper["access_token"].as_str()?)
}

/// The introspection body of a seeded RPT, as the stub builds it. `last_registered` is the
/// resource the owner's PAT registered last (the stub names it in a flawed body's permission);
/// `now` is in epoch seconds.
pub fn seeded_introspection(
    seeded: &SeededRpt,
    last_registered: Option<&str>,
    now: i64,
) -> serde_json::Value {
    let claims = rpt_claims(seeded.rpt).unwrap_or_default();
    let exp = claims["exp"].as_i64().unwrap_or_default();
    let iss = claims["iss"].clone();
    let scopes: Vec<serde_json::Value> = claims
        .get("resourceScopes")
        .or_else(|| claims.get("resource_scopes"))
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .filter(|s| s.as_str() != Some("delegate"))
        .cloned()
        .collect();
    let last = last_registered.unwrap_or(seeded.resource_id);
    let perm = |resource_id: &str, exp: i64| {
        let one = serde_json::json!({"resource_id": resource_id,
                                     "resource_scopes": scopes, "exp": exp});
        serde_json::json!([one])
    };
    let (mut token_type, mut body_exp) = ("pension_dashboard_rpt", exp);
    let permissions = match seeded.flaw {
        RptFlaw::None => perm(seeded.resource_id, exp),
        RptFlaw::WrongTokenType => {
            token_type = "pension_dashboard_pmt";
            perm(last, exp)
        }
        RptFlaw::EmptyPermissions => serde_json::json!([]),
        RptFlaw::ScopesNoOwner => perm(last, exp),
        RptFlaw::ExpiredButActive => {
            body_exp = now - THREE_YEARS_S;
            perm(last, exp)
        }
        RptFlaw::ExpiredPermission => perm(last, now - THREE_YEARS_S),
    };
    serde_json::json!({"active": now <= exp, "token_type": token_type, "exp": body_exp,
                       "iss": iss, "permissions": permissions})
}
