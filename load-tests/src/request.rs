//! What one find request carries: a fresh `X-Request-ID`, a fresh UAT `sub`, and the find body
//! derived from a member, written straight into one buffer.
//!
//! The body is the one [`generate::find_for`] describes (the same fields and values, keys in the
//! same order), but serialised from borrowed fields instead of through a `serde_json::Value`,
//! and the UUIDs come from the sending task's own generator instead of a `getrandom` system
//! call each: at tens of thousands of requests a second, building the body that way was a
//! quarter of the load tool's CPU, which the endpoint under test then did not get. The find
//! data of a member and outcome never changes, so [`Finds`] renders it once (for up to
//! [`RENDER_ONCE_MAX`] members); only the UAT, with its fresh `sub`, is written per request.
//!
//! [`generate::find_for`]: pdp_provider::members::generate::find_for

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use rand::{Rng, RngCore};
use serde::Serialize;

use pdp_provider::members::generate::FindKind;
use pdp_provider::members::record::MemberRecord;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The UAT's issuer, as the PFS's.
const UAT_ISSUER: &str = "http://pensionsdashboard.org/pfsissuer";

/// How long the fake UAT is valid for, seconds.
const UAT_TTL_S: i64 = 60;

/// A hyphenated UUID's length.
pub const UUID_LEN: usize = 36;

/// A random (version 4) UUID, hyphenated, from `rng`.
pub fn uuid_v4(rng: &mut impl RngCore) -> [u8; UUID_LEN] {
    let mut out = [0u8; UUID_LEN];
    uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut out);
    out
}

/// A request ID: a hyphenated UUID, kept without an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; UUID_LEN]);

// === impl RequestId ===

impl RequestId {
    /// As text.
    pub fn as_str(&self) -> &str {
        // Hyphenated UUIDs are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The find request for one pick: its `X-Request-ID` and its body.
pub struct FindRequest {
    /// `X-Request-ID`.
    pub request_id: RequestId,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// Members up to which [`Finds`] keeps each member's rendered find data (at most three a member,
/// a few hundred bytes each; past this many members each request renders its own).
pub const RENDER_ONCE_MAX: usize = 50_000;

/// The members finds are derived from, and the find data of each (member, outcome) once
/// rendered. Shared by every sending task.
pub struct Finds {
    members: Arc<Vec<MemberRecord>>,
    /// Three a member (yes, possible, no) when kept; empty otherwise.
    rendered: Vec<OnceLock<Box<[u8]>>>,
}

// === impl Finds ===

impl Finds {
    /// Finds derived from `members`, rendered once each if there are at most
    /// [`RENDER_ONCE_MAX`].
    pub fn new(members: Arc<Vec<MemberRecord>>) -> Self {
        let keep = members.len() <= RENDER_ONCE_MAX;
        Self::with_rendering_kept(members, keep)
    }

    fn with_rendering_kept(members: Arc<Vec<MemberRecord>>, keep: bool) -> Self {
        let rendered = if keep {
            (0..members.len() * 3).map(|_| OnceLock::new()).collect()
        } else {
            Vec::new()
        };
        Self { members, rendered }
    }

    /// The find data (a JSON object) for `kind` derived from member `member`.
    fn find_data(&self, member: usize, kind: FindKind) -> Cow<'_, [u8]> {
        let render = || {
            let mut out = Vec::with_capacity(512);
            write_find_data(&mut out, &self.members[member], kind);
            out
        };
        let slot = member * 3
            + match kind {
                FindKind::Yes => 0,
                FindKind::Possible => 1,
                FindKind::No => 2,
            };
        match self.rendered.get(slot) {
            Some(once) => Cow::Borrowed(once.get_or_init(|| render().into_boxed_slice())),
            None => Cow::Owned(render()),
        }
    }
}

/// Builds find requests; one per sending task, as it holds that task's random generator and
/// a buffer sized by the last body.
pub struct Builder<R> {
    rng: R,
    capacity: usize,
}

// === impl Builder ===

impl<R: RngCore> Builder<R> {
    /// A builder drawing its UUIDs from `rng`.
    pub fn new(rng: R) -> Self {
        Self { rng, capacity: 768 }
    }

    /// The request for `kind` derived from member `member` of `finds`, with a fresh request ID
    /// and user `sub`; the UAT expires a minute after `now_s` (seconds since the epoch).
    pub fn build(
        &mut self,
        finds: &Finds,
        member: usize,
        kind: FindKind,
        now_s: i64,
    ) -> FindRequest {
        let request_id = RequestId(uuid_v4(&mut self.rng));
        let sub = uuid_v4(&mut self.rng);
        let sub = std::str::from_utf8(&sub).unwrap_or_default();
        let mut body = Vec::with_capacity(self.capacity);
        write_body(
            &mut body,
            &finds.find_data(member, kind),
            sub,
            now_s + UAT_TTL_S,
        );
        self.capacity = self.capacity.max(body.len());
        FindRequest { request_id, body }
    }
}

/// The find data of [`pdp_provider::members::generate::find_for`], keys sorted as a
/// `serde_json::Value` writes them.
#[derive(Serialize)]
struct FindData<'a> {
    addresses: [Address<'a>; 1],
    #[serde(rename = "dateOfBirth")]
    date_of_birth: Verified<'a>,
    names: [Name<'a>; 1],
    nino: Verified<'a>,
}

#[derive(Serialize)]
struct Address<'a> {
    #[serde(rename = "addressLine1")]
    address_line1: Option<&'a str>,
    #[serde(rename = "countryCode")]
    country_code: &'a str,
    postcode: Option<&'a str>,
    verified: bool,
}

#[derive(Serialize)]
struct Name<'a> {
    #[serde(rename = "familyName")]
    family_name: &'a str,
    #[serde(rename = "givenName")]
    given_name: &'a str,
    verified: bool,
}

#[derive(Serialize)]
struct Verified<'a> {
    value: &'a str,
    verified: bool,
}

/// `base64url({"alg":"RS256","typ":"JWT"})`, the UAT's header as `generate::uat` writes it.
const UAT_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// `base64url("simulated-signature")`, the UAT's signature.
const UAT_SIGNATURE: &str = "c2ltdWxhdGVkLXNpZ25hdHVyZQ";

/// Writes the find data (the `findData` object) for `kind` derived from `m` into `out`.
pub fn write_find_data(out: &mut Vec<u8>, m: &MemberRecord, kind: FindKind) {
    let given = normalised_name(m.names.first().map_or("", |n| &n.given_name));
    let family = match kind {
        FindKind::Yes => m.names.first().map_or("", |n| n.family_name.as_str()),
        FindKind::Possible | FindKind::No => "NOBODY-LIKETHIS",
    };
    let dob = match kind {
        FindKind::No => "1931-02-03",
        _ => &m.date_of_birth,
    };
    let nino = match kind {
        // Possible needs the NINO to carry the match (family name differs).
        FindKind::Yes | FindKind::Possible => m.nino.as_deref().unwrap_or("ZX000000A"),
        FindKind::No => "TW999999A",
    };
    let addr = m.addresses.first();
    let find_data = FindData {
        addresses: [Address {
            address_line1: addr.and_then(|a| a.address_line1.as_deref()),
            country_code: "GB",
            postcode: addr.and_then(|a| a.postcode.as_deref()),
            verified: true,
        }],
        date_of_birth: Verified {
            value: dob,
            verified: true,
        },
        names: [Name {
            family_name: family,
            given_name: &given,
            verified: true,
        }],
        nino: Verified {
            value: nino,
            verified: false,
        },
    };
    // Writing borrowed strings and booleans into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, &find_data);
}

/// Writes a find body into `out`: `find_data` (from [`write_find_data`]) and a fake UAT for
/// `sub` (a UUID) expiring at `exp`.
///
/// `{"findData":{..},"uat":"<header>.<claims>.<signature>"}`: the UAT as it is, since
/// base64url and dots need no escaping.
pub fn write_body(out: &mut Vec<u8>, find_data: &[u8], sub: &str, exp: i64) {
    out.extend_from_slice(b"{\"findData\":");
    out.extend_from_slice(find_data);
    out.extend_from_slice(b",\"uat\":\"");
    out.extend_from_slice(UAT_HEADER.as_bytes());
    out.push(b'.');
    // The claims as `generate::uat` writes them (keys sorted); `sub` is a UUID, the issuer a
    // constant: neither needs escaping.
    let claims = format!(r#"{{"aud":"cas","exp":{exp},"iss":"{UAT_ISSUER}","sub":"{sub}"}}"#);
    let at = out.len();
    out.resize(
        at + base64::encoded_len(claims.len(), false).unwrap_or(0),
        0,
    );
    let written = B64.encode_slice(claims, &mut out[at..]).unwrap_or(0);
    out.truncate(at + written);
    out.push(b'.');
    out.extend_from_slice(UAT_SIGNATURE.as_bytes());
    out.extend_from_slice(b"\"}");
}

/// [`pdp_provider::matching::normalise::name`], without the transliteration table when the name is
/// ASCII already (which it leaves as it is).
fn normalised_name(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.is_ascii() {
        return pdp_provider::matching::normalise::name(s).into();
    }
    if s.bytes().all(|b| b.is_ascii_uppercase()) {
        return s.into();
    }
    s.bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use pdp_provider::members::generate;

    fn members() -> Vec<MemberRecord> {
        crate::mix::generate_members(5, 50)
    }

    #[test]
    fn the_body_is_what_find_for_writes_rendered_once_or_not() {
        let members = Arc::new(members());
        for finds in [
            Finds::new(members.clone()),
            Finds::with_rendering_kept(members.clone(), false),
        ] {
            the_body_is_what_find_for_writes(&finds);
            // Rendered once, the same again.
            the_body_is_what_find_for_writes(&finds);
        }
    }

    fn the_body_is_what_find_for_writes(finds: &Finds) {
        let mut builder = Builder::new(StdRng::seed_from_u64(1));
        for (i, m) in finds.members.iter().enumerate() {
            for kind in [FindKind::Yes, FindKind::Possible, FindKind::No] {
                let now = chrono::Utc::now().timestamp();
                let req = builder.build(finds, i, kind, now);
                let ours: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                let uat = ours["uat"].as_str().unwrap();
                let claims = uat.split('.').nth(1).unwrap();
                let claims: serde_json::Value =
                    serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap();
                let sub = claims["sub"].as_str().unwrap();
                let want = generate::find_for(m, kind, sub);
                assert_eq!(ours["findData"], want["findData"]);
                let (ours_uat, want_uat) = (uat, want["uat"].as_str().unwrap());
                // The header and signature are the same; the claims differ at most in `exp`,
                // which each takes from the clock.
                let parts = |u: &str| u.split('.').map(str::to_owned).collect::<Vec<_>>();
                let (o, w) = (parts(ours_uat), parts(want_uat));
                assert_eq!((&o[0], &o[2]), (&w[0], &w[2]));
                let w: serde_json::Value =
                    serde_json::from_slice(&B64.decode(&w[1]).unwrap()).unwrap();
                assert_eq!(claims["sub"], w["sub"]);
                assert_eq!(claims["iss"], w["iss"]);
                assert_eq!(claims["aud"], w["aud"]);
                assert_eq!(claims["exp"].as_i64().unwrap(), now + UAT_TTL_S);
                // Same keys in the same order, so the same bytes but for the clock.
                let want_bytes = serde_json::to_vec(&want).unwrap();
                assert_eq!(req.body.len(), want_bytes.len());
            }
        }
    }

    #[test]
    fn names_are_normalised_as_the_matcher_does() {
        for s in [
            "Jane",
            "JANE",
            "Mary-Ann",
            "o'neil",
            "José",
            "Zoë Ångström",
            "",
            "ÆSIR 2",
        ] {
            assert_eq!(
                normalised_name(s),
                pdp_provider::matching::normalise::name(s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn request_ids_and_subs_are_fresh_v4_uuids() {
        let mut builder = Builder::new(StdRng::seed_from_u64(2));
        let finds = Finds::new(Arc::new(members()));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let req = builder.build(&finds, 0, FindKind::Yes, 0);
            let id = uuid::Uuid::parse_str(req.request_id.as_str()).unwrap();
            assert_eq!(id.get_version_num(), 4);
            assert_eq!(req.request_id.as_str(), id.hyphenated().to_string());
            assert!(seen.insert(id), "a request ID repeated");
        }
    }
}
