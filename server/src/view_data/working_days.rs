//! UK working days, for the values-timing rule of the data standards.
//!
//! When a pension's values must be calculated, they are due within 3 working days (defined
//! contribution) or 10 working days (defined benefit) of the pension identifier being
//! registered as a match. A working day is Monday to Friday, excluding the bank holidays of the
//! nation the scheme is administered in: England and Wales by default, Scotland or Northern
//! Ireland when configured.
//!
//! # Counting convention
//!
//! Counting starts on the day **after** the registration date: the registration day itself
//! never counts, whatever day it is. So with `n` working days allowed, the deadline is the
//! `n`-th working day strictly after registration ([`Calendar::add_working_days`]), and
//! [`Calendar::working_days_between`] counts working days in `(from, to]`. The two agree:
//! `working_days_between(s, add_working_days(s, n)) == n`.
//!
//! For example, registered on Wednesday 23 December 2026 in England and Wales, 3 working days
//! are Thursday 24, then (skipping Christmas Day on Friday 25, the weekend and the Boxing Day
//! substitute on Monday 28) Tuesday 29 and Wednesday 30 December.
//!
//! # Bank holidays
//!
//! Bank holidays come from a file in the gov.uk format (`https://www.gov.uk/bank-holidays.json`,
//! see [`Calendar::load`]) so that one-off holidays (jubilees, coronations, state funerals) can
//! be added when announced, without a release. [`Calendar::by_rule`] computes the regular
//! holidays for any years, and is how `config/bank-holidays.json` was generated. A calendar
//! knows only the years it was given: outside them ([`Calendar::covered_years`]) it sees
//! weekends only.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound::{Excluded, Included};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

/// The nations, as `view.nation` and `view.nations` name them.
pub use crate::config::Nation;

/// Why a bank-holiday calendar could not be loaded, or a nation named.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The file could not be read.
    #[error("reading bank holidays {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a valid gov.uk bank-holidays document.
    #[error("parsing bank holidays {}: {reason}", path.display())]
    Parse {
        /// The file (`<json>` for [`Calendar::from_json`]).
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// Not one of `england-and-wales`, `scotland`, `northern-ireland`.
    #[error("unknown nation {name:?}: expected england-and-wales, scotland or northern-ireland")]
    UnknownNation {
        /// The name given.
        name: String,
    },
}

/// Bank holidays per nation, and working-day arithmetic over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Per nation, each bank holiday by date (weekends are not listed; they are never working
    /// days anyway).
    holidays: HashMap<Nation, BTreeMap<NaiveDate, Holiday>>,
}

/// One bank holiday as the gov.uk file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holiday {
    /// E.g. `Christmas Day`.
    title: String,
    /// `Substitute day` for a substitute, else empty.
    notes: String,
    /// Whether gov.uk flies bunting (kept only to round-trip the file).
    bunting: bool,
}

/// The `notes` of a substitute day in the gov.uk file.
const SUBSTITUTE: &str = "Substitute day";

/// Path reported for parse errors of [`Calendar::from_json`].
const INLINE: &str = "<json>";

// === impl Nation ===

impl FromStr for Nation {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Nation::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| CalendarError::UnknownNation { name: s.to_owned() })
    }
}

// === impl Calendar ===

impl Calendar {
    /// Bank holidays computed by rule for the years given (inclusive), for all three nations.
    ///
    /// Only the regular holidays: one-offs (e.g. the 2022 jubilee, the 2023 coronation) and
    /// moved holidays (e.g. the 2020 VE day Early May holiday) belong in the file. Substitutes
    /// for holidays falling at a weekend are the next weekday not already a holiday. Years
    /// outside chrono's range are skipped; `from_year > to_year` gives no holidays.
    pub fn by_rule(from_year: i32, to_year: i32) -> Calendar {
        let from_year = from_year.max(NaiveDate::MIN.year());
        let to_year = to_year.min(NaiveDate::MAX.year());
        let mut holidays: HashMap<Nation, BTreeMap<NaiveDate, Holiday>> = Nation::ALL
            .into_iter()
            .map(|n| (n, BTreeMap::new()))
            .collect();
        for year in from_year..=to_year {
            for nation in Nation::ALL {
                // A year whose dates chrono cannot represent (only at its limits) is skipped.
                if let Some(year_days) = rules_for_year(nation, year) {
                    holidays.entry(nation).or_default().extend(year_days);
                }
            }
        }
        Calendar { holidays }
    }

    /// Loads the gov.uk `bank-holidays.json` format:
    ///
    /// ```json
    /// {"england-and-wales": {"division": "england-and-wales",
    ///                        "events": [{"title": "New Year’s Day", "date": "2026-01-01",
    ///                                    "notes": "", "bunting": true}, ...]},
    ///  "scotland": {...}, "northern-ireland": {...}}
    /// ```
    ///
    /// All three divisions are required, each with at least one event and no date twice;
    /// `division` (if given) must match its key. `notes` defaults to empty, `bunting` to true.
    ///
    /// # Errors
    ///
    /// [`CalendarError::Read`] if the file cannot be read, [`CalendarError::Parse`] (with this
    /// path) if its contents are not as above.
    pub fn load(path: &Path) -> Result<Calendar, CalendarError> {
        let text = std::fs::read_to_string(path).map_err(|source| CalendarError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse(&text).map_err(|reason| CalendarError::Parse {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses text in the format of [`Calendar::load`]. Malformed input gives
    /// [`CalendarError::Parse`] (path `<json>`) with the reason; it never panics.
    ///
    /// # Errors
    ///
    /// [`CalendarError::Parse`] if `text` is not a valid document.
    pub fn from_json(text: &str) -> Result<Calendar, CalendarError> {
        parse(text).map_err(|reason| CalendarError::Parse {
            path: PathBuf::from(INLINE),
            reason,
        })
    }

    /// Serialises in the same gov.uk format (titles, notes and bunting included), pretty
    /// printed, events in date order. [`Calendar::from_json`] reads it back to an equal calendar.
    pub fn to_json(&self) -> String {
        use serde_json::{Map, Value};

        let mut doc = Map::new();
        for nation in Nation::ALL {
            let events: Vec<Value> = self
                .holidays
                .get(&nation)
                .into_iter()
                .flatten()
                .map(|(date, h)| {
                    let mut event = Map::new();
                    event.insert("title".into(), Value::String(h.title.clone()));
                    event.insert(
                        "date".into(),
                        Value::String(date.format("%Y-%m-%d").to_string()),
                    );
                    event.insert("notes".into(), Value::String(h.notes.clone()));
                    event.insert("bunting".into(), Value::Bool(h.bunting));
                    Value::Object(event)
                })
                .collect();
            let mut division = Map::new();
            division.insert("division".into(), Value::String(nation.as_str().into()));
            division.insert("events".into(), Value::Array(events));
            doc.insert(nation.as_str().into(), Value::Object(division));
        }
        // `{:#}` pretty-prints; unlike `to_string_pretty` it cannot fail.
        format!("{:#}\n", Value::Object(doc))
    }

    /// Whether `d` is a bank holiday in `nation` (as listed; a listed weekend date counts).
    pub fn is_bank_holiday(&self, nation: Nation, d: NaiveDate) -> bool {
        self.holidays
            .get(&nation)
            .is_some_and(|days| days.contains_key(&d))
    }

    /// Whether `d` is a working day in `nation`: Monday to Friday and not a bank holiday.
    pub fn is_working_day(&self, nation: Nation, d: NaiveDate) -> bool {
        is_weekday(d) && !self.is_bank_holiday(nation, d)
    }

    /// The date `n` working days after `start`, counting from the day after `start` (so n=1 is
    /// the first working day after start). n=0 returns start.
    ///
    /// `start` itself need not be a working day. The result saturates at `NaiveDate::MAX`.
    pub fn add_working_days(&self, nation: Nation, start: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return start;
        }
        // Step over `remaining` weekdays, then as many again as there were bank holidays among
        // them, until a stretch holds none: its last day is then a working day, and the
        // working days counted since `start` are exactly `n`.
        let mut from = start;
        let mut remaining = u64::from(n);
        loop {
            let Some(to) = add_weekdays(from, remaining) else {
                return NaiveDate::MAX;
            };
            let holidays = self.weekday_holidays(nation, from, to);
            if holidays == 0 {
                return to;
            }
            from = to;
            remaining = holidays;
        }
    }

    /// Working days strictly after `from` up to and including `to` (0 if to <= from).
    pub fn working_days_between(&self, nation: Nation, from: NaiveDate, to: NaiveDate) -> u32 {
        if to <= from {
            return 0;
        }
        let weekdays = weekdays_between(from, to);
        let holidays = self.weekday_holidays(nation, from, to);
        u32::try_from(weekdays.saturating_sub(holidays)).unwrap_or(u32::MAX)
    }

    /// The first and last years with a bank holiday listed for `nation` (`None` if none are).
    /// Outside these years the calendar knows of no bank holidays, so counts there treat
    /// every weekday as a working day.
    pub fn covered_years(&self, nation: Nation) -> Option<RangeInclusive<i32>> {
        let days = self.holidays.get(&nation)?;
        let first = days.keys().next()?;
        let last = days.keys().next_back()?;
        Some(first.year()..=last.year())
    }

    /// Bank holidays of `nation` falling on a weekday in `(from, to]`.
    fn weekday_holidays(&self, nation: Nation, from: NaiveDate, to: NaiveDate) -> u64 {
        if to <= from {
            return 0;
        }
        self.holidays.get(&nation).map_or(0, |days| {
            days.range((Excluded(from), Included(to)))
                .filter(|(d, _)| is_weekday(**d))
                .count() as u64
        })
    }
}

/// Monday to Friday.
fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The `k`-th weekday (Monday to Friday) strictly after `d`, ignoring bank holidays; `None`
/// past chrono's last date. `k` is at least 1.
fn add_weekdays(d: NaiveDate, k: u64) -> Option<NaiveDate> {
    // Any 7 consecutive days hold 5 weekdays. Keep a remainder of 1 to 5 to step through
    // day by day, so that the result lands on a weekday.
    let (weeks, mut rem) = match (k / 5, k % 5) {
        (0, r) => (0, r),
        (w, 0) => (w - 1, 5),
        (w, r) => (w, r),
    };
    let mut d = d.checked_add_days(Days::new(weeks.checked_mul(7)?))?;
    while rem > 0 {
        d = d.succ_opt()?;
        if is_weekday(d) {
            rem -= 1;
        }
    }
    Some(d)
}

/// Weekdays (Monday to Friday) in `(from, to]`; `to > from`.
fn weekdays_between(from: NaiveDate, to: NaiveDate) -> u64 {
    let days = u64::try_from((to - from).num_days()).unwrap_or(0);
    let full_weeks = days / 7;
    // The odd days are the last `days % 7` up to `to`.
    let odd = (0..days % 7)
        .filter_map(|i| to.checked_sub_days(Days::new(i)))
        .filter(|d| is_weekday(*d))
        .count() as u64;
    full_weeks * 5 + odd
}

// === gov.uk file format ===

/// The document: one division per nation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(rename = "england-and-wales")]
    england_and_wales: FileDivision,
    scotland: FileDivision,
    #[serde(rename = "northern-ireland")]
    northern_ireland: FileDivision,
}

/// One nation's list.
#[derive(Deserialize)]
struct FileDivision {
    /// Repeats the key.
    #[serde(default)]
    division: Option<String>,
    events: Vec<FileEvent>,
}

/// One bank holiday.
#[derive(Deserialize)]
struct FileEvent {
    title: String,
    date: NaiveDate,
    #[serde(default)]
    notes: String,
    #[serde(default = "bunting_default")]
    bunting: bool,
}

/// gov.uk flies bunting on most bank holidays.
fn bunting_default() -> bool {
    true
}

/// Parses the gov.uk format; the error is the reason.
fn parse(text: &str) -> Result<Calendar, String> {
    let doc: FileDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let divisions = [
        (Nation::EnglandAndWales, doc.england_and_wales),
        (Nation::Scotland, doc.scotland),
        (Nation::NorthernIreland, doc.northern_ireland),
    ];
    let mut holidays = HashMap::new();
    for (nation, division) in divisions {
        if let Some(name) = &division.division {
            if name != nation.as_str() {
                return Err(format!(
                    "{nation}: division is {name:?}, expected {:?}",
                    nation.as_str()
                ));
            }
        }
        if division.events.is_empty() {
            return Err(format!("{nation}: no events"));
        }
        let mut days = BTreeMap::new();
        for event in division.events {
            let holiday = Holiday {
                title: event.title,
                notes: event.notes,
                bunting: event.bunting,
            };
            if days.insert(event.date, holiday).is_some() {
                return Err(format!("{nation}: {} listed twice", event.date));
            }
        }
        holidays.insert(nation, days);
    }
    Ok(Calendar { holidays })
}

// === holiday rules ===

/// Collects one year's holidays, placing substitutes.
struct YearBuilder {
    days: BTreeMap<NaiveDate, Holiday>,
}

impl YearBuilder {
    /// Adds a holiday on `date`, or if that is a weekend or already taken, on the next
    /// weekday not taken (a substitute day). `None` past chrono's last date.
    fn place(&mut self, title: &str, date: NaiveDate, bunting: bool) -> Option<()> {
        let (day, notes) = if is_weekday(date) && !self.days.contains_key(&date) {
            (date, "")
        } else {
            let mut d = date.succ_opt()?;
            while !is_weekday(d) || self.days.contains_key(&d) {
                d = d.succ_opt()?;
            }
            (d, SUBSTITUTE)
        };
        self.days.insert(
            day,
            Holiday {
                title: title.to_owned(),
                notes: notes.to_owned(),
                bunting,
            },
        );
        Some(())
    }

    /// Christmas Day and Boxing Day. One falling on a weekday keeps its day; the other (or
    /// both, in order) moves to the next free weekday. So 25 Sun gives Boxing Day Mon 26 and
    /// Christmas (substitute) Tue 27; 25 Sat gives Mon 27 and Tue 28; 25 Fri gives Mon 28.
    fn christmas(&mut self, year: i32) -> Option<()> {
        let pair = [
            ("Christmas Day", NaiveDate::from_ymd_opt(year, 12, 25)?),
            ("Boxing Day", NaiveDate::from_ymd_opt(year, 12, 26)?),
        ];
        for (title, date) in pair {
            if is_weekday(date) {
                self.place(title, date, true)?;
            }
        }
        for (title, date) in pair {
            if !is_weekday(date) {
                self.place(title, date, true)?;
            }
        }
        Some(())
    }
}

/// One nation's bank holidays by rule for `year`; `None` if chrono cannot represent them.
fn rules_for_year(nation: Nation, year: i32) -> Option<BTreeMap<NaiveDate, Holiday>> {
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    let easter = easter_sunday(year)?;
    let mut b = YearBuilder {
        days: BTreeMap::new(),
    };
    b.place("New Year’s Day", ymd(1, 1)?, true)?;
    if nation == Nation::Scotland {
        b.place("2nd January", ymd(1, 2)?, true)?;
    }
    if nation == Nation::NorthernIreland {
        b.place("St Patrick’s Day", ymd(3, 17)?, true)?;
    }
    b.place("Good Friday", easter.checked_sub_days(Days::new(2))?, false)?;
    if nation != Nation::Scotland {
        b.place("Easter Monday", easter.succ_opt()?, true)?;
    }
    b.place(
        "Early May bank holiday",
        first_weekday_of(year, 5, Weekday::Mon)?,
        true,
    )?;
    b.place(
        "Spring bank holiday",
        last_weekday_of(year, 5, Weekday::Mon)?,
        true,
    )?;
    if nation == Nation::NorthernIreland {
        b.place("Battle of the Boyne (Orangemen’s Day)", ymd(7, 12)?, false)?;
    }
    let summer = if nation == Nation::Scotland {
        first_weekday_of(year, 8, Weekday::Mon)?
    } else {
        last_weekday_of(year, 8, Weekday::Mon)?
    };
    b.place("Summer bank holiday", summer, true)?;
    if nation == Nation::Scotland {
        b.place("St Andrew’s Day", ymd(11, 30)?, true)?;
    }
    b.christmas(year)?;
    Some(b.days)
}

/// Easter Sunday by the anonymous Gregorian computus (Meeus/Jones/Butcher).
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = year;
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The first `weekday` of `month` in `year`.
fn first_weekday_of(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, 1)
}

/// The last `weekday` of `month` in `year`.
fn last_weekday_of(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let (next_year, next_month) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    let mut d = NaiveDate::from_ymd_opt(next_year, next_month, 1)?.pred_opt()?;
    while d.weekday() != weekday {
        d = d.pred_opt()?;
    }
    Some(d)
}

#[cfg(test)]
mod tests;
