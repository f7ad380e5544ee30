//! Schemes ([`Action::Deregister`](crate::console::roles::Action): a PBC, or a scheme admin for
//! their holdernames): each holdername with its scheme's name, state (active, suspended,
//! severed) and counts. Status changes are the primary business contact's (PDP's roles: "status
//! change requests for providers or schemes"): suspend and resume (reversible, at once), and
//! sever (its PeIs de-registered at the CAS, its members removed; confirmed first), the same code
//! as `pdp-provider schemes suspend|resume|sever`. Each is audited with the holdername.

use http::StatusCode;
use minijinja::context;
use uuid::Uuid;

use crate::console::page::{forbidden, Page};
use crate::console::respond::{redirect, Resp};
use crate::console::roles;
use crate::console::ConsoleError;
use crate::model::SchemeState;
use crate::store::console::Role;

/// The schemes, and their actions for a PBC, with `error` above them.
pub(crate) async fn list(
    p: &Page<'_>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Resp, ConsoleError> {
    let schemes: Vec<_> = p
        .console
        .store
        .scheme_summaries()
        .await?
        .into_iter()
        .filter(|s| roles::sees_holdername(&p.me.user, s.holdername))
        .map(|s| {
            context! {
                holdername => s.holdername.to_string(),
                name => s.scheme_name,
                state => s.state.as_str(),
                pensions => s.pensions,
                registered_peis => s.registered_peis, open_possible => s.open_possible,
            }
        })
        .collect();
    p.render_status(
        "schemes.html",
        "/schemes",
        context! { schemes, can_change => p.me.user.has(Role::Pbc) },
        status,
        error,
    )
}

/// Suspends, resumes or severs the scheme the form names (`action`, `holdername`; a sever
/// needs `confirm=yes`).
pub(crate) async fn change(p: &Page<'_>) -> Result<Resp, ConsoleError> {
    if !p.me.user.has(Role::Pbc) {
        p.audit(403, "forbidden", None).await;
        return Ok(forbidden());
    }
    let refuse = |msg: String| async move {
        p.audit(422, "refused", None).await;
        list(p, Some(msg), StatusCode::UNPROCESSABLE_ENTITY).await
    };
    let known = p.console.store.scheme_summaries().await?;
    let Some(scheme) = p
        .form
        .get("holdername")
        .and_then(|h| Uuid::try_parse(h.trim()).ok())
        .and_then(|h| known.into_iter().find(|s| s.holdername == h))
    else {
        return refuse("holdername: not a scheme of this connection".into()).await;
    };
    let h = scheme.holdername;
    let target = h.to_string();
    let target = [
        ("holdername", target.as_str()),
        ("scheme", scheme.scheme_name.as_str()),
    ];
    let store = &p.console.store;
    match (p.form.get("action"), scheme.state) {
        (Some("suspend"), SchemeState::Active) => {
            crate::schemes::set(store, h, SchemeState::Suspended).await?;
            p.audit_on(303, "scheme_suspended", None, &target).await;
        }
        (Some("resume"), SchemeState::Suspended) => {
            crate::schemes::set(store, h, SchemeState::Active).await?;
            p.audit_on(303, "scheme_resumed", None, &target).await;
        }
        (Some("sever"), SchemeState::Active | SchemeState::Suspended) => {
            if p.form.get("confirm") != Some("yes") {
                return refuse(format!(
                    "sever {}: tick the box to confirm; every PeI of it is de-registered and every member removed",
                    scheme.scheme_name
                ))
                .await;
            }
            match crate::schemes::sever(store, &p.console.cas, h).await {
                Ok(s) => {
                    let done = format!(
                        "{} de-registered, {} failed, {} members removed",
                        s.deregistered, s.failed, s.members_removed
                    );
                    let mut t = target.to_vec();
                    t.push(("result", &done));
                    p.audit_on(303, "scheme_severed", None, &t).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "console: scheme not severed");
                    return refuse(format!("not severed: {e}")).await;
                }
            }
        }
        (Some(action), state) => {
            return refuse(format!(
                "{action}: not possible for a scheme that is {}",
                state.as_str()
            ))
            .await
        }
        (None, _) => return refuse("action: suspend, resume or sever".into()).await,
    }
    Ok(redirect("/schemes?done=saved"))
}
