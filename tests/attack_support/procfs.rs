//! What a running process spends, read from Linux's /proc: CPU time of the
//! whole process and of each named thread (`timed` names its threads:
//! `consensus`, `net`, `ledger`, `block`, `rpc-*`), resident memory now,
//! and its peak since the last reset.

use std::collections::BTreeMap;
use std::time::Duration;

/// CPU time so far: the process's, and the live threads' by name (threads
/// of one name, e.g. `rpc-conn`, summed).
#[derive(Clone, Debug, Default)]
pub struct Cpu {
    pub process: Duration,
    pub threads: BTreeMap<String, Duration>,
}

impl Cpu {
    pub fn read(pid: u32) -> Cpu {
        let process = stat_cpu(&read(&format!("/proc/{pid}/stat"))).unwrap_or_default();
        let mut threads = BTreeMap::new();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            // A thread may end between the listing and the read.
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let (Some(name), Some(cpu)) = (stat_name(&stat), stat_cpu(&stat)) {
                *threads.entry(name.to_string()).or_default() += cpu;
            }
        }
        Cpu { process, threads }
    }

    /// Thread `name`'s CPU time (zero if no such thread).
    pub fn thread(&self, name: &str) -> Duration {
        self.threads.get(name).copied().unwrap_or_default()
    }

    /// CPU spent between `earlier` and this reading.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        let threads = self
            .threads
            .iter()
            .map(|(name, t)| (name.clone(), t.saturating_sub(earlier.thread(name))))
            .collect();
        Cpu {
            process: self.process.saturating_sub(earlier.process),
            threads,
        }
    }
}

/// Resident memory from `/proc/PID/status`, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// `VmRSS`.
    pub rss: u64,
    /// `VmHWM`: the peak since start or the last [`reset_peak`].
    pub hwm: u64,
    /// `RssAnon`: heap and stacks, what the process really holds.
    pub anon: u64,
    /// `RssFile`: mapped file pages (the binary, LMDB's map), which the
    /// kernel can drop and read back.
    pub file: u64,
}

impl Memory {
    pub fn read(pid: u32) -> Memory {
        let status = read(&format!("/proc/{pid}/status"));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .trim()
                        .strip_suffix("kB")?
                        .trim()
                        .parse()
                        .ok()
                })
                .unwrap_or(0)
        };
        Memory {
            rss: field("VmRSS:"),
            hwm: field("VmHWM:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }
}

/// Resets the process's `VmHWM` to its current RSS (`clear_refs` 5), so
/// the next reading is the peak of one phase.
pub fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .unwrap_or_else(|e| panic!("cannot reset the peak RSS of {pid}: {e}"));
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The command name between the parentheses of a `stat` line.
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// utime + stime of a `stat` line (fields 14 and 15, after the name).
fn stat_cpu(stat: &str) -> Option<Duration> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // Fields counted from the state (field 3) on.
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(total * 1000 / per_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_even_with_spaces_and_parentheses_in_the_name() {
        let stat = "42 (rpc (x) 1) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0";
        assert_eq!(stat_name(stat), Some("rpc (x) 1"));
        // SAFETY: sysconf has no preconditions.
        let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        assert_eq!(
            stat_cpu(stat),
            Some(Duration::from_millis(300 * 1000 / per_s))
        );
    }
}
