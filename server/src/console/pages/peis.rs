//! PeIs out of service ([`Action::Deregister`](crate::console::roles::Action)): the ones the
//! CAS refused the PAT of (flagged: PDP must be told), and de-registration of a PeI, as
//! `pdp-provider peis deregister` does it. A scheme admin sees and acts on their holdernames'
//! PeIs only.

use http::StatusCode;
use minijinja::context;
use uuid::Uuid;

use crate::console::page::Page;
use crate::console::respond::{redirect, Resp};
use crate::console::roles;
use crate::console::ConsoleError;
use crate::peis::{DeletionReason, DeregError, Deregistered};

/// The flagged PeIs.
pub(crate) async fn flagged(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let rows = p
        .console
        .store
        .flagged()
        .await?
        .into_iter()
        .filter(|x| roles::sees_holdername(&p.me.user, x.matched.holdername))
        .map(|x| {
            vec![
                format!("{} ({})", x.matched.scheme_name, x.matched.holdername),
                x.matched.pei,
                x.matched.match_status.to_string(),
                x.deletion_reason.unwrap_or_default(),
                "de-registration pending: notify PDP".into(),
            ]
        })
        .collect();
    p.table(
        "/flagged",
        "Flagged PeIs",
        "The CAS refused the PAT that registered these: never served again; PDP must be told (CoCo2.2.4).",
        &["Scheme (holdername)", "PeI", "Match status", "Reason", "State"],
        rows,
        "No PeI is flagged.",
        None,
    )
}

/// The de-registration form, with `error` above it.
pub(crate) async fn deregister_form(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let reasons = [
        DeletionReason::MatchNo,
        DeletionReason::MatchWithdrawn,
        DeletionReason::AssetRemoved,
        DeletionReason::MatchTimeout,
    ]
    .map(DeletionReason::as_str);
    p.render_status(
        "deregister.html",
        "/deregister",
        context! { reasons },
        status,
        error,
    )
}

/// De-registers a PeI the user may act on, as `pdp-provider peis deregister` does.
pub(crate) async fn deregister(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    let Some(reason) = p.form.get("reason").and_then(DeletionReason::parse) else {
        return deregister_form(
            p,
            Some("reason: match-no, match-withdrawn, asset-removed or match-timeout".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let pei = match p.form.get("asset_guid").map(|g| Uuid::try_parse(g.trim())) {
        Some(Ok(g)) => p.console.store.pei_by_asset_guid(g).await?,
        _ => None,
    };
    let Some(pei) = pei.filter(|x| roles::sees_holdername(&p.me.user, x.matched.holdername)) else {
        p.audit(404, "not_found", None).await;
        return deregister_form(
            p,
            Some("no registered PeI of yours has that asset GUID".into()),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    let rid = Some(pei.request_id.clone());
    let guid = pei.matched.asset_guid.to_string();
    let target = [
        ("pei", pei.matched.pei.as_str()),
        ("reason", reason.as_str()),
    ];
    match crate::peis::deregister(&p.console.store, &p.console.cas, &guid, reason).await {
        Ok(Deregistered::FlaggedPatExpired) => {
            p.audit_on(303, "flagged", rid, &target).await;
            Ok(redirect("/flagged?done=flagged"))
        }
        Ok(_) => {
            p.audit_on(303, "deregistered", rid, &target).await;
            Ok(redirect("/deregister?done=deregistered"))
        }
        Err(e @ (DeregError::InvalidReason { .. } | DeregError::NotRegistered(_))) => {
            p.audit_on(422, "refused", rid, &target).await;
            deregister_form(p, Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => {
            p.audit_on(502, "failed", rid, &target).await;
            tracing::warn!(error = %e, "console: de-registration not sent");
            deregister_form(
                p,
                Some(
                    "not de-registered at the CAS yet: the PeI is no longer served and the \
                     server sends it within a minute"
                        .into(),
                ),
                StatusCode::BAD_GATEWAY,
            )
            .await
        }
    }
}
