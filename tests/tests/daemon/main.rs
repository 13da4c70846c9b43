//! Daemon integration tests: a real `paddockd serve` on a temporary socket,
//! driven over the protocol, checked against the rows of ATTACKS.md. Every
//! test fails (never skips) without root. Run with
//! `cargo test -p integration-tests --features root-tests --test daemon`
//! after `cargo build --workspace --bins`.

#[cfg(test)]
mod auth;
/// The `paddock` client binary against a daemon.
#[cfg(test)]
mod cli;
#[cfg(test)]
mod conns;
#[cfg(test)]
mod crash;
#[cfg(test)]
mod errors;
#[cfg(test)]
mod framing;
#[cfg(test)]
mod leaks;
#[cfg(test)]
mod life;
#[cfg(test)]
mod load;
#[cfg(test)]
mod ops;
#[cfg(test)]
mod output;
/// Sandboxes made ahead of their invocations.
#[cfg(test)]
mod prepared;
#[cfg(test)]
mod registry;
/// The protocol doc's examples, replayed.
#[cfg(test)]
mod replay;
/// Load, soak, idle hordes, random crashes (issue 8).
#[cfg(test)]
mod soak;
#[cfg(test)]
mod warm;

/// A deployed function that sleeps 30 s (cancel, busy, drain, crash tests).
pub const SLEEPY: &str = "runtime = \"native\"\ncommand = [\"/bin/sleep\", \"30\"]\n";

/// A policy running `/bin/sleep <secs>`, with extra `[limits]` lines.
pub fn sleep_policy(secs: &str, limits: &str) -> String {
    format!("runtime = \"native\"\ncommand = [\"/bin/sleep\", \"{secs}\"]\n\n[limits]\n{limits}\n")
}

/// Pids of processes with a sandbox uid that descend from `ancestor`.
pub fn sandbox_pids_under(ancestor: i32) -> Vec<u32> {
    let all = integration_tests::sandbox_processes(integration_tests::SANDBOX_UIDS);
    all.into_iter()
        .filter(|pid| {
            let mut p = *pid as i32;
            for _ in 0..64 {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                    return false;
                };
                // The field after the last ')' are: state ppid ...
                let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
                    return false;
                };
                let ppid: i32 = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if ppid == ancestor {
                    return true;
                }
                if ppid <= 1 {
                    return false;
                }
                p = ppid;
            }
            false
        })
        .collect()
}

/// Which of `pids` still exist with a sandbox uid.
pub fn still_sandboxed(pids: &[u32]) -> Vec<u32> {
    let now = integration_tests::sandbox_processes(integration_tests::SANDBOX_UIDS);
    pids.iter().copied().filter(|p| now.contains(p)).collect()
}
