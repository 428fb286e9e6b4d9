//! Named threads (`top -H`, `perf` and `gdb` show roles) that log the whole
//! error chain when they die and tell the main thread they ended, so one
//! dead thread brings the node to an orderly stop instead of a silent hang.

use crossbeam_channel::Sender;
use std::error::Error;
use std::fmt::Write;
use std::thread::JoinHandle;

/// Why and how a thread ended, reported to the main thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadExit {
    pub name: &'static str,
    /// `false` if it returned an error or panicked.
    pub clean: bool,
}

/// Spawns thread `name` running `body`. Its end (clean, error or panic) is
/// sent to `exits`; an error is logged with every `source()` in its chain.
pub fn spawn<E, F>(
    name: &'static str,
    exits: Sender<ThreadExit>,
    body: F,
) -> std::io::Result<JoinHandle<()>>
where
    E: Error,
    F: FnOnce() -> Result<(), E> + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            // Sent on drop, so a panic is reported too.
            let mut guard = ExitGuard {
                exits,
                exit: ThreadExit { name, clean: false },
            };
            match body() {
                Ok(()) => {
                    log::debug!("thread {name} stopped");
                    guard.exit.clean = true;
                }
                Err(e) => log::error!("thread {name} died: {}", error_chain(&e)),
            }
        })
}

struct ExitGuard {
    exits: Sender<ThreadExit>,
    exit: ThreadExit,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!("thread {} panicked", self.exit.name);
        }
        // The main thread may be gone already at process exit.
        let _ = self.exits.try_send(self.exit.clone());
    }
}

/// `outer: cause: root cause`.
pub fn error_chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_names_every_cause() {
        let e = Outer(std::io::Error::other("disk gone"));
        assert_eq!(error_chain(&e), "outer: disk gone");
    }

    #[test]
    fn a_failing_thread_reports_an_unclean_exit() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        spawn("test-fails", tx.clone(), || {
            Err(Outer(std::io::Error::other("x")))
        })
        .unwrap()
        .join()
        .unwrap();
        spawn("test-ok", tx, || Ok::<(), Outer>(()))
            .unwrap()
            .join()
            .unwrap();
        let exits: Vec<ThreadExit> = rx.try_iter().collect();
        assert_eq!(
            exits,
            vec![
                ThreadExit {
                    name: "test-fails",
                    clean: false
                },
                ThreadExit {
                    name: "test-ok",
                    clean: true
                },
            ]
        );
    }
}
