use super::super::tests::{key, Place};
use super::*;
use crate::model::{MatchKeys, MemberChange, NewMember, NewPension};

fn guid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A member of holdername `h` with pensions `guids`, each of scheme `S<guid % 3>`; `tag` tells
/// its records apart.
fn upsert(id: &str, h: u128, guids: &[u128], tag: &str) -> NewMember {
    let keys: Vec<String> = guids
        .iter()
        .map(|g| format!(r#"{{"assetGuid":"{}"}}"#, guid(*g)))
        .collect();
    NewMember {
        member_id: id.into(),
        holdername: guid(h),
        match_record: format!(r#"{{"tag":"{tag}","pensions":[{}]}}"#, keys.join(",")).into_bytes(),
        match_keys: MatchKeys::default(),
        pensions: guids
            .iter()
            .map(|g| NewPension {
                asset_guid: guid(*g),
                scheme_name: format!("S{}", g % 3),
                view_data: format!(r#"{{"n":{g}}}"#).into_bytes(),
                statement_date: None,
                calculation_date: None,
            })
            .collect(),
    }
}

fn add(id: &str, h: u128, guids: &[u128], tag: &str) -> MemberChange {
    MemberChange::Upsert(upsert(id, h, guids, tag))
}

/// Every kind of change, and changes whose outcome depends on those before them in the batch.
fn the_batch() -> Vec<MemberChange> {
    vec![
        add("N1", 1, &[10, 11], "n1"),
        add("N2", 1, &[1], "n2"),
        MemberChange::UpsertMoving(upsert("N3", 2, &[3], "n3")),
        add("P", 1, &[2], "p2"),
        add("N4", 2, &[1], "n4"),
        MemberChange::Remove("R".into()),
        MemberChange::Remove("ghost".into()),
        add("N5", 1, &[12], "n5"),
        add("N5", 1, &[13], "n5b"),
        add("Q", 2, &[3], "q"),
        add("N6", 2, &[4], "n6"),
        add("N7", 1, &[14, 15], "n7"),
    ]
}

/// What a store holds: each member's record, each pension's member, holdername and scheme,
/// the schemes' pension counts, and the changes noted.
async fn state(s: &Store) -> (Vec<String>, Vec<String>, Vec<(Uuid, String, u64)>) {
    let mut members = Vec::new();
    for id in s.member_ids(None).await.unwrap() {
        let record = s.member_record(&id).await.unwrap().unwrap();
        members.push(format!("{id} {}", String::from_utf8(record).unwrap()));
    }
    let mut pensions = Vec::new();
    for g in 0..20 {
        if let Some(p) = s.pension(guid(g)).await.unwrap() {
            pensions.push(format!(
                "{g} {} {} {} {}",
                p.member_id, p.holdername, p.scheme_name, p.view_data
            ));
        }
    }
    let schemes = s
        .scheme_summaries()
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.holdername, x.scheme_name, x.pensions))
        .collect();
    (members, pensions, schemes)
}

/// A batch is applied as its changes would be one by one: the same answers, and the same
/// members, pensions and scheme counts after.
async fn a_batch_is_applied_as_its_changes_one_by_one(place: Place) {
    let (s, one_by_one) = (place.open().await, Place::sqlite().open().await);
    let base = vec![
        add("P", 1, &[1, 2], "p"),
        add("Q", 2, &[3], "q"),
        add("R", 2, &[4], "r"),
    ];
    s.apply_members(base.clone(), false).await.unwrap();
    one_by_one.apply_members(base, false).await.unwrap();
    let answer = |a: AppliedChange| {
        let held: Vec<String> = a.held_by.iter().map(|(g, o)| format!("{g}@{o}")).collect();
        format!(
            "{} {:?} removed {:?} held {held:?}",
            a.member_id, a.applied, a.removed_pensions
        )
    };
    let batched: Vec<String> = s
        .apply_members(the_batch(), false)
        .await
        .unwrap()
        .into_iter()
        .map(answer)
        .collect();
    let mut each = Vec::new();
    for change in the_batch() {
        let mut a = one_by_one.apply_members(vec![change], false).await.unwrap();
        each.push(answer(a.remove(0)));
    }
    assert_eq!(batched, each);
    assert!(batched[0].starts_with("N1 Added"), "{batched:?}");
    assert!(batched[1].starts_with("N2 PensionHeld"), "{batched:?}");
    assert!(batched[4].starts_with("N4 Added"), "{batched:?}");
    assert!(batched[8].starts_with("N5 Updated"), "{batched:?}");
    assert!(batched[10].starts_with("N6 Added"), "{batched:?}");
    let (after, expected) = (state(&s).await, state(&one_by_one).await);
    assert_eq!(after, expected);
    // The schemes' counts are the pensions stored, by holdername.
    let (_, pensions, schemes) = after;
    for (h, _, n) in &schemes {
        let held = pensions
            .iter()
            .filter(|p| p.contains(&h.to_string()))
            .count();
        assert_eq!(*n, held as u64, "{schemes:?} {pensions:?}");
    }
    assert_eq!(
        schemes.iter().map(|x| x.2).sum::<u64>(),
        pensions.len() as u64
    );
}

/// A member stored with the whole SHA-256 of its content (as stores kept it before the hash was
/// cut short) is unchanged by the same record again.
async fn a_content_hash_stored_whole_still_tells_a_repeat(place: Place) {
    let s = place.open().await;
    s.apply_members(vec![add("A", 1, &[1], "a")], false)
        .await
        .unwrap();
    let SealedChange::Upsert(row, _) = seal_change(&key(), add("A", 1, &[1], "a")) else {
        unreachable!("an upsert")
    };
    assert_eq!(row.content_sha256.len(), 2 * CONTENT_HASH_BYTES);
    assert!(row.content_sha256_whole.starts_with(&row.content_sha256));
    let whole = row.content_sha256_whole.clone();
    s.write(move |tx| {
        Box::pin(async move {
            tx.execute(
                "UPDATE members SET content_sha256 = $1 WHERE member_id = 'A'",
                &params![whole],
            )
            .await
            .map(drop)
        })
    })
    .await
    .unwrap();
    let again = s
        .apply_members(vec![add("A", 1, &[1], "a")], false)
        .await
        .unwrap();
    assert_eq!(again[0].applied, Applied::Unchanged);
    let changed = s
        .apply_members(vec![add("A", 1, &[1], "a2")], false)
        .await
        .unwrap();
    assert_eq!(changed[0].applied, Applied::Updated);
}

mod sqlite_backend {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_applied_as_its_changes_one_by_one() {
        super::a_batch_is_applied_as_its_changes_one_by_one(super::Place::sqlite()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_content_hash_stored_whole_still_tells_a_repeat() {
        super::a_content_hash_stored_whole_still_tells_a_repeat(super::Place::sqlite()).await
    }
}

mod postgres_backend {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_applied_as_its_changes_one_by_one() {
        super::a_batch_is_applied_as_its_changes_one_by_one(super::Place::postgres().await).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_content_hash_stored_whole_still_tells_a_repeat() {
        super::a_content_hash_stored_whole_still_tells_a_repeat(super::Place::postgres().await)
            .await
    }
}

/// A SQLite store from before the schemes' counts: they are counted from its pensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schemes_counts_are_taken_from_the_pensions_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let before: Vec<_> = super::super::schema::migrations(Dialect::Sqlite)
            .into_iter()
            .take(10)
            .collect();
        refinery::Runner::new(&before).run(&mut conn).unwrap();
        for (g, h, name) in [(1, 7, "Acme"), (2, 7, "Acme"), (3, 7, "Zed"), (4, 8, "Bee")] {
            conn.execute(
                "INSERT INTO pensions (asset_guid, member_id, holdername, scheme_name, view_data)
                 VALUES (?1, 'm', ?2, ?3, x'00')",
                rusqlite::params![guid(g).to_string(), guid(h).to_string(), name],
            )
            .unwrap();
        }
    }
    let s = Store::open(&path, key(), crate::store::StoreLimits::default()).unwrap();
    let schemes: Vec<(Uuid, String, u64)> = s
        .scheme_summaries()
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.holdername, x.scheme_name, x.pensions))
        .collect();
    assert_eq!(
        schemes,
        [(guid(7), "Acme".into(), 3), (guid(8), "Bee".into(), 1)]
    );
}

/// Each holdername's pensions by scheme name, as `pension_schemes` counts them.
async fn scheme_counts(s: &Store) -> Vec<(String, String, i64)> {
    s.read(|tx| {
        Box::pin(async move {
            tx.query(
                "SELECT holdername, scheme_name, pensions FROM pension_schemes ORDER BY 1, 2",
                &[],
            )
            .await?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
        })
    })
    .await
    .unwrap()
}

/// A member whose holdername changes takes its pensions' counts with it; a scheme name changed,
/// a pension dropped or a member removed are counted as before.
async fn the_schemes_counts_follow_the_members_holdername(place: Place) {
    let s = place.open().await;
    let h = |n: u128| guid(n).to_string();
    s.apply_members(
        vec![add("A", 1, &[1, 2, 4], "a"), add("B", 1, &[3], "b")],
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        scheme_counts(&s).await,
        [
            (h(1), "S0".into(), 1),
            (h(1), "S1".into(), 2),
            (h(1), "S2".into(), 1)
        ]
    );
    // A moves to holdername 2, keeps pensions 1 and 4 and takes pension 5 (scheme S2).
    s.apply_members(vec![add("A", 2, &[1, 4, 5], "a2")], false)
        .await
        .unwrap();
    assert_eq!(
        scheme_counts(&s).await,
        [
            (h(1), "S0".into(), 1),
            (h(2), "S1".into(), 2),
            (h(2), "S2".into(), 1)
        ]
    );
    let p = s.pension(guid(5)).await.unwrap().unwrap();
    assert_eq!((p.member_id.as_str(), p.holdername), ("A", guid(2)));
    // Pension 4 renamed to scheme T: its count moves; pensions 1 and 5, rewritten with new view
    // data under the same scheme, leave theirs.
    let mut renamed = upsert("A", 2, &[1, 4, 5], "a3");
    renamed.pensions[1].scheme_name = "T".into();
    renamed.pensions[0].view_data = br#"{"n":"new"}"#.to_vec();
    s.apply_members(vec![MemberChange::Upsert(renamed)], false)
        .await
        .unwrap();
    assert_eq!(
        scheme_counts(&s).await,
        [
            (h(1), "S0".into(), 1),
            (h(2), "S1".into(), 1),
            (h(2), "S2".into(), 1),
            (h(2), "T".into(), 1)
        ]
    );
    let p = s.pension(guid(1)).await.unwrap().unwrap();
    assert_eq!(p.view_data, serde_json::json!({"n": "new"}));
    s.apply_members(vec![MemberChange::Remove("A".into())], false)
        .await
        .unwrap();
    assert_eq!(scheme_counts(&s).await, [(h(1), "S0".into(), 1)]);
    assert!(s.pension(guid(1)).await.unwrap().is_none());
}

/// A member as a V13 store held it: member ID, holdername, and its pensions' asset GUIDs and
/// scheme names.
type V13Member = (&'static str, u128, &'static [(u128, &'static str)]);

/// Members and pensions as a store of schema version 13 held them (asset GUIDs as text, each
/// pension with its holdername): `(member ID, holdername, [(asset GUID, scheme name)])`.
const V13_MEMBERS: [V13Member; 2] = [
    ("A", 7, &[(1, "Acme"), (2, "Acme")]),
    ("B", 8, &[(3, "Bee")]),
];

/// The view data a V13 store held for pension `g`.
fn v13_view_data(g: u128) -> String {
    format!(r#"{{"n":{g}}}"#)
}

/// A value written to a V13 store.
enum V13Value {
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
}

/// The statements that write [`V13_MEMBERS`], with their values.
fn v13_rows() -> Vec<(&'static str, Vec<V13Value>)> {
    let k = key();
    let mut rows = Vec::new();
    for (slot, (id, h, pensions)) in (1..).zip(V13_MEMBERS) {
        let record = format!(r#"{{"tag":"{id}"}}"#);
        rows.push((
            "INSERT INTO members (member_id, holdername, sealed, slot) VALUES ($1, $2, $3, $4)",
            vec![
                V13Value::Text(id.to_owned()),
                V13Value::Text(guid(h).to_string()),
                V13Value::Bytes(packed::seal(&k, id.as_bytes(), record.as_bytes())),
                V13Value::Int(slot),
            ],
        ));
        for (g, scheme) in pensions {
            let text = guid(*g).to_string();
            let sealed = packed::seal(&k, text.as_bytes(), v13_view_data(*g).as_bytes());
            rows.push((
                "INSERT INTO pensions (asset_guid, member_id, holdername, scheme_name, view_data,
                     statement_date)
                 VALUES ($1, $2, $3, $4, $5, '2026-06-05')",
                vec![
                    V13Value::Text(text),
                    V13Value::Text(id.to_owned()),
                    V13Value::Text(guid(h).to_string()),
                    V13Value::Text(scheme.to_string()),
                    V13Value::Bytes(sealed),
                ],
            ));
        }
    }
    rows
}

/// A store of schema version 13 (SQLite or PostgreSQL) with [`V13_MEMBERS`], then opened.
async fn v13_store(place: &Place) -> Store {
    match place {
        Place::Sqlite(dir) => {
            let mut conn = rusqlite::Connection::open(dir.path().join("s.sqlite")).unwrap();
            super::super::schema::runner(Dialect::Sqlite, &[])
                .set_target(refinery::Target::Version(13))
                .run(&mut conn)
                .unwrap();
            for (sql, values) in v13_rows() {
                let bound = values.into_iter().map(|v| match v {
                    V13Value::Text(t) => rusqlite::types::Value::Text(t),
                    V13Value::Bytes(b) => rusqlite::types::Value::Blob(b),
                    V13Value::Int(i) => rusqlite::types::Value::Integer(i),
                });
                conn.execute(sql, rusqlite::params_from_iter(bound))
                    .unwrap();
            }
        }
        Place::Postgres(url) => {
            let (mut c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            super::super::schema::runner(Dialect::Postgres, &[])
                .set_target(refinery::Target::Version(13))
                .run_async(&mut c)
                .await
                .unwrap();
            for (sql, values) in v13_rows() {
                let bound: Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> = values
                    .into_iter()
                    .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync> {
                        match v {
                            V13Value::Text(t) => Box::new(t),
                            V13Value::Bytes(b) => Box::new(b),
                            V13Value::Int(i) => Box::new(i),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    bound.iter().map(AsRef::as_ref).collect();
                c.execute(sql, &refs).await.unwrap();
            }
        }
    }
    place.open().await
}

/// A store's pensions from before they were kept compactly (V14) are kept: each opens with its
/// member, holdername, scheme and view data, the schemes' counts stay, and changes after count
/// as they should.
async fn pensions_stored_before_are_kept_compactly(place: Place) {
    let s = v13_store(&place).await;
    for (id, h, pensions) in V13_MEMBERS {
        for (g, scheme) in pensions {
            let p = s.pension(guid(*g)).await.unwrap().unwrap();
            assert_eq!(
                (p.member_id.as_str(), p.holdername, p.scheme_name.as_str()),
                (id, guid(h), *scheme)
            );
            assert_eq!(p.view_data.to_string(), v13_view_data(*g));
            assert_eq!(
                p.statement_date,
                chrono::NaiveDate::from_ymd_opt(2026, 6, 5)
            );
        }
    }
    assert_eq!(s.key_sample(16).await.unwrap().failed, 0);
    let h = |n: u128| guid(n).to_string();
    assert_eq!(
        scheme_counts(&s).await,
        [(h(7), "Acme".into(), 2), (h(8), "Bee".into(), 1)]
    );
    // A stored pension is still found by its GUID: another member's record with it is refused.
    let refused = s
        .apply_members(vec![add("C", 8, &[2], "c")], false)
        .await
        .unwrap();
    assert_eq!(refused[0].applied, Applied::PensionHeld);
    assert_eq!(refused[0].held_by, [(guid(2), "A".to_owned())]);
    s.apply_members(vec![add("A", 8, &[1], "a")], false)
        .await
        .unwrap();
    assert_eq!(
        scheme_counts(&s).await,
        [(h(8), "Bee".into(), 1), (h(8), "S1".into(), 1)]
    );
}

mod compact_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_schemes_counts_follow_the_members_holdername() {
        super::the_schemes_counts_follow_the_members_holdername(super::Place::sqlite()).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pensions_stored_before_are_kept_compactly() {
        super::pensions_stored_before_are_kept_compactly(super::Place::sqlite()).await
    }
}

mod compact_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_schemes_counts_follow_the_members_holdername() {
        super::the_schemes_counts_follow_the_members_holdername(super::Place::postgres().await)
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pensions_stored_before_are_kept_compactly() {
        super::pensions_stored_before_are_kept_compactly(super::Place::postgres().await).await
    }
}
