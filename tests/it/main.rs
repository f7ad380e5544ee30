//! The one integration-test binary. Every test talks to a real server over real sockets.

// Shared set-up: a dev PKI per test, servers on port 0, mTLS clients.
mod harness;

// TLS refusals: no client certificate, another CA, TLS 1.1, plain HTTP; TLS 1.2 and 1.3 accepted.
mod tls;

// POST /find-requests: the ACK, every error status, duplicates, shedding, audit, limits.
mod find;

// Matching and PeI registration with the CAS simulator: outcomes, retries, budget, duplicates.
mod registration;

// The view endpoint as MaPS' dashboard calls it: UMA flow, signed token, values timing,
// de-registration, PAT refresh, CAS down.
mod view;

// The real binary: kill -9 right after ACKs, restart, every ACKed find is still there; SIGTERM.
mod crash;

// Refusals before a handler limited per client identity: 429, aggregate audit, finds unaffected.
mod limits;

// Abuse of the listeners: ops limits, h2 idling, pipelined headers, request IDs, Host, access.
mod hardening;

// Property tests over real sockets: any find body, headers or view path get 202, 4xx or 503.
mod fuzz;

// Member data that changes while serving: live imports, deltas, snapshots, schemes.
mod members;

// Keys and certificates swapped while serving: no failed request, bad files refused.
mod reload;

// Faults: a data key that does not open the stored members, PostgreSQL stopped under load, the
// ops listener held at its connection cap.
mod faults;

// Two instances of the binary on one PostgreSQL database: shared finds, one SIGKILLed, none lost.
mod instances;

// PDP reporting: the six daily submissions against the simulator's stub validation, claims
// across crashes, faults, planned downtime, the operator commands.
mod report;

// The operator console: sign-in, sessions, CSRF, headers, the portal's role rules over HTTP,
// possible matches resolved through `peis::resolve`, and headless Chromium signing in.
mod console;

// Console users: edits that keep roles, suspension apart, the last active PBC kept, command-line
// recovery, TOTP second factor (enrolment, codes once, recovery codes), own passwords, sign-in
// throttling per address and per user with no typed text stored; the demo's console; Chromium.
mod console_users;

// The console's work pages: possible matches beside the searcher's data (sealed until resolved
// or timed out), the audit export's filter and stream, the overview's counts, schemes; in
// headless Chromium too.
mod console_work;

// What the real binary prints: a command's own output, library logs from warn up unless RUST_LOG
// asks; serve logs at info.
mod cli_logs;

// Served certificates checked before service: expired, not yet valid or not matching its key,
// at start and on reload (file change or SIGHUP); the old one keeps serving.
mod validity;

// Wire edges: a repeated Authorization, content and transfer codings, keep-alive between
// requests, TLS 1.0/1.1 refusals counted, an access list nobody is on.
mod edges;

// Backups of the embedded store while finds flow, checked restores (damage, schema, a missing
// key named by its ID), the server's scheduled backups and their gauge.
mod backup;

// A primary with a synchronous standby (scripts/pg-standby), two instances naming both hosts:
// the primary killed under load and the standby promoted; no ACKed find lost, PeIs once each.
mod standby;

// `pdp-provider selftest`: PDP's system test scenarios against the project's own endpoint (all
// pass, the evidence renders in Chromium) and against broken ones (the matching cases fail).
mod selftest;
