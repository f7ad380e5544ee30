//! [`Backend`] on PostgreSQL: appends and audit records through the writer task's group
//! commits; every other unit of work one transaction on a pooled connection.

use std::sync::Mutex;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use futures_util::TryStreamExt;
use tokio::task::JoinHandle;

use super::writer;
use super::{audit, finds, keys, members, peis, pool_error, reports, PostgresOptions};
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
use crate::store::{AppendError, ResealCursor, Resealed, StoreError, StoreLimits};

/// The shared backend.
pub(in crate::store) struct Postgres {
    pool: Pool,
    front: Front<std::convert::Infallible>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Postgres {
    /// Connects, applies the migrations, and starts the writer task.
    pub(in crate::store) async fn connect(
        options: &PostgresOptions,
        limits: StoreLimits,
    ) -> Result<Self, StoreError> {
        let pool = super::pool(options).await?;
        let (front, rx) = Front::new(limits.channel_capacity);
        let writer = tokio::spawn(writer::run(pool.clone(), rx, limits.max_batch.max(1)));
        Ok(Self {
            pool,
            front,
            writer: Mutex::new(Some(writer)),
        })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

#[async_trait]
impl Backend for Postgres {
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
            let _ = h.await;
        }
    }

    async fn open_count(&self) -> Result<u64, StoreError> {
        finds::open_count(&self.client().await?).await
    }

    async fn requeue_working(&self) -> Result<u64, StoreError> {
        // Another instance may be working them: their leases decide.
        Ok(0)
    }

    async fn claim(
        &self,
        now: i64,
        lease: i64,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        finds::claim(&self.client().await?, now, lease, limit).await
    }

    async fn renew_lease(
        &self,
        request_id: String,
        attempts: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        finds::renew(&self.client().await?, &request_id, attempts, until).await
    }

    async fn record_matches(
        &self,
        request_id: String,
        new: Vec<NewPei>,
        versions: String,
        pat: Option<PatRow>,
        now: i64,
    ) -> Result<Vec<StoredPei>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        peis::record(&tx, &request_id, &new, now).await?;
        if let Some(p) = &pat {
            peis::insert_pat(&tx, p, now).await?;
        }
        let pat_id = pat.as_ref().map(|p| p.pat_id.as_str());
        finds::set_matched(&tx, &request_id, &versions, pat_id).await?;
        let pending = peis::select(&tx, &PeiQuery::Request(request_id))
            .await?
            .into_iter()
            .filter(|p| p.state == PeiState::Pending)
            .collect();
        tx.commit().await?;
        Ok(pending)
    }

    async fn pat(&self, pat_id: String) -> Result<Vec<u8>, StoreError> {
        peis::pat(&self.client().await?, &pat_id).await
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for (pei, resource_id) in &registered {
            let pat = pat_id.as_deref().unwrap_or_default();
            peis::registered(&tx, pei, resource_id, pat, now).await?;
        }
        let ended = finds::end(&tx, &request_id, claim, &end, now).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn find_request(&self, request_id: String) -> Result<Option<StoredFind>, StoreError> {
        finds::get(&self.client().await?, &request_id).await
    }

    async fn find_requests(&self) -> Result<Vec<StoredFind>, StoreError> {
        finds::all(&self.client().await?).await
    }

    async fn failed(&self) -> Result<Vec<FailedFind>, StoreError> {
        finds::failed(&self.client().await?).await
    }

    async fn peis(&self, query: PeiQuery) -> Result<Vec<StoredPei>, StoreError> {
        peis::select(&self.client().await?, &query).await
    }

    async fn pei_by_asset_guid(&self, asset_guid: String) -> Result<Option<StoredPei>, StoreError> {
        peis::by_asset_guid(&self.client().await?, &asset_guid).await
    }

    async fn move_pei(
        &self,
        pei: String,
        from: &'static [PeiState],
        to: PeiState,
        deletion: Option<(String, i64)>,
    ) -> Result<bool, StoreError> {
        let deletion = deletion.as_ref().map(|(r, t)| (r.as_str(), *t));
        peis::set_state(&self.client().await?, &pei, from, to, deletion).await
    }

    async fn set_review(
        &self,
        pei: String,
        review: ReviewState,
        match_status: MatchStatus,
    ) -> Result<(), StoreError> {
        peis::set_review(&self.client().await?, &pei, review, match_status).await
    }

    async fn refresh_pat(
        &self,
        previous_sha256: String,
        new_sha256: String,
        new_pat: Vec<u8>,
        expires_at: Option<i64>,
        seal: Sealer,
    ) -> Result<u64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let ids = peis::pats_by_sha(&tx, &previous_sha256).await?;
        for id in &ids {
            peis::replace_pat(&tx, id, &new_sha256, &seal(id, &new_pat), expires_at).await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn has_calculation(&self, pei: String) -> Result<bool, StoreError> {
        peis::has_calculation(&self.client().await?, &pei).await
    }

    async fn insert_calculation(&self, calc: Calculation) -> Result<(), StoreError> {
        peis::insert_calculation(&self.client().await?, &calc).await
    }

    async fn calculations(&self) -> Result<Vec<Calculation>, StoreError> {
        peis::calculations(&self.client().await?).await
    }

    async fn set_calculated_values(
        &self,
        asset_guid: String,
        calculation_date: chrono::NaiveDate,
        update: ViewDataUpdate,
    ) -> Result<Option<u64>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "SELECT 1 FROM pensions WHERE asset_guid = $1 FOR UPDATE",
            &[&asset_guid],
        )
        .await?;
        let Some(row) = members::pension(&tx, &asset_guid).await? else {
            return Ok(None);
        };
        let sealed = update(&row.sealed_view_data)?;
        members::set_view_data(&tx, &asset_guid, &sealed, calculation_date).await?;
        let closed = peis::complete_calculations(&tx, &asset_guid, crate::now_micros()).await?;
        tx.commit().await?;
        Ok(Some(closed))
    }

    async fn apply_members(
        &self,
        changes: Vec<SealedChange>,
        dry_run: bool,
        now: i64,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut out = Vec::with_capacity(changes.len());
        for change in &changes {
            out.push(apply_member(&tx, change, now).await?);
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(out)
    }

    async fn member_ids(&self, holdername: Option<String>) -> Result<Vec<String>, StoreError> {
        members::ids(&self.client().await?, holdername.as_deref()).await
    }

    async fn members_sealed(
        &self,
        member_ids: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, StoreError> {
        members::sealed(&self.client().await?, &member_ids).await
    }

    async fn member_batches(&self, batch: usize, to: MemberBatches) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // One long read at start-up: the statement time-out is for the serving paths.
        tx.execute("SET LOCAL statement_timeout = 0", &[]).await?;
        let rows = tx
            .query_raw(
                "SELECT member_id, sealed FROM members",
                std::iter::empty::<&str>(),
            )
            .await?;
        futures_util::pin_mut!(rows);
        let mut next = Vec::with_capacity(batch);
        while let Some(r) = rows.try_next().await? {
            next.push((r.try_get(0)?, r.try_get(1)?));
            if next.len() == batch {
                let full = std::mem::replace(&mut next, Vec::with_capacity(batch));
                if to.send(full).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !next.is_empty() {
            let _ = to.send(next).await;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn member_count(&self) -> Result<u64, StoreError> {
        members::count(&self.client().await?).await
    }

    async fn pension(&self, asset_guid: String) -> Result<Option<StoredPensionRow>, StoreError> {
        members::pension(&self.client().await?, &asset_guid).await
    }

    async fn data_version(&self) -> Result<i64, StoreError> {
        members::data_version(&self.client().await?).await
    }

    async fn data_changes_since(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        members::changes_since(&self.client().await?, version, limit).await
    }

    async fn purge_data_changes(&self, before: i64) -> Result<u64, StoreError> {
        members::purge_changes(&self.client().await?, before).await
    }

    async fn set_scheme(
        &self,
        holdername: String,
        state: SchemeState,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        members::set_scheme(&tx, &holdername, state, now).await?;
        members::record_change(&tx, "scheme", &holdername, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn inactive_schemes(&self) -> Result<Vec<(String, SchemeState)>, StoreError> {
        members::schemes(&self.client().await?).await
    }

    async fn scheme(&self, holdername: String) -> Result<SchemeState, StoreError> {
        members::scheme(&self.client().await?, &holdername).await
    }

    async fn count_not_sealed_with(&self, prefix: Vec<u8>) -> Result<u64, StoreError> {
        keys::count_not_sealed_with(&self.client().await?, &prefix).await
    }

    async fn reseal(
        &self,
        cursor: ResealCursor,
        prefix: Vec<u8>,
        limit: usize,
        reseal: Resealer,
    ) -> Result<Resealed, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut out = Resealed {
            cursor,
            resealed: 0,
            unreadable: 0,
        };
        while out.cursor.table < SEALED.len() {
            let rows =
                keys::not_sealed_with(&tx, out.cursor.table, &prefix, &out.cursor.after, limit)
                    .await?;
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
                        keys::replace(&tx, out.cursor.table, &id, &new).await?;
                        out.resealed += 1;
                    }
                    None => out.unreadable += 1,
                }
            }
            break;
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn audit_records(
        &self,
        from: i64,
        to: i64,
        id: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        audit::records(&self.client().await?, from, to, id.as_deref()).await
    }

    async fn purge_audit(&self, cutoff: i64) -> Result<u64, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = audit::purge(&tx, cutoff).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn heartbeat(&self, minute: i64) -> Result<(), StoreError> {
        audit::heartbeat(&self.client().await?, minute).await
    }

    async fn minutes_up(&self, from: i64, to: i64) -> Result<u64, StoreError> {
        audit::minutes_up(&self.client().await?, from, to).await
    }

    async fn first_heartbeat(&self) -> Result<Option<i64>, StoreError> {
        audit::first_heartbeat(&self.client().await?).await
    }

    async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples, StoreError> {
        let mut c = self.client().await?;
        let tx = snapshot(&mut c).await?;
        let out = audit::sla_samples(&tx, from, to).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn completions_by_holdername(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        audit::completions_by_holdername(&self.client().await?, from, to).await
    }

    async fn begin_daily(
        &self,
        job: String,
        day: String,
        now: i64,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        audit::begin_daily(&self.client().await?, &job, &day, now, lease_until).await
    }

    async fn finish_daily(&self, job: String, day: String, now: i64) -> Result<(), StoreError> {
        audit::finish_daily(&self.client().await?, &job, &day, now).await
    }

    async fn checkpoint(&self) -> Result<(), StoreError> {
        // PostgreSQL checkpoints on its own.
        Ok(())
    }

    async fn record_fact(&self, fact: ReportFact) -> Result<(), StoreError> {
        reports::insert_fact(&self.client().await?, &fact).await
    }

    async fn announce_unavailability(&self, window: NewUnavailability) -> Result<i64, StoreError> {
        reports::insert_unavailability(&self.client().await?, &window).await
    }

    async fn unavailability(&self, from: i64, to: i64) -> Result<Vec<Unavailability>, StoreError> {
        reports::unavailability(&self.client().await?, from, to).await
    }

    async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts, StoreError> {
        let mut c = self.client().await?;
        let tx = snapshot(&mut c).await?;
        let out = reports::day_facts(&tx, from, to).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_submission(
        &self,
        submission: NewSubmission,
        now: i64,
        lease: i64,
    ) -> Result<Claim, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let out = reports::claim(&tx, &submission, now, lease).await?;
        tx.commit().await?;
        Ok(out)
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
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        reports::answer(&tx, &key, part, state, http_status, answer.as_deref(), now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn submissions(
        &self,
        since: Option<chrono::NaiveDate>,
    ) -> Result<Vec<StoredSubmission>, StoreError> {
        reports::submissions(&self.client().await?, since).await
    }

    async fn possible_matches(&self, from: i64, to: i64) -> Result<Vec<PossibleMatch>, StoreError> {
        reports::possible_matches(&self.client().await?, from, to).await
    }

    async fn console_users(&self) -> Result<Vec<crate::store::console::ConsoleUser>, StoreError> {
        super::console::users(&self.client().await?).await
    }

    async fn save_console_user(
        &self,
        user: crate::store::console::ConsoleUser,
        check: crate::store::console::UserCheck,
        now: i64,
    ) -> Result<crate::store::console::UserSaved, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let out = super::console::save_user(&tx, user, check, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn org_details(&self) -> Result<Vec<crate::store::console::OrgDetail>, StoreError> {
        super::console::org(&self.client().await?).await
    }

    async fn set_org_detail(
        &self,
        key: String,
        value: String,
        confirmed: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        super::console::set_org(&self.client().await?, &key, &value, confirmed, now).await
    }
}

/// A read-only transaction on one snapshot: a report's every query sees the same data.
async fn snapshot(c: &mut Object) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    Ok(c.build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// Applies one sealed member change in the caller's transaction (as the SQLite backend does).
async fn apply_member(
    c: &deadpool_postgres::Transaction<'_>,
    change: &SealedChange,
    now: i64,
) -> Result<AppliedChange, StoreError> {
    let (member_id, applied, removed) = match change {
        SealedChange::Remove(id) => {
            if members::content_hash(c, id).await?.is_none() {
                return Ok(AppliedChange::unchanged(id, Applied::NotFound));
            }
            let gone = members::pension_guids(c, id).await?;
            retire(c, &gone, now).await?;
            members::delete(c, id).await?;
            (id, Applied::Removed, gone)
        }
        SealedChange::Upsert(row) => {
            let before = members::content_hash(c, &row.member_id).await?;
            if before
                .as_ref()
                .is_some_and(|h| h.as_deref() == Some(&row.content_sha256))
            {
                return Ok(AppliedChange::unchanged(&row.member_id, Applied::Unchanged));
            }
            let kept: std::collections::HashSet<&str> =
                row.pensions.iter().map(|p| p.asset_guid.as_str()).collect();
            let gone: Vec<String> = members::pension_guids(c, &row.member_id)
                .await?
                .into_iter()
                .filter(|g| !kept.contains(g.as_str()))
                .collect();
            retire(c, &gone, now).await?;
            members::upsert(c, row).await?;
            let applied = if before.is_some() {
                Applied::Updated
            } else {
                Applied::Added
            };
            (&row.member_id, applied, gone)
        }
    };
    members::record_change(c, "member", member_id, now).await?;
    AppliedChange::new(member_id, applied, &removed)
}

/// Deletes pensions and retires their PeIs (`asset-removed`).
async fn retire(
    c: &deadpool_postgres::Transaction<'_>,
    guids: &[String],
    now: i64,
) -> Result<(), StoreError> {
    for g in guids {
        members::delete_pension(c, g).await?;
        peis::retire_pension(c, g, "asset-removed", now).await?;
    }
    Ok(())
}
