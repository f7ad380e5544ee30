//! [`Backend`] on SQLite: writes ride the writer thread's group commits ([`super::writer`]),
//! reads run on the read pool off the runtime.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::tx::SqliteTx;
use super::writer::{self, Job};
use super::{audit, finds, keys, members, peis, reports, ReadPool};
use crate::store::backend::prelude::*;
use crate::store::sql::run_blocking;
use crate::store::{blocking, StoreLimits};

/// The embedded backend.
pub(in crate::store) struct Sqlite {
    front: Front<Box<dyn writer::Write>>,
    reads: ReadPool,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path` and starts its writer thread; with the
    /// count of open finds.
    pub(in crate::store) fn open(path: &Path, limits: StoreLimits) -> Result<(Self, u64)> {
        let conn = super::open_writer(path)?;
        let open = finds::open_count(&conn)?;
        let reads = super::read_pool(path, limits.readers)?;
        let (front, rx, running) = Front::new(limits.channel_capacity);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(conn, rx, limits.max_batch.max(1), running))
            .map_err(|source| StoreError::Io {
                path: "store-writer thread".into(),
                source,
            })?;
        let db = Self { front, reads };
        Ok((db, open))
    }

    /// Runs a read on a pooled connection, off the runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let reads = self.reads.clone();
        blocking(move || f(&*reads.get()?)).await
    }

    /// Runs a write in the next group commit; resolves once it is committed and synced. With
    /// `trial`, it answers what it returned and its changes are rolled back.
    pub(super) async fn write<T, F>(&self, f: F, trial: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.front
            .write(Box::new(Job::new(
                move |c: &mut Connection| f(c),
                reply,
                trial,
            )))
            .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn commit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write(f, false).await
    }
}

#[async_trait]
impl Database for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn shared(&self) -> bool {
        false
    }

    fn group_commit(&self) -> &dyn GroupCommit {
        &self.front
    }

    async fn run(&self, access: Access, work: Work) -> Result<Erased> {
        let run = move |c: &mut Connection| run_blocking(work(&mut SqliteTx(c)));
        let trial = match access {
            Access::Read => {
                let reads = self.reads.clone();
                return blocking(move || run(&mut *reads.get()?)).await;
            }
            // A read transaction sees one snapshot of the WAL.
            Access::Snapshot => {
                let reads = self.reads.clone();
                return blocking(move || {
                    let mut c = reads.get()?;
                    c.execute_batch("BEGIN")?;
                    let out = run(&mut *c);
                    c.execute_batch("COMMIT")?;
                    out
                })
                .await;
            }
            Access::Single | Access::Write => false,
            Access::Trial => true,
        };
        let (reply, rx) = oneshot::channel();
        self.front
            .write(Box::new(Job::new(run, reply, trial)))
            .await?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn checkpoint(&self) -> Result<()> {
        let reads = self.reads.clone();
        blocking(move || super::checkpoint(&*reads.get()?)).await
    }
}

#[async_trait]
impl Backend for Sqlite {
    async fn open_count(&self) -> Result<u64> {
        self.read(finds::open_count).await
    }

    async fn requeue_working(&self) -> Result<u64> {
        self.commit(finds::requeue_working).await
    }

    async fn claim(&self, now: i64, lease: i64, limit: usize) -> Result<Vec<ClaimedRow>> {
        self.commit(move |c| finds::claim(c, now, lease, limit))
            .await
    }

    async fn renew_lease(&self, request_id: String, attempts: i64, until: i64) -> Result<bool> {
        self.commit(move |c| finds::renew(c, &request_id, attempts, until))
            .await
    }

    async fn record_matches(&self, row: MatchesRow) -> Result<Vec<StoredPei>> {
        let MatchesRow {
            request_id,
            peis: new,
            versions,
            pat,
            now,
        } = row;
        self.commit(move |c| {
            peis::record(c, &request_id, &new, now)?;
            if let Some(p) = &pat {
                peis::insert_pat(c, &p.pat_id, &p.sha256, &p.sealed, p.expires_at, now)?;
            }
            let pat_id = pat.as_ref().map(|p| p.pat_id.as_str());
            finds::set_matched(c, &request_id, &versions, pat_id)?;
            Ok(peis::for_request(c, &request_id)?
                .into_iter()
                .filter(|p| p.state == PeiState::Pending)
                .collect())
        })
        .await
    }

    async fn pat(&self, pat_id: String) -> Result<Vec<u8>> {
        self.read(move |c| peis::pat(c, &pat_id)).await
    }

    async fn end(&self, row: EndRow) -> Result<bool> {
        self.commit(move |c| {
            let pat = row.pat_id.as_deref().unwrap_or_default();
            for (pei, resource_id) in &row.registered {
                peis::registered(c, pei, resource_id, pat, row.now)?;
            }
            finds::end(c, &row)
        })
        .await
    }

    async fn find_request(&self, request_id: String) -> Result<Option<StoredFind>> {
        self.read(move |c| finds::get(c, &request_id)).await
    }

    async fn find_requests(&self) -> Result<Vec<StoredFind>> {
        self.read(finds::all).await
    }

    async fn failed(&self) -> Result<Vec<FailedFind>> {
        self.read(finds::failed).await
    }

    async fn peis(&self, query: PeiQuery) -> Result<Vec<StoredPei>> {
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

    async fn pei_by_asset_guid(&self, asset_guid: String) -> Result<Option<StoredPei>> {
        self.read(move |c| peis::by_asset_guid(c, &asset_guid))
            .await
    }

    async fn move_pei(&self, change: PeiMove) -> Result<bool> {
        self.commit(move |c| peis::set_state(c, &change)).await
    }

    async fn set_review(&self, id: String, review: ReviewState, status: MatchStatus) -> Result<()> {
        self.commit(move |c| peis::set_review(c, &id, review, status))
            .await
    }

    async fn refresh_pat(&self, refresh: PatRefresh, seal: Sealer) -> Result<u64> {
        self.commit(move |c| {
            let ids = peis::pats_by_sha(c, &refresh.previous_sha256)?;
            for id in &ids {
                peis::replace_pat(c, id, &refresh, &seal(id, &refresh.new_pat))?;
            }
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn has_calculation(&self, pei: String) -> Result<bool> {
        self.read(move |c| peis::has_calculation(c, &pei)).await
    }

    async fn insert_calculation(&self, calc: Calculation) -> Result<()> {
        self.commit(move |c| peis::insert_calculation(c, &calc))
            .await
    }

    async fn calculations(&self) -> Result<Vec<Calculation>> {
        self.read(peis::calculations).await
    }

    async fn set_calculated_values(&self, values: CalculatedValues) -> Result<Option<u64>> {
        self.commit(move |c| {
            let guid = values.asset_guid.as_str();
            let Some(row) = members::pension(c, guid)? else {
                return Ok(None);
            };
            let sealed = (values.update)(&row.sealed_view_data)?;
            members::set_view_data(c, guid, &sealed, values.calculation_date)?;
            peis::complete_calculations(c, guid, crate::now_micros()).map(Some)
        })
        .await
    }

    async fn apply_members(&self, batch: MemberChanges) -> Result<Vec<AppliedChange>> {
        let dry_run = batch.dry_run;
        self.write(
            move |c| {
                batch
                    .changes
                    .iter()
                    .map(|change| apply_member(c, change, batch.now))
                    .collect()
            },
            dry_run,
        )
        .await
    }

    async fn member_ids(&self, holdername: Option<String>) -> Result<Vec<String>> {
        self.read(move |c| members::ids(c, holdername.as_deref()))
            .await
    }

    async fn members_sealed(&self, ids: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        self.read(move |c| {
            ids.into_iter()
                .map(|id| {
                    let sealed = members::sealed(c, &id)?;
                    Ok((id, sealed))
                })
                .collect()
        })
        .await
    }

    async fn member_batches(&self, batch: usize, to: MemberBatches) -> Result<()> {
        self.read(move |c| {
            members::for_each_sealed(c, batch, |b| {
                let _ = to.blocking_send(b);
            })
        })
        .await
    }

    async fn member_count(&self) -> Result<u64> {
        self.read(members::count).await
    }

    async fn pension(&self, asset_guid: String) -> Result<Option<StoredPensionRow>> {
        self.read(move |c| members::pension(c, &asset_guid)).await
    }

    async fn data_version(&self) -> Result<i64> {
        self.read(members::data_version).await
    }

    async fn data_changes_since(&self, version: i64, limit: usize) -> Result<Vec<DataChangeRow>> {
        self.read(move |c| members::changes_since(c, version, limit))
            .await
    }

    async fn purge_data_changes(&self, before: i64) -> Result<u64> {
        self.commit(move |c| members::purge_changes(c, before))
            .await
    }

    async fn set_scheme(&self, holdername: String, state: SchemeState, now: i64) -> Result<()> {
        self.commit(move |c| {
            members::set_scheme(c, &holdername, state, now)?;
            members::record_change(c, "scheme", &holdername, now)
        })
        .await
    }

    async fn inactive_schemes(&self) -> Result<Vec<(String, SchemeState)>> {
        self.read(members::schemes).await
    }

    async fn scheme(&self, holdername: String) -> Result<SchemeState> {
        self.read(move |c| members::scheme(c, &holdername)).await
    }

    async fn count_not_sealed_with(&self, prefix: Vec<u8>) -> Result<u64> {
        self.read(move |c| keys::count_not_sealed_with(c, &prefix))
            .await
    }

    async fn reseal(&self, step: ResealStep, reseal: Resealer) -> Result<Resealed> {
        self.commit(move |c| {
            let mut out = Resealed::from(step.cursor.clone());
            while out.cursor.table < SEALED.len() {
                let rows = keys::not_sealed_with(c, &out.cursor, &step)?;
                let table = out.cursor.table;
                if let Some(new) = out.take(rows, &reseal) {
                    for (id, sealed) in new {
                        keys::replace(c, table, &id, &sealed)?;
                    }
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn audit_records(&self, query: AuditQuery) -> Result<Vec<AuditRecord>> {
        let AuditQuery { from, to, id } = query;
        self.read(move |c| audit::records(c, from, to, id.as_deref()))
            .await
    }

    async fn purge_audit(&self, cutoff: i64) -> Result<u64> {
        self.commit(move |c| audit::purge(c, cutoff)).await
    }

    async fn heartbeat(&self, minute: i64) -> Result<()> {
        self.commit(move |c| audit::heartbeat(c, minute)).await
    }

    async fn minutes_up(&self, from: i64, to: i64) -> Result<u64> {
        self.read(move |c| audit::minutes_up(c, from, to)).await
    }

    async fn first_heartbeat(&self) -> Result<Option<i64>> {
        self.read(audit::first_heartbeat).await
    }

    async fn sla_samples(&self, from: i64, to: i64) -> Result<SlaSamples> {
        self.read(move |c| audit::sla_samples(c, from, to)).await
    }

    async fn completions_by_holdername(&self, from: i64, to: i64) -> Result<Vec<(String, i64)>> {
        self.read(move |c| audit::completions_by_holdername(c, from, to))
            .await
    }

    async fn begin_daily(&self, run: DailyRun, lease_until: i64) -> Result<bool> {
        self.commit(move |c| audit::begin_daily(c, &run, lease_until))
            .await
    }

    async fn finish_daily(&self, run: DailyRun) -> Result<()> {
        self.commit(move |c| audit::finish_daily(c, &run)).await
    }

    async fn record_fact(&self, fact: ReportFact) -> Result<()> {
        self.commit(move |c| reports::insert_fact(c, &fact)).await
    }

    async fn announce_unavailability(&self, window: NewUnavailability) -> Result<i64> {
        self.commit(move |c| reports::insert_unavailability(c, &window))
            .await
    }

    async fn unavailability(&self, from: i64, to: i64) -> Result<Vec<Unavailability>> {
        self.read(move |c| reports::unavailability(c, from, to))
            .await
    }

    async fn report_facts(&self, from: i64, to: i64) -> Result<DayFacts> {
        self.read(move |c| reports::day_facts(c, from, to)).await
    }

    async fn claim_submission(&self, new: NewSubmission, now: i64, lease: i64) -> Result<Claim> {
        self.commit(move |c| reports::claim(c, &new, now, lease))
            .await
    }

    async fn record_submission_answer(&self, answer: SubmissionAnswer, now: i64) -> Result<()> {
        self.commit(move |c| reports::answer(c, &answer, now)).await
    }

    async fn submissions(&self, since: Option<chrono::NaiveDate>) -> Result<Vec<StoredSubmission>> {
        self.read(move |c| reports::submissions(c, since)).await
    }

    async fn possible_matches(&self, from: i64, to: i64) -> Result<Vec<PossibleMatch>> {
        self.read(move |c| reports::possible_matches(c, from, to))
            .await
    }

    async fn console_users(&self) -> Result<Vec<ConsoleUser>> {
        self.read(super::console::users).await
    }

    async fn save_console_user(&self, user: ConsoleUser, check: UserCheck) -> Result<UserSaved> {
        self.commit(move |c| super::console::save_user(c, user, check))
            .await
    }

    async fn org_details(&self) -> Result<Vec<OrgDetail>> {
        self.read(super::console::org).await
    }

    async fn set_org_detail(&self, change: OrgDetailChange, now: i64) -> Result<()> {
        self.commit(move |c| super::console::set_org(c, &change, now))
            .await
    }

    async fn sign_in_attempt(&self, attempt: SignInAttempt) -> Result<u32> {
        self.commit(move |c| super::console::sign_in_attempt(c, &attempt))
            .await
    }

    async fn sign_in_succeeded(&self, username: String) -> Result<()> {
        self.commit(move |c| super::console::sign_in_succeeded(c, &username))
            .await
    }
}

/// Applies one sealed member change on the writer's transaction.
fn apply_member(c: &Connection, change: &SealedChange, now: i64) -> Result<AppliedChange> {
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
            let Some(applied) = row.applied_over(before) else {
                return Ok(AppliedChange::unchanged(&row.member_id, Applied::Unchanged));
            };
            let gone = row.dropped(members::pension_guids(c, &row.member_id)?);
            retire(c, &gone, now)?;
            members::upsert(c, row)?;
            (&row.member_id, applied, gone)
        }
    };
    members::record_change(c, "member", member_id, now)?;
    AppliedChange::new(member_id, applied, &removed)
}

/// Deletes pensions and retires their PeIs (`asset-removed`).
fn retire(c: &Connection, guids: &[String], now: i64) -> Result<()> {
    for g in guids {
        members::delete_pension(c, g)?;
        peis::retire_pension(c, g, "asset-removed", now)?;
    }
    Ok(())
}
