//! seccomp: a default-deny allowlist compiled once (per policy) with
//! seccompiler and installed as the very last step before execve.
//!
//! The caller gives syscall *names*; this module adds the argument guards that
//! every profile needs, whatever it allows:
//! - `clone` and `unshare` only without namespace flags (no nested user
//!   namespaces: the CVE-2022-0185 path stays closed);
//! - `ioctl` never with TIOCSTI or TIOCLINUX (terminal injection);
//! - `socket` only for AF_UNIX, AF_INET and AF_INET6 (no packet, netlink, vsock);
//! - `clone3` answers ENOSYS, not EPERM, so libc falls back to `clone`, whose
//!   flags we can inspect (clone3 passes them in memory, out of BPF's reach).
//!
//! Denied calls get EPERM. seccompiler's architecture check kills the process
//! for any non-x86_64 entry (int 0x80, i386). x32 calls (nr | 0x40000000)
//! match no allowlist entry and so get EPERM too: an allowlist, unlike a
//! denylist, cannot be bypassed through the x32 numbers.

use std::collections::BTreeSet;

use seccompiler::BpfProgram;
use serde_json::{json, Value};

/// Which syscalls a sandbox may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompSpec {
    /// Allowed syscall names (x86_64). Everything else is denied with EPERM.
    pub allow: BTreeSet<String>,
}

/// Compiled BPF programs, installed in order.
#[derive(Debug, Clone)]
pub struct CompiledSeccomp {
    programs: Vec<BpfProgram>,
}

/// A seccomp filter could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    #[error("seccomp filter does not compile: {0}")]
    Compile(String),
    #[error("seccomp allowlist is empty")]
    Empty,
}

const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80/* CLONE_NEWTIME */) as u64;

fn arg(index: u8, op: Value, val: u64, len: &str) -> Value {
    json!({ "index": index, "type": len, "op": op, "val": val })
}

/// The rules for one allowed syscall, with the built-in guards.
fn rules_for(name: &str) -> Vec<Value> {
    match name {
        "clone" | "unshare" => vec![json!({
            "syscall": name,
            "args": [arg(0, json!({ "masked_eq": NAMESPACE_FLAGS }), 0, "qword")],
        })],
        "ioctl" => vec![json!({
            "syscall": name,
            "args": [
                arg(1, json!("ne"), libc::TIOCSTI, "dword"),
                arg(1, json!("ne"), libc::TIOCLINUX, "dword"),
            ],
        })],
        "socket" => [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6]
            .iter()
            .map(|f| json!({ "syscall": name, "args": [arg(0, json!("eq"), *f as u64, "dword")] }))
            .collect(),
        _ => vec![json!({ "syscall": name })],
    }
}

impl CompiledSeccomp {
    /// Compile `spec` for x86_64.
    pub fn compile(spec: &SeccompSpec) -> Result<CompiledSeccomp, SeccompError> {
        let allow: Vec<Value> = spec
            .allow
            .iter()
            .filter(|n| n.as_str() != "clone3")
            .flat_map(|n| rules_for(n))
            .collect();
        let mut allow = allow;
        if allow.is_empty() {
            return Err(SeccompError::Empty);
        }
        // clone3 passes this filter so that the `enosys` filter's answer
        // stands: ERRNO outranks ALLOW whichever filter says it.
        allow.push(json!({ "syscall": "clone3" }));
        let filters = json!({
            "allow": {
                "mismatch_action": { "errno": libc::EPERM },
                "match_action": "allow",
                "filter": allow,
            },
            // Installed first: once the allowlist is in, installing another
            // filter would need seccomp(2) itself to be allowed.
            "enosys": {
                "mismatch_action": "allow",
                "match_action": { "errno": libc::ENOSYS },
                "filter": [{ "syscall": "clone3" }],
            },
        });
        let text = filters.to_string();
        let mut map =
            seccompiler::compile_from_json(text.as_bytes(), seccompiler::TargetArch::x86_64)
                .map_err(|e| SeccompError::Compile(e.to_string()))?;
        let programs = ["enosys", "allow"]
            .iter()
            .map(|k| map.remove(*k).expect("compiled filter present"))
            .collect();
        Ok(CompiledSeccomp { programs })
    }

    /// Total BPF instructions (for benchmarks and tests).
    pub fn instructions(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// Install every program on the calling thread. Sets no_new_privs too
    /// (seccompiler always does; it is already set by then).
    pub(crate) fn apply(&self) -> Result<(), nix::errno::Errno> {
        for p in &self.programs {
            seccompiler::apply_filter(p).map_err(|e| match e {
                seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => {
                    nix::errno::Errno::from_raw(io.raw_os_error().unwrap_or(libc::EINVAL))
                }
                _ => nix::errno::Errno::EINVAL,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(names: &[&str]) -> SeccompSpec {
        SeccompSpec {
            allow: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn seccomp_small_allowlist_compiles_to_two_programs() {
        let c = CompiledSeccomp::compile(&spec(&["read", "write", "exit_group"])).unwrap();
        assert_eq!(c.programs.len(), 2);
        assert!(c.instructions() > 10);
    }

    #[test]
    fn seccomp_unknown_syscall_name_is_a_compile_error() {
        let err = CompiledSeccomp::compile(&spec(&["read", "mkdirr"])).unwrap_err();
        assert!(err.to_string().contains("mkdirr"), "{err}");
    }

    #[test]
    fn seccomp_empty_allowlist_is_rejected() {
        assert!(matches!(
            CompiledSeccomp::compile(&spec(&[])),
            Err(SeccompError::Empty)
        ));
    }

    #[test]
    fn seccomp_guarded_syscalls_get_argument_checks() {
        // Guards add instructions: a guarded call costs more than a bare one.
        let bare = CompiledSeccomp::compile(&spec(&["read"]))
            .unwrap()
            .instructions();
        let guarded = CompiledSeccomp::compile(&spec(&["read", "socket", "ioctl", "clone"]))
            .unwrap()
            .instructions();
        assert!(guarded > bare + 12, "{bare} vs {guarded}");
    }

    #[test]
    fn seccomp_clone3_in_allowlist_still_gets_enosys_filter() {
        let with = CompiledSeccomp::compile(&spec(&["read", "clone3"])).unwrap();
        let without = CompiledSeccomp::compile(&spec(&["read"])).unwrap();
        assert_eq!(with.instructions(), without.instructions());
    }

    /// Apply a filter in a forked child (irreversible kernel state stays off
    /// the test thread) and report what the syscalls returned.
    #[test]
    fn seccomp_filter_denies_with_eperm_and_clone3_gets_enosys() {
        let c = CompiledSeccomp::compile(&spec(&[
            "read",
            "write",
            "exit_group",
            "exit",
            "getpid",
            "clone3",
            "rt_sigreturn",
            "brk",
            "mmap",
            "munmap",
            "futex",
        ]))
        .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        match crate::sys::fork().unwrap() {
            0 => {
                drop(r);
                let code = match c.apply() {
                    Err(_) => 1,
                    Ok(()) => {
                        let getppid = crate::sys::syscall0_errno(libc::SYS_getppid);
                        let clone3 = crate::sys::syscall0_errno(libc::SYS_clone3);
                        let x32 = crate::sys::syscall0_errno(libc::SYS_getpid | 0x4000_0000);
                        let msg = [getppid as u8, clone3 as u8, x32 as u8];
                        let _ = nix::unistd::write(&w, &msg);
                        0
                    }
                };
                crate::sys::exit_now(code);
            }
            pid => {
                drop(w);
                let mut buf = [0u8; 3];
                let n = nix::unistd::read(&r, &mut buf).unwrap();
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                assert_eq!(n, 3);
                assert_eq!(buf[0] as i32, libc::EPERM, "getppid");
                assert_eq!(buf[1] as i32, libc::ENOSYS, "clone3");
                assert_eq!(buf[2] as i32, libc::EPERM, "x32 getpid");
            }
        }
    }
}
