//! One shutdown signal for every task, and the deadline that bounds the drain.
//!
//! The order on SIGTERM or SIGINT: stop accepting, let in-flight HTTP requests finish (bounded by
//! `shutdown_grace_ms`), flush the journal, let workers finish their current item, exit 0.

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or SIGINT, then cancels `token`.
pub async fn on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot install SIGTERM handler");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = token.cancelled() => return,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            _ = token.cancelled() => return,
        }
    }
    token.cancel();
}
