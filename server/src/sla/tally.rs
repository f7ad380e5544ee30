//! The service levels of an hour, tallied once, and added up for a month.
//!
//! Each latency series is a histogram of its samples in µs (HdrHistogram at three significant
//! figures) beside two exact counts: the samples within the target and within the limit. So a
//! month's report reads about 744 tallies rather than every sample: whether a standard is met
//! (the share within its limit) is exact, and each percentile is the nearest-rank sample's
//! histogram bucket, reported at the bucket's highest value: never below the exact sample and
//! at most 0.1% above it (1 ms at 1 s).
//!
//! A stored histogram is its recorded buckets alone (each bucket's highest value and its count),
//! added into the month's histogram as they are read: a month of 744 hours and a few dozen
//! series an hour is a few million buckets recorded, not a full counts array walked (and
//! allocated) for each series of each hour. Tallies stored before that, in HdrHistogram's V2
//! encoding, still read.

use std::collections::BTreeMap;
use std::io::Cursor;

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Series;
use crate::coco::{self, Level};
use crate::model::SlaSamples;

/// Significant figures the histograms keep.
const SIGFIG: u8 = 3;

/// A tally that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("a stored service-level tally does not read: {0}")]
pub struct TallyError(String);

/// One latency series: its histogram and the exact counts within the target and the limit.
#[derive(Debug, Clone)]
pub struct Levels {
    histogram: Histogram<u64>,
    within_target: u64,
    within_limit: u64,
}

/// What the service-level report adds up: the latency series, failed finds and the counts by
/// outcome.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// CoCo2.1.1.
    pub ack: Levels,
    /// CoCo2.1.2.
    pub completion: Levels,
    /// CoCo2.1.3.
    pub view: Levels,
    /// Failed finds.
    pub failed: u64,
    /// Answers by endpoint and outcome, finds by outcome or state.
    pub counts: BTreeMap<String, u64>,
    /// Each holdername's completion and views.
    pub by_holdername: BTreeMap<Uuid, SchemeTally>,
}

/// One holdername's series: the completion of its matching finds and its views.
#[derive(Debug, Clone, Default)]
pub struct SchemeTally {
    /// CoCo2.1.2, the finds that registered PeIs in it.
    pub completion: Levels,
    /// CoCo2.1.3, its PeIs' views.
    pub view: Levels,
}

/// A tally as stored: JSON, each histogram as its recorded buckets.
#[derive(Serialize, Deserialize)]
struct Stored {
    ack: StoredLevels,
    completion: StoredLevels,
    view: StoredLevels,
    failed: u64,
    counts: BTreeMap<String, u64>,
    by_holdername: BTreeMap<Uuid, StoredScheme>,
}

#[derive(Serialize, Deserialize)]
struct StoredScheme {
    completion: StoredLevels,
    view: StoredLevels,
}

#[derive(Serialize, Deserialize)]
struct StoredLevels {
    /// The recorded buckets in ascending order, two numbers each: the bucket's highest value
    /// (µs) less the previous bucket's (the first's from 0), and the bucket's count.
    #[serde(default)]
    buckets: Vec<u64>,
    /// The histogram in HdrHistogram's V2 encoding (base64): how tallies were stored before
    /// `buckets`; read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    histogram: Option<String>,
    within_target: u64,
    within_limit: u64,
}

// === impl Levels ===

impl Default for Levels {
    fn default() -> Self {
        Self {
            histogram: Histogram::new(SIGFIG).expect("3 significant figures are valid"),
            within_target: 0,
            within_limit: 0,
        }
    }
}

impl Levels {
    /// The series of `samples` (µs) against `level`.
    pub fn of(samples: &[i64], level: Level) -> Self {
        let mut out = Self::default();
        let (target, limit) = (micros(level.target), micros(level.limit));
        for &us in samples {
            let v = us.max(0).unsigned_abs();
            // Auto-resizing: a value is out of range only past what a histogram can hold.
            if out.histogram.record(v).is_err() {
                out.histogram.saturating_record(v);
            }
            out.within_target += u64::from(us < target);
            out.within_limit += u64::from(us < limit);
        }
        out
    }

    /// Adds `other`'s samples.
    pub fn add(&mut self, other: &Levels) {
        self.histogram
            .add(&other.histogram)
            .expect("auto-resizing histograms add");
        self.within_target += other.within_target;
        self.within_limit += other.within_limit;
    }

    /// Samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The series as the report shows it, judged against `level`.
    pub fn series(&self, level: Level) -> Series {
        let n = self.histogram.len();
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |p: f64| {
            if n == 0 {
                0.0
            } else {
                ms(self.histogram.value_at_quantile(p / 100.0))
            }
        };
        let share = |k: u64| if n == 0 { 1.0 } else { k as f64 / n as f64 };
        let within_limit = share(self.within_limit);
        Series {
            count: n,
            p50_ms: at(50.0),
            p99_ms: at(99.0),
            p999_ms: at(99.9),
            max_ms: if n == 0 {
                0.0
            } else {
                ms(self.histogram.highest_equivalent(self.histogram.max()))
            },
            target_s: level.target.as_secs_f64(),
            limit_s: level.limit.as_secs_f64(),
            within_target: share(self.within_target),
            within_limit,
            required: level.required,
            met: within_limit >= level.required,
        }
    }

    fn stored(&self) -> StoredLevels {
        let mut buckets = Vec::new();
        let mut previous = 0;
        for v in self.histogram.iter_recorded() {
            let value = v.value_iterated_to();
            buckets.extend([value - previous, v.count_at_value()]);
            previous = value;
        }
        StoredLevels {
            buckets,
            histogram: None,
            within_target: self.within_target,
            within_limit: self.within_limit,
        }
    }

    /// Adds a stored series' samples. A bucket's highest value falls in the same bucket here:
    /// every histogram has the same precision, so the sum is the one of every sample.
    fn add_stored(&mut self, s: StoredLevels) -> Result<(), TallyError> {
        if let Some(v2) = s.histogram {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v2)
                .map_err(|e| TallyError(e.to_string()))?;
            let histogram: Histogram<u64> = Deserializer::new()
                .deserialize(&mut Cursor::new(bytes))
                .map_err(|e| TallyError(format!("{e:?}")))?;
            self.histogram
                .add(&histogram)
                .map_err(|e| TallyError(format!("{e:?}")))?;
        }
        if !s.buckets.len().is_multiple_of(2) {
            return Err(TallyError("a bucket without its count".into()));
        }
        let mut value = 0_u64;
        for pair in s.buckets.chunks_exact(2) {
            value = value
                .checked_add(pair[0])
                .ok_or_else(|| TallyError("a bucket past the largest value".into()))?;
            self.histogram
                .record_n(value, pair[1])
                .map_err(|e| TallyError(format!("{e:?}")))?;
        }
        self.within_target += s.within_target;
        self.within_limit += s.within_limit;
        Ok(())
    }
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

// === impl Tally ===

impl Tally {
    /// The tally of a window's samples.
    pub fn of(s: &SlaSamples) -> Self {
        Self {
            ack: Levels::of(&s.ack, coco::ACK),
            completion: Levels::of(&s.completion, coco::COMPLETION),
            view: Levels::of(&s.view, coco::VIEW),
            failed: s.failed,
            // A count may come in parts (a no-match find's by its row, or by its audit record).
            counts: s.counts.iter().fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(k.clone()).or_default() += v;
                m
            }),
            by_holdername: s
                .by_holdername
                .iter()
                .map(|(h, x)| {
                    let t = SchemeTally {
                        completion: Levels::of(&x.completion, coco::COMPLETION),
                        view: Levels::of(&x.view, coco::VIEW),
                    };
                    (*h, t)
                })
                .collect(),
        }
    }

    /// Adds `other`.
    pub fn add(&mut self, other: &Tally) {
        self.ack.add(&other.ack);
        self.completion.add(&other.completion);
        self.view.add(&other.view);
        self.failed += other.failed;
        for (k, v) in &other.counts {
            *self.counts.entry(k.clone()).or_default() += v;
        }
        for (h, t) in &other.by_holdername {
            let mine = self.by_holdername.entry(*h).or_default();
            mine.completion.add(&t.completion);
            mine.view.add(&t.view);
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.ack.count() == 0
            && self.completion.count() == 0
            && self.view.count() == 0
            && self.failed == 0
            && self.counts.is_empty()
            && self.by_holdername.is_empty()
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&Stored {
            ack: self.ack.stored(),
            completion: self.completion.stored(),
            view: self.view.stored(),
            failed: self.failed,
            counts: self.counts.clone(),
            by_holdername: self
                .by_holdername
                .iter()
                .map(|(h, t)| {
                    let s = StoredScheme {
                        completion: t.completion.stored(),
                        view: t.view.stored(),
                    };
                    (*h, s)
                })
                .collect(),
        })
        .expect("a tally serialises")
    }

    /// Reads a stored tally back (the month's report adds each with [`Tally::add_stored`]).
    #[cfg(test)]
    pub fn decode(bytes: &[u8]) -> Result<Self, TallyError> {
        let mut t = Self::default();
        t.add_stored(bytes)?;
        Ok(t)
    }

    /// Adds a stored tally, without reading it into a tally of its own first.
    pub fn add_stored(&mut self, bytes: &[u8]) -> Result<(), TallyError> {
        let s: Stored = serde_json::from_slice(bytes).map_err(|e| TallyError(e.to_string()))?;
        self.ack.add_stored(s.ack)?;
        self.completion.add_stored(s.completion)?;
        self.view.add_stored(s.view)?;
        self.failed += s.failed;
        for (k, v) in s.counts {
            *self.counts.entry(k).or_default() += v;
        }
        for (h, t) in s.by_holdername {
            let mine = self.by_holdername.entry(h).or_default();
            mine.completion.add_stored(t.completion)?;
            mine.view.add_stored(t.view)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchemeSamples;

    fn samples(n: i64) -> Vec<i64> {
        // 1 ms to n ms, and a few slow ones.
        let mut v: Vec<i64> = (1..=n).map(|i| i * 1000).collect();
        v.extend([2_500_000, 9_000_000, 61_000_000]);
        v
    }

    #[test]
    fn a_tally_judges_as_the_samples_do_and_its_percentiles_are_within_a_thousandth() {
        for level in [coco::ACK, coco::COMPLETION, coco::VIEW] {
            let v = samples(5_000);
            let exact = super::super::series(v.clone(), level);
            let tallied = Levels::of(&v, level).series(level);
            assert_eq!(tallied.count, exact.count);
            assert_eq!(tallied.within_target, exact.within_target);
            assert_eq!(tallied.within_limit, exact.within_limit);
            assert_eq!(tallied.met, exact.met);
            for (t, e) in [
                (tallied.p50_ms, exact.p50_ms),
                (tallied.p99_ms, exact.p99_ms),
                (tallied.p999_ms, exact.p999_ms),
                (tallied.max_ms, exact.max_ms),
            ] {
                assert!(t >= e && t <= e * 1.001, "{t} against {e}");
            }
        }
    }

    #[test]
    fn tallies_added_up_equal_the_tally_of_every_sample_and_survive_storage() {
        let v = samples(3_000);
        let (a, b) = v.split_at(1_234);
        let mut counts = vec![("POST /find-requests ack".to_owned(), 7)];
        let of = |ack: &[i64], counts: Vec<(String, u64)>| {
            Tally::of(&SlaSamples {
                ack: ack.to_vec(),
                completion: ack.iter().map(|x| x * 10).collect(),
                failed: 1,
                view: ack.to_vec(),
                counts,
                minutes_up: 0,
                by_holdername: [(
                    Uuid::from_u128(7),
                    SchemeSamples {
                        completion: ack.iter().map(|x| x * 3).collect(),
                        view: ack.iter().step_by(2).copied().collect(),
                    },
                )]
                .into(),
            })
        };
        let mut sum = Tally::decode(&of(a, counts.clone()).encode()).unwrap();
        counts.push(("find no-match".to_owned(), 2));
        sum.add(&Tally::decode(&of(b, counts.clone()).encode()).unwrap());
        let whole = of(&v, Vec::new());
        for (x, y, level) in [
            (&sum.ack, &whole.ack, coco::ACK),
            (&sum.completion, &whole.completion, coco::COMPLETION),
            (&sum.view, &whole.view, coco::VIEW),
        ] {
            assert_eq!(x.series(level), y.series(level));
        }
        let (x, y) = (
            &sum.by_holdername[&Uuid::from_u128(7)],
            &whole.by_holdername[&Uuid::from_u128(7)],
        );
        assert_eq!(
            x.completion.series(coco::COMPLETION),
            y.completion.series(coco::COMPLETION)
        );
        assert_eq!(
            x.view.count(),
            1_234_u64.div_ceil(2) + (v.len() as u64 - 1_234).div_ceil(2)
        );
        assert_eq!(sum.failed, 2);
        assert_eq!(sum.counts["POST /find-requests ack"], 14);
        assert_eq!(sum.counts["find no-match"], 2);
        assert!(Tally::default().is_empty() && !sum.is_empty());
        assert!(Tally::decode(b"{}").is_err());
    }

    #[test]
    fn a_tally_stored_as_v2_histograms_reads_as_it_did() {
        use hdrhistogram::serialization::{Serializer as _, V2Serializer};
        let v = samples(2_000);
        let levels = Levels::of(&v, coco::ACK);
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&levels.histogram, &mut bytes)
            .unwrap();
        let v2 = |within_target: u64, within_limit: u64| {
            serde_json::json!({
                "histogram": base64::engine::general_purpose::STANDARD.encode(&bytes),
                "within_target": within_target,
                "within_limit": within_limit,
            })
        };
        let stored = serde_json::json!({
            "ack": v2(levels.within_target, levels.within_limit),
            "completion": v2(0, 0),
            "view": v2(0, 0),
            "failed": 0,
            "counts": {},
            "by_holdername": {},
        });
        let mut sum = Tally::decode(stored.to_string().as_bytes()).unwrap();
        assert_eq!(sum.ack.series(coco::ACK), levels.series(coco::ACK));
        // And beside a tally stored as buckets: every sample twice.
        let new = Tally {
            ack: levels.clone(),
            ..Tally::default()
        };
        sum.add_stored(&new.encode()).unwrap();
        let twice = Levels::of(&[v.clone(), v].concat(), coco::ACK);
        assert_eq!(sum.ack.series(coco::ACK), twice.series(coco::ACK));
    }

    #[test]
    fn stored_buckets_are_the_recorded_ones_and_a_broken_list_is_refused() {
        let levels = Levels::of(&[5, 5, 1_000, 70_000_000], coco::COMPLETION);
        let stored = levels.stored();
        // 70 s is at most a thousandth above its bucket's highest value.
        assert_eq!(stored.buckets[..4], [5, 2, 995, 1]);
        assert_eq!(stored.buckets.len(), 6);
        let top = stored.buckets[4] + 1_000;
        assert!((70_000_000..70_070_000).contains(&top) && stored.buckets[5] == 1);
        let mut broken = Tally::default().encode();
        let text = String::from_utf8(broken.clone()).unwrap();
        broken = text
            .replacen("\"buckets\":[]", "\"buckets\":[3]", 1)
            .into_bytes();
        assert!(Tally::decode(&broken).is_err());
        let past = text.replacen(
            "\"buckets\":[]",
            &format!("\"buckets\":[{},1,{},1]", u64::MAX, 1),
            1,
        );
        assert!(Tally::decode(past.as_bytes()).is_err());
    }
}
