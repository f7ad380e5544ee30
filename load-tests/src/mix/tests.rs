//! Unit tests of the parent module.

use std::collections::HashSet;

use super::*;

fn members(n: u64) -> Vec<MemberRecord> {
    generate_members(7, n)
}

#[test]
fn same_seed_same_picks() {
    let ms = members(100);
    let none = HashSet::new();
    let mut a = Picker::new(1, Mix::default(), &ms, 0.5, &none).unwrap();
    let mut b = Picker::new(1, Mix::default(), &ms, 0.5, &none).unwrap();
    let pa: Vec<Pick> = (0..1000).map(|_| a.next_pick()).collect();
    let pb: Vec<Pick> = (0..1000).map(|_| b.next_pick()).collect();
    assert_eq!(pa, pb);
    let mut c = Picker::new(2, Mix::default(), &ms, 0.5, &none).unwrap();
    let pc: Vec<Pick> = (0..1000).map(|_| c.next_pick()).collect();
    assert_ne!(pa, pc, "another seed, another sequence");
}

#[test]
fn weights_shape_the_mix() {
    let ms = members(100);
    let none = HashSet::new();
    let mix = Mix {
        yes: 6.0,
        possible: 1.0,
        no: 3.0,
    };
    let mut p = Picker::new(3, mix, &ms, 1.0, &none).unwrap();
    let n = 20_000;
    let picks: Vec<Pick> = (0..n).map(|_| p.next_pick()).collect();
    let share = |k| picks.iter().filter(|p| p.kind == k).count() as f64 / n as f64;
    assert!((share(FindKind::Yes) - 0.6).abs() < 0.02);
    assert!((share(FindKind::Possible) - 0.1).abs() < 0.02);
    assert!((share(FindKind::No) - 0.3).abs() < 0.02);

    let only_no = Mix {
        yes: 0.0,
        possible: 0.0,
        no: 1.0,
    };
    let mut p = Picker::new(3, only_no, &ms, 1.0, &none).unwrap();
    assert!((0..100).all(|_| p.next_pick().kind == FindKind::No));
}

#[test]
fn matching_finds_use_members_with_a_nino() {
    let ms = members(300);
    assert!(
        ms.iter().any(|m| m.nino.is_none()),
        "the fixture has some without"
    );
    let mut p = Picker::new(4, Mix::default(), &ms, 1.0, &HashSet::new()).unwrap();
    for _ in 0..5000 {
        let pick = p.next_pick();
        if pick.kind != FindKind::No {
            assert!(ms[pick.member].nino.is_some());
        }
    }
}

#[test]
fn only_the_first_yes_find_of_a_member_is_followed() {
    let ms = members(5);
    let already = HashSet::from([yes_pei(&ms[0]).unwrap()]);
    let yes = Mix {
        yes: 1.0,
        possible: 0.0,
        no: 0.0,
    };
    let mut p = Picker::new(5, yes, &ms, 1.0, &already).unwrap();
    let mut followed = HashSet::new();
    for _ in 0..200 {
        let pick = p.next_pick();
        if pick.follow {
            assert!(followed.insert(pick.member), "followed twice");
            assert_ne!(pick.member, 0, "its PeI was registered before");
        }
    }
    let with_nino = ms.iter().skip(1).filter(|m| m.nino.is_some()).count();
    assert_eq!(followed.len(), with_nino);
}

#[test]
fn sample_share_and_no_finds() {
    let ms = members(100);
    let mut p = Picker::new(6, Mix::default(), &ms, 0.0, &HashSet::new()).unwrap();
    assert!((0..1000).all(|_| !p.next_pick().follow));
    let possible = Mix {
        yes: 0.0,
        possible: 1.0,
        no: 1.0,
    };
    let mut p = Picker::new(6, possible, &ms, 1.0, &HashSet::new()).unwrap();
    for _ in 0..1000 {
        let pick = p.next_pick();
        assert_eq!(pick.follow, pick.kind == FindKind::Possible);
    }
}

#[test]
fn mix_flag_parses_and_checks() {
    assert_eq!(
        Mix::parse("6, 1 ,3").unwrap(),
        Mix {
            yes: 6.0,
            possible: 1.0,
            no: 3.0
        }
    );
    assert!(Mix::parse("1,1").is_err());
    assert!(Mix::parse("0,0,0").is_err());
    assert!(Mix::parse("1,-1,1").is_err());
    assert!(Mix::parse("a,1,1").is_err());
}

#[test]
fn member_files_round_trip_and_name_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    generate::write_jsonl(&mut f, 20, 9).unwrap();
    let read = read_members(&path).unwrap();
    assert_eq!(read.len(), 20);
    assert_eq!(read[3].member_id, generate_members(9, 20)[3].member_id);

    std::fs::write(&path, "{\"memberId\": \"M1\", \"nino\": \"QQ123456C\"}\n").unwrap();
    let e = read_members(&path).unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
    assert!(!e.contains("QQ123456C"), "no personal data in errors: {e}");
}
