//! `members import FILE`: CSV or JSON lines into the store, errors by line and field.
//!
//! Good records load; each bad one is reported with its line number, field and reason (never
//! its value), and the import goes on. Each pension's view data is put in the standard's form
//! (phone numbers as `+44 1134960000`) and must then be valid against the data standard's own
//! schema (see [`crate::wire::view::schema`]); it is stored as normalised. The format is chosen
//! by extension: `.csv`, or anything else as JSON lines (one [`MemberRecord`] per line).
//!
//! An import is a delta: each record adds a member or replaces it (a pension absent from the new
//! record is removed), and a JSON line `{"action": "remove", "memberId": "..."}` removes one
//! (`"action": "upsert"` is the default). A record exactly as imported before changes nothing,
//! so importing the same file twice is harmless. With [`Options::snapshot`] the file is the
//! whole membership: members it does not name are removed, but only when no record was refused
//! (a refused record must not remove its member). [`Options::dry_run`] counts all of this and
//! keeps nothing. Running endpoints pick the changes up without a restart (see
//! [`crate::matching::live`]); the pensions that went are listed in [`Report::removed_pensions`].
//! Their PeIs stop being served in the same commit as the removal, marked for de-registration as
//! `asset-removed` ([`crate::peis::sweep`] tells the CAS: the running endpoint every minute, and
//! `members import` itself at the end).
//!
//! An asset GUID belongs to one member. A record with a pension another member holds is refused,
//! naming both members, unless [`Options::move_pensions`] is set: then the pension is taken from
//! the other member first (its PeIs de-registered as `asset-removed`) and listed in
//! [`Report::moved`]. A member ID may appear once in a file, and an asset GUID once in a file
//! (in one member's record): a repeat is refused by its line. Before anything is written, a sample of what is stored is
//! opened with the configured data key ([`ImportError::WrongKey`]): a wrong key would otherwise
//! seal records that the right one cannot open. Names, addresses and lists are bounded (see
//! [`crate::matching::record`]), and a JSON line is at most [`MAX_LINE`] bytes.
//!
//! Records go to the store in batches of 5,000, in a pipeline: one batch is read and checked
//! while the one before it is sealed and the one before that written, each written once the
//! one before it is; every 4 batches the store's write-ahead log is checkpointed between two of
//! them. What an import holds grows with the file only by 16 bytes for each member ID and asset
//! GUID it names.
//!
//! CSV has one row per pension, a member's rows consecutive, with the header:
//!
//! ```text
//! member_id,holdername,given_name,family_name,previous_family_names,date_of_birth,nino,
//! address_line1,postcode,previous_postcodes,asset_guid,view_data
//! ```
//!
//! `previous_family_names` and `previous_postcodes` are `;`-separated; `view_data` is the
//! pension's definite arrangement as JSON.

use std::io::BufRead;
use std::path::Path;

use super::record::{MemberAddress, MemberName, MemberPension, MemberRecord};
use crate::store::{Applied, MemberChange, Store, StoreError};

/// Records written per transaction.
const BATCH: usize = 5_000;

/// Stored values opened to check the data key before an import writes anything.
const KEY_SAMPLE: usize = 16;

/// Longest JSON line read, in bytes (a member with the most pensions, each with its view data,
/// fits many times over); a longer one is refused unread.
pub const MAX_LINE: usize = 8 << 20;

/// One bad record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {reason}")]
pub struct LineError {
    /// 1-based line number (of the record's first row for CSV).
    pub line: u64,
    /// Field path.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CSV header is not the documented one.
    #[error("CSV header: expected {expected}")]
    Header {
        /// The expected header.
        expected: String,
    },
    /// A member's CSV rows are not consecutive: importing it as two records would remove the
    /// first record's pensions. Nothing was imported.
    #[error("line {line}: member_id: a member's rows must be consecutive (sort the file by member_id); nothing imported")]
    NotGrouped {
        /// The line where a member's rows start again.
        line: u64,
    },
    /// What is stored cannot be opened with the configured data key: the import would seal
    /// records with a key that does not open the others. Nothing was imported.
    #[error("the configured data key does not open what is stored: {failed} of {checked} stored values tried cannot be opened (a wrong data key, or a retired key missing from crypto.old_data_key_files); nothing imported")]
    WrongKey {
        /// Stored values tried.
        checked: u64,
        /// Of those, the ones no configured key opens.
        failed: u64,
    },
    /// Writing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The file is the whole membership: members it does not name are removed.
    pub snapshot: bool,
    /// Count what would change; keep nothing.
    pub dry_run: bool,
    /// A progress bar on stderr.
    pub progress: bool,
    /// A record may take a pension (asset GUID) another member holds: it is taken from that
    /// member first, its PeIs de-registered (`asset-removed`). Without it, such a record is
    /// refused.
    pub move_pensions: bool,
}

/// A pension an import took from one member for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The line of the record that took it.
    pub line: u64,
    /// Its field in that record (`pensions[1].assetGuid`).
    pub field: String,
    /// The member that held it.
    pub from: String,
    /// The member that holds it now.
    pub to: String,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {}: moved from member {} to member {}",
            self.line, self.field, self.from, self.to
        )
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct Report {
    /// New members.
    pub added: u64,
    /// Members changed.
    pub updated: u64,
    /// Members exactly as imported before.
    pub unchanged: u64,
    /// Members removed (by `"action": "remove"`, or absent from a snapshot).
    pub removed: u64,
    /// Removals of members that were not stored.
    pub not_found: u64,
    /// Pensions in the records added or updated.
    pub pensions: u64,
    /// Pensions gone (with their member, or from its new record): their PeIs are de-registered.
    pub removed_pensions: Vec<uuid::Uuid>,
    /// Pensions taken from another member ([`Options::move_pensions`]): the other member's PeIs
    /// are de-registered.
    pub moved: Vec<Moved>,
    /// A snapshot's removals were withheld because records were refused.
    pub snapshot_withheld: bool,
    /// Bad records, by line.
    pub errors: Vec<LineError>,
}

impl Report {
    /// Members added or updated.
    pub fn loaded(&self) -> u64 {
        self.added + self.updated
    }

    /// The line `members import` ends with.
    pub fn summary(&self, dry_run: bool, deregistered: u64) -> String {
        format!(
            "{}{} added, {} updated, {} unchanged, {} removed ({} pensions gone), {} pensions moved, {} PeIs de-registered, {} records refused",
            if dry_run { "dry run: would be " } else { "" },
            self.added,
            self.updated,
            self.unchanged,
            self.removed,
            self.removed_pensions.len(),
            self.moved.len(),
            deregistered,
            self.errors.len()
        )
    }
}

const CSV_HEADER: &[&str] = &[
    "member_id",
    "holdername",
    "given_name",
    "family_name",
    "previous_family_names",
    "date_of_birth",
    "nino",
    "address_line1",
    "postcode",
    "previous_postcodes",
    "asset_guid",
    "view_data",
];

/// What a file names (member IDs, asset GUIDs), each with the line that first named it, in
/// 16 bytes a name whatever its length: a name is kept as a 64-bit hash under a key drawn for
/// this import (SipHash, [`std::hash::RandomState`]), so that no file can be made to collide.
/// Two of `n` names share a hash by chance with a probability of about n² / 2⁶⁵ (one in 90,000
/// for 20 million asset GUIDs); the later one is then refused as a repeat, by its line. The
/// memory an import holds grows by these 16 bytes (and the map's spare room) for each member
/// and pension the file has; nothing else of a record is kept once it is written.
#[derive(Default)]
struct Mentions {
    key: std::hash::RandomState,
    lines: std::collections::HashMap<u64, u64, std::hash::BuildHasherDefault<Prehashed>>,
}

impl Mentions {
    /// The line that first named `name`.
    fn line_of<T: std::hash::Hash + ?Sized>(&self, name: &T) -> Option<u64> {
        self.lines.get(&self.hash(name)).copied()
    }

    /// Notes `name` at `line`, unless it was named before.
    fn note<T: std::hash::Hash + ?Sized>(&mut self, name: &T, line: u64) {
        let h = self.hash(name);
        self.lines.entry(h).or_insert(line);
    }

    fn hash<T: std::hash::Hash + ?Sized>(&self, name: &T) -> u64 {
        std::hash::BuildHasher::hash_one(&self.key, name)
    }
}

/// The hasher of keys that are keyed hashes already: they are used as they are.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A batch being sealed and committed (it is written once the batch before it is), and its
/// lines.
type InFlight = (
    tokio::task::JoinHandle<Result<Vec<crate::store::AppliedChange>, StoreError>>,
    Vec<(u64, Vec<uuid::Uuid>)>,
);

/// Batches written between two checkpoints of the store's write-ahead log: an import that
/// wrote its whole file into the log would read it back from there, ever slower, and the log
/// would grow to several times the file.
const CHECKPOINT_EVERY: u64 = 4;

/// Batches sent to the store and not yet counted: while one is written, the next is sealed and
/// the one after it read and checked.
const IN_FLIGHT: usize = 2;

struct Sink<'a> {
    store: &'a Store,
    runtime: &'a tokio::runtime::Handle,
    /// What members' look-up keys are hashed with.
    index_key: crate::sealed::IndexKey,
    options: Options,
    batch: Vec<MemberChange>,
    /// Each change of the batch's line, and its pensions' asset GUIDs (to name them by field).
    lines: Vec<(u64, Vec<uuid::Uuid>)>,
    /// The batches sent to the store, not yet counted, oldest first.
    in_flight: std::collections::VecDeque<InFlight>,
    /// Says when the newest batch sent is written (or failed: `false`).
    written: Option<tokio::sync::oneshot::Receiver<bool>>,
    /// Batches sent to the store.
    sent: u64,
    /// Members the file names, with the line that first named each (for a snapshot, and to
    /// refuse a repeat).
    seen: Mentions,
    /// Asset GUIDs the file gives, with the line of the record that gives each.
    guids: Mentions,
    report: Report,
}

impl Sink<'_> {
    fn accept(&mut self, line: u64, mut m: MemberRecord) -> Result<(), StoreError> {
        if let Err(e) = m.normalise().and_then(|()| m.validate()) {
            self.reject(line, e.field, e.reason);
            return Ok(());
        }
        if !self.first_mention(line, &m.member_id) {
            return Ok(());
        }
        let guids: Vec<uuid::Uuid> = m.pensions.iter().map(|p| p.asset_guid).collect();
        for (i, g) in guids.iter().enumerate() {
            if let Some(first) = self.guids.line_of(g) {
                let reason = format!("another member's record in this file has it (line {first})");
                self.reject(line, format!("pensions[{i}].assetGuid"), reason);
                return Ok(());
            }
        }
        for g in &guids {
            self.guids.note(g, line);
        }
        self.report.pensions += m.pensions.len() as u64;
        let member = m.to_new_member(&self.index_key);
        let change = if self.options.move_pensions {
            MemberChange::UpsertMoving(member)
        } else {
            MemberChange::Upsert(member)
        };
        self.push(line, guids, change)
    }

    fn remove(&mut self, line: u64, member_id: String) -> Result<(), StoreError> {
        if !self.first_mention(line, &member_id) {
            return Ok(());
        }
        self.push(line, Vec::new(), MemberChange::Remove(member_id))
    }

    /// Notes the file's mention of a member; a repeat is refused (`false`).
    fn first_mention(&mut self, line: u64, member_id: &str) -> bool {
        if let Some(first) = self.seen.line_of(member_id) {
            let reason = format!("the member is already in this file (line {first})");
            self.reject(line, "memberId", reason);
            return false;
        }
        self.seen.note(member_id, line);
        true
    }

    fn push(
        &mut self,
        line: u64,
        guids: Vec<uuid::Uuid>,
        change: MemberChange,
    ) -> Result<(), StoreError> {
        self.batch.push(change);
        self.lines.push((line, guids));
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn reject(&mut self, line: u64, field: impl Into<String>, reason: impl Into<String>) {
        self.report.errors.push(LineError {
            line,
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Sends the batch to the store: it is sealed at once and written once the batch before it
    /// is, while the next is read and checked. At most [`IN_FLIGHT`] batches are in the store's
    /// hands.
    fn flush(&mut self) -> Result<(), StoreError> {
        while self.in_flight.len() >= IN_FLIGHT {
            self.settle_oldest()?;
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let lines = std::mem::take(&mut self.lines);
        let (store, dry_run) = (self.store.clone(), self.options.dry_run);
        let before = self.written.take();
        // Every few batches, the write-ahead log is checkpointed between two batches (nothing
        // is being written then, so it is copied whole and the log starts again from its
        // beginning).
        let checkpoint = !dry_run && self.sent % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1;
        self.sent += 1;
        let (done, written) = tokio::sync::oneshot::channel();
        self.written = Some(written);
        let committing = self.runtime.spawn(async move {
            let sealed = store.seal_members(batch).await;
            // In file order: after the batch before it, and not at all if that one failed.
            let go = match before {
                Some(before) => before.await.unwrap_or(false),
                None => true,
            };
            if go && checkpoint {
                // A checkpoint that cannot run now leaves the log longer, nothing else.
                let _ = store.checkpoint().await;
            }
            let applied = match (go, sealed) {
                (true, Ok(sealed)) => store.write_members(sealed, dry_run).await,
                (false, _) => Err(StoreError::Task("an earlier batch failed".into())),
                (_, Err(e)) => Err(e),
            };
            let _ = done.send(applied.is_ok());
            applied
        });
        self.in_flight.push_back((committing, lines));
        Ok(())
    }

    /// Waits for every batch sent to the store, and counts what they did.
    fn settle(&mut self) -> Result<(), StoreError> {
        while !self.in_flight.is_empty() {
            self.settle_oldest()?;
        }
        Ok(())
    }

    /// Waits for the oldest batch sent to the store, and counts what it did.
    fn settle_oldest(&mut self) -> Result<(), StoreError> {
        let Some((committing, lines)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let applied = self
            .runtime
            .block_on(committing)
            .map_err(|e| StoreError::Task(e.to_string()))??;

        for (a, (line, guids)) in applied.into_iter().zip(lines) {
            let r = &mut self.report;
            match a.applied {
                Applied::Added => r.added += 1,
                Applied::Updated => r.updated += 1,
                Applied::Unchanged => r.unchanged += 1,
                Applied::Removed => r.removed += 1,
                Applied::NotFound => r.not_found += 1,
                Applied::PensionHeld => r.pensions -= guids.len() as u64,
            }
            r.removed_pensions.extend(a.removed_pensions);
            for (guid, owner) in a.held_by {
                let i = guids.iter().position(|g| *g == guid).unwrap_or_default();
                let field = format!("pensions[{i}].assetGuid");
                if a.applied == Applied::PensionHeld {
                    let reason = format!(
                        "the pension is member {owner}'s; --move-pensions moves it to member {}",
                        a.member_id
                    );
                    self.reject(line, field, reason);
                } else {
                    let to = a.member_id.clone();
                    let (from, line) = (owner, line);
                    self.report.moved.push(Moved {
                        line,
                        field,
                        from,
                        to,
                    });
                }
            }
        }
        self.report.errors.sort_by_key(|e| e.line);
        Ok(())
    }
}

/// Refuses, before anything is written, a store whose sealed values the configured key does not
/// open.
fn check_key(store: &Store, runtime: &tokio::runtime::Handle) -> Result<(), ImportError> {
    let sample = runtime.block_on(store.key_sample(KEY_SAMPLE))?;
    if sample.failed > 0 {
        return Err(ImportError::WrongKey {
            checked: sample.checked,
            failed: sample.failed,
        });
    }
    Ok(())
}

/// Imports `path` into `store`. Blocking: run it on a thread of its own (or from `main`), not
/// on the runtime; each batch's commit is awaited on `runtime`.
pub fn import(
    path: &Path,
    store: &Store,
    runtime: &tokio::runtime::Handle,
    options: Options,
) -> Result<Report, ImportError> {
    let read_err = |source| ImportError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    check_key(store, runtime)?;
    let bar = crate::progress_bar(
        size,
        "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
        options.progress,
    );
    let reader = bar.wrap_read(file);
    let index_key = runtime.block_on(store.index_key())?;
    let mut sink = Sink {
        store,
        runtime,
        index_key,
        options,
        batch: Vec::with_capacity(BATCH),
        lines: Vec::with_capacity(BATCH),
        in_flight: Default::default(),
        written: None,
        sent: 0,
        seen: Default::default(),
        guids: Default::default(),
        report: Report::default(),
    };
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        check_csv_grouping(path)?;
        import_csv(reader, &mut sink)?;
    } else {
        import_jsonl(std::io::BufReader::new(reader), &mut sink, path)?;
    }
    sink.flush()?;
    sink.settle()?;
    if options.snapshot {
        if sink.report.errors.is_empty() {
            for id in runtime.block_on(store.member_ids(None))? {
                if sink.seen.line_of(id.as_str()).is_none() {
                    sink.push(0, Vec::new(), MemberChange::Remove(id))?;
                }
            }
            sink.flush()?;
            sink.settle()?;
        } else {
            sink.report.snapshot_withheld = true;
        }
    }
    bar.finish_and_clear();
    Ok(sink.report)
}

/// [`import`] from async code, without a progress bar: the file is read on a blocking thread.
pub async fn import_from_async(
    path: &Path,
    store: &Store,
    options: Options,
) -> Result<Report, ImportError> {
    let (s, p, rt) = (
        store.clone(),
        path.to_owned(),
        tokio::runtime::Handle::current(),
    );
    crate::store::blocking(move || Ok(import(&p, &s, &rt, options))).await?
}

/// Reads the next line into `buf` (its newline and a `\r` before it dropped), keeping at most
/// `max` bytes: `None` at the end of the input, `Some(false)` when the line was longer (the rest
/// of it is skipped unkept).
fn next_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let (mut fits, mut any) = (true, false);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        if fits && buf.len() + part.len() <= max {
            buf.extend_from_slice(part);
        } else {
            fits = false;
            buf.clear();
        }
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(fits));
        }
    }
}

fn import_jsonl(
    mut reader: impl BufRead,
    sink: &mut Sink<'_>,
    path: &Path,
) -> Result<(), ImportError> {
    let read_err = |source| ImportError::Read {
        path: path.to_owned(),
        source,
    };
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some(fits) = next_line(&mut reader, &mut buf, MAX_LINE).map_err(read_err)? {
        n += 1;
        if !fits {
            sink.reject(n, "line", format!("longer than {MAX_LINE} bytes"));
            continue;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            sink.reject(n, "line", "not UTF-8 text");
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        jsonl_record(n, line, sink)?;
    }
    Ok(())
}

/// One JSON line: a record to add or replace, or a removal. A record is read straight into its
/// type; any other line (a removal, an explicit action, a record with a fault) is read again as
/// a JSON value, to tell which and name the field at fault.
fn jsonl_record(n: u64, line: &str, sink: &mut Sink<'_>) -> Result<(), StoreError> {
    if let Ok(m) = serde_json::from_str::<MemberRecord>(line) {
        return sink.accept(n, m);
    }
    let mut value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(_) => {
            sink.reject(n, "record", "not valid JSON");
            return Ok(());
        }
    };
    let action = value.as_object_mut().and_then(|o| o.remove("action"));
    match action.as_ref().map(|a| a.as_str()) {
        None | Some(Some("upsert")) => {}
        Some(Some("remove")) => {
            match value.get("memberId").and_then(|v| v.as_str()) {
                Some(id) if !id.trim().is_empty() => sink.remove(n, id.to_owned())?,
                _ => sink.reject(n, "memberId", "required to remove a member"),
            }
            return Ok(());
        }
        Some(_) => {
            sink.reject(n, "action", "must be \"upsert\" or \"remove\"");
            return Ok(());
        }
    }
    match serde_path_to_error::deserialize::<_, MemberRecord>(value) {
        Ok(m) => sink.accept(n, m)?,
        Err(e) => {
            let path = e.path().to_string();
            let reason = match e.inner().classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    "not valid JSON"
                }
                _ => "missing, unknown or of the wrong type",
            };
            let field = if path == "." { "record".into() } else { path };
            sink.reject(n, field, reason);
        }
    }
    Ok(())
}

/// Refuses, before anything is written, a CSV whose member rows are not consecutive.
fn check_csv_grouping(path: &Path) -> Result<(), ImportError> {
    let read_err = |source| ImportError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let mut seen = std::collections::HashSet::new();
    let mut current: Option<String> = None;
    for row in rdr.records().flatten() {
        let id = row.get(0).unwrap_or("").trim().to_owned();
        if current.as_deref() == Some(id.as_str()) {
            continue;
        }
        if !seen.insert(id.clone()) {
            return Err(ImportError::NotGrouped {
                line: row.position().map_or(0, |p| p.line()),
            });
        }
        current = Some(id);
    }
    Ok(())
}

fn split_list(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The member of a CSV row (its first, when the member has several pensions).
fn csv_member<'a>(
    member_id: String,
    holdername: uuid::Uuid,
    get: &impl Fn(usize) -> &'a str,
    pension: Option<MemberPension>,
) -> MemberRecord {
    let postcode = Some(get(8)).filter(|s| !s.is_empty()).map(str::to_owned);
    let line1 = Some(get(7)).filter(|s| !s.is_empty()).map(str::to_owned);
    MemberRecord {
        member_id,
        holdername,
        names: vec![MemberName {
            given_name: get(2).to_owned(),
            family_name: get(3).to_owned(),
        }],
        previous_family_names: split_list(get(4)),
        date_of_birth: get(5).to_owned(),
        nino: Some(get(6)).filter(|s| !s.is_empty()).map(str::to_owned),
        addresses: if postcode.is_some() || line1.is_some() {
            vec![MemberAddress {
                address_line1: line1,
                postcode,
                ..MemberAddress::default()
            }]
        } else {
            vec![]
        },
        previous_addresses: split_list(get(9))
            .into_iter()
            .map(|p| MemberAddress {
                postcode: Some(p),
                ..MemberAddress::default()
            })
            .collect(),
        pensions: pension.into_iter().collect(),
    }
}

fn import_csv(reader: impl std::io::Read, sink: &mut Sink<'_>) -> Result<(), ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let header_ok = rdr
        .headers()
        .map(|h| h.iter().eq(CSV_HEADER.iter().copied()))
        .unwrap_or(false);
    if !header_ok {
        return Err(ImportError::Header {
            expected: CSV_HEADER.join(","),
        });
    }
    // The member being assembled from consecutive rows, with its first line and whether a row
    // of it was bad (then the whole member is rejected).
    let mut current: Option<(u64, MemberRecord, bool)> = None;
    for row in rdr.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                sink.reject(line, "row", "malformed CSV row");
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        let get = |i: usize| row.get(i).unwrap_or("").trim();
        let member_id = get(0).to_owned();
        if current
            .as_ref()
            .is_some_and(|(_, m, _)| m.member_id != member_id)
        {
            let (l, m, bad) = current.take().expect("checked");
            if !bad {
                sink.accept(l, m)?;
            }
        }
        let pension = match (
            uuid::Uuid::parse_str(get(10)),
            serde_json::from_str(get(11)),
        ) {
            (Ok(asset_guid), Ok(view_data)) => Some(MemberPension {
                asset_guid,
                view_data,
                statement_date: None,
                calculation_date: None,
            }),
            (Err(_), _) => {
                sink.reject(line, "asset_guid", "not a GUID");
                None
            }
            (_, Err(_)) => {
                sink.reject(line, "view_data", "not valid JSON");
                None
            }
        };
        match &mut current {
            Some((_, m, bad)) => match pension {
                Some(p) => m.pensions.push(p),
                None => *bad = true,
            },
            None => {
                let Ok(holdername) = uuid::Uuid::parse_str(get(1)) else {
                    sink.reject(line, "holdername", "not a GUID");
                    continue;
                };
                let record = csv_member(member_id, holdername, &get, pension);
                let bad = record.pensions.is_empty();
                current = Some((line, record, bad));
            }
        }
    }
    if let Some((l, m, bad)) = current {
        if !bad {
            sink.accept(l, m)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
