//! Match rules: which agreements make a yes, which a possible, with reason codes.
//!
//! A rule names fields that must agree, fields that must disagree, fields that must not
//! contradict (agree or be absent), and fields absent on either side. Rules are tried in order;
//! the first that holds decides. A rule may accept *lenient* agreement: via historic data
//! (previous family names or addresses, on either side) or via given and family names swapped.
//! The rule set is configuration ([`crate::config::rules`]), per holdername, with a version
//! recorded against every find.

/// The rules as `[matching]` writes them.
pub use crate::config::rules::{Field, Leniency, Rule, RuleSet};

/// How one field compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Current values agree.
    Exact,
    /// Agree only in the given lenient sense.
    Lenient(Leniency),
    /// Both sides have values and none agree.
    Disagree,
    /// One side or both have no value.
    Absent,
}

/// Normalised identity data of one side (a find, or a member).
#[derive(Debug, Clone, Default)]
pub struct Person {
    /// Current names as (first given name, family name), normalised.
    pub names: Vec<(String, String)>,
    /// Previous family names, normalised.
    pub previous_family_names: Vec<String>,
    /// Date of birth.
    pub date_of_birth: Option<chrono::NaiveDate>,
    /// First 8 characters of the NINO.
    pub nino8: Option<[u8; 8]>,
    /// Current postcodes, normalised.
    pub postcodes: Vec<String>,
    /// Previous postcodes, normalised.
    pub previous_postcodes: Vec<String>,
}

fn any_common(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| !x.is_empty() && b.contains(x))
}

fn single<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> Agreement {
    match (a, b) {
        (Some(x), Some(y)) if x == y => Agreement::Exact,
        (Some(_), Some(_)) => Agreement::Disagree,
        _ => Agreement::Absent,
    }
}

/// Identity data as written, before normalisation: what a find request or a member record has.
#[derive(Debug, Clone, Copy)]
pub struct RawIdentity<'a, N, P, C, Q> {
    /// (given name, family name) pairs.
    pub names: N,
    /// Previous family names.
    pub previous_family_names: P,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<&'a str>,
    /// The NINO as written.
    pub nino: Option<&'a str>,
    /// Current postcodes.
    pub postcodes: C,
    /// Previous postcodes.
    pub previous_postcodes: Q,
}

// === impl Person ===

impl Person {
    /// Normalises identity data (one place for both sides of a match).
    pub fn normalise<'a, N, P, C, Q>(raw: RawIdentity<'a, N, P, C, Q>) -> Person
    where
        N: Iterator<Item = (&'a str, &'a str)>,
        P: Iterator<Item = &'a str>,
        C: Iterator<Item = &'a str>,
        Q: Iterator<Item = &'a str>,
    {
        use super::normalise;
        Person {
            names: raw
                .names
                .map(|(g, f)| (normalise::first_given_name(g), normalise::name(f)))
                .collect(),
            previous_family_names: raw
                .previous_family_names
                .map(normalise::name)
                .filter(|n| !n.is_empty())
                .collect(),
            date_of_birth: raw.date_of_birth.and_then(normalise::date),
            nino8: raw.nino.and_then(normalise::nino8),
            postcodes: raw.postcodes.map(normalise::postcode).collect(),
            previous_postcodes: raw.previous_postcodes.map(normalise::postcode).collect(),
        }
    }

    fn given(&self) -> Vec<String> {
        self.names.iter().map(|n| n.0.clone()).collect()
    }

    fn family(&self) -> Vec<String> {
        self.names.iter().map(|n| n.1.clone()).collect()
    }

    fn all_family(&self) -> Vec<String> {
        let mut v = self.family();
        v.extend(self.previous_family_names.iter().cloned());
        v
    }

    /// Whether the given and family names stand swapped between `self` and `other`.
    fn names_swapped(&self, other: &Person) -> bool {
        any_common(&self.given(), &other.family()) && any_common(&self.family(), &other.given())
    }

    /// How `field` compares between `self` (the find) and `other` (the member).
    pub fn compare(&self, other: &Person, field: Field) -> Agreement {
        match field {
            Field::Nino => single(&self.nino8, &other.nino8),
            Field::DateOfBirth => single(&self.date_of_birth, &other.date_of_birth),
            Field::FamilyName | Field::GivenName
                if self.names.is_empty() || other.names.is_empty() =>
            {
                Agreement::Absent
            }
            Field::FamilyName => {
                if any_common(&self.family(), &other.family()) {
                    Agreement::Exact
                } else if any_common(&self.all_family(), &other.all_family()) {
                    Agreement::Lenient(Leniency::Historic)
                } else if self.names_swapped(other) {
                    Agreement::Lenient(Leniency::Swapped)
                } else {
                    Agreement::Disagree
                }
            }
            Field::GivenName => {
                if any_common(&self.given(), &other.given()) {
                    Agreement::Exact
                } else if self.names_swapped(other) {
                    Agreement::Lenient(Leniency::Swapped)
                } else {
                    Agreement::Disagree
                }
            }
            Field::Postcode => {
                let mine: Vec<String> = self
                    .postcodes
                    .iter()
                    .chain(&self.previous_postcodes)
                    .cloned()
                    .collect();
                let theirs: Vec<String> = other
                    .postcodes
                    .iter()
                    .chain(&other.previous_postcodes)
                    .cloned()
                    .collect();
                if mine.is_empty() || theirs.is_empty() {
                    Agreement::Absent
                } else if any_common(&self.postcodes, &other.postcodes) {
                    Agreement::Exact
                } else if any_common(&mine, &theirs) {
                    Agreement::Lenient(Leniency::Historic)
                } else {
                    Agreement::Disagree
                }
            }
        }
    }
}

// === impl Rule ===

impl Rule {
    /// Whether this rule holds for `find` against `member`.
    pub fn holds(&self, find: &Person, member: &Person) -> bool {
        let agrees = |f: &Field| match find.compare(member, *f) {
            Agreement::Exact => true,
            Agreement::Lenient(l) => self.lenient == Some(l),
            _ => false,
        };
        self.agree.iter().all(agrees)
            && self
                .disagree
                .iter()
                .all(|f| find.compare(member, *f) == Agreement::Disagree)
            && self
                .not_contradicted
                .iter()
                .all(|f| find.compare(member, *f) != Agreement::Disagree)
            && self
                .absent
                .iter()
                .all(|f| find.compare(member, *f) == Agreement::Absent)
    }
}

// === impl RuleSet ===

impl RuleSet {
    /// The first rule that holds, if any.
    pub fn evaluate(&self, find: &Person, member: &Person) -> Option<&Rule> {
        self.rules.iter().find(|r| r.holds(find, member))
    }
}

#[cfg(test)]
mod tests;
