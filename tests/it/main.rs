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

// Abuse of the listeners: ops limits, h2 idling, pipelined headers, request IDs, Host, access.
mod hardening;

// Property tests over real sockets: any find body, headers or view path get 202, 4xx or 503.
mod fuzz;

// Member data that changes while serving: live imports, deltas, snapshots, schemes.
mod members;

// Keys and certificates swapped while serving: no failed request, bad files refused.
mod reload;

// Two instances of the binary on one PostgreSQL database: shared finds, one SIGKILLed, none lost.
mod instances;

// PDP reporting: the six daily submissions against the simulator's stub validation, claims
// across crashes, faults, planned downtime, the operator commands.
mod report;

// The operator console: sign-in, sessions, CSRF, headers, the portal's role rules over HTTP,
// possible matches resolved through `peis::resolve`, and headless Chromium signing in.
mod console;
