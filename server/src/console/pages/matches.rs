//! Possible matches ([`Action::ReviewMatches`](crate::console::roles::Action)): the ones
//! waiting for review (masked), resolved yes or no through [`crate::peis::resolve_possible`]
//! (the code `pdp-provider peis resolve` runs), and a member's details revealed, audited
//! before anything leaves the store.

use http::StatusCode;
use minijinja::context;
use uuid::Uuid;

use super::day;
use crate::config::rules::Rule;
use crate::config::Config;
use crate::console::page::{Form, Page};
use crate::console::respond::{plain, redirect, Resp};
use crate::console::roles;
use crate::console::ConsoleError;
use crate::matching::record::MatchRecord;
use crate::peis::{Deregistered, Resolution};
use crate::store::{MatchStatus, StoredPei};

/// The possible matches waiting for review, oldest first, with days left and what agreed.
pub(crate) async fn list(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let c = p.console;
    let review_days = i64::from(c.config.matching.possible_review_days);
    let now = crate::now_micros();
    let mut peis: Vec<_> = c
        .store
        .possible_unreviewed_before(i64::MAX)
        .await?
        .into_iter()
        .filter(|x| roles::sees_holdername(&p.me.user, x.matched.holdername))
        .collect();
    peis.sort_by_key(|x| x.registered_at.unwrap_or(0));
    let records = c
        .store
        .member_records(peis.iter().map(|x| x.matched.member_id.clone()).collect())
        .await?;
    let mut rows = Vec::new();
    for pei in &peis {
        let record = records
            .iter()
            .find(|(id, _)| *id == pei.matched.member_id)
            .and_then(|(_, r)| r.as_ref())
            .and_then(|r| r.as_ref().ok())
            .and_then(|b| serde_json::from_slice::<MatchRecord>(b).ok());
        let registered = pei.registered_at.unwrap_or(now);
        let days_left = review_days - (now - registered) / 86_400_000_000;
        let rule = rule_for(&c.config, pei.matched.holdername, &pei.matched.reason);
        rows.push(row(pei, record.as_ref(), rule, registered, days_left));
    }
    p.render(
        "possible_matches.html",
        "/possible-matches",
        context! { rows, review_days },
    )
}

/// One possible match's row: the member masked (an initial, a NINO's first two letters, a
/// postcode's outward code).
fn row(
    pei: &StoredPei,
    record: Option<&MatchRecord>,
    rule: Option<&Rule>,
    registered: i64,
    days_left: i64,
) -> minijinja::Value {
    let fields = |f: &[crate::config::rules::Field]| -> Vec<String> {
        f.iter().map(|f| format!("{f:?}")).collect()
    };
    let (agreed, not_contradicted) = rule
        .map(|r| (fields(&r.agree), fields(&r.not_contradicted)))
        .unwrap_or_default();
    let m = &pei.matched;
    context! {
        asset_guid => m.asset_guid.to_string(),
        registered => day(registered),
        days_left,
        holdername => m.holdername.to_string(),
        scheme_name => m.scheme_name,
        reason => m.reason,
        agreed, not_contradicted,
        member => mask(&m.member_id, 1, 2),
        nino => record.and_then(|r| r.nino.as_deref()).map(|n| mask(n, 2, 1)).unwrap_or_else(|| "none".into()),
        name => record.and_then(|r| r.names.first()).map(|n| format!("{}. {}", n.given_name.chars().next().unwrap_or('?'), mask(&n.family_name, 1, 0))).unwrap_or_default(),
        born => record.map(|r| r.date_of_birth.chars().take(4).collect::<String>()).unwrap_or_default(),
        postcode => record.and_then(|r| r.postcodes.first()).map(|pc| pc.split_whitespace().next().unwrap_or("").to_owned() + " •••").unwrap_or_default(),
    }
}

/// Resolves a possible match yes or no, as `pdp-provider peis resolve` does.
pub(crate) async fn resolve(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let resolution = match p.form.get("as") {
        Some("yes") => Resolution::Yes,
        Some("no") => Resolution::No,
        _ => return Ok(plain(StatusCode::BAD_REQUEST, "as: yes or no\n")),
    };
    let pei = match pei_of_form(p, p.form).await? {
        Ok(pei) => pei,
        Err(not_found) => return Ok(not_found),
    };
    let guid = pei.matched.asset_guid.to_string();
    // The same code `pdp-provider peis resolve` runs.
    let out =
        crate::peis::resolve_possible(&p.console.store, &p.console.cas, &guid, resolution).await;
    let rid = Some(pei.request_id.clone());
    match out {
        Ok(Deregistered::FlaggedPatExpired) => {
            p.audit(303, "flagged", rid).await;
            Ok(redirect("/possible-matches?done=flagged"))
        }
        Ok(_) => {
            let outcome = match resolution {
                Resolution::Yes => "resolved-yes",
                Resolution::No => "resolved-no",
            };
            p.audit(303, outcome, rid).await;
            Ok(redirect(&format!("/possible-matches?done={outcome}")))
        }
        Err(e) => {
            p.audit(502, "failed", rid).await;
            tracing::warn!(error = %e, "console: possible match not resolved");
            Ok(plain(
                StatusCode::BAD_GATEWAY,
                "not resolved: the CAS could not be reached or refused; try again\n",
            ))
        }
    }
}

/// The member behind a possible match, in full: audited before it is read.
pub(crate) async fn reveal(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let pei = match pei_of_form(p, p.form).await? {
        Ok(pei) => pei,
        Err(not_found) => return Ok(not_found),
    };
    let record = p
        .console
        .store
        .member_record(&pei.matched.member_id)
        .await?;
    let member = record
        .and_then(|b| serde_json::from_slice::<MatchRecord>(&b).ok())
        .map(|m| {
            context! {
                member_id => m.member_id,
                names => m.names.iter().map(|n| format!("{} {}", n.given_name, n.family_name)).collect::<Vec<_>>(),
                previous_family_names => m.previous_family_names,
                date_of_birth => m.date_of_birth,
                nino => m.nino,
                postcodes => m.postcodes,
                previous_postcodes => m.previous_postcodes,
            }
        });
    // Logged before anything leaves the store.
    p.audit(200, "reveal", Some(pei.request_id.clone())).await;
    p.render(
        "reveal.html",
        "/possible-matches",
        context! { pei => pei.matched.pei, member },
    )
}

/// The registered possible match a form names, if this user may act on it; else the `404`,
/// audited.
async fn pei_of_form(p: &Page<'_>, form: &Form) -> Result<Result<StoredPei, Resp>, ConsoleError> {
    let pei = match form.get("asset_guid").and_then(|g| Uuid::try_parse(g).ok()) {
        Some(guid) => p.console.store.pei_by_asset_guid(guid).await?,
        None => None,
    };
    let pei = pei
        .filter(|x| x.matched.match_status == MatchStatus::Possible)
        .filter(|x| roles::sees_holdername(&p.me.user, x.matched.holdername));
    if pei.is_none() {
        p.audit(404, "not_found", None).await;
    }
    Ok(pei.ok_or_else(|| plain(StatusCode::NOT_FOUND, "no such possible match for you\n")))
}

/// The match rule a reason code names, for a holdername (its own rules or the default).
fn rule_for<'a>(config: &'a Config, holdername: Uuid, reason: &str) -> Option<&'a Rule> {
    let set = config
        .matching
        .schemes
        .iter()
        .find(|s| s.holdername == holdername)
        .map(|s| &s.rules)
        .unwrap_or(&config.matching.default);
    set.rules.iter().find(|r| r.reason == reason)
}

/// Shows the first `keep` and last `tail` characters of an identifier, the rest as `•`.
fn mask(s: &str, keep: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= keep + tail {
        return "•".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep || i >= chars.len() - tail {
                *c
            } else {
                '•'
            }
        })
        .collect()
}
