//! What the machine as a whole did while a benchmark measured latency, from `/proc/stat`: how
//! much of its CPU time was busy, idle, and stolen by the hypervisor (a virtual machine's CPUs
//! are shared with other guests; while the host runs them, this machine's runnable threads
//! wait). A tail latency measured while the host took a third of the CPU speaks of the host, not
//! of the code, so the benchmark prints it beside the figure.

/// The machine's CPU time so far, all CPUs together, in the kernel's clock ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    busy: u64,
    idle: u64,
    stolen: u64,
}

/// Shares of the CPU time between two [`CpuTimes`], each from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShares {
    pub busy: f64,
    pub idle: f64,
    pub stolen: f64,
}

impl CpuTimes {
    /// Now, or `None` where there is no `/proc/stat` to read.
    pub fn now() -> Option<CpuTimes> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The shares of the time since `earlier`; `None` when no tick passed in between.
    pub fn since(&self, earlier: &CpuTimes) -> Option<CpuShares> {
        let (busy, idle, stolen) = (
            self.busy.saturating_sub(earlier.busy) as f64,
            self.idle.saturating_sub(earlier.idle) as f64,
            self.stolen.saturating_sub(earlier.stolen) as f64,
        );
        let total = busy + idle + stolen;
        (total > 0.0).then(|| CpuShares { busy: busy / total, idle: idle / total, stolen: stolen / total })
    }
}

impl std::fmt::Display for CpuShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "busy {:.0}%, idle {:.0}%, stolen by the host {:.0}%",
            self.busy * 100.0,
            self.idle * 100.0,
            self.stolen * 100.0
        )
    }
}

/// The first line of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal guest
/// guest_nice` (proc(5)). Guest time is already counted in user time, so it is left out.
fn parse(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    let tick = |i: usize| ticks.get(i).copied().unwrap_or(0);
    Some(CpuTimes { busy: tick(0) + tick(1) + tick(2) + tick(5) + tick(6), idle: tick(3) + tick(4), stolen: tick(7) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_from_the_all_cpus_line() {
        let before = parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n").unwrap();
        let after = parse("cpu  400 0 100 1000 50 25 25 400 30 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n").unwrap();
        let shares = after.since(&before).unwrap();
        // 400 busy (300 user, 50 system, 25 irq, 25 softirq), 200 idle, 400 stolen.
        assert_eq!(shares, CpuShares { busy: 0.4, idle: 0.2, stolen: 0.4 });
        assert_eq!(shares.to_string(), "busy 40%, idle 20%, stolen by the host 40%");
        assert_eq!(after.since(&after), None);
        assert_eq!(parse("intr 1 2 3\n"), None);
    }
}
