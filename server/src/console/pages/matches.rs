//! Possible matches ([`Action::ReviewMatches`](crate::console::roles::Action)): the ones
//! waiting for review, each naming its pension (scheme name, asset GUID), our record beside
//! what the searcher entered (both masked), searchable by NINO or name; both revealed in full,
//! audited with the PeI before anything leaves the store; resolved yes or no after a
//! confirmation, through [`crate::peis::resolve_possible`] (the code `pdp-provider peis resolve`
//! runs), audited with the PeI and the decision.
//!
//! The searcher's data is kept sealed from the PeI's registration until the match is resolved or
//! times out, then deleted ([`crate::store::review`]).

use http::StatusCode;
use minijinja::{context, Value};
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
use crate::wire::find::FindData;

/// A possible match with our record and what the searcher entered, as far as each is readable.
struct Review {
    pei: StoredPei,
    ours: Option<MatchRecord>,
    theirs: Option<FindData>,
}

/// The possible matches waiting for review, oldest first, with days left and what agreed;
/// `?q=` keeps those whose NINO or a name (ours or the searcher's) holds it.
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
    let q = p
        .query("q")
        .map(|q| q.trim().to_owned())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for r in reviews(p, peis).await? {
        if !q.is_empty() && !r.holds(&q) {
            continue;
        }
        let registered = r.pei.registered_at.unwrap_or(now);
        let days_left = review_days - (now - registered) / 86_400_000_000;
        let rule = rule_for(&c.config, r.pei.matched.holdername, &r.pei.matched.reason);
        rows.push(row(&r, rule, registered, days_left));
    }
    p.render(
        "possible_matches.html",
        "/possible-matches",
        context! { rows, review_days, q },
    )
}

/// Each PeI with our record and the searcher's data, opened.
async fn reviews(p: &Page<'_>, peis: Vec<StoredPei>) -> Result<Vec<Review>, ConsoleError> {
    let store = &p.console.store;
    let records = store
        .member_records(peis.iter().map(|x| x.matched.member_id.clone()).collect())
        .await?;
    let searched = store
        .searcher_data(peis.iter().map(|x| x.matched.pei.clone()).collect())
        .await?;
    Ok(peis
        .into_iter()
        .map(|pei| {
            let ours = records
                .iter()
                .find(|(id, _)| *id == pei.matched.member_id)
                .and_then(|(_, r)| r.as_ref())
                .and_then(|r| r.as_ref().ok())
                .and_then(|b| serde_json::from_slice::<MatchRecord>(b).ok());
            let theirs = searched
                .iter()
                .find(|(x, _)| *x == pei.matched.pei)
                .and_then(|(_, b)| serde_json::from_slice::<FindData>(b).ok());
            Review { pei, ours, theirs }
        })
        .collect())
}

// === impl Review ===

impl Review {
    /// Whether a NINO or a name of ours or the searcher's holds `q` (letters and digits only,
    /// any case).
    fn holds(&self, q: &str) -> bool {
        let q = letters(q);
        if q.is_empty() {
            return true;
        }
        let mut texts: Vec<&str> = Vec::new();
        if let Some(o) = &self.ours {
            texts.extend(o.nino.as_deref());
            for n in &o.names {
                texts.extend([n.given_name.as_str(), n.family_name.as_str()]);
            }
            texts.extend(o.previous_family_names.iter().map(String::as_str));
        }
        if let Some(t) = &self.theirs {
            texts.extend(t.nino.as_ref().map(|n| n.value.as_str()));
            for n in &t.names {
                texts.extend([n.given_name.as_str(), n.family_name.as_str()]);
            }
            texts.extend(
                t.previous_family_names
                    .iter()
                    .map(|n| n.family_name.as_str()),
            );
        }
        texts.iter().any(|t| letters(t).contains(&q))
    }
}

/// Letters and digits of `s`, upper case.
fn letters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// One possible match's row: its pension, our record and the searcher's, masked (an initial, a
/// NINO's first two letters and last, a birth year, a postcode's outward code).
fn row(r: &Review, rule: Option<&Rule>, registered: i64, days_left: i64) -> Value {
    let fields = |f: &[crate::config::rules::Field]| -> Vec<String> {
        f.iter().map(|f| format!("{f:?}")).collect()
    };
    let (agreed, not_contradicted) = rule
        .map(|r| (fields(&r.agree), fields(&r.not_contradicted)))
        .unwrap_or_default();
    let m = &r.pei.matched;
    context! {
        asset_guid => m.asset_guid.to_string(),
        pension_asset_guid => m.pension_asset_guid.to_string(),
        registered => day(registered),
        days_left,
        holdername => m.holdername.to_string(),
        scheme_name => m.scheme_name,
        reason => m.reason,
        agreed, not_contradicted,
        ours => r.ours.as_ref().map(ours_masked),
        member => mask(&m.member_id, 1, 2),
        theirs => r.theirs.as_ref().map(theirs_masked),
    }
}

/// Our record, masked.
fn ours_masked(o: &MatchRecord) -> Value {
    context! {
        nino => o.nino.as_deref().map_or_else(|| "none".into(), |n| mask(n, 2, 1)),
        name => o.names.first().map(|n| masked_name(&n.given_name, &n.family_name)).unwrap_or_default(),
        born => o.date_of_birth.chars().take(4).collect::<String>(),
        postcode => o.postcodes.first().map(|pc| outward(pc)).unwrap_or_default(),
    }
}

/// What the searcher entered, masked.
fn theirs_masked(t: &FindData) -> Value {
    context! {
        nino => t.nino.as_ref().map_or_else(|| "none".into(), |n| mask(&n.value, 2, 1)),
        name => t.names.first().map(|n| masked_name(&n.given_name, &n.family_name)).unwrap_or_default(),
        born => t.date_of_birth.as_ref().map(|d| d.value.chars().take(4).collect::<String>()).unwrap_or_default(),
        postcode => t.addresses.iter().find_map(|a| a.postcode.as_deref()).map(outward).unwrap_or_default(),
    }
}

/// `J. S••••`.
fn masked_name(given: &str, family: &str) -> String {
    format!(
        "{}. {}",
        given.chars().next().unwrap_or('?'),
        mask(family, 1, 0)
    )
}

/// A postcode's outward code, the rest hidden.
fn outward(pc: &str) -> String {
    pc.split_whitespace().next().unwrap_or("").to_owned() + " •••"
}

/// Resolves a possible match yes or no, as `pdp-provider peis resolve` does, once the form says
/// it is confirmed; before that, the confirmation page.
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
    if p.form.get("confirm") != Some("yes") {
        return confirm(p, pei, resolution).await;
    }
    let guid = pei.matched.asset_guid.to_string();
    // The same code `pdp-provider peis resolve` runs.
    let out =
        crate::peis::resolve_possible(&p.console.store, &p.console.cas, &guid, resolution).await;
    let rid = Some(pei.request_id.clone());
    let decision = match resolution {
        Resolution::Yes => "yes",
        Resolution::No => "no",
    };
    let target = [("pei", pei.matched.pei.as_str()), ("decision", decision)];
    match out {
        Ok(Deregistered::FlaggedPatExpired) => {
            p.audit_on(303, "flagged", rid, &target).await;
            Ok(redirect("/possible-matches?done=flagged"))
        }
        Ok(_) => {
            let outcome = match resolution {
                Resolution::Yes => "resolved-yes",
                Resolution::No => "resolved-no",
            };
            p.audit_on(303, outcome, rid, &target).await;
            Ok(redirect(&format!("/possible-matches?done={outcome}")))
        }
        Err(e) => {
            p.audit_on(502, "failed", rid, &target).await;
            tracing::warn!(error = %e, "console: possible match not resolved");
            Ok(plain(
                StatusCode::BAD_GATEWAY,
                "not resolved: the CAS could not be reached or refused; try again\n",
            ))
        }
    }
}

/// The confirmation of a decision: the pension, both records masked, what the decision does.
async fn confirm(
    p: &Page<'_>,
    pei: StoredPei,
    resolution: Resolution,
) -> Result<Resp, ConsoleError> {
    let c = p.console;
    let now = crate::now_micros();
    let review_days = i64::from(c.config.matching.possible_review_days);
    let r = reviews(p, vec![pei]).await?.remove(0);
    let registered = r.pei.registered_at.unwrap_or(now);
    let days_left = review_days - (now - registered) / 86_400_000_000;
    let rule = rule_for(&c.config, r.pei.matched.holdername, &r.pei.matched.reason);
    let yes = resolution == Resolution::Yes;
    p.render(
        "possible_match_confirm.html",
        "/possible-matches",
        context! {
            r => row(&r, rule, registered, days_left),
            decision => if yes { "yes" } else { "no" },
            does => if yes {
                "The PeI becomes a definite match (match-yes at the CAS): the member's dashboard shows this pension as theirs."
            } else {
                "The PeI is de-registered at the CAS (match-no): the member's dashboard no longer shows it."
            },
        },
    )
}

/// Our record and the searcher's data in full: audited with the PeI before either is read.
pub(crate) async fn reveal(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let pei = match pei_of_form(p, p.form).await? {
        Ok(pei) => pei,
        Err(not_found) => return Ok(not_found),
    };
    // Recorded before anything leaves the store.
    let urn = pei.matched.pei.clone();
    p.audit_on(
        200,
        "reveal",
        Some(pei.request_id.clone()),
        &[("pei", &urn)],
    )
    .await;
    let r = reviews(p, vec![pei]).await?.remove(0);
    let member = r.ours.as_ref().map(|m| {
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
    let searcher = r.theirs.as_ref().map(|t| {
        let address = |a: &crate::wire::find::Address| {
            [
                &a.address_line1,
                &a.address_line2,
                &a.address_line3,
                &a.address_line4,
                &a.address_line5,
                &a.postcode,
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
        };
        context! {
            names => t.names.iter().map(|n| format!("{} {}", n.given_name, n.family_name)).collect::<Vec<_>>(),
            previous_family_names => t.previous_family_names.iter().map(|n| n.family_name.clone()).collect::<Vec<_>>(),
            date_of_birth => t.date_of_birth.as_ref().map(|d| d.value.clone()),
            nino => t.nino.as_ref().map(|n| n.value.clone()),
            addresses => t.addresses.iter().map(address).collect::<Vec<_>>(),
            previous_addresses => t.previous_addresses.iter().map(address).collect::<Vec<_>>(),
            emails => t.emails.iter().map(|e| e.value.clone()).collect::<Vec<_>>(),
            mobiles => t.mobiles.iter().map(|e| e.value.clone()).collect::<Vec<_>>(),
        }
    });
    let m = &r.pei.matched;
    p.render(
        "reveal.html",
        "/possible-matches",
        context! {
            pei => m.pei, asset_guid => m.asset_guid.to_string(),
            pension_asset_guid => m.pension_asset_guid.to_string(),
            scheme_name => m.scheme_name, holdername => m.holdername.to_string(),
            reason => m.reason, member, searcher,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked_and_searched_by_letters_alone() {
        assert_eq!(mask("AB123456C", 2, 1), "AB••••••C");
        assert_eq!(mask("AB", 2, 1), "••");
        assert_eq!(masked_name("Jane", "Smith"), "J. S••••");
        assert_eq!(outward("SW1A 1AA"), "SW1A •••");
        assert_eq!(letters("ab 12 34 56 c"), "AB123456C");
    }
}
