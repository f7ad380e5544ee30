//! The scenario catalogue: each case's stable ID, title, what it proves, and how it is played.

use pdp_provider::peis::DeletionReason;

use crate::magic::values as m;

/// The UAT a find carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uat {
    /// One of the stub's magic UATs.
    Magic(&'static str),
    /// A fresh UAT of the selftest's, with a `sub` of its own (for finds that match nobody).
    Fresh,
}

/// Which member a find describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    /// Selftest member `n`, exactly.
    Match(usize),
    /// Selftest member `n` under another family name, NINO matching (a possible match).
    Possible(usize),
    /// Nobody the endpoint holds.
    Nobody,
}

/// What a find must lead to, judged on the simulator's call log (and the store, when the
/// selftest can read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One token exchange and one registration with this match status.
    Registered(&'static str),
    /// A find for a PeI the CAS already holds (the selftest registers it first): the CAS
    /// answers `200` with the same resource; one call, the find ends done.
    AlreadyRegistered,
    /// No CAS call at all.
    NoCasCall,
    /// `endpoint` answered `status` once and was not called again; the find ends failed.
    NotRetried { endpoint: &'static str, status: u16 },
    /// `endpoint` answered `status` and was called again, after at least each `Retry-After`
    /// it was given; the find ends failed when the budget runs out.
    Retried { endpoint: &'static str, status: u16 },
}

/// The bearer a view carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpt {
    /// MaPS' dashboard's whole flow: challenge, RPT from the CAS, view data token verified.
    Flow,
    /// One of the stub's RPTs, presented at once.
    Magic(&'static str),
    /// None: the first call only (which makes the endpoint ask the CAS for a ticket).
    Nothing,
}

/// What a view must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewExpect {
    /// `200` with a view data token that verifies against the CAS's `jwk_uri`.
    Served,
    /// Refused with a fresh UMA challenge (`401`, `WWW-Authenticate` with a ticket).
    Challenged,
    /// `503` with `Retry-After`: the CAS could not say.
    Unavailable,
}

/// A client identity presented at the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The PFS's certificate from the ecosystem CA.
    Pfs,
    /// The dashboard's certificate from the ecosystem CA.
    Dashboard,
    /// A PFS certificate from the ecosystem CA whose validity has ended.
    Expired,
    /// A PFS certificate from a CA the endpoint does not trust.
    Untrusted,
}

/// What a connection must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsExpect {
    /// Through the handshake, and answered `status`.
    Status(u16),
    /// Refused at the handshake: no HTTP answer.
    Refused,
}

/// What a day's reporting must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportExpect {
    /// Every report accepted (`202`), each with this `submission_status`, and one at least with
    /// this `submission_reason`.
    Accepted {
        status: &'static str,
        reason: Option<&'static str>,
    },
    /// The scripted status met, the report sent again until accepted.
    RetriedThenAccepted(u16),
    /// The scripted `400` met once, not sent again, recorded as refused.
    Refused,
}

/// An operator's action on a registered PeI, as `pdp-provider peis resolve` and `peis
/// deregister` run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A possible match resolved yes: `PATCH` to `match-yes`.
    ResolveYes,
    /// De-registered with this reason: `DELETE`.
    Deregister(DeletionReason),
}

// === impl Action ===

impl Action {
    /// The CAS endpoint the action calls, as the simulator's log names it.
    pub fn endpoint(self) -> &'static str {
        match self {
            Action::ResolveYes => "PATCH /rreguri",
            Action::Deregister(_) => "DELETE /rreguri",
        }
    }
}

/// What an operator's action must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpExpect {
    /// One call, answered with success; the CAS's resource is `match-yes` (resolved) or
    /// deleted with the reason sent (de-registered); the action ends done.
    Done,
    /// The action's call answered `status` once and was not made again; the action ends failed.
    NotRetried(u16),
    /// The action's call answered `status` and was made again, after at least each
    /// `Retry-After` it was given; the action ends failed when its retries run out.
    Retried(u16),
}

/// How a case is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A find as the PFS sends it.
    Find {
        uat: Uat,
        person: Person,
        expect: Expect,
    },
    /// A view as MaPS' dashboard calls it, of member `n`'s first pension, once a find with `uat`
    /// has registered it.
    View {
        uat: &'static str,
        member: usize,
        rpt: Rpt,
        expect: ViewExpect,
    },
    /// A find request that matches nobody, sent with `identity`.
    FindAs {
        identity: Identity,
        expect: TlsExpect,
    },
    /// A view request sent with `identity`.
    ViewAs {
        identity: Identity,
        expect: TlsExpect,
    },
    /// A find with `uat` for `person` (which registers the PeI), then `action` on the PeI.
    Operate {
        uat: &'static str,
        person: Person,
        action: Action,
        expect: OpExpect,
    },
    /// The day `days_ago` submitted to PDP's reporting API as `report submit [--resubmit]`
    /// sends it, with a fault scripted first (`POST /configuration`).
    Report {
        days_ago: u64,
        resubmit: bool,
        fault: Option<u16>,
        expect: ReportExpect,
    },
}

/// One case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Stable ID (`S1`, `S11.2`, `O1`).
    pub id: &'static str,
    /// What happens.
    pub title: &'static str,
    /// The clause or standard it shows met.
    pub proves: &'static str,
    /// How it is played.
    pub step: Step,
}

const fn find(uat: &'static str, person: Person, expect: Expect) -> Step {
    Step::Find {
        uat: Uat::Magic(uat),
        person,
        expect,
    }
}

const fn view(rpt: Rpt, expect: ViewExpect) -> Step {
    Step::View {
        uat: m::HAPPY_PATH_UAT_02,
        member: 6,
        rpt,
        expect,
    }
}

const fn operate(uat: &'static str, person: Person, action: Action, expect: OpExpect) -> Step {
    Step::Operate {
        uat,
        person,
        action,
        expect,
    }
}

/// A definite match withdrawn: the reason a `match-yes` PeI allows.
const WITHDRAW: Action = Action::Deregister(DeletionReason::MatchWithdrawn);

const TOKEN: &str = "POST /token";
const REGISTER: &str = "POST /rreguri";

/// Every case, in report order.
pub const CASES: &[Case] = &[
    Case {
        id: "S1",
        title: "Find that matches: registered match-yes",
        proves: "CoCo2.1.2, 2.2.2; technical standard 4.1, 4.2",
        step: find(
            m::HAPPY_PATH_UAT_03,
            Person::Match(0),
            Expect::Registered("match-yes"),
        ),
    },
    Case {
        id: "S2",
        title: "Find that possibly matches: registered match-possible",
        proves: "CoCo2.2.3; technical standard 4.2",
        step: find(
            m::HAPPY_PATH_UAT_04,
            Person::Possible(1),
            Expect::Registered("match-possible"),
        ),
    },
    Case {
        id: "S3",
        title: "Find that matches nobody: ACKed, no CAS call",
        proves: "CoCo2.1.1, 2.2.2",
        step: Step::Find {
            uat: Uat::Fresh,
            person: Person::Nobody,
            expect: Expect::NoCasCall,
        },
    },
    Case {
        id: "S4",
        title: "Find for a PeI already registered: the CAS's 200 is success",
        proves: "technical standard 4.2 (200: already registered)",
        step: find(
            m::HAPPY_PATH_UAT_05,
            Person::Match(2),
            Expect::AlreadyRegistered,
        ),
    },
    Case {
        id: "S5",
        title: "Possible match resolved yes: PATCH to match-yes",
        proves: "CoCo2.2.3; technical standard 4.3 (PATCH match-yes)",
        step: operate(
            m::HAPPY_PATH_UAT_07,
            Person::Possible(13),
            Action::ResolveYes,
            OpExpect::Done,
        ),
    },
    Case {
        id: "S6",
        title: "De-registration: DELETE with match-withdrawn, a reason match-yes allows",
        proves: "CoCo2.2.4; technical standard 4.4 (deletion reasons)",
        step: operate(
            m::HAPPY_PATH_UAT_08,
            Person::Match(17),
            WITHDRAW,
            OpExpect::Done,
        ),
    },
    Case {
        id: "S7",
        title: "View with a valid RPT: signed view data token",
        proves: "CoCo2.1.3; technical standard 3.2, 4.5, 4.6",
        step: Step::View {
            uat: m::HAPPY_PATH_UAT_06,
            member: 3,
            rpt: Rpt::Flow,
            expect: ViewExpect::Served,
        },
    },
    Case {
        id: "S8",
        title: "View with an inactive RPT (EXPIRED_RPT_TOKEN): fresh challenge",
        proves: "technical standard 4.6 (active: false)",
        step: view(Rpt::Magic(m::EXPIRED_RPT_TOKEN), ViewExpect::Challenged),
    },
    Case {
        id: "S9.1",
        title: "Introspection with the wrong token type (RPT_WRONG_TOKEN_TYPE)",
        proves: "technical standard 4.6",
        step: view(Rpt::Magic(m::RPT_WRONG_TOKEN_TYPE), ViewExpect::Challenged),
    },
    Case {
        id: "S9.2",
        title: "Introspection with no permissions (RPT_EMPTY_PERM_ARRAY)",
        proves: "technical standard 4.6",
        step: view(Rpt::Magic(m::RPT_EMPTY_PERM_ARRAY), ViewExpect::Challenged),
    },
    Case {
        id: "S9.3",
        title: "Introspection without the owner scope (RPT_SCOPES_NO_OWNER)",
        proves: "technical standard 4.6",
        step: view(Rpt::Magic(m::RPT_SCOPES_NO_OWNER), ViewExpect::Challenged),
    },
    Case {
        id: "S9.4",
        title: "Active, but expired (RPT_EXPIRED_ACTIVE_TOKEN)",
        proves: "technical standard 4.6",
        step: view(
            Rpt::Magic(m::RPT_EXPIRED_ACTIVE_TOKEN),
            ViewExpect::Challenged,
        ),
    },
    Case {
        id: "S9.5",
        title: "A permission expired (RPT_EXPIRED_PERMISSION)",
        proves: "technical standard 4.6",
        step: view(
            Rpt::Magic(m::RPT_EXPIRED_PERMISSION),
            ViewExpect::Challenged,
        ),
    },
    Case {
        id: "S10",
        title: "Expired PAT on registration: detected, not retried, find failed",
        proves: "CoCo2.2.6; technical standard 4.2 (401)",
        step: find(
            m::ASSERTION_UAT_RREGURI_POST_401_EXPIRED_PAT,
            Person::Match(4),
            Expect::NotRetried {
                endpoint: REGISTER,
                status: 401,
            },
        ),
    },
    Case {
        id: "S11.1",
        title: "Token exchange refused (400 invalid_grant): not retried",
        proves: "CoCo2.2.6; technical standard 4.1",
        step: find(
            m::ASSERTION_UAT_FOR_400_INVALID_GRANT,
            Person::Match(5),
            Expect::NotRetried {
                endpoint: TOKEN,
                status: 400,
            },
        ),
    },
    Case {
        id: "S11.2",
        title: "Token exchange 429: retried after Retry-After",
        proves: "CoCo2.2.6; technical standard 4.1 (429)",
        step: find(
            m::ASSERTION_UAT_TOKEN_429_TOO_MANY_REQUESTS,
            Person::Match(7),
            Expect::Retried {
                endpoint: TOKEN,
                status: 429,
            },
        ),
    },
    Case {
        id: "S11.3",
        title: "Token exchange 503: retried with backoff",
        proves: "CoCo2.2.6; technical standard 4.1 (5xx)",
        step: find(
            m::ASSERTION_UAT_TOKEN_503_SERVICE_UNAVAILABLE,
            Person::Match(8),
            Expect::Retried {
                endpoint: TOKEN,
                status: 503,
            },
        ),
    },
    Case {
        id: "S12.1",
        title: "Registration 404 (user removed): not retried, find failed",
        proves: "CoCo2.2.6; technical standard 4.2 (404)",
        step: find(
            m::ASSERTION_UAT_RREGURI_POST_404_USER_REMOVED,
            Person::Match(9),
            Expect::NotRetried {
                endpoint: REGISTER,
                status: 404,
            },
        ),
    },
    Case {
        id: "S12.2",
        title: "Registration 429: retried after Retry-After",
        proves: "CoCo2.2.6; technical standard 4.2 (429)",
        step: find(
            m::ASSERTION_UAT_RREGURI_POST_429_TOO_MANY_REQUESTS,
            Person::Match(10),
            Expect::Retried {
                endpoint: REGISTER,
                status: 429,
            },
        ),
    },
    Case {
        id: "S12.3",
        title: "Registration 500: retried with backoff",
        proves: "CoCo2.2.6; technical standard 4.2 (5xx)",
        step: find(
            m::ASSERTION_UAT_RREGURI_POST_500_SERVER_ERROR,
            Person::Match(11),
            Expect::Retried {
                endpoint: REGISTER,
                status: 500,
            },
        ),
    },
    Case {
        id: "S13.1",
        title: "Resolve yes with an expired PAT (PATCH 401): not retried, flagged",
        proves: "CoCo2.2.4, 2.2.6; technical standard 4.3 (401)",
        step: operate(
            m::ASSERTION_UAT_RREGURI_PATCH_401_EXPIRED_PAT,
            Person::Possible(14),
            Action::ResolveYes,
            OpExpect::NotRetried(401),
        ),
    },
    Case {
        id: "S13.2",
        title: "Resolve yes, PATCH 429: retried after Retry-After",
        proves: "CoCo2.2.6; technical standard 4.3 (429)",
        step: operate(
            m::ASSERTION_UAT_RREGURI_PATCH_429_TOO_MANY_REQUESTS,
            Person::Possible(15),
            Action::ResolveYes,
            OpExpect::Retried(429),
        ),
    },
    Case {
        id: "S13.3",
        title: "Resolve yes, PATCH 500: retried with backoff",
        proves: "CoCo2.2.6; technical standard 4.3 (5xx)",
        step: operate(
            m::ASSERTION_UAT_RREGURI_PATCH_500_SERVER_ERROR,
            Person::Possible(16),
            Action::ResolveYes,
            OpExpect::Retried(500),
        ),
    },
    Case {
        id: "S14.1",
        title: "De-registration with an expired PAT (DELETE 401): not retried, flagged",
        proves: "CoCo2.2.4, 2.2.6; technical standard 4.4 (401)",
        step: operate(
            m::ASSERTION_UAT_RREGURI_DELETE_401_EXPIRED_PAT,
            Person::Match(18),
            WITHDRAW,
            OpExpect::NotRetried(401),
        ),
    },
    Case {
        id: "S14.2",
        title: "De-registration, DELETE 429: retried after Retry-After",
        proves: "CoCo2.2.6; technical standard 4.4 (429)",
        step: operate(
            m::ASSERTION_UAT_RREGURI_DELETE_429_TOO_MANY_REQUESTS,
            Person::Match(19),
            WITHDRAW,
            OpExpect::Retried(429),
        ),
    },
    Case {
        id: "S14.3",
        title: "De-registration, DELETE 500: retried with backoff",
        proves: "CoCo2.2.6; technical standard 4.4 (5xx)",
        step: operate(
            m::ASSERTION_UAT_RREGURI_DELETE_500_SERVER_ERROR,
            Person::Match(20),
            WITHDRAW,
            OpExpect::Retried(500),
        ),
    },
    Case {
        id: "S15",
        title: "Introspection 500: the view answers 503 with Retry-After",
        proves: "CoCo2.1.3; technical standard 4.6 (5xx)",
        step: view(
            Rpt::Magic(m::ASSERTION_RPT_INTROSPECT_500_SERVER_ERROR),
            ViewExpect::Unavailable,
        ),
    },
    Case {
        id: "S16",
        title: "Permission ticket 503: the view answers 503 with Retry-After",
        proves: "CoCo2.1.3; technical standard 4.5 (5xx)",
        step: Step::View {
            uat: m::ASSERTION_UAT_PERM_503_SERVICE_UNAVAILABLE,
            member: 12,
            rpt: Rpt::Nothing,
            expect: ViewExpect::Unavailable,
        },
    },
    Case {
        id: "S17.1",
        title: "Find with the PFS's valid certificate: through, 202",
        proves: "technical standard 2 (mutual TLS)",
        step: Step::FindAs {
            identity: Identity::Pfs,
            expect: TlsExpect::Status(202),
        },
    },
    Case {
        id: "S17.2",
        title: "Find with an expired client certificate: refused at the handshake",
        proves: "technical standard 2 (mutual TLS)",
        step: Step::FindAs {
            identity: Identity::Expired,
            expect: TlsExpect::Refused,
        },
    },
    Case {
        id: "S17.3",
        title: "Find with an untrusted client certificate: refused at the handshake",
        proves: "technical standard 2 (mutual TLS)",
        step: Step::FindAs {
            identity: Identity::Untrusted,
            expect: TlsExpect::Refused,
        },
    },
    Case {
        id: "S17.4",
        title: "Find with the dashboard's certificate: 403",
        proves: "technical standard 2 (client identity per endpoint)",
        step: Step::FindAs {
            identity: Identity::Dashboard,
            expect: TlsExpect::Status(403),
        },
    },
    Case {
        id: "S17.5",
        title: "View with an expired client certificate: refused at the handshake",
        proves: "technical standard 2 (mutual TLS)",
        step: Step::ViewAs {
            identity: Identity::Expired,
            expect: TlsExpect::Refused,
        },
    },
    Case {
        id: "S17.6",
        title: "View with an untrusted client certificate: refused at the handshake",
        proves: "technical standard 2 (mutual TLS)",
        step: Step::ViewAs {
            identity: Identity::Untrusted,
            expect: TlsExpect::Refused,
        },
    },
    Case {
        id: "S17.7",
        title: "View with the PFS's certificate: 403",
        proves: "technical standard 2 (client identity per endpoint)",
        step: Step::ViewAs {
            identity: Identity::Pfs,
            expect: TlsExpect::Status(403),
        },
    },
    Case {
        id: "R1",
        title: "Reporting on time: today's reports, initial submissions, accepted",
        proves: "reporting standards: submission_status on time, initial submission",
        step: Step::Report {
            days_ago: 0,
            resubmit: false,
            fault: None,
            expect: ReportExpect::Accepted {
                status: "on time",
                reason: Some("initial submission"),
            },
        },
    },
    Case {
        id: "R2",
        title: "Reporting late: a day three days past, null submissions, accepted",
        proves: "reporting standards: submission_status late, null submission",
        step: Step::Report {
            days_ago: 3,
            resubmit: false,
            fault: None,
            expect: ReportExpect::Accepted {
                status: "late",
                reason: Some("null submission"),
            },
        },
    },
    Case {
        id: "R3",
        title: "Reporting a correction: today's reports resubmitted, accepted",
        proves: "reporting standards: submission_status correction, resubmission",
        step: Step::Report {
            days_ago: 0,
            resubmit: true,
            fault: None,
            expect: ReportExpect::Accepted {
                status: "correction",
                reason: Some("resubmission"),
            },
        },
    },
    Case {
        id: "R4",
        title: "Reporting API 503 (scripted): sent again, then accepted",
        proves: "reporting standards: a 5xx retried",
        step: Step::Report {
            days_ago: 4,
            resubmit: false,
            fault: Some(503),
            expect: ReportExpect::RetriedThenAccepted(503),
        },
    },
    Case {
        id: "R5",
        title: "Reporting API 429 (scripted): sent again, then accepted",
        proves: "reporting standards: a 429 retried",
        step: Step::Report {
            days_ago: 5,
            resubmit: false,
            fault: Some(429),
            expect: ReportExpect::RetriedThenAccepted(429),
        },
    },
    Case {
        id: "R6",
        title: "Reporting API 400 (scripted): not sent again, recorded as refused",
        proves: "reporting standards: a refusal recorded (report status)",
        step: Step::Report {
            days_ago: 6,
            resubmit: false,
            fault: Some(400),
            expect: ReportExpect::Refused,
        },
    },
];

/// The operational acceptance test: one signed synthetic find that matches nobody.
pub const OAT: Case = Case {
    id: "O1",
    title: "OAT: one signed synthetic find, matching nobody: 202, no registration",
    proves: "PDP operational acceptance test",
    step: Step::Find {
        uat: Uat::Fresh,
        person: Person::Nobody,
        expect: Expect::NoCasCall,
    },
};

/// The cases `--only` names (IDs, comma-separated; `S9` takes `S9.1` to `S9.5`), or all.
pub fn select(only: Option<&str>) -> Result<Vec<Case>, String> {
    let Some(only) = only else {
        return Ok(CASES.to_vec());
    };
    let mut out = Vec::new();
    for want in only.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let hits: Vec<Case> = CASES
            .iter()
            .chain(std::iter::once(&OAT))
            .filter(|c| c.id == want || c.id.split('.').next() == Some(want))
            .copied()
            .collect();
        if hits.is_empty() {
            return Err(format!("no case {want} (--list lists them)"));
        }
        out.extend(hits);
    }
    Ok(out)
}
