//! What the operator console reads and keeps beside the other areas, each a unit of work written
//! once for both backends:
//!
//! - the searcher's data of each open possible match, sealed (the PeI its associated data), kept
//!   from the PeI's registration until it is resolved, times out or is otherwise retired: then
//!   deleted by the triggers of `schema/V7__possible_match_searches.sql`, whatever code retired
//!   it, so that it lives no longer than the review window (CoCo2.2.2);
//! - the audit trail a page at a time, in the order an export streams it;
//! - each holdername's scheme name, state and counts (the schemes page, names beside GUIDs);
//! - an announced window of planned downtime changed or cancelled before it starts.

use uuid::Uuid;

use super::sql::{params, Row, Tx};
use super::{Result, Store, StoreError};
use crate::model::{AuditRecord, Direction, NewUnavailability, SchemeState};

/// A page of the audit trail to read: records received in `[from, to)` (µs), for one transaction
/// or find request ID when given, after `after` (received at, row id) in the trail's order.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// From (µs, inclusive).
    pub from: i64,
    /// To (µs, exclusive).
    pub to: i64,
    /// Only this transaction or find request ID.
    pub request_id: Option<String>,
    /// The last record of the page before (received at, row id); `None` for the first page.
    pub after: Option<(i64, i64)>,
    /// Records at most.
    pub limit: usize,
}

/// A page's record with where it is in the trail (received at, row id), to read on after it.
#[derive(Debug, Clone)]
pub struct AuditAt {
    /// The record.
    pub record: AuditRecord,
    /// Its place: received at, row id.
    pub at: (i64, i64),
}

/// One holdername as the schemes page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeSummary {
    /// The holdername.
    pub holdername: Uuid,
    /// The scheme's name, as its pensions (or, with none, its PeIs) give it ("" when none is
    /// stored).
    pub scheme_name: String,
    /// Active, suspended or severed.
    pub state: SchemeState,
    /// Pensions stored.
    pub pensions: u64,
    /// PeIs registered at the CAS (served).
    pub registered_peis: u64,
    /// Possible matches waiting for review.
    pub open_possible: u64,
}

// === impl Store ===

impl Store {
    /// Keeps what the searcher of find `request_id` entered (`data`, JSON) for each of `peis`
    /// still an open possible match, sealed; a PeI that already has it keeps the first.
    pub async fn keep_searcher_data(
        &self,
        request_id: &str,
        peis: Vec<String>,
        data: &[u8],
    ) -> Result<(), StoreError> {
        if peis.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, Vec<u8>)> = peis
            .into_iter()
            .map(|p| {
                let sealed = self.inner.key.seal(p.as_bytes(), data);
                (p, sealed)
            })
            .collect();
        let (id, now) = (request_id.to_owned(), crate::now_micros());
        self.write(move |tx| Box::pin(keep(tx, id, rows, now)))
            .await
    }

    /// What the searcher entered for each of `peis` that is an open possible match and has it
    /// kept, opened (JSON); a PeI without is left out, as is one that no configured data key
    /// opens (counted in the log, never shown). Re-sealed with the others under a new data key
    /// (`keys::SEALED`).
    pub async fn searcher_data(
        &self,
        peis: Vec<String>,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let sealed = self.read(move |tx| Box::pin(sealed_of(tx, peis))).await?;
        let total = sealed.len();
        let open: Vec<(String, Vec<u8>)> = sealed
            .into_iter()
            .filter_map(|(pei, s)| {
                Some((pei.clone(), self.inner.key.open(pei.as_bytes(), &s).ok()?))
            })
            .collect();
        if open.len() < total {
            tracing::warn!(
                unreadable = total - open.len(),
                "searchers' data not opened by any data key"
            );
        }
        Ok(open)
    }

    /// How many PeIs have the searcher's data kept (open possible matches, and any the triggers
    /// have not deleted: none).
    pub async fn searcher_data_kept(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            Box::pin(async move {
                tx.value("SELECT count(*) FROM possible_match_searches", &[])
                    .await
            })
        })
        .await
    }

    /// A page of the audit trail ([`AuditPage`]), oldest first.
    pub async fn audit_page(&self, page: AuditPage) -> Result<Vec<AuditAt>, StoreError> {
        self.read(move |tx| Box::pin(audit_page(tx, page))).await
    }

    /// Replaces announced window `id` with `window`, if it has not started by `now`: whether it
    /// was replaced.
    pub async fn change_unavailability(
        &self,
        id: i64,
        window: NewUnavailability,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| Box::pin(change_window(tx, id, window, now)))
            .await
    }

    /// Cancels announced window `id`, if it has not started by `now`: whether it was cancelled.
    pub async fn cancel_unavailability(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.write(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "DELETE FROM unavailability WHERE id = $1 AND starts_at > $2",
                        &params![id, now],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }

    /// Every holdername with pensions stored or a state set, with its name, state and counts, by
    /// name then GUID. The PeI counts read the PeIs of each.
    pub async fn scheme_summaries(&self) -> Result<Vec<SchemeSummary>, StoreError> {
        self.read(|tx| Box::pin(schemes(tx))).await
    }

    /// Every holdername with pensions stored or a state set, with its scheme's name ("" when
    /// none is stored): an index seek or two per holdername.
    pub async fn scheme_names(&self) -> Result<Vec<(Uuid, String)>, StoreError> {
        self.read(|tx| Box::pin(names(tx))).await
    }
}

// === units of work ===

/// Stores the sealed rows of PeIs that are open possible matches, first one kept.
async fn keep(
    tx: &mut dyn Tx,
    request_id: String,
    rows: Vec<(String, Vec<u8>)>,
    now: i64,
) -> Result<()> {
    for (pei, sealed) in rows {
        tx.execute(
            "INSERT INTO possible_match_searches (pei, request_id, sealed, created_at)
             SELECT pei, $2, $3, $4 FROM peis
              WHERE pei = $1 AND match_status = 'match-possible'
                AND state IN ('pending', 'registered') AND review = 'pending'
             ON CONFLICT (pei) DO NOTHING",
            &params![&pei, &request_id, sealed, now],
        )
        .await?;
    }
    Ok(())
}

/// The sealed rows of those of `peis` that are open possible matches.
async fn sealed_of(tx: &mut dyn Tx, peis: Vec<String>) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for pei in peis {
        let row = tx
            .query_opt(
                "SELECT s.sealed FROM possible_match_searches s JOIN peis p ON p.pei = s.pei
                  WHERE s.pei = $1 AND p.match_status = 'match-possible'
                    AND p.state IN ('pending', 'registered') AND p.review = 'pending'",
                &params![&pei],
            )
            .await?;
        if let Some(r) = row {
            out.push((pei, r.get(0)?));
        }
    }
    Ok(out)
}

/// Replaces a window yet to start.
async fn change_window(tx: &mut dyn Tx, id: i64, w: NewUnavailability, now: i64) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE unavailability SET service = $3, holdername = $4, starts_at = $5,
                 ends_at = $6, reason = $7, emergency = $8, announced_at = $9
              WHERE id = $1 AND starts_at > $2",
            &params![
                id,
                now,
                w.service,
                w.holdername,
                w.starts_at,
                w.ends_at,
                w.reason,
                w.emergency,
                w.announced_at
            ],
        )
        .await?;
    Ok(n == 1)
}

/// A page of the audit trail, in (received at, id) order.
async fn audit_page(tx: &mut dyn Tx, p: AuditPage) -> Result<Vec<AuditAt>> {
    let (after_at, after_id) = p.after.unwrap_or((p.from, i64::MIN));
    tx.query(
        "SELECT transaction_id, request_id, direction, party, endpoint, received_at,
                responded_at, status, outcome, id
           FROM audit_log
          WHERE received_at >= $1 AND received_at < $2
            AND (CAST($3 AS TEXT) IS NULL OR transaction_id = $3 OR request_id = $3)
            AND (received_at > $4 OR (received_at = $4 AND id > $5))
          ORDER BY received_at, id
          LIMIT $6",
        &params![p.from, p.to, p.request_id, after_at, after_id, p.limit],
    )
    .await?
    .iter()
    .map(|r| {
        let record = audit_from(r)?;
        let at = (record.received_at, r.get(9)?);
        Ok(AuditAt { record, at })
    })
    .collect()
}

fn audit_from(r: &Row) -> Result<AuditRecord> {
    let direction: String = r.get(2)?;
    Ok(AuditRecord {
        transaction_id: r.get(0)?,
        request_id: r.get(1)?,
        direction: Direction::parse(&direction).ok_or(StoreError::Corrupt("audit direction"))?,
        party: r.get(3)?,
        endpoint: r.get(4)?,
        received_at: r.get(5)?,
        responded_at: r.get(6)?,
        status: u16::try_from(r.get::<i64>(7)?).map_err(|_| StoreError::Corrupt("audit status"))?,
        outcome: r.get(8)?,
    })
}

/// The holdernames of the stored pensions (from the count of each holdername's pensions by
/// scheme name, a few rows a scheme) and of the schemes with a state set.
const HOLDERNAMES: &str = "WITH known (holdername) AS (
        SELECT holdername FROM pension_schemes
        UNION SELECT holdername FROM schemes
    )";

/// A holdername's scheme name, its pensions' first by name, else a PeI's.
const NAME_OF: &str = "coalesce(
        (SELECT min(p.scheme_name) FROM pension_schemes p WHERE p.holdername = k.holdername),
        (SELECT x.scheme_name FROM peis x WHERE x.holdername = k.holdername LIMIT 1),
        '')";

/// Every holdername known to the store with its scheme's name.
async fn names(tx: &mut dyn Tx) -> Result<Vec<(Uuid, String)>> {
    let sql = format!("{HOLDERNAMES} SELECT k.holdername, {NAME_OF} FROM known k");
    tx.query(&sql, &[])
        .await?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?)))
        .collect()
}

/// Every holdername known to the store, with its name, state and counts.
async fn schemes(tx: &mut dyn Tx) -> Result<Vec<SchemeSummary>> {
    let sql = format!(
        "{HOLDERNAMES}
         SELECT k.holdername, {NAME_OF},
                coalesce((SELECT s.state FROM schemes s WHERE s.holdername = k.holdername),
                         'active'),
                CAST(coalesce((SELECT sum(p.pensions) FROM pension_schemes p
                                WHERE p.holdername = k.holdername), 0) AS {{int64}}),
                (SELECT count(*) FROM peis x WHERE x.holdername = k.holdername
                    AND x.state = 'registered'),
                (SELECT count(*) FROM peis x WHERE x.holdername = k.holdername
                    AND x.state = 'registered' AND x.match_status = 'match-possible'
                    AND x.review = 'pending')
           FROM known k"
    );
    let rows = tx.query(&sql, &[]).await?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(SchemeSummary {
                holdername: r.get(0)?,
                scheme_name: r.get(1)?,
                state: r.get(2)?,
                pensions: r.get(3)?,
                registered_peis: r.get(4)?,
                open_possible: r.get(5)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| (&a.scheme_name, a.holdername).cmp(&(&b.scheme_name, b.holdername)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::Place;
    use super::*;
    use crate::model::{MatchStatus, NewPei, PeiMatch, ReviewState, Service};

    fn possible(n: u128) -> NewPei {
        NewPei {
            matched: PeiMatch {
                pei: format!("urn:pei:test:{n}"),
                asset_guid: Uuid::from_u128(n),
                holdername: Uuid::from_u128(7),
                pension_asset_guid: Uuid::from_u128(100 + n),
                member_id: format!("m{n}"),
                scheme_name: "Test Scheme".into(),
                match_status: MatchStatus::Possible,
                reason: "family_name_mismatch".into(),
            },
            rules_version: "1".into(),
        }
    }

    async fn searchers_data_lives_while_the_match_is_open(db: Place) {
        let s = db.open().await;
        let peis: Vec<NewPei> = (1..=3).map(possible).collect();
        let urns: Vec<String> = peis.iter().map(|p| p.matched.pei.clone()).collect();
        s.record_matches("find-1", peis, None).await.unwrap();
        s.keep_searcher_data("find-1", urns.clone(), b"{\"names\":[]}")
            .await
            .unwrap();
        // A second find of the same PeIs keeps the first's data; an unknown PeI keeps nothing.
        s.keep_searcher_data("find-2", urns.clone(), b"second")
            .await
            .unwrap();
        s.keep_searcher_data("find-2", vec!["urn:pei:none".into()], b"x")
            .await
            .unwrap();
        let kept = s.searcher_data(urns.clone()).await.unwrap();
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|(_, d)| d == b"{\"names\":[]}"));
        // Resolved, or retired otherwise: deleted by the store, whatever changed the PeI.
        s.set_review(&urns[0], ReviewState::No, MatchStatus::Possible)
            .await
            .unwrap();
        s.flag_for_deregistration(&urns[1], "pat-refused")
            .await
            .unwrap();
        let left: Vec<String> = s
            .searcher_data(urns.clone())
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(left, [urns[2].clone()]);
        assert_eq!(s.searcher_data_kept().await.unwrap(), 1);
        // A resolved PeI gets none again.
        s.keep_searcher_data("find-3", urns[..1].to_vec(), b"again")
            .await
            .unwrap();
        assert_eq!(s.searcher_data_kept().await.unwrap(), 1);
        s.close().await;
    }

    async fn the_trail_pages_in_order_windows_change_before_they_start_schemes_are_named(
        db: Place,
    ) {
        let s = db.open().await;
        s.record_matches("find-1", vec![possible(1)], None)
            .await
            .unwrap();
        // The trail a page at a time: every matching record once, in order, same-time ones too.
        for i in 0..7 {
            s.audit(AuditRecord {
                transaction_id: format!("t{i}"),
                request_id: Some(if i % 2 == 0 { "even" } else { "odd" }.into()),
                direction: Direction::Outbound,
                party: "cas".into(),
                endpoint: "POST /x".into(),
                received_at: 1_000 + i / 3,
                responded_at: 2_000,
                status: 200,
                outcome: "ok".into(),
            });
        }
        s.flush().await;
        let mut page = AuditPage {
            from: 0,
            to: 10_000,
            request_id: Some("even".into()),
            after: None,
            limit: 2,
        };
        let mut seen = Vec::new();
        loop {
            let rows = s.audit_page(page.clone()).await.unwrap();
            seen.extend(rows.iter().map(|r| r.record.transaction_id.clone()));
            match rows.last() {
                Some(last) if rows.len() == page.limit => page.after = Some(last.at),
                _ => break,
            }
        }
        assert_eq!(seen, ["t0", "t2", "t4", "t6"]);

        // A window changes or goes only before it starts.
        let now = 1_000_000;
        let window = |starts_at| NewUnavailability {
            service: Service::Find,
            holdername: None,
            starts_at,
            ends_at: starts_at + 10,
            reason: "x".into(),
            emergency: false,
            announced_at: 0,
        };
        let ahead = s.announce_unavailability(window(now + 5)).await.unwrap();
        let begun = s.announce_unavailability(window(now - 5)).await.unwrap();
        assert!(!s.cancel_unavailability(begun, now).await.unwrap());
        assert!(!s
            .change_unavailability(begun, window(now + 50), now)
            .await
            .unwrap());
        assert!(s
            .change_unavailability(ahead, window(now + 50), now)
            .await
            .unwrap());
        assert!(s.cancel_unavailability(ahead, now).await.unwrap());
        let left = s.unavailability(0, i64::MAX).await.unwrap();
        assert_eq!(left.iter().map(|u| u.id).collect::<Vec<_>>(), [begun]);

        // A scheme with a state set and no pensions left: named from its PeIs.
        assert!(s.scheme_summaries().await.unwrap().is_empty());
        s.set_scheme_state(Uuid::from_u128(7), SchemeState::Suspended)
            .await
            .unwrap();
        let schemes = s.scheme_summaries().await.unwrap();
        assert_eq!(schemes.len(), 1);
        assert_eq!(schemes[0].scheme_name, "Test Scheme");
        assert_eq!(schemes[0].state, SchemeState::Suspended);
        assert_eq!(
            s.scheme_names().await.unwrap(),
            [(Uuid::from_u128(7), "Test Scheme".to_owned())]
        );
        s.close().await;
    }

    mod sqlite_backend {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn searchers_data_lives_while_the_match_is_open() {
            super::searchers_data_lives_while_the_match_is_open(super::Place::sqlite()).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_trail_pages_in_order_windows_change_before_they_start_schemes_are_named() {
            super::the_trail_pages_in_order_windows_change_before_they_start_schemes_are_named(
                super::Place::sqlite(),
            )
            .await
        }
    }

    mod postgres_backend {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn searchers_data_lives_while_the_match_is_open() {
            super::searchers_data_lives_while_the_match_is_open(super::Place::postgres().await)
                .await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_trail_pages_in_order_windows_change_before_they_start_schemes_are_named() {
            super::the_trail_pages_in_order_windows_change_before_they_start_schemes_are_named(
                super::Place::postgres().await,
            )
            .await
        }
    }
}
