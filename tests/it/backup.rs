//! Backups of the embedded store and checked restores, with the real binary: `backup --to`
//! while finds flow, `restore --from` into a fresh directory, the restored store served again;
//! copies refused for damage, a newer schema or a data key not configured (named by its key
//! ID); the server's own scheduled backups, their pruning and their gauge.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::tls::pki::files;

use crate::harness::{find_body, post_find, Env};

/// Runs `pdp-provider args…`.
fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
        .args(args)
        .output()
        .unwrap()
}

/// Writes a `serve` config for `env` with the data key in `key` and `extra` sections.
fn write_config(env: &Env, key: &Path, cas: &str, extra: &str) -> PathBuf {
    let path = env
        .dir
        .path()
        .join(format!("cfg-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, env.serve_toml(key, cas, extra)).unwrap();
    path
}

/// `serve` on `config`, with the ecosystem address it logs.
fn serve_on(config: &Path) -> (Child, String) {
    let mut child = crate::harness::serve(config);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" addr=").nth(1) {
                let port = rest
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .map(|p| p.trim_matches(|c: char| !c.is_ascii_digit()).to_owned());
                if let Some(port) = port {
                    let _ = tx.send(port);
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve started");
    (child, format!("https://127.0.0.1:{port}/find-requests"))
}

/// Every find's state (and outcome) as a store file has it.
fn states(db: &Path) -> HashMap<String, (String, Option<String>)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut s = c
        .prepare(
            // A no-match find is its ACK's audit record alone.
            "SELECT request_id, state, outcome FROM find_requests
             UNION ALL
             SELECT request_id, 'done', outcome FROM audit_log
              WHERE endpoint = 'POST /find-requests' AND outcome = 'no-match'",
        )
        .unwrap();
    s.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How far along a find is: states only move forward.
fn rank(state: &str) -> u8 {
    match state {
        "queued" => 0,
        "working" => 1,
        "done" | "failed" => 2,
        s => panic!("unknown state {s}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_find_acked_before_it_in_its_state() {
    let env = Env::new();
    let members = env.with_members(400).await;
    let cas = crate::harness::cas_sim(&env).await;
    // Slow registrations: finds are queued, worked and ended while the copy is taken.
    cas.state.set_faults(pdp_sim::cas::Faults {
        latency_ms: 100,
        ..Default::default()
    });
    let workers = "[workers]\nmax_in_flight = 8\nbackoff_base_ms = 50\npoll_interval_ms = 100\n";
    let key = env.cert(files::DATA_KEY);
    let config = write_config(&env, &key, &cas.base_url(), workers);
    let (mut server, url) = serve_on(&config);

    // Finds flow until told to stop: every ACK recorded in order.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let bodies: Vec<serde_json::Value> = members
        .iter()
        .filter(|m| m.nino.is_some())
        .map(|m| find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string()))
        .collect();
    let mut load = tokio::task::JoinSet::new();
    for lane in 0..4 {
        let (pfs, url, acked, stop) = (env.pfs(), url.clone(), acked.clone(), stop.clone());
        let bodies: Vec<_> = bodies.iter().skip(lane).step_by(4).cloned().collect();
        load.spawn(async move {
            for (i, body) in bodies.into_iter().cycle().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let body = if i % 3 == 2 { find_body() } else { body };
                let id = uuid::Uuid::new_v4().to_string();
                let status = post_find(&pfs, &url, &id, &body).await.status();
                assert_eq!(status, 202, "{id}");
                acked.lock().unwrap().push(id);
            }
        });
    }
    crate::harness::eventually(|| (acked.lock().unwrap().len() >= 60).then_some(())).await;

    // Before the backup begins: what was ACKed, and each find's state on disk.
    let acked_before: Vec<String> = acked.lock().unwrap().clone();
    let before = states(&env.store_path());
    let backup = env.dir.path().join("backups").join("b.sqlite");
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
    let (config_s, backup_s) = (config.to_str().unwrap(), backup.to_str().unwrap());
    let out = tokio::task::spawn_blocking({
        let (c, b) = (config_s.to_owned(), backup_s.to_owned());
        move || cli(&["backup", "--to", &b, "--config", &c])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = states(&env.store_path());
    let acked_during = acked.lock().unwrap().len() - acked_before.len();
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = load.join_next().await {
        r.unwrap();
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(acked_during > 0, "no find was ACKed while the backup ran");

    // A fresh directory, the same data key: restored, checked.
    let fresh = Env::new();
    let fresh_config = write_config(&fresh, &key, &cas.base_url(), workers);
    let out = cli(&[
        "restore",
        "--from",
        backup_s,
        "--config",
        fresh_config.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("integrity ok"), "{stdout}");
    let key_id = hex::encode(env.key().active_id());
    assert!(stdout.contains(&key_id), "{stdout}");

    // Every find ACKed before the backup began is there, in the state it had: no earlier than
    // before the backup, no later than after it; one already at its end, exactly as it was.
    let restored = states(&fresh.store_path());
    for id in &acked_before {
        let (b, a) = (&before[id], &after[id]);
        let r = restored
            .get(id)
            .unwrap_or_else(|| panic!("{id} lost by the backup"));
        assert!(
            rank(&b.0) <= rank(&r.0) && rank(&r.0) <= rank(&a.0),
            "{id}: {r:?}, before {b:?}, after {a:?}"
        );
        if rank(&b.0) == 2 {
            assert_eq!(r, b, "{id}");
        }
    }
    // The copy is one snapshot: nothing in it that the live store did not have after it.
    for (id, r) in &restored {
        let a = after
            .get(id)
            .unwrap_or_else(|| panic!("{id} not in the store"));
        assert!(rank(&r.0) <= rank(&a.0), "{id}: {r:?} after {a:?}");
    }

    // The restored store serves: finds are ACKed, and those it held queued reach their end.
    cas.state.set_faults(Default::default());
    let (mut restored_server, url) = serve_on(&fresh_config);
    let id = uuid::Uuid::new_v4().to_string();
    let status = post_find(&fresh.pfs(), &url, &id, &find_body())
        .await
        .status();
    assert_eq!(status, 202);
    let open: Vec<String> = restored
        .iter()
        .filter(|(_, (s, _))| rank(s) < 2)
        .map(|(id, _)| id.clone())
        .collect();
    crate::harness::eventually_for(Duration::from_secs(60), || {
        let now = states(&fresh.store_path());
        open.iter().all(|id| rank(&now[id].0) == 2).then_some(())
    })
    .await;
    restored_server.kill().unwrap();
    restored_server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_damaged_copy_a_newer_schema_and_a_missing_key_by_its_id() {
    let env = Env::new();
    env.with_members(50).await;
    let key = env.cert(files::DATA_KEY);
    let config = write_config(&env, &key, "https://127.0.0.1:9", "");
    let backup = env.dir.path().join("b.sqlite");
    let out = cli(&[
        "backup",
        "--to",
        backup.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Never over an existing file.
    let again = cli(&[
        "backup",
        "--to",
        backup.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let fresh = Env::new();
    let restore = |from: &Path, key: &Path| {
        let cfg = write_config(&fresh, key, "https://127.0.0.1:9", "");
        let out = cli(&[
            "restore",
            "--from",
            from.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Another data key: refused, naming the key ID the copy needs.
    let (ok, err) = restore(&backup, &fresh.cert(files::DATA_KEY));
    assert!(!ok);
    let needed = hex::encode(env.key().active_id());
    assert!(err.contains(&format!("data key ID {needed}")), "{err}");
    assert!(!fresh.store_path().exists());
    // No data key at all: refused, naming it too.
    let (ok, err) = restore(&backup, &fresh.dir.path().join("no-such.key"));
    assert!(!ok);
    assert!(err.contains(&needed), "{err}");

    // A schema newer than this binary's.
    let newer = env.dir.path().join("newer.sqlite");
    std::fs::copy(&backup, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (999, 'from_the_future', '2030-01-01T00:00:00Z', '0')",
            [],
        )
        .unwrap();
    let (ok, err) = restore(&newer, &key);
    assert!(!ok);
    assert!(err.contains("schema migration 999"), "{err}");

    // Damage: a page of the members table overwritten.
    let damaged = env.dir.path().join("damaged.sqlite");
    std::fs::copy(&backup, &damaged).unwrap();
    let root: i64 = rusqlite::Connection::open(&damaged)
        .unwrap()
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'members'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut bytes = std::fs::read(&damaged).unwrap();
    let page = 4096 * (root as usize - 1);
    bytes[page..page + 4096].fill(0x5a);
    std::fs::write(&damaged, bytes).unwrap();
    let (ok, err) = restore(&damaged, &key);
    assert!(!ok);
    assert!(
        err.contains("integrity") || err.contains("malformed"),
        "{err}"
    );
    assert!(!fresh.store_path().exists());

    // The good copy with the right key: restored; a second restore over it is refused unless
    // --replace, which moves the store aside.
    let (ok, err) = restore(&backup, &key);
    assert!(ok, "{err}");
    let (ok, err) = restore(&backup, &key);
    assert!(!ok);
    assert!(err.contains("--replace"), "{err}");
    let cfg = write_config(&fresh, &key, "https://127.0.0.1:9", "");
    let out = cli(&[
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--replace",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved aside"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_backs_itself_up_on_schedule_keeps_the_newest_and_exports_the_time() {
    let env = Env::new();
    env.with_members(20).await;
    let dir = env.dir.path().join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    // Three older copies, a day old: the first backup is due at start.
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
    let seeded: Vec<PathBuf> = (1..=3)
        .map(|d| dir.join(format!("pdp-2026010{d}T000000.000Z.sqlite")))
        .collect();
    for p in &seeded {
        std::fs::write(p, b"old").unwrap();
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
    }
    let mut config = env.config();
    config.backup.directory = Some(dir.clone());
    config.backup.keep = 2;
    let server = crate::harness::Server::start(config).await;
    let taken = crate::harness::eventually_for(Duration::from_secs(30), || {
        let names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sqlite"))
            .collect();
        let new: Vec<&PathBuf> = names.iter().filter(|p| !seeded.contains(p)).collect();
        (!new.is_empty() && names.len() == 2).then(|| new[0].clone())
    })
    .await;
    // The newest seeded copy is kept beside the new one; the two older are gone.
    assert!(seeded[2].exists() && !seeded[0].exists() && !seeded[1].exists());
    let checked = pdp_provider::store::backup::check(&taken, Ok(&env.key())).unwrap();
    assert!(checked.sampled > 0);
    let metrics = server.metrics().await;
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} not exported"))
    };
    let at = line("pdp_backup_last_success_timestamp_seconds");
    let written = std::fs::metadata(&taken)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        at >= written - 1.0,
        "{at} before the copy was written ({written})"
    );
    assert_eq!(line("pdp_backup_interval_seconds"), 3600.0);
    assert_eq!(line("pdp_backups_total{outcome=\"ok\"}"), 1.0);
    server.stop().await;
}
