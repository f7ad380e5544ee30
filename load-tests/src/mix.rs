//! What each find request asks for: the yes/possible/no mix, the member it is derived from, and
//! whether its completion is followed.
//!
//! Picks come from a generator seeded by the scenario's seed, so the same seed gives the same
//! sequence of (outcome, member) pairs; each request still gets a fresh `X-Request-ID` and a
//! fresh UAT `sub`, as separate users would send.

use std::collections::HashSet;
use std::io::BufRead as _;
use std::path::Path;

use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::LoadError;
use pdp_provider::members::generate::{self, FindKind};
use pdp_provider::members::record::MemberRecord;

/// Relative weights of the three outcomes a find request is derived to have.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Same NINO, family name and date of birth (`match-yes`).
    #[serde(default)]
    pub yes: f64,
    /// Same NINO and date of birth, another family name (`match-possible`).
    #[serde(default)]
    pub possible: f64,
    /// Nobody in the file (no match).
    #[serde(default)]
    pub no: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            yes: 1.0,
            possible: 1.0,
            no: 1.0,
        }
    }
}

// === impl Mix ===

impl Mix {
    /// Parses `--mix Y,P,N`, e.g. `1,1,1` or `0.6,0.1,0.3`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [y, p, n] = parts.as_slice() else {
            return Err("expected three weights: yes,possible,no".into());
        };
        let f = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("weight {v:?} is not a number"))
        };
        let mix = Mix {
            yes: f(y)?,
            possible: f(p)?,
            no: f(n)?,
        };
        mix.check()?;
        Ok(mix)
    }

    /// Checks the weights are finite, non-negative and not all zero.
    pub fn check(&self) -> Result<(), String> {
        let w = [self.yes, self.possible, self.no];
        if w.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err("weights must be finite and not negative".into());
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err("at least one weight must be more than 0".into());
        }
        Ok(())
    }

    /// Whether any find should match (so needs a member with a NINO).
    pub fn wants_matches(&self) -> bool {
        self.yes > 0.0 || self.possible > 0.0
    }
}

/// One find request's derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The outcome it is derived to have.
    pub kind: FindKind,
    /// The member's index in the member list.
    pub member: usize,
    /// Whether to follow its completion at the CAS (if it is ACKed).
    pub follow: bool,
}

/// Draws picks deterministically from a seed.
pub struct Picker {
    rng: StdRng,
    kinds: WeightedIndex<f64>,
    /// Members with a NINO (candidates for yes and possible).
    with_nino: Vec<usize>,
    /// All members (candidates for no).
    total: usize,
    /// Share of matching finds whose completion is followed.
    sample: f64,
    /// Per member: its `match-yes` PeI may already exist at the CAS (registered before this run
    /// or by an earlier yes find of this run), so a yes find cannot be told apart by its
    /// `inbound_request_id` and is not followed.
    yes_taken: Vec<bool>,
}

/// The `match-yes` PeI of a member's first pension, as the endpoint registers it.
pub fn yes_pei(m: &MemberRecord) -> Option<String> {
    m.pensions
        .first()
        .map(|p| format!("urn:pei:{}:{}", m.holdername, p.asset_guid))
}

// === impl Picker ===

impl Picker {
    /// A picker over `members` drawing `mix`, following a `sample` share (0 to 1) of matching
    /// finds; `registered` are PeIs already at the CAS.
    pub fn new(
        seed: u64,
        mix: Mix,
        members: &[MemberRecord],
        sample: f64,
        registered: &HashSet<String>,
    ) -> Result<Self, LoadError> {
        mix.check().map_err(LoadError::Scenario)?;
        if members.is_empty() {
            return Err(LoadError::Scenario(
                "no members to derive finds from".into(),
            ));
        }
        let with_nino: Vec<usize> = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.nino.is_some())
            .map(|(i, _)| i)
            .collect();
        if with_nino.is_empty() && mix.wants_matches() {
            return Err(LoadError::Scenario(
                "no member has a NINO: yes and possible finds need one".into(),
            ));
        }
        let kinds = WeightedIndex::new([mix.yes, mix.possible, mix.no])
            .map_err(|e| LoadError::Scenario(format!("mix: {e}")))?;
        let yes_taken = members
            .iter()
            .map(|m| yes_pei(m).is_none_or(|p| registered.contains(&p)))
            .collect();
        Ok(Self {
            rng: StdRng::seed_from_u64(seed ^ 0x10ad_10ad),
            kinds,
            with_nino,
            total: members.len(),
            sample: sample.clamp(0.0, 1.0),
            yes_taken,
        })
    }

    /// The next find's derivation.
    pub fn next_pick(&mut self) -> Pick {
        let kind =
            [FindKind::Yes, FindKind::Possible, FindKind::No][self.kinds.sample(&mut self.rng)];
        let member = match kind {
            FindKind::No => self.rng.gen_range(0..self.total),
            _ => self.with_nino[self.rng.gen_range(0..self.with_nino.len())],
        };
        let sampled = self.rng.gen::<f64>() < self.sample;
        let follow = sampled
            && match kind {
                FindKind::No => false,
                FindKind::Possible => true,
                FindKind::Yes => !self.yes_taken[member],
            };
        if kind == FindKind::Yes {
            self.yes_taken[member] = true;
        }
        Pick {
            kind,
            member,
            follow,
        }
    }
}

/// Reads members from a JSON lines file (blank lines skipped).
pub fn read_members(path: &Path) -> Result<Vec<MemberRecord>, LoadError> {
    let file = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut members = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        // The error names the line and serde's reason (a field path), never the record.
        let m: MemberRecord = serde_json::from_str(&line).map_err(|e| LoadError::Members {
            path: path.to_owned(),
            line: n + 1,
            reason: format!(
                "not a member record ({} error at column {})",
                category(&e),
                e.column()
            ),
        })?;
        members.push(m);
    }
    Ok(members)
}

/// Generates `count` members as `members generate --seed seed` would.
pub fn generate_members(seed: u64, count: u64) -> Vec<MemberRecord> {
    let schemes = generate::schemes(seed);
    (0..count)
        .map(|i| generate::member(seed, i, &schemes))
        .collect()
}

/// serde_json's category of a parse error: its message may quote a value, so only this is shown.
fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "schema",
        serde_json::error::Category::Eof => "truncated",
    }
}

#[cfg(test)]
mod tests;
