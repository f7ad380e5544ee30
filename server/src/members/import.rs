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
            "{}{} added, {} updated, {} unchanged, {} removed ({} pensions gone), {} PeIs de-registered, {} records refused",
            if dry_run { "dry run: would be " } else { "" },
            self.added,
            self.updated,
            self.unchanged,
            self.removed,
            self.removed_pensions.len(),
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

struct Sink<'a> {
    store: &'a Store,
    runtime: &'a tokio::runtime::Handle,
    dry_run: bool,
    batch: Vec<MemberChange>,
    /// Members the file names (for a snapshot).
    seen: std::collections::HashSet<String>,
    report: Report,
}

impl Sink<'_> {
    fn accept(&mut self, line: u64, mut m: MemberRecord) -> Result<(), StoreError> {
        if let Err(e) = m.normalise().and_then(|()| m.validate()) {
            self.report.errors.push(LineError {
                line,
                field: e.field,
                reason: e.reason,
            });
            return Ok(());
        }
        self.seen.insert(m.member_id.clone());
        self.report.pensions += m.pensions.len() as u64;
        self.push(MemberChange::Upsert(m.to_new_member()))
    }

    fn remove(&mut self, member_id: String) -> Result<(), StoreError> {
        self.push(MemberChange::Remove(member_id))
    }

    fn push(&mut self, change: MemberChange) -> Result<(), StoreError> {
        self.batch.push(change);
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

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let applied = self
            .runtime
            .block_on(self.store.apply_members(batch, self.dry_run))?;
        for a in applied {
            let r = &mut self.report;
            match a.applied {
                Applied::Added => r.added += 1,
                Applied::Updated => r.updated += 1,
                Applied::Unchanged => r.unchanged += 1,
                Applied::Removed => r.removed += 1,
                Applied::NotFound => r.not_found += 1,
            }
            r.removed_pensions.extend(a.removed_pensions);
        }
        Ok(())
    }
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
    let bar = crate::progress_bar(
        size,
        "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
        options.progress,
    );
    let reader = bar.wrap_read(file);
    let mut sink = Sink {
        store,
        runtime,
        dry_run: options.dry_run,
        batch: Vec::with_capacity(BATCH),
        seen: Default::default(),
        report: Report::default(),
    };
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        check_csv_grouping(path)?;
        import_csv(reader, &mut sink)?;
    } else {
        import_jsonl(std::io::BufReader::new(reader), &mut sink)?;
    }
    sink.flush()?;
    if options.snapshot {
        if sink.report.errors.is_empty() {
            for id in runtime.block_on(store.member_ids(None))? {
                if !sink.seen.contains(&id) {
                    sink.remove(id)?;
                }
            }
            sink.flush()?;
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

fn import_jsonl(reader: impl BufRead, sink: &mut Sink<'_>) -> Result<(), ImportError> {
    for (i, line) in reader.lines().enumerate() {
        let n = i as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(_) => {
                sink.reject(n, "line", "not UTF-8 text");
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut value: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                sink.reject(n, "record", "not valid JSON");
                continue;
            }
        };
        let action = value.as_object_mut().and_then(|o| o.remove("action"));
        match action.as_ref().map(|a| a.as_str()) {
            None | Some(Some("upsert")) => {}
            Some(Some("remove")) => {
                match value.get("memberId").and_then(|v| v.as_str()) {
                    Some(id) if !id.trim().is_empty() => sink.remove(id.to_owned())?,
                    _ => sink.reject(n, "memberId", "required to remove a member"),
                }
                continue;
            }
            Some(_) => {
                sink.reject(n, "action", "must be \"upsert\" or \"remove\"");
                continue;
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
