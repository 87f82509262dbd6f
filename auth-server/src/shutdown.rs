//! Waiting for the signal to stop.

use std::future::Future;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what service managers send). The handlers are
/// installed when this is called, not when the future is first polled: call it before the
/// server says it listens, so that a SIGTERM sent as soon as it does is a clean stop, not the
/// default action (an exit that drains nothing). Call it inside the runtime.
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = signal(SignalKind::interrupt()).and_then(|interrupt| {
            signal(SignalKind::terminate()).map(|terminate| (interrupt, terminate))
        });
        async move {
            match handlers {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(err) => {
                    log::warn!("cannot listen for SIGTERM ({err}); stopping on Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
