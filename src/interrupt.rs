//! Ctrl-C and SIGTERM during a rollout: no new host starts; hosts in flight go on to the
//! end of their pipeline (write, steps, verification, or rollback), since stopping one
//! between its write and its FreeSWITCH steps is exactly what must not happen; then the run
//! exits non-zero with the hosts it never started reported `not run`. A second signal ends
//! the process at once (what is on the hosts stays consistent: writes are atomic and the
//! state record keeps every step owed until it ran).

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// A stop was asked for.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Listen for SIGINT and SIGTERM for the rest of the process.
pub fn install() {
    tokio::spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                STOP.store(true, Ordering::SeqCst);
                eprintln!("\ninterrupted: no new host starts; hosts in flight finish (or roll back). Signal again to stop at once.");
            } else {
                eprintln!("stopped at once");
                std::process::exit(130);
            }
        }
    });
}
