//! Waiting on something unless the run is cancelled first.

use std::future::Future;

use anyhow::{Result, bail};
use tokio_util::sync::CancellationToken;

/// Awaits `fut` unless `cancel` fires first; then `fut` is dropped (which kills a child
/// process spawned with `kill_on_drop`) and the error is a bare "cancelled".
pub async fn cancellable<F: Future>(cancel: &CancellationToken, fut: F) -> Result<F::Output> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => bail!("cancelled"),
        out = fut => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_the_output_or_cancelled() {
        let cancel = CancellationToken::new();
        assert_eq!(cancellable(&cancel, async { 7 }).await.unwrap(), 7);
        cancel.cancel();
        // A cancelled token wins even over a future that is already ready.
        let err = cancellable(&cancel, async { 7 }).await.unwrap_err();
        assert_eq!(err.to_string(), "cancelled");
        let err = cancellable(&cancel, std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "cancelled");
    }
}
