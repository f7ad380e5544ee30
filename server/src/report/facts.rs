//! Per-holdername facts, recorded as they happen: each view request received (receipt and
//! answer times; for one answered with a payload, its status flags and unavailable codes), each
//! calculation started, each possible match resolved. Never personal data: a holdername GUID,
//! times, flags, a PeI for calculations.
//!
//! # Which views count
//!
//! `req_count` is, in the reporting API's words, "the number of view requests received per
//! pension provider or scheme" (Regulation 28(3)(e): "the number of view requests received and
//! the time taken to respond to each one"). A view request is counted for the holdername of the
//! pension its `assetGuid` names, however it ends: with view data, or refused after its RPT was
//! read (`403`, a pension that is not served, a store or CAS failure, a time-out). The UMA
//! challenge (`401` with a permission ticket) is the first half of the same view, not a view of
//! its own: the request that follows with an RPT is counted. A request whose `assetGuid` names
//! no pension of ours belongs to no holdername and is not counted. Every counted view has its
//! receipt and answer times, so a refused view slower than 10 s is in `response-time` too.

use uuid::Uuid;

use crate::model::{CalculationStart, ReportFact, ReviewFact, UnavailableCodes, ViewFact};
use crate::store::{CalculationKind, ReviewState, Store, StoredPei};
use crate::wire::view::{Arrangement, IllustrationType, UnavailableReason, ViewDataPayload};

/// What a view's payload showed, carried on its response to where the answer is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSeen {
    /// The scheme.
    pub holdername: Uuid,
    /// `contactScheme` true.
    pub contact_scheme: bool,
    /// `administrativeDetailsNotAvailable` true.
    pub missing_admin: bool,
    /// `temporarySystemError` true.
    pub temp_error: bool,
    /// ERI unavailable codes.
    pub eri: UnavailableCodes,
    /// Accrued unavailable codes.
    pub accrued: UnavailableCodes,
}

fn mark(codes: &mut UnavailableCodes, r: Option<UnavailableReason>) {
    match r {
        Some(UnavailableReason::ANO) => codes.ano = true,
        Some(UnavailableReason::PPF) => codes.ppf = true,
        Some(UnavailableReason::TRN) => codes.trn = true,
        _ => {}
    }
}

// === impl ViewSeen ===

impl ViewSeen {
    /// What `payload` shows for `holdername`.
    pub fn of(holdername: Uuid, payload: &ViewDataPayload) -> Self {
        let mut seen = ViewSeen {
            holdername,
            contact_scheme: false,
            missing_admin: false,
            temp_error: false,
            eri: UnavailableCodes::default(),
            accrued: UnavailableCodes::default(),
        };
        for a in &payload.arrangements {
            let Arrangement::Definite(d) = a else {
                continue;
            };
            seen.contact_scheme |= d.contact_scheme == Some(true);
            seen.missing_admin |= d.administrative_details_not_available == Some(true);
            seen.temp_error |= d.temporary_system_error == Some(true);
            for c in d
                .benefit_illustrations
                .iter()
                .flatten()
                .flat_map(|b| &b.illustration_components)
            {
                match c.illustration_type {
                    IllustrationType::ERI => mark(&mut seen.eri, c.unavailable_reason),
                    IllustrationType::AP => mark(&mut seen.accrued, c.unavailable_reason),
                }
            }
        }
        seen
    }

    /// A view request for `holdername`'s pension refused after its challenge (no payload: no
    /// flags, no codes).
    pub fn refused(holdername: Uuid) -> Self {
        ViewSeen {
            holdername,
            contact_scheme: false,
            missing_admin: false,
            temp_error: false,
            eri: UnavailableCodes::default(),
            accrued: UnavailableCodes::default(),
        }
    }

    /// Records the view, answered at `responded_at`, without holding up its answer.
    pub fn record(self, store: &Store, received_at: i64, responded_at: i64) {
        let store = store.clone();
        tokio::spawn(async move {
            let fact = ReportFact::View(ViewFact {
                holdername: self.holdername,
                received_at,
                responded_at,
                contact_scheme: self.contact_scheme,
                missing_admin: self.missing_admin,
                temp_error: self.temp_error,
                eri: self.eri,
                accrued: self.accrued,
            });
            if let Err(e) = store.record_fact(fact).await {
                tracing::warn!(error = %e, "view not recorded for PDP reporting");
            }
        });
    }
}

/// Records that `pei`'s values were withheld for a calculation (kept once per PeI), with which
/// illustrations it withheld, without holding up the view.
pub fn calculation_started(
    store: &Store,
    pei: &StoredPei,
    kind: CalculationKind,
    payload: &ViewDataPayload,
) {
    let (mut eri, mut accrued) = (false, false);
    for a in &payload.arrangements {
        let Arrangement::Definite(d) = a else {
            continue;
        };
        for c in d
            .benefit_illustrations
            .iter()
            .flatten()
            .flat_map(|b| &b.illustration_components)
            .filter(|c| c.unavailable_reason.is_some())
        {
            match c.illustration_type {
                IllustrationType::ERI => eri = true,
                IllustrationType::AP => accrued = true,
            }
        }
    }
    let fact = ReportFact::CalculationStarted(CalculationStart {
        pei: pei.matched.pei.clone(),
        holdername: pei.matched.holdername,
        value_code: kind,
        eri,
        accrued,
        started_at: pei.registered_at.unwrap_or_else(crate::now_micros),
    });
    let store = store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.record_fact(fact).await {
            tracing::warn!(error = %e, "calculation not recorded for PDP reporting");
        }
    });
}

/// Records how a possible match was resolved (Regulation 28(3)); a failure is logged, never
/// undoes the resolution.
pub async fn reviewed(store: &Store, pei: &StoredPei, review: ReviewState) {
    let fact = ReportFact::Reviewed(ReviewFact {
        pei: pei.matched.pei.clone(),
        holdername: pei.matched.holdername,
        review,
        at: crate::now_micros(),
    });
    if let Err(e) = store.record_fact(fact).await {
        tracing::warn!(error = %e, "possible match resolution not recorded for reporting");
    }
}
