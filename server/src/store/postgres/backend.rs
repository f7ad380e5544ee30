//! [`Backend`] on PostgreSQL: appends and audit records through the writer task's group
//! commits; every other unit of work one transaction on a pooled connection.

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use futures_util::TryStreamExt;

use super::tx::PgTx;
use super::writer;
use super::{audit, finds, keys, members, peis, pool_error, reports, PostgresOptions};
use crate::store::backend::prelude::*;
use crate::store::StoreLimits;

/// The shared backend.
pub(in crate::store) struct Postgres {
    pool: Pool,
    front: Front<std::convert::Infallible>,
}

impl Postgres {
    /// Connects, applies the migrations, and starts the writer task.
    pub(in crate::store) async fn connect(
        options: &PostgresOptions,
        limits: StoreLimits,
    ) -> Result<Self> {
        let pool = super::pool(options).await?;
        let (front, rx, running) = Front::new(limits.channel_capacity);
        tokio::spawn(writer::run(
            pool.clone(),
            rx,
            limits.max_batch.max(1),
            running,
        ));
        Ok(Self { pool, front })
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(pool_error)
    }
}

#[async_trait]
impl Database for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn shared(&self) -> bool {
        true
    }

    fn group_commit(&self) -> &dyn GroupCommit {
        &self.front
    }

    async fn run(&self, access: Access, work: Work) -> Result<Erased> {
        let mut c = self.client().await?;
        match access {
            // PostgreSQL commits a lone statement by itself: no BEGIN and COMMIT round trips.
            Access::Read | Access::Single => work(&mut PgTx(&c)).await,
            Access::Snapshot => {
                let tx = snapshot(&mut c).await?;
                let out = work(&mut PgTx(&tx)).await?;
                tx.commit().await?;
                Ok(out)
            }
            Access::Write | Access::Trial => {
                let tx = c.transaction().await?;
                let out = work(&mut PgTx(&tx)).await?;
                if access == Access::Trial {
                    tx.rollback().await?;
                } else {
                    tx.commit().await?;
                }
                Ok(out)
            }
        }
    }

    async fn checkpoint(&self) -> Result<()> {
        // PostgreSQL checkpoints on its own.
        Ok(())
    }
}

#[async_trait]
impl Backend for Postgres {
    async fn open_count(&self) -> Result<u64> {
        finds::open_count(&self.client().await?).await
    }

    async fn requeue_working(&self) -> Result<u64> {
        // Another instance may be working them: their leases decide.
        Ok(0)
    }

    async fn claim(&self, now: i64, lease: i64, limit: usize) -> Result<Vec<ClaimedRow>> {
        finds::claim(&self.client().await?, now, lease, limit).await
    }

    async fn renew_lease(&self, request_id: String, attempts: i64, until: i64) -> Result<bool> {
        finds::renew(&self.client().await?, &request_id, attempts, until).await
    }

    async fn record_matches(&self, row: MatchesRow) -> Result<Vec<StoredPei>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        peis::record(&tx, &row.request_id, &row.peis, row.now).await?;
        if let Some(p) = &row.pat {
            peis::insert_pat(&tx, p, row.now).await?;
        }
        let pat_id = row.pat.as_ref().map(|p| p.pat_id.as_str());
        finds::set_matched(&tx, &row.request_id, &row.versions, pat_id).await?;
        let pending = peis::select(&tx, &PeiQuery::Request(row.request_id))
            .await?
            .into_iter()
            .filter(|p| p.state == PeiState::Pending)
            .collect();
        tx.commit().await?;
        Ok(pending)
    }

    async fn pat(&self, pat_id: String) -> Result<Vec<u8>> {
        peis::pat(&self.client().await?, &pat_id).await
    }

    async fn end(&self, row: EndRow) -> Result<bool> {
        let mut c = self.client().await?;
        if row.registered.is_empty() {
            // One statement: its own transaction.
            return finds::end(&c, &row).await;
        }
        let tx = c.transaction().await?;
        let pat = row.pat_id.as_deref().unwrap_or_default();
        for (pei, resource_id) in &row.registered {
            peis::registered(&tx, pei, resource_id, pat, row.now).await?;
        }
        let ended = finds::end(&tx, &row).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn find_request(&self, request_id: String) -> Result<Option<StoredFind>> {
        finds::get(&self.client().await?, &request_id).await
    }

    async fn find_requests(&self) -> Result<Vec<StoredFind>> {
        finds::all(&self.client().await?).await
    }

    async fn failed(&self) -> Result<Vec<FailedFind>> {
        finds::failed(&self.client().await?).await
    }

    async fn peis(&self, query: PeiQuery) -> Result<Vec<StoredPei>> {
        peis::select(&self.client().await?, &query).await
    }

    async fn pei_by_asset_guid(&self, asset_guid: String) -> Result<Option<StoredPei>> {
        peis::by_asset_guid(&self.client().await?, &asset_guid).await
    }

    async fn move_pei(&self, change: PeiMove) -> Result<bool> {
        peis::set_state(&self.client().await?, &change).await
    }

    async fn set_review(&self, id: String, review: ReviewState, status: MatchStatus) -> Result<()> {
        peis::set_review(&self.client().await?, &id, review, status).await
    }

    async fn refresh_pat(&self, refresh: PatRefresh, seal: Sealer) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let ids = peis::pats_by_sha(&tx, &refresh.previous_sha256).await?;
        for id in &ids {
            peis::replace_pat(&tx, id, &refresh, &seal(id, &refresh.new_pat)).await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn has_calculation(&self, pei: String) -> Result<bool> {
        peis::has_calculation(&self.client().await?, &pei).await
    }

    async fn insert_calculation(&self, calc: Calculation) -> Result<()> {
        peis::insert_calculation(&self.client().await?, &calc).await
    }

    async fn calculations(&self) -> Result<Vec<Calculation>> {
        peis::calculations(&self.client().await?).await
    }

    async fn set_calculated_values(&self, values: CalculatedValues) -> Result<Option<u64>> {
        let guid = values.asset_guid.as_str();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "SELECT 1 FROM pensions WHERE asset_guid = $1 FOR UPDATE",
            &[&guid],
        )
        .await?;
        let Some(row) = members::pension(&tx, guid).await? else {
            return Ok(None);
        };
        let sealed = (values.update)(&row.sealed_view_data)?;
        members::set_view_data(&tx, guid, &sealed, values.calculation_date).await?;
        let closed = peis::complete_calculations(&tx, guid, crate::now_micros()).await?;
        tx.commit().await?;
        Ok(Some(closed))
    }

    async fn apply_members(&self, batch: MemberChanges) -> Result<Vec<AppliedChange>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut out = Vec::with_capacity(batch.changes.len());
        for change in &batch.changes {
            out.push(apply_member(&tx, change, batch.now).await?);
        }
        if batch.dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(out)
    }

    async fn member_ids(&self, holdername: Option<String>) -> Result<Vec<String>> {
        members::ids(&self.client().await?, holdername.as_deref()).await
    }

    async fn members_sealed(&self, ids: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        members::sealed(&self.client().await?, &ids).await
    }

    async fn member_batches(&self, batch: usize, to: MemberBatches) -> Result<()> {
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

    async fn member_count(&self) -> Result<u64> {
        members::count(&self.client().await?).await
    }

    async fn pension(&self, asset_guid: String) -> Result<Option<StoredPensionRow>> {
        members::pension(&self.client().await?, &asset_guid).await
    }

    async fn data_version(&self) -> Result<i64> {
        members::data_version(&self.client().await?).await
    }

    async fn data_changes_since(&self, version: i64, limit: usize) -> Result<Vec<DataChangeRow>> {
        members::changes_since(&self.client().await?, version, limit).await
    }

    async fn purge_data_changes(&self, before: i64) -> Result<u64> {
        members::purge_changes(&self.client().await?, before).await
    }

    async fn set_scheme(&self, holdername: String, state: SchemeState, now: i64) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        members::set_scheme(&tx, &holdername, state, now).await?;
        members::record_change(&tx, "scheme", &holdername, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn inactive_schemes(&self) -> Result<Vec<(String, SchemeState)>> {
        members::schemes(&self.client().await?).await
    }

    async fn scheme(&self, holdername: String) -> Result<SchemeState> {
        members::scheme(&self.client().await?, &holdername).await
    }

    async fn count_not_sealed_with(&self, prefix: Vec<u8>) -> Result<u64> {
        keys::count_not_sealed_with(&self.client().await?, &prefix).await
    }

    async fn reseal(&self, step: ResealStep, reseal: Resealer) -> Result<Resealed> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut out = Resealed::from(step.cursor.clone());
        while out.cursor.table < SEALED.len() {
            let rows = keys::not_sealed_with(&tx, &out.cursor, &step).await?;
            let table = out.cursor.table;
            if let Some(new) = out.take(rows, &reseal) {
                for (id, sealed) in new {
                    keys::replace(&tx, table, &id, &sealed).await?;
                }
                break;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn audit_records(&self, query: AuditQuery) -> Result<Vec<AuditRecord>> {
        let AuditQuery { from, to, id } = query;
        audit::records(&self.client().await?, from, to, id.as_deref()).await
    }

    async fn purge_audit(&self, cutoff: i64) -> Result<u64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = audit::purge(&tx, cutoff).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn heartbeat(&self, minute: i64) -> Result<()> {
        audit::heartbeat(&self.client().await?, minute).await
    }

    async fn minutes_up(&self, from: i64, to: i64) -> Result<u64> {
        audit::minutes_up(&self.client().await?, from, to).await
    }

    async fn first_heartbeat(&self) -> Result<Option<i64>> {
        audit::first_heartbeat(&self.client().await?).await
    }

    async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples> {
        let mut c = self.client().await?;
        let tx = snapshot(&mut c).await?;
        let out = audit::sla_samples(&tx, from, to).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn completions_by_holdername(&self, from: i64, to: i64) -> Result<Vec<(String, i64)>> {
        audit::completions_by_holdername(&self.client().await?, from, to).await
    }

    async fn begin_daily(&self, run: DailyRun, lease_until: i64) -> Result<bool> {
        audit::begin_daily(&self.client().await?, &run, lease_until).await
    }

    async fn finish_daily(&self, run: DailyRun) -> Result<()> {
        audit::finish_daily(&self.client().await?, &run).await
    }

    async fn record_fact(&self, fact: ReportFact) -> Result<()> {
        reports::insert_fact(&self.client().await?, &fact).await
    }

    async fn announce_unavailability(&self, window: NewUnavailability) -> Result<i64> {
        reports::insert_unavailability(&self.client().await?, &window).await
    }

    async fn unavailability(&self, from: i64, to: i64) -> Result<Vec<Unavailability>> {
        reports::unavailability(&self.client().await?, from, to).await
    }

    async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts> {
        let mut c = self.client().await?;
        let tx = snapshot(&mut c).await?;
        let out = reports::day_facts(&tx, from, to).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_submission(&self, new: NewSubmission, now: i64, lease: i64) -> Result<Claim> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let out = reports::claim(&tx, &new, now, lease).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn record_submission_answer(&self, answer: SubmissionAnswer, now: i64) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        reports::answer(&tx, &answer, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn submissions(&self, since: Option<chrono::NaiveDate>) -> Result<Vec<StoredSubmission>> {
        reports::submissions(&self.client().await?, since).await
    }

    async fn possible_matches(&self, from: i64, to: i64) -> Result<Vec<PossibleMatch>> {
        reports::possible_matches(&self.client().await?, from, to).await
    }

    async fn console_users(&self) -> Result<Vec<ConsoleUser>> {
        super::console::users(&self.client().await?).await
    }

    async fn save_console_user(&self, user: ConsoleUser, check: UserCheck) -> Result<UserSaved> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let out = super::console::save_user(&tx, user, check).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn org_details(&self) -> Result<Vec<OrgDetail>> {
        super::console::org(&self.client().await?).await
    }

    async fn set_org_detail(&self, change: OrgDetailChange, now: i64) -> Result<()> {
        super::console::set_org(&self.client().await?, &change, now).await
    }

    async fn sign_in_attempt(&self, attempt: SignInAttempt) -> Result<u32> {
        super::console::sign_in_attempt(&self.client().await?, &attempt).await
    }

    async fn sign_in_succeeded(&self, username: String) -> Result<()> {
        super::console::sign_in_succeeded(&self.client().await?, &username).await
    }
}

/// A read-only transaction on one snapshot: a report's every query sees the same data.
async fn snapshot(c: &mut Object) -> Result<deadpool_postgres::Transaction<'_>> {
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
) -> Result<AppliedChange> {
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
            let Some(applied) = row.applied_over(before) else {
                return Ok(AppliedChange::unchanged(&row.member_id, Applied::Unchanged));
            };
            let gone = row.dropped(members::pension_guids(c, &row.member_id).await?);
            retire(c, &gone, now).await?;
            members::upsert(c, row).await?;
            (&row.member_id, applied, gone)
        }
    };
    members::record_change(c, "member", member_id, now).await?;
    AppliedChange::new(member_id, applied, &removed)
}

/// Deletes pensions and retires their PeIs (`asset-removed`).
async fn retire(c: &deadpool_postgres::Transaction<'_>, guids: &[String], now: i64) -> Result<()> {
    for g in guids {
        members::delete_pension(c, g).await?;
        peis::retire_pension(c, g, "asset-removed", now).await?;
    }
    Ok(())
}
