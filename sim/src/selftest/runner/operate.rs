//! The operator's cases: a find registers a PeI, then the operator acts on it as `pdp-provider
//! peis resolve --as yes` and `peis deregister` do, through the same library functions, with the
//! endpoint's store and CAS client (those reporting uses: the endpoint's configuration).

use pdp_provider::peis::{self, Deregistered, Resolution};

use super::{credentials, now, shown_ended, Ctx, Exchange, Message, Played};
use crate::selftest::catalogue::{Action, Identity, OpExpect, Person, Uat};
use crate::selftest::judge::{Stored, Verdict};

/// Plays an operator's case: the find, then `action` on the PeI it registered.
pub(super) async fn play(
    ctx: &Ctx,
    uat: &'static str,
    person: Person,
    action: Action,
    expect: OpExpect,
    ex: &mut Vec<Exchange>,
) -> Played {
    let operator = ctx
        .reporter
        .as_ref()
        .and_then(|r| Some((&r.store, r.cas.as_ref()?)));
    let Some((store, cas)) = operator else {
        let why = "needs the endpoint's configuration (--config): the operator acts with its \
                   store and CAS client";
        return Played::Tls(Verdict::Fail(why.into()));
    };
    let uat = Uat::Magic(uat);
    let (body, sub) = ctx.find_body(uat, person);
    let creds = credentials(uat, &sub);
    let (request_id, status, e) = ctx.send_find(Identity::Pfs, &body).await;
    ex.push(e);
    let registered = match status {
        Some(202) => ctx.ended(&request_id).await,
        _ => Stored::Unknown,
    };
    let find = match (status, &registered) {
        (Some(202), Stored::Done) => Verdict::Pass,
        (Some(202), other) => Verdict::Fail(format!("it did not end done: {other:?}")),
        (status, _) => Verdict::Fail(format!(
            "answered {} instead of 202",
            status.map_or_else(|| "nothing (no HTTP answer)".into(), |s| s.to_string())
        )),
    };
    // The PeI the find registered, as the operator's review lists it (a possible match's asset
    // GUID is derived for the searcher, not the pension's own).
    let guid = match store.peis_for_request(&request_id).await {
        Ok(peis) => peis
            .first()
            .map(|p| p.matched.asset_guid.to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let find = match find {
        Verdict::Pass if guid.is_empty() => {
            Verdict::Fail("the endpoint's store holds no PeI for it".into())
        }
        v => v,
    };
    let started = now();
    let ended = if find.passed() {
        let (command, ended) = act(store, cas, &guid, action).await;
        ex.push(Exchange {
            at: started.clone(),
            request: Message {
                line: command,
                headers: Vec::new(),
                body: String::new(),
            },
            response: Some(Message {
                line: shown_ended(&ended).unwrap_or_default(),
                headers: Vec::new(),
                body: String::new(),
            }),
            error: None,
        });
        ended
    } else {
        Stored::Unknown
    };
    Played::Op {
        find,
        request_id,
        creds,
        action,
        window: (started, now()),
        ended,
        expect,
    }
}

/// Runs `action` on the PeI with `guid`: the command it stands for, and how it ended.
async fn act(
    store: &pdp_provider::store::Store,
    cas: &pdp_provider::cas::client::CasClient,
    guid: &str,
    action: Action,
) -> (String, Stored) {
    let (command, result) = match action {
        Action::ResolveYes => (
            format!("pdp-provider peis resolve --asset-guid {guid} --as yes"),
            peis::resolve_possible(store, cas, guid, Resolution::Yes).await,
        ),
        Action::Deregister(reason) => (
            format!(
                "pdp-provider peis deregister --asset-guid {guid} --reason {}",
                reason.as_str()
            ),
            peis::deregister(store, cas, guid, reason).await,
        ),
    };
    let ended = match result {
        Ok(Deregistered::Done) => Stored::Done,
        Ok(Deregistered::AlreadyGone) => {
            Stored::Failed("the CAS no longer has the PeI (404): recorded as gone".into())
        }
        Ok(Deregistered::FlaggedPatExpired) => Stored::Failed(
            "PAT refused: the PeI flagged, de-registration pending, PDP to be told".into(),
        ),
        Err(e) => Stored::Failed(e.to_string()),
    };
    (command, ended)
}
