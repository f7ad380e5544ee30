use super::*;

fn limiter(per_s: u32, burst: u32, max_identities: usize) -> Refusals {
    Refusals::new(&LimitsConfig {
        refused_per_s: per_s,
        refused_burst: burst,
        summary_window_s: 60,
        max_identities,
    })
}

fn party(s: &str) -> Arc<str> {
    Arc::from(s)
}

#[test]
fn past_the_burst_refusals_are_limited_until_the_bucket_refills() {
    let r = limiter(2, 3, 16);
    let (p, t0) = (party("CN=dashboard"), Instant::now());
    for _ in 0..3 {
        assert_eq!(
            r.check(&p, "* unknown", "not_found", t0, 1),
            Verdict::Answer { log: false }
        );
    }
    assert_eq!(
        r.check(&p, "* unknown", "not_found", t0, 2),
        Verdict::Limited {
            retry_after_s: 1,
            log: true
        }
    );
    assert_eq!(
        r.check(&p, "* unknown", "not_found", t0, 3),
        Verdict::Limited {
            retry_after_s: 1,
            log: false
        }
    );
    // Half a second at 2 a second: one token.
    let t1 = t0 + Duration::from_millis(500);
    assert_eq!(
        r.check(&p, "* unknown", "not_found", t1, 4),
        Verdict::Answer { log: false }
    );
    assert!(matches!(
        r.check(&p, "* unknown", "not_found", t1, 5),
        Verdict::Limited { .. }
    ));
    // Another identity has a bucket of its own.
    assert_eq!(
        r.check(&party("CN=pfs"), "* unknown", "not_found", t1, 6),
        Verdict::Answer { log: false }
    );
}

#[test]
fn retry_after_is_the_wait_for_the_next_token() {
    let r = limiter(1, 1, 16);
    let (p, t0) = (party("CN=a"), Instant::now());
    assert!(matches!(
        r.check(&p, "* unknown", "not_found", t0, 0),
        Verdict::Answer { .. }
    ));
    assert!(matches!(
        r.check(&p, "* unknown", "not_found", t0, 0),
        Verdict::Limited {
            retry_after_s: 1,
            ..
        }
    ));
    assert!(matches!(
        r.check(&p, "* unknown", "not_found", t0 + Duration::from_secs(1), 0),
        Verdict::Answer { .. }
    ));
}

#[test]
fn a_window_sums_each_endpoint_and_refusal_and_logs_what_it_did_not_log_at_once() {
    let r = limiter(1, 2, 16);
    let (p, t0) = (party("CN=dashboard"), Instant::now());
    let logged: Vec<Verdict> = (0..5)
        .map(|i| r.check(&p, "POST /find-requests", "forbidden", t0, 100 + i))
        .collect();
    // The first 403 and the first 429 are logged at once.
    assert_eq!(logged[0], Verdict::Answer { log: true });
    assert_eq!(logged[1], Verdict::Answer { log: false });
    assert!(matches!(logged[2], Verdict::Limited { log: true, .. }));
    assert!(matches!(logged[4], Verdict::Limited { log: false, .. }));
    assert!(matches!(
        r.check(&p, "* unknown", "not_found", t0, 200),
        Verdict::Limited { log: true, .. }
    ));
    let mut seen = r.drain(t0);
    seen.sort_by_key(|s| s.endpoint);
    assert_eq!(
        seen,
        vec![
            Summary {
                party: p.clone(),
                endpoint: "* unknown",
                refusal: "not_found",
                answered: 0,
                limited: 1,
                first_limited_at: 200,
                last_limited_at: 200,
                unlogged: 0,
            },
            Summary {
                party: p.clone(),
                endpoint: "POST /find-requests",
                refusal: "forbidden",
                answered: 2,
                limited: 3,
                first_limited_at: 102,
                last_limited_at: 104,
                unlogged: 3,
            },
        ]
    );
    // A new window logs its first ones again.
    assert!(matches!(
        r.check(&p, "* unknown", "not_found", t0, 300),
        Verdict::Limited { log: true, .. }
    ));
}

#[test]
fn identities_are_bounded_and_quiet_ones_are_forgotten() {
    let r = limiter(1, 1, 2);
    let t0 = Instant::now();
    for name in ["CN=a", "CN=b"] {
        r.check(&party(name), "* unknown", "not_found", t0, 0);
    }
    assert_eq!(r.tracked(), 2);
    // A third identity shares the overflow bucket: the first of it takes its token.
    let c = party("CN=c");
    assert!(matches!(
        r.check(&c, "* unknown", "not_found", t0, 0),
        Verdict::Answer { .. }
    ));
    assert!(matches!(
        r.check(&party("CN=d"), "* unknown", "not_found", t0, 0),
        Verdict::Limited { .. }
    ));
    assert_eq!(r.tracked(), 2);
    let seen = r.drain(t0);
    assert!(seen
        .iter()
        .any(|s| &*s.party == OVERFLOW_PARTY && s.answered == 1 && s.limited == 1));
    // Seen this window: kept. A quiet window with full buckets: forgotten.
    assert_eq!(r.tracked(), 2);
    assert!(r.drain(t0 + Duration::from_secs(5)).is_empty());
    assert_eq!(r.tracked(), 0);
    assert!(matches!(
        r.check(&c, "* unknown", "not_found", t0 + Duration::from_secs(5), 0),
        Verdict::Answer { .. }
    ));
    assert_eq!(r.tracked(), 1);
}

#[test]
fn the_setting_is_validated() {
    let mut c = crate::config::Config::default();
    c.crypto.data_key_env = Some("X".into());
    assert!(c.clone().validate().is_ok());
    for (field, bad) in [
        ("limits.refused_per_s", {
            let mut c = c.clone();
            c.limits.refused_per_s = 0;
            c
        }),
        ("limits.refused_burst", {
            let mut c = c.clone();
            c.limits.refused_burst = 0;
            c
        }),
        ("limits.summary_window_s", {
            let mut c = c.clone();
            c.limits.summary_window_s = 0;
            c
        }),
        ("limits.max_identities", {
            let mut c = c.clone();
            c.limits.max_identities = 0;
            c
        }),
    ] {
        match bad.validate() {
            Err(crate::config::ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let parsed: crate::config::Config =
        toml::from_str("[limits]\nrefused_per_s = 5\nrefused_burst = 50\n").unwrap();
    assert_eq!(
        (parsed.limits.refused_per_s, parsed.limits.refused_burst),
        (5, 50)
    );
    assert!(toml::from_str::<crate::config::Config>("[limits]\nrate = 5\n").is_err());
}

#[test]
fn the_429_says_when_to_retry_and_is_not_audited_on_its_own() {
    let e = too_many(3);
    assert_eq!((e.status.as_u16(), e.retry_after_s), (429, Some(3)));
    assert_eq!(e.outcome(), LIMITED);
    let resp = e.into_response("id");
    assert_eq!(resp.headers()[http::header::RETRY_AFTER], "3");
}
