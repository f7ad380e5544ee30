use super::*;
use crate::model::{NewUnavailability, Unavailability};

const MIN: i64 = 60_000_000;

#[test]
fn heartbeat_gaps_outside_windows_are_unscheduled_and_windows_keep_their_kind() {
    let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let from = day_start(day);
    let to = from + 1440 * MIN;
    let h = Uuid::new_v4();
    // Up all day except minutes 60..70 (a gap) and 100..130 (inside a planned window).
    let up_minutes = (0..1440)
        .filter(|m| !(60..70).contains(m) && !(100..130).contains(m))
        .map(|m| from / MIN + m)
        .collect();
    let facts = DayFacts {
        holdernames: vec![h],
        windows: vec![Unavailability {
            id: 1,
            window: NewUnavailability {
                service: Service::Find,
                holdername: None,
                starts_at: from + 100 * MIN,
                ends_at: from + 130 * MIN,
                reason: "Downtime for system update".into(),
                emergency: false,
                announced_at: from - 10 * 1440 * MIN,
            },
        }],
        up_minutes,
        ..Default::default()
    };
    let find = periods(
        &facts,
        h,
        Service::Find,
        (from, to),
        Some(from),
        to + 10 * MIN,
    );
    assert_eq!(
        find,
        vec![
            Period {
                from: from + 60 * MIN,
                to: from + 70 * MIN,
                scheduled: false,
                reason: UNPLANNED_REASON.into()
            },
            Period {
                from: from + 100 * MIN,
                to: from + 130 * MIN,
                scheduled: true,
                reason: "Downtime for system update".into()
            },
        ]
    );
    // The view service had no window: the whole outage is unplanned there.
    let view = periods(
        &facts,
        h,
        Service::View,
        (from, to),
        Some(from),
        to + 10 * MIN,
    );
    assert_eq!(view.len(), 2);
    assert!(view.iter().all(|p| !p.scheduled));
    // Before going live nothing is a gap.
    let none = periods(&facts, h, Service::View, (from, to), None, to + 10 * MIN);
    assert!(none.is_empty());
}
