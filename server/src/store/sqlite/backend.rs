//! [`Backend`] on SQLite: writes ride the writer thread's group commits ([`super::writer`]),
//! reads run on the read pool off the runtime.

use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::writer::{self, Job};
use super::{audit, finds, keys, members, peis, reports, ReadPool};
use crate::audit::AuditRecord;
use crate::store::backend::{
    Backend, ClaimedRow, End, FindRow, MemberBatches, PatRow, PeiQuery, Resealer, SealedChange,
    Sealer, StoredPensionRow, ViewDataUpdate, SEALED,
};
use crate::store::group_commit::Front;
use crate::store::model::{
    AppendOutcome, Applied, AppliedChange, Calculation, Claim, DayFacts, FailedFind, MatchStatus,
    NewPei, NewSubmission, NewUnavailability, PeiState, PossibleMatch, ReportFact, ReviewState,
    SchemeState, SlaSamples, StoredFind, StoredPei, StoredSubmission, SubmissionKey,
    SubmissionState, Unavailability,
};
use crate::store::{blocking, AppendError, ResealCursor, Resealed, StoreError, StoreLimits};

/// The embedded backend.
pub(in crate::store) struct Sqlite {
    front: Front<Box<dyn writer::Write>>,
    reads: ReadPool,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and starts its writer thread; with the
    /// count of open finds.
    pub(in crate::store) fn open(
        path: &Path,
        limits: StoreLimits,
    ) -> Result<(Self, u64), StoreError> {
        let conn = super::open_writer(path)?;
        let open = finds::open_count(&conn)?;
        let reads = super::read_pool(path, limits.readers)?;
        let (front, rx) = Front::new(limits.channel_capacity);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, rx, limits.max_batch.max(1)))
            .map_err(|source| StoreError::Io {
                path: "store-writer thread".into(),
                source,
            })?;
        let db = Self {
            front,
            reads,
            writer: Mutex::new(Some(writer)),
        };
        Ok((db, open))
    }

    /// Runs a read on a pooled connection, off the runtime.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reads = self.reads.clone();
        blocking(move || f(&*reads.get()?)).await
    }

    /// Runs a write in the next group commit; resolves once it is committed and synced. With
    /// `trial`, it answers what it returned and its changes are rolled back.
    pub(super) async fn write<T, F>(&self, f: F, trial: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.front
            .write(Box::new(Job::new(f, reply, trial)))
            .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn commit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write(f, false).await
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn append(
        &self,
        find: FindRow,
        audit: AuditRecord,
    ) -> Result<AppendOutcome, AppendError> {
        self.front.append(find, audit).await
    }

    fn audit(&self, record: AuditRecord) -> bool {
        self.front.audit(record)
    }

    async fn flush(&self) {
        self.front.flush().await
    }

    async fn close(&self) {
        self.front.close().await;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    async fn open_count(&self) -> Result<u64, StoreError> {
        self.read(finds::open_count).await
    }

    async fn requeue_working(&self) -> Result<u64, StoreError> {
        self.commit(finds::requeue_working).await
    }

    async fn claim(
        &self,
        now: i64,
        lease: i64,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        self.commit(move |c| finds::claim(c, now, lease, limit))
            .await
    }

    async fn renew_lease(
        &self,
        request_id: String,
        attempts: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        self.commit(move |c| finds::renew(c, &request_id, attempts, until))
            .await
    }

    async fn record_matches(
        &self,
        request_id: String,
        new: Vec<NewPei>,
        versions: String,
        pat: Option<PatRow>,
        now: i64,
    ) -> Result<Vec<StoredPei>, StoreError> {
        self.commit(move |c| {
            peis::record(c, &request_id, &new, now)?;
            finds::set_rules_version(c, &request_id, &versions)?;
            if let Some(p) = pat {
                peis::insert_pat(c, &p.pat_id, &p.sha256, &p.sealed, p.expires_at, now)?;
                finds::set_pat(c, &request_id, &p.pat_id)?;
            }
            Ok(peis::for_request(c, &request_id)?
                .into_iter()
                .filter(|p| p.state == PeiState::Pending)
                .collect())
        })
        .await
    }

    async fn pat(&self, pat_id: String) -> Result<Vec<u8>, StoreError> {
        self.read(move |c| peis::pat(c, &pat_id)).await
    }

    async fn end(
        &self,
        request_id: String,
        claim: Option<i64>,
        end: End,
        registered: Vec<(String, String)>,
        pat_id: Option<String>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.commit(move |c| {
            for (pei, resource_id) in &registered {
                let pat = pat_id.as_deref().unwrap_or_default();
                peis::registered(c, pei, resource_id, pat, now)?;
            }
            finds::end(c, &request_id, claim, &end, now)
        })
        .await
    }

    async fn find_request(&self, request_id: String) -> Result<Option<StoredFind>, StoreError> {
        self.read(move |c| finds::get(c, &request_id)).await
    }

    async fn find_requests(&self) -> Result<Vec<StoredFind>, StoreError> {
        self.read(finds::all).await
    }

    async fn failed(&self) -> Result<Vec<FailedFind>, StoreError> {
        self.read(finds::failed).await
    }

    async fn peis(&self, query: PeiQuery) -> Result<Vec<StoredPei>, StoreError> {
        self.read(move |c| match &query {
            PeiQuery::All => peis::all(c),
            PeiQuery::Request(id) => peis::for_request(c, id),
            PeiQuery::Pension(g) => peis::for_pension(c, g),
            PeiQuery::Holdername(h) => peis::for_holdername(c, h),
            PeiQuery::State(s) => peis::in_state(c, *s),
            PeiQuery::UnreviewedBefore(t) => peis::unreviewed_before(c, *t),
        })
        .await
    }

    async fn pei_by_asset_guid(&self, asset_guid: String) -> Result<Option<StoredPei>, StoreError> {
        self.read(move |c| peis::by_asset_guid(c, &asset_guid))
            .await
    }

    async fn move_pei(
        &self,
        pei: String,
        from: &'static [PeiState],
        to: PeiState,
        deletion: Option<(String, i64)>,
    ) -> Result<bool, StoreError> {
        self.commit(move |c| {
            let deletion = deletion.as_ref().map(|(r, t)| (r.as_str(), *t));
            peis::set_state(c, &pei, from, to, deletion)
        })
        .await
    }

    async fn set_review(
        &self,
        pei: String,
        review: ReviewState,
        match_status: MatchStatus,
    ) -> Result<(), StoreError> {
        self.commit(move |c| peis::set_review(c, &pei, review, match_status))
            .await
    }

    async fn refresh_pat(
        &self,
        previous_sha256: String,
        new_sha256: String,
        new_pat: Vec<u8>,
        expires_at: Option<i64>,
        seal: Sealer,
    ) -> Result<u64, StoreError> {
        self.commit(move |c| {
            let ids = peis::pats_by_sha(c, &previous_sha256)?;
            for id in &ids {
                peis::replace_pat(c, id, &new_sha256, &seal(id, &new_pat), expires_at)?;
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn has_calculation(&self, pei: String) -> Result<bool, StoreError> {
        self.read(move |c| peis::has_calculation(c, &pei)).await
    }

    async fn insert_calculation(&self, calc: Calculation) -> Result<(), StoreError> {
        self.commit(move |c| peis::insert_calculation(c, &calc))
            .await
    }

    async fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        self.read(peis::calculations).await
    }

    async fn set_calculated_values(
        &self,
        asset_guid: String,
        calculation_date: chrono::NaiveDate,
        update: ViewDataUpdate,
    ) -> Result<Option<u64>, StoreError> {
        self.commit(move |c| {
            let Some(row) = members::pension(c, &asset_guid)? else {
                return Ok(None);
            };
            let sealed = update(&row.sealed_view_data)?;
            members::set_view_data(c, &asset_guid, &sealed, calculation_date)?;
            peis::complete_calculations(c, &asset_guid, crate::now_micros()).map(Some)
        })
        .await
    }

    async fn apply_members(
        &self,
        changes: Vec<SealedChange>,
        dry_run: bool,
        now: i64,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        self.write(
            move |c| {
                changes
                    .iter()
                    .map(|change| apply_member(c, change, now))
                    .collect()
            },
            dry_run,
        )
        .await
    }

    async fn member_ids(&self, holdername: Option<String>) -> Result<Vec<String>, StoreError> {
        self.read(move |c| members::ids(c, holdername.as_deref()))
            .await
    }

    async fn members_sealed(
        &self,
        member_ids: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, StoreError> {
        self.read(move |c| {
            member_ids
                .into_iter()
                .map(|id| {
                    let sealed = members::sealed(c, &id)?;
                    Ok((id, sealed))
                })
                .collect()
        })
        .await
    }

    async fn member_batches(&self, batch: usize, to: MemberBatches) -> Result<(), StoreError> {
        self.read(move |c| {
            members::for_each_sealed(c, batch, |b| {
                let _ = to.blocking_send(b);
            })
        })
        .await
    }

    async fn member_count(&self) -> Result<u64, StoreError> {
        self.read(members::count).await
    }

    async fn pension(&self, asset_guid: String) -> Result<Option<StoredPensionRow>, StoreError> {
        self.read(move |c| members::pension(c, &asset_guid)).await
    }

    async fn data_version(&self) -> Result<i64, StoreError> {
        self.read(members::data_version).await
    }

    async fn data_changes_since(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.read(move |c| members::changes_since(c, version, limit))
            .await
    }

    async fn purge_data_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.commit(move |c| members::purge_changes(c, before))
            .await
    }

    async fn set_scheme(
        &self,
        holdername: String,
        state: SchemeState,
        now: i64,
    ) -> Result<(), StoreError> {
        self.commit(move |c| {
            members::set_scheme(c, &holdername, state, now)?;
            members::record_change(c, "scheme", &holdername, now)
        })
        .await
    }

    async fn inactive_schemes(&self) -> Result<Vec<(String, SchemeState)>, StoreError> {
        self.read(members::schemes).await
    }

    async fn scheme(&self, holdername: String) -> Result<SchemeState, StoreError> {
        self.read(move |c| members::scheme(c, &holdername)).await
    }

    async fn count_not_sealed_with(&self, prefix: Vec<u8>) -> Result<u64, StoreError> {
        self.read(move |c| keys::count_not_sealed_with(c, &prefix))
            .await
    }

    async fn reseal(
        &self,
        cursor: ResealCursor,
        prefix: Vec<u8>,
        limit: usize,
        reseal: Resealer,
    ) -> Result<Resealed, StoreError> {
        self.commit(move |c| {
            let mut out = Resealed {
                cursor,
                resealed: 0,
                unreadable: 0,
            };
            while out.cursor.table < SEALED.len() {
                let rows =
                    keys::not_sealed_with(c, out.cursor.table, &prefix, &out.cursor.after, limit)?;
                let Some((last, _)) = rows.last() else {
                    out.cursor = ResealCursor {
                        table: out.cursor.table + 1,
                        after: String::new(),
                    };
                    continue;
                };
                out.cursor.after = last.clone();
                for (id, sealed) in rows {
                    match reseal(&id, &sealed) {
                        Some(new) => {
                            keys::replace(c, out.cursor.table, &id, &new)?;
                            out.resealed += 1;
                        }
                        None => out.unreadable += 1,
                    }
                }
                break;
            }
            Ok(out)
        })
        .await
    }

    async fn audit_records(
        &self,
        from: i64,
        to: i64,
        id: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |c| audit::records(c, from, to, id.as_deref()))
            .await
    }

    async fn purge_audit(&self, cutoff: i64) -> Result<u64, StoreError> {
        self.commit(move |c| audit::purge(c, cutoff)).await
    }

    async fn heartbeat(&self, minute: i64) -> Result<(), StoreError> {
        self.commit(move |c| audit::heartbeat(c, minute)).await
    }

    async fn minutes_up(&self, from: i64, to: i64) -> Result<u64, StoreError> {
        self.read(move |c| audit::minutes_up(c, from, to)).await
    }

    async fn first_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        self.read(audit::first_heartbeat).await
    }

    async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples, StoreError> {
        self.read(move |c| audit::sla_samples(c, from, to)).await
    }

    async fn completions_by_holdername(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(move |c| audit::completions_by_holdername(c, from, to))
            .await
    }

    async fn begin_daily(
        &self,
        job: String,
        day: String,
        now: i64,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        self.commit(move |c| audit::begin_daily(c, &job, &day, now, lease_until))
            .await
    }

    async fn finish_daily(&self, job: String, day: String, now: i64) -> Result<(), StoreError> {
        self.commit(move |c| audit::finish_daily(c, &job, &day, now))
            .await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        self.read(super::checkpoint).await
    }

    async fn record_fact(&self, fact: ReportFact) -> Result<(), StoreError> {
        self.commit(move |c| reports::insert_fact(c, &fact)).await
    }

    async fn announce_unavailability(&self, window: NewUnavailability) -> Result<i64, StoreError> {
        self.commit(move |c| reports::insert_unavailability(c, &window))
            .await
    }

    async fn unavailability(&self, from: i64, to: i64) -> Result<Vec<Unavailability>, StoreError> {
        self.read(move |c| reports::unavailability(c, from, to))
            .await
    }

    async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts, StoreError> {
        self.read(move |c| reports::day_facts(c, from, to)).await
    }

    async fn claim_submission(
        &self,
        submission: NewSubmission,
        now: i64,
        lease: i64,
    ) -> Result<Claim, StoreError> {
        self.commit(move |c| reports::claim(c, &submission, now, lease))
            .await
    }

    async fn record_submission_answer(
        &self,
        key: SubmissionKey,
        part: u32,
        state: SubmissionState,
        http_status: Option<u16>,
        answer: Option<String>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.commit(move |c| {
            reports::answer(c, &key, part, state, http_status, answer.as_deref(), now)
        })
        .await
    }

    async fn submissions(
        &self,
        since: Option<chrono::NaiveDate>,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        self.read(move |c| reports::submissions(c, since)).await
    }

    async fn possible_matches(&self, from: i64, to: i64) -> Result<Vec<PossibleMatch>, StoreError> {
        self.read(move |c| reports::possible_matches(c, from, to))
            .await
    }

    async fn console_users(&self) -> Result<Vec<crate::store::console::ConsoleUser>, StoreError> {
        self.read(super::console::users).await
    }

    async fn save_console_user(
        &self,
        user: crate::store::console::ConsoleUser,
        check: crate::store::console::UserCheck,
        now: i64,
    ) -> Result<crate::store::console::UserSaved, StoreError> {
        self.commit(move |c| super::console::save_user(c, user, check, now))
            .await
    }

    async fn org_details(&self) -> Result<Vec<crate::store::console::OrgDetail>, StoreError> {
        self.read(super::console::org).await
    }

    async fn set_org_detail(
        &self,
        key: String,
        value: String,
        confirmed: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.commit(move |c| super::console::set_org(c, &key, &value, confirmed, now))
            .await
    }
}

/// Applies one sealed member change on the writer's transaction.
fn apply_member(
    c: &Connection,
    change: &SealedChange,
    now: i64,
) -> Result<AppliedChange, StoreError> {
    let (member_id, applied, removed) = match change {
        SealedChange::Remove(id) => {
            if members::content_hash(c, id)?.is_none() {
                return Ok(AppliedChange::unchanged(id, Applied::NotFound));
            }
            let gone = members::pension_guids(c, id)?;
            retire(c, &gone, now)?;
            members::delete(c, id)?;
            (id, Applied::Removed, gone)
        }
        SealedChange::Upsert(row) => {
            let before = members::content_hash(c, &row.member_id)?;
            if before
                .as_ref()
                .is_some_and(|h| h.as_deref() == Some(&row.content_sha256))
            {
                return Ok(AppliedChange::unchanged(&row.member_id, Applied::Unchanged));
            }
            let kept: std::collections::HashSet<&str> =
                row.pensions.iter().map(|p| p.asset_guid.as_str()).collect();
            let gone: Vec<String> = members::pension_guids(c, &row.member_id)?
                .into_iter()
                .filter(|g| !kept.contains(g.as_str()))
                .collect();
            retire(c, &gone, now)?;
            members::upsert(c, row)?;
            let applied = if before.is_some() {
                Applied::Updated
            } else {
                Applied::Added
            };
            (&row.member_id, applied, gone)
        }
    };
    members::record_change(c, "member", member_id, now)?;
    AppliedChange::new(member_id, applied, &removed)
}

/// Deletes pensions and retires their PeIs (`asset-removed`).
fn retire(c: &Connection, guids: &[String], now: i64) -> Result<(), StoreError> {
    for g in guids {
        members::delete_pension(c, g)?;
        peis::retire_pension(c, g, "asset-removed", now)?;
    }
    Ok(())
}
