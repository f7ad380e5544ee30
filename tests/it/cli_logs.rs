//! What the real binary prints: a command prints its own output, and the library's logs (the
//! store's migrations among them) only from `warn` up unless `RUST_LOG` asks for more; `serve`
//! logs its running at `info`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::Env;

/// A config file naming this environment's store (SQLite, or its PostgreSQL database), data
/// key, server identity, view signing key and CAS client identity, on port 0.
fn config_file(env: &Env) -> PathBuf {
    let c = env.config();
    let store = match &env.postgres {
        None => format!("path = {:?}", c.store.path),
        Some(url) => format!("backend = \"postgres\"\nurl = {url:?}"),
    };
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nops_listen = \"127.0.0.1:0\"\n\
         [tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\
         [store]\n{store}\n[crypto]\ndata_key_file = {:?}\n\
         [view]\nsigning_key = {:?}\ncalendar = {:?}\n\
         [cas]\nclient_cert = {:?}\nclient_key = {:?}\nca = {:?}\n\
         [workers]\nmax_in_flight = 0\n",
        c.tls.cert,
        c.tls.key,
        c.tls.client_ca,
        c.crypto.data_key_file.unwrap(),
        c.view.signing_key,
        c.view.calendar,
        c.cas.client_cert,
        c.cas.client_key,
        c.cas.ca,
    );
    let path = env.dir.path().join("cli-logs.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// A file of `count` generated members, as `members generate` writes it.
fn members_file(env: &Env, count: u64) -> PathBuf {
    let path = env.dir.path().join("members.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    pdp_provider::members::generate::write_jsonl(std::io::BufWriter::new(file), count, 7).unwrap();
    path
}

/// The real binary with `args`, `RUST_LOG` set to `rust_log` or absent, no colours.
fn binary(args: &[&str], rust_log: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pdp-provider"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("PDP_LOG_FORMAT");
    if let Some(level) = rust_log {
        cmd.env("RUST_LOG", level);
    }
    cmd
}

/// `members import FILE --config C` on a store that has never been opened, so the migrations run.
async fn import_into_new_store(env: &Env, rust_log: Option<&str>) -> Output {
    let config = config_file(env);
    let members = members_file(env, 5);
    let mut cmd = binary(&["members", "import"], rust_log);
    cmd.arg(&members).arg("--config").arg(&config);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of `out` (stdout and stderr) a log subscriber wrote at `level` or from refinery.
fn log_lines(out: &Output, level: &str) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .chain(text(&out.stderr).lines())
        .filter(|l| l.contains(&format!(" {level} ")) || l.contains("refinery"))
        .map(str::to_owned)
        .collect()
}

async fn import_prints_only_its_own_output(env: Env) {
    let quiet = import_into_new_store(&env, None).await;
    let (stdout, stderr) = (text(&quiet.stdout), text(&quiet.stderr));
    assert!(quiet.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("5 added"), "{stdout}");
    assert_eq!(log_lines(&quiet, "INFO"), Vec::<String>::new(), "{stderr}");
    assert_eq!(stderr, "", "nothing but the command's own output");
    // The store exists and is current: a second import finds everything unchanged, still quiet.
    let again = import_into_new_store(&env, None).await;
    assert!(text(&again.stdout).contains("5 unchanged"), "{again:?}");
    assert_eq!(text(&again.stderr), "");
}

async fn rust_log_info_brings_the_library_logs_back(env: Env) {
    let loud = import_into_new_store(&env, Some("info")).await;
    let stderr = text(&loud.stderr);
    assert!(loud.status.success(), "{stderr}");
    assert!(text(&loud.stdout).contains("5 added"));
    let info = log_lines(&loud, "INFO");
    assert!(
        info.iter()
            .any(|l| l.contains("refinery") && l.contains("applying migration")),
        "{stderr}"
    );
    // Logs go to stderr; stdout stays the command's own.
    assert!(!text(&loud.stdout).contains(" INFO "), "{loud:?}");
}

#[tokio::test]
async fn members_import_prints_only_its_own_output() {
    import_prints_only_its_own_output(Env::new()).await;
}

#[tokio::test]
async fn members_import_prints_only_its_own_output_on_postgres() {
    import_prints_only_its_own_output(Env::postgres().await).await;
}

#[tokio::test]
async fn rust_log_info_shows_the_migrations_again() {
    rust_log_info_brings_the_library_logs_back(Env::new()).await;
}

#[tokio::test]
async fn rust_log_info_shows_the_migrations_again_on_postgres() {
    rust_log_info_brings_the_library_logs_back(Env::postgres().await).await;
}

#[tokio::test]
async fn other_commands_that_open_the_store_are_quiet_too() {
    let env = Env::new();
    let config = config_file(&env);
    for args in [
        &["finds", "failed"][..],
        &["peis", "flagged"][..],
        &["audit", "purge"][..],
    ] {
        let mut cmd = binary(args, None);
        cmd.arg("--config").arg(&config);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(text(&out.stderr), "", "{args:?}");
        assert_eq!(log_lines(&out, "INFO"), Vec::<String>::new(), "{args:?}");
    }
}

/// Starts `serve` without `RUST_LOG` and returns the first log line that says it is listening,
/// or what it printed before it stopped.
fn serve_until_listening(config: &Path) -> Result<String, Vec<String>> {
    let mut child = binary(&["serve", "--config"], None)
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("endpoint listening") {
                let _ = tx.send(Ok(line));
                return;
            }
            seen.push(line);
        }
        let _ = tx.send(Err(seen));
    });
    // A bound on a hung start only; the assertion is on what was logged.
    let answer = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| Err(vec!["no answer in 60 s".into()]));
    child.kill().unwrap();
    child.wait().unwrap();
    answer
}

#[tokio::test]
async fn serve_still_logs_its_running_at_info() {
    let env = Env::new();
    let config = config_file(&env);
    let line = tokio::task::spawn_blocking(move || serve_until_listening(&config))
        .await
        .unwrap()
        .unwrap_or_else(|seen| panic!("serve logged no INFO line saying it listens: {seen:?}"));
    assert!(line.contains(" INFO "), "{line}");
}
