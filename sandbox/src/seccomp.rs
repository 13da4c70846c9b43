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
//! share the x86_64 architecture value, so a small hand-written filter,
//! installed first, kills the process for any number with that bit: no x32
//! call is ever evaluated against the allowlist.

use std::collections::BTreeSet;

use seccompiler::{sock_filter, BpfProgram};
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

// linux/bpf_common.h, linux/seccomp.h, linux/audit.h
/// BPF_LD | BPF_W | BPF_ABS (the first two are 0).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Kill the process on a non-x86_64 architecture or an x32 syscall number;
/// allow everything else (the allowlist decides).
fn x32_filter() -> BpfProgram {
    vec![
        insn(BPF_LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        insn(BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        insn(BPF_LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        insn(BPF_JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
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
        let mut programs = vec![x32_filter()];
        programs.extend(
            ["enosys", "allow"]
                .iter()
                .map(|k| map.remove(*k).expect("compiled filter present")),
        );
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
    use std::os::fd::AsRawFd;

    fn spec(names: &[&str]) -> SeccompSpec {
        SeccompSpec {
            allow: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn seccomp_small_allowlist_compiles_to_two_programs() {
        let c = CompiledSeccomp::compile(&spec(&["read", "write", "exit_group"])).unwrap();
        assert_eq!(c.programs.len(), 3);
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
                // Other tests run in threads of this process: drop our copies
                // of their fds, or their peers would not see a hang-up.
                let _ = crate::fd::close_all_except(&[w.as_raw_fd()]);
                let code = match c.apply() {
                    Err(_) => 1,
                    Ok(()) => {
                        let getppid = crate::sys::syscall0_errno(libc::SYS_getppid);
                        let clone3 = crate::sys::syscall0_errno(libc::SYS_clone3);
                        let msg = [getppid as u8, clone3 as u8, 0];
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
            }
        }
    }

    #[test]
    fn seccomp_x32_syscall_kills_the_process_with_sigsys() {
        let c =
            CompiledSeccomp::compile(&spec(&["read", "write", "exit_group", "getpid"])).unwrap();
        match crate::sys::fork().unwrap() {
            0 => {
                let _ = crate::fd::close_all_except(&[]);
                if c.apply().is_ok() {
                    crate::sys::syscall0_errno(libc::SYS_getpid | 0x4000_0000);
                }
                crate::sys::exit_now(0);
            }
            pid => {
                let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
                assert!(
                    matches!(
                        st,
                        nix::sys::wait::WaitStatus::Signaled(
                            _,
                            nix::sys::signal::Signal::SIGSYS,
                            _
                        )
                    ),
                    "{st:?}"
                );
            }
        }
    }
}
