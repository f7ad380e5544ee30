//! Unit tests of the parent module.

use std::path::{Path, PathBuf};

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadArgs,
}

fn args(flags: &[&str]) -> LoadArgs {
    let mut argv = vec!["load"];
    argv.extend_from_slice(flags);
    Cli::try_parse_from(argv).unwrap().args
}

const STEADY: &str = r#"
name = "steady"
description = "2000 finds/s"
mode = "open"
rate = 2000.0
duration_s = 60
connections = 8
max_in_flight = 1000
mix = { yes = 2, possible = 1, no = 1 }
follow_completion = true
completion_sample = 0.01
cas_control = "http://127.0.0.1:8445/"
cas_faults = { latency_ms = 200, error_rate = 0.05 }
seed = 9
member_count = 500
recovery = { rate = 50.0, duration_s = 5 }
"#;

fn out(name: &str) -> PathBuf {
    PathBuf::from("results").join(name)
}

#[test]
fn a_scenario_resolves_over_the_defaults() {
    let s = Scenario::parse(STEADY).unwrap();
    let p = Plan::resolve(&args(&[]), Some((Path::new("x/steady.toml"), s)), out).unwrap();
    assert_eq!(p.name, "steady");
    assert_eq!(p.mode, Mode::Open);
    assert_eq!(p.rate, 2000.0);
    assert_eq!(p.duration_s, 60.0);
    assert_eq!(p.connections, 8);
    assert_eq!(p.max_in_flight, 1000);
    assert_eq!(p.concurrency, defaults::CONCURRENCY);
    assert_eq!(
        p.mix,
        Mix {
            yes: 2.0,
            possible: 1.0,
            no: 1.0
        }
    );
    assert!(p.follow_completion);
    assert_eq!(p.completion_sample, 0.01);
    assert_eq!(p.cas_control.as_deref(), Some("http://127.0.0.1:8445"));
    let f = p.cas_faults.as_ref().unwrap();
    assert_eq!(
        (f.latency_ms, f.error_rate, f.error_status),
        (200, 0.05, 503)
    );
    assert_eq!(p.seed, 9);
    assert_eq!(p.member_count, 500);
    assert_eq!(p.max_error_rate, defaults::MAX_ERROR_RATE);
    let r = p.recovery.as_ref().unwrap();
    assert_eq!((r.rate, r.duration_s, r.settle_s), (50.0, 5.0, 0.0));
    assert_eq!(p.target, defaults::TARGET);
    assert_eq!(p.out, PathBuf::from("results/steady"));
    assert_eq!(p.scenario_file.as_deref(), Some(Path::new("x/steady.toml")));
}

#[test]
fn flags_override_the_scenario() {
    let s = Scenario::parse(STEADY).unwrap();
    let a = args(&[
        "--closed-loop",
        "--concurrency",
        "16",
        "--rate",
        "10",
        "--duration",
        "2.5",
        "--mix",
        "0,0,1",
        "--seed",
        "1",
        "--target",
        "https://127.0.0.1:18444/",
        "--name",
        "other",
        "--max-error-rate",
        "0",
        "--expect-shedding",
        "--out",
        "/tmp/x",
    ]);
    let p = Plan::resolve(&a, Some((Path::new("steady.toml"), s)), out).unwrap();
    assert_eq!(p.mode, Mode::Closed);
    assert_eq!(p.concurrency, 16);
    assert_eq!(p.rate, 10.0);
    assert_eq!(p.duration_s, 2.5);
    assert_eq!(
        p.mix,
        Mix {
            yes: 0.0,
            possible: 0.0,
            no: 1.0
        }
    );
    assert_eq!(p.seed, 1);
    assert_eq!(p.target, "https://127.0.0.1:18444");
    assert_eq!(p.name, "other");
    assert_eq!(p.max_error_rate, 0.0);
    assert!(p.expect_shedding);
    assert_eq!(p.out, PathBuf::from("/tmp/x"));
    // Not given as flags: from the file.
    assert_eq!(p.connections, 8);
    assert_eq!(p.member_count, 500);
}

#[test]
fn without_a_scenario_the_defaults_apply() {
    let p = Plan::resolve(&args(&[]), None, out).unwrap();
    assert_eq!(p.name, "adhoc");
    assert_eq!(p.mode, Mode::Open);
    assert_eq!(p.rate, defaults::RATE);
    assert_eq!(p.duration_s, defaults::DURATION_S);
    assert_eq!(p.connections, defaults::CONNECTIONS);
    assert_eq!(p.max_in_flight, defaults::MAX_IN_FLIGHT);
    assert_eq!(p.seed, defaults::SEED);
    assert_eq!(p.member_count, defaults::MEMBER_COUNT);
    assert_eq!(p.mix, Mix::default());
    assert!(!p.follow_completion);
    assert!(p.recovery.is_none());
    assert_eq!(p.certs, PathBuf::from("certs"));
    assert_eq!(
        Plan::resolve(&LoadArgs::default(), None, out).unwrap(),
        p,
        "LoadArgs::default() is no flags"
    );
}

#[test]
fn bad_scenarios_are_refused() {
    assert!(
        Scenario::parse("rate = 10\nbogus = 1\n").is_err(),
        "unknown field"
    );
    assert!(Scenario::parse("mode = \"sideways\"\n").is_err());
    assert!(Scenario::parse("cas_faults = { latency = 1 }\n").is_err());
    let refused = |toml: &str, flags: &[&str]| {
        let s = Scenario::parse(toml).unwrap();
        Plan::resolve(&args(flags), Some((Path::new("s.toml"), s)), out).is_err()
    };
    assert!(refused("rate = 0.0\n", &[]));
    assert!(refused("duration_s = -1.0\n", &[]));
    assert!(
        refused("follow_completion = true\n", &[]),
        "needs cas_control"
    );
    assert!(refused("completion_sample = 1.5\n", &[]));
    assert!(refused("view_rate = 5.0\n", &[]), "views need cas_control");
    assert!(refused(
        "",
        &["--view-rate=-1", "--cas-control", "http://127.0.0.1:8445"]
    ));
    assert!(!refused(
        "view_rate = 5.0\ncas_control = \"http://127.0.0.1:8445\"\n",
        &[]
    ));
    assert!(refused("", &["--target", "http://127.0.0.1:8443"]));
    assert!(refused("", &["--connections", "0"]));
    assert!(refused("recovery = { rate = 0.0, duration_s = 1 }\n", &[]));
    assert!(refused("name = \"../up\"\n", &[]));
    // Closed loop ignores the rate.
    assert!(!refused("mode = \"closed\"\nrate = 0.0\n", &[]));
}

#[test]
fn shipped_scenarios_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path).unwrap();
            Plan::resolve(&args(&[]), Some((&path, s)), out)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 6, "{seen} scenarios");
}
