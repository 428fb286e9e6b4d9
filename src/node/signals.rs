//! SIGINT/SIGTERM as a stop request: the signals are blocked in every
//! thread and taken synchronously by one listener thread with `sigwait`, so
//! no code runs in signal-handler context and nothing async-unsafe can happen.
//!
//! [`block_termination_signals`] must run before any other thread starts
//! (threads inherit the mask). It never exits the process itself.

use super::StopReason;
use crossbeam_channel::Sender;
use std::io;

fn termination_set() -> io::Result<libc::sigset_t> {
    // SAFETY: sigemptyset/sigaddset initialize and fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::sigemptyset(&mut set) != 0
            || libc::sigaddset(&mut set, libc::SIGINT) != 0
            || libc::sigaddset(&mut set, libc::SIGTERM) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it
/// starts afterwards, so only [`spawn_listener`] receives them.
pub fn block_termination_signals() -> io::Result<()> {
    let set = termination_set()?;
    // SAFETY: `set` is initialized; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Starts the `signals` thread: each SIGINT/SIGTERM becomes a
/// [`StopReason::Signal`]. It stays blocked in `sigwait` for the life of
/// the process (it holds no resources), so it is not joined.
pub fn spawn_listener(stop: Sender<StopReason>) -> io::Result<()> {
    let set = termination_set()?;
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `set` is initialized and `signal` is a valid out pointer.
            let rc = unsafe { libc::sigwait(&set, &mut signal) };
            if rc != 0 {
                log::error!(
                    "sigwait failed ({}); SIGINT/SIGTERM no longer stop the node, use the stop RPC",
                    io::Error::from_raw_os_error(rc)
                );
                return;
            }
            log::info!("signal {signal} received: stopping");
            if stop.try_send(StopReason::Signal(signal)).is_err() {
                // A stop is already under way (or done).
                log::debug!("stop already requested");
            }
        })?;
    Ok(())
}
