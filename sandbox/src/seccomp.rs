//! seccomp: a default-deny allowlist compiled once (per policy) into one
//! compact BPF program, installed as the very last step before execve.
//!
//! The caller gives x86_64 syscall *numbers*; this module adds the argument
//! guards that every profile needs, whatever it allows:
//! - `clone` and `unshare` only without namespace flags (no nested user
//!   namespaces: the CVE-2022-0185 path stays closed);
//! - `ioctl` never with TIOCSTI or TIOCLINUX (terminal injection);
//! - `socket` only for AF_UNIX, AF_INET and AF_INET6 (no packet, netlink, vsock);
//! - `clone3` answers ENOSYS, not EPERM, so libc falls back to `clone`, whose
//!   flags we can inspect (clone3 passes them in memory, out of BPF's reach).
//!
//! Denied calls get EPERM. Any entry that is not x86_64 (int 0x80, i386) and
//! any x32 number (nr | 0x40000000, which shares the x86_64 architecture
//! value) kills the process before the number is looked at.
//!
//! The program is ours, not seccompiler's: seccompiler emits one linear chain
//! of about five instructions per syscall (1,457 for the default profile),
//! and the kernel validates and JIT-compiles the whole chain at every install,
//! about 650 µs on every launch here. We sort the syscall numbers into runs
//! that share an action and emit a binary search over the run boundaries, so
//! the default profile is a few hundred instructions and any syscall is
//! decided after about eight comparisons. seccompiler still provides the
//! instruction type and installs the program.

use std::collections::BTreeSet;

use seccompiler::{sock_filter, BpfProgram};

/// Which syscalls a sandbox may make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompSpec {
    /// Allowed x86_64 syscall numbers. Everything else is denied with EPERM.
    pub allow: BTreeSet<u32>,
}

/// A compiled BPF program, ready to install.
#[derive(Debug, Clone)]
pub struct CompiledSeccomp {
    program: BpfProgram,
    /// sha256 of the program: its name between the daemon and a launcher.
    digest: [u8; 32],
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

const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80/* CLONE_NEWTIME */) as u32;

// linux/bpf_common.h, linux/seccomp.h, linux/audit.h
/// BPF_LD | BPF_W | BPF_ABS (the first two are 0).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`: nr, arch, then the arguments as u64s
/// (the low 32 bits of argument i at 16 + 8 i on little-endian x86_64).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const fn data_arg_low(i: u32) -> u32 {
    16 + 8 * i
}
/// The longest program the kernel accepts (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ret(k: u32) -> sock_filter {
    insn(BPF_RET_K, 0, 0, k)
}

/// What the filter does with one syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Allow,
    Errno(i32),
    /// `clone` or `unshare`: allowed without namespace flags in argument 0.
    NoNamespaceFlags,
    /// `ioctl`: allowed unless argument 1 is TIOCSTI or TIOCLINUX.
    NoTtyInjection,
    /// `socket`: allowed for AF_UNIX, AF_INET and AF_INET6 only.
    IpOrUnixOnly,
}

const EPERM: Action = Action::Errno(libc::EPERM);

impl Action {
    /// The action for syscall `nr` when the allowlist has it.
    fn allowed(nr: u32) -> Action {
        match i64::from(nr) {
            libc::SYS_clone | libc::SYS_unshare => Action::NoNamespaceFlags,
            libc::SYS_ioctl => Action::NoTtyInjection,
            libc::SYS_socket => Action::IpOrUnixOnly,
            _ => Action::Allow,
        }
    }

    /// The instructions deciding this action; each path ends in a return.
    fn code(self) -> Vec<sock_filter> {
        let allow = ret(SECCOMP_RET_ALLOW);
        let eperm = ret(SECCOMP_RET_ERRNO | libc::EPERM as u32);
        match self {
            Action::Allow => vec![allow],
            Action::Errno(e) => vec![ret(SECCOMP_RET_ERRNO | (e as u32 & 0xffff))],
            Action::NoNamespaceFlags => vec![
                insn(BPF_LD_W_ABS, 0, 0, data_arg_low(0)),
                insn(BPF_JMP_JSET_K, 1, 0, NAMESPACE_FLAGS),
                allow,
                eperm,
            ],
            // ioctl's request is an unsigned int: the kernel ignores the high bits.
            Action::NoTtyInjection => vec![
                insn(BPF_LD_W_ABS, 0, 0, data_arg_low(1)),
                insn(BPF_JMP_JEQ_K, 2, 0, libc::TIOCSTI as u32),
                insn(BPF_JMP_JEQ_K, 1, 0, libc::TIOCLINUX as u32),
                allow,
                eperm,
            ],
            // socket's domain is an int: the kernel ignores the high bits.
            Action::IpOrUnixOnly => vec![
                insn(BPF_LD_W_ABS, 0, 0, data_arg_low(0)),
                insn(BPF_JMP_JEQ_K, 3, 0, libc::AF_UNIX as u32),
                insn(BPF_JMP_JEQ_K, 2, 0, libc::AF_INET as u32),
                insn(BPF_JMP_JEQ_K, 1, 0, libc::AF_INET6 as u32),
                eperm,
                allow,
            ],
        }
    }
}

/// The syscall number space as runs: `(start, action)` sorted by start, the
/// first starting at 0, each run lasting until the next one starts, no two
/// neighbours with the same action.
fn runs(allow: &BTreeSet<u32>) -> Vec<(u32, Action)> {
    let clone3 = libc::SYS_clone3 as u32;
    let mut numbers = allow.clone();
    numbers.insert(clone3);
    let mut out: Vec<(u32, Action)> = vec![(0, EPERM)];
    for nr in numbers {
        let action = if nr == clone3 {
            Action::Errno(libc::ENOSYS)
        } else {
            Action::allowed(nr)
        };
        // The denial resumed after the previous number starts right here:
        // drop it, and extend the previous run if it has the same action.
        if out.last().is_some_and(|r| r.0 == nr) {
            out.pop();
        }
        if out.last().map(|r| r.1) != Some(action) {
            out.push((nr, action));
        }
        if let Some(next) = nr.checked_add(1) {
            out.push((next, EPERM));
        }
    }
    out
}

/// Binary search over `runs`: the code for the numbers covered by `runs`
/// (the caller has already established nr >= runs[0].0).
fn search(runs: &[(u32, Action)]) -> Vec<sock_filter> {
    if let [(_, action)] = runs {
        return action.code();
    }
    let mid = runs.len() / 2;
    let left = search(&runs[..mid]);
    let right = search(&runs[mid..]);
    let mut code = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        // nr >= boundary: skip the left half.
        Ok(skip) => code.push(insn(BPF_JMP_JGE_K, skip, 0, runs[mid].0)),
        // Too far for an 8-bit jump: go through an unconditional one.
        Err(_) => {
            code.push(insn(BPF_JMP_JGE_K, 0, 1, runs[mid].0));
            code.push(insn(BPF_JMP_JA, 0, 0, left.len() as u32));
        }
    }
    code.extend(left);
    code.extend(right);
    code
}

impl CompiledSeccomp {
    /// Compile `spec` for x86_64.
    pub fn compile(spec: &SeccompSpec) -> Result<CompiledSeccomp, SeccompError> {
        let clone3 = libc::SYS_clone3 as u32;
        if spec.allow.iter().all(|&nr| nr == clone3) {
            return Err(SeccompError::Empty);
        }
        if let Some(nr) = spec.allow.iter().find(|&&nr| nr & X32_SYSCALL_BIT != 0) {
            return Err(SeccompError::Compile(format!(
                "{nr:#x} is not an x86_64 syscall number"
            )));
        }
        let mut program = vec![
            insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
            insn(BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            ret(SECCOMP_RET_KILL_PROCESS),
            insn(BPF_LD_W_ABS, 0, 0, DATA_NR),
            insn(BPF_JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
            ret(SECCOMP_RET_KILL_PROCESS),
        ];
        program.extend(search(&runs(&spec.allow)));
        if program.len() > MAX_INSNS {
            return Err(SeccompError::Compile(format!(
                "{} instructions, more than the kernel's {MAX_INSNS}",
                program.len()
            )));
        }
        Ok(CompiledSeccomp::new(program))
    }

    fn new(program: BpfProgram) -> CompiledSeccomp {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for i in &program {
            h.update(encode(i));
        }
        CompiledSeccomp {
            digest: h.finalize().into(),
            program,
        }
    }

    /// The program's sha256: two programs with the same digest are the same.
    pub(crate) fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// BPF instructions (for benchmarks and tests).
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// Install the program on the calling thread. Sets no_new_privs too
    /// (seccompiler always does; it is already set by then).
    pub(crate) fn apply(&self) -> Result<(), nix::errno::Errno> {
        seccompiler::apply_filter(&self.program).map_err(|e| match e {
            seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => {
                nix::errno::Errno::from_raw(io.raw_os_error().unwrap_or(libc::EINVAL))
            }
            _ => nix::errno::Errno::EINVAL,
        })
    }
}

/// One instruction as eight bytes (code, jt, jf, k; little-endian).
fn encode(i: &sock_filter) -> [u8; 8] {
    let mut word = [0u8; 8];
    word[..2].copy_from_slice(&i.code.to_le_bytes());
    word[2] = i.jt;
    word[3] = i.jf;
    word[4..].copy_from_slice(&i.k.to_le_bytes());
    word
}

/// On the wire (to a [`crate::Launcher`]) the program is one hex string,
/// eight bytes per instruction: far cheaper to write and read than a JSON
/// array of numbers.
impl serde::Serialize for CompiledSeccomp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::with_capacity(self.program.len() * 16);
        for i in &self.program {
            for b in encode(i) {
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
        s.serialize_str(std::str::from_utf8(&out).expect("hex is ASCII"))
    }
}

impl<'de> serde::Deserialize<'de> for CompiledSeccomp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() % 16 != 0 || bytes.len() / 16 > MAX_INSNS {
            return Err(D::Error::custom("seccomp program length"));
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(D::Error::custom("seccomp program is not hex")),
        };
        let mut program = Vec::with_capacity(bytes.len() / 16);
        for chunk in bytes.chunks_exact(16) {
            let mut w = [0u8; 8];
            for (j, pair) in chunk.chunks_exact(2).enumerate() {
                w[j] = nibble(pair[0])? << 4 | nibble(pair[1])?;
            }
            program.push(insn(
                u16::from_le_bytes([w[0], w[1]]),
                w[2],
                w[3],
                u32::from_le_bytes([w[4], w[5], w[6], w[7]]),
            ));
        }
        Ok(CompiledSeccomp::new(program))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn spec(nrs: &[i64]) -> SeccompSpec {
        SeccompSpec {
            allow: nrs.iter().map(|&n| n as u32).collect(),
        }
    }

    /// A classic-BPF interpreter for the instructions we emit, to check the
    /// program's answer for every input without installing it.
    fn run(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                DATA_NR => nr,
                DATA_ARCH => arch,
                o if (16..64).contains(&o) && o % 4 == 0 => {
                    let a = args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        a as u32
                    } else {
                        (a >> 32) as u32
                    }
                }
                o => panic!("load at offset {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &program[pc];
            pc += 1;
            let cond = |taken: bool| if taken { i.jt as usize } else { i.jf as usize };
            match i.code {
                BPF_LD_W_ABS => acc = word(i.k),
                BPF_JMP_JA => pc += i.k as usize,
                BPF_JMP_JEQ_K => pc += cond(acc == i.k),
                BPF_JMP_JGE_K => pc += cond(acc >= i.k),
                BPF_JMP_JSET_K => pc += cond(acc & i.k != 0),
                BPF_RET_K => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    const ERRNO_EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ERRNO_ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    /// What the filter must answer, written the plain way.
    fn expected(allow: &BTreeSet<u32>, nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        if arch != AUDIT_ARCH_X86_64 || nr & X32_SYSCALL_BIT != 0 {
            return SECCOMP_RET_KILL_PROCESS;
        }
        if i64::from(nr) == libc::SYS_clone3 {
            return ERRNO_ENOSYS;
        }
        if !allow.contains(&nr) {
            return ERRNO_EPERM;
        }
        let ok = match i64::from(nr) {
            libc::SYS_clone | libc::SYS_unshare => args[0] as u32 & NAMESPACE_FLAGS == 0,
            libc::SYS_ioctl => ![libc::TIOCSTI, libc::TIOCLINUX].contains(&(args[1] as u32 as _)),
            libc::SYS_socket => {
                [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6].contains(&(args[0] as u32 as i32))
            }
            _ => true,
        };
        if ok {
            SECCOMP_RET_ALLOW
        } else {
            ERRNO_EPERM
        }
    }

    /// Arguments that exercise every guard: plain, namespace flags, each
    /// terminal ioctl (also with high bits set), each socket family.
    fn arg_cases() -> Vec<[u64; 6]> {
        let mut v = vec![[0; 6]];
        for f in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            0x80,
        ] {
            v.push([f as u64 | libc::SIGCHLD as u64, 0, 0, 0, 0, 0]);
        }
        v.push([
            libc::CLONE_VM as u64 | libc::CLONE_THREAD as u64,
            0,
            0,
            0,
            0,
            0,
        ]);
        for req in [libc::TIOCSTI, libc::TIOCLINUX, libc::TIOCGWINSZ] {
            v.push([0, req, 0, 0, 0, 0]);
            v.push([0, req | 1 << 40, 0, 0, 0, 0]);
        }
        for fam in [
            libc::AF_UNIX,
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_PACKET,
            libc::AF_NETLINK,
            libc::AF_VSOCK,
        ] {
            v.push([fam as u64, 0, 0, 0, 0, 0]);
            v.push([fam as u64 | 1 << 33, 0, 0, 0, 0, 0]);
        }
        v
    }

    fn check_exhaustively(allow: &BTreeSet<u32>) {
        let c = CompiledSeccomp::compile(&SeccompSpec {
            allow: allow.clone(),
        })
        .unwrap();
        let numbers = (0..1024u32)
            .chain([u32::MAX, u32::MAX - 1, 1 << 31])
            .chain((0..600).map(|n| n | X32_SYSCALL_BIT));
        for nr in numbers {
            for args in arg_cases() {
                for arch in [AUDIT_ARCH_X86_64, 0x4000_0003 /* i386 */] {
                    assert_eq!(
                        run(&c.program, nr, arch, args),
                        expected(allow, nr, arch, args),
                        "nr {nr:#x} arch {arch:#x} args {args:x?}"
                    );
                }
            }
        }
    }

    #[test]
    fn seccomp_program_matches_the_plain_rules_for_every_number_and_guard() {
        // Sparse, dense, edges of the table, every guarded call, and a
        // number that is also x32-free but past the table.
        let mut sets: Vec<BTreeSet<u32>> = vec![
            [0u32].into(),
            [libc::SYS_read as u32, libc::SYS_write as u32].into(),
            (0..336).collect(),
            (0..600).filter(|n| n % 3 != 1).collect(),
            [
                libc::SYS_clone,
                libc::SYS_unshare,
                libc::SYS_ioctl,
                libc::SYS_socket,
                libc::SYS_clone3,
                libc::SYS_exit_group,
            ]
            .iter()
            .map(|&n| n as u32)
            .collect(),
        ];
        // A big realistic set: every other number up to 470.
        sets.push((0..470).step_by(2).collect());
        for allow in &sets {
            check_exhaustively(allow);
        }
    }

    #[test]
    fn seccomp_long_left_halves_use_an_unconditional_jump() {
        // 400 isolated numbers: the left half of the root is longer than an
        // 8-bit jump can skip, so the trampoline must be emitted and right.
        let allow: BTreeSet<u32> = (0..800).step_by(2).collect();
        let c = CompiledSeccomp::compile(&SeccompSpec {
            allow: allow.clone(),
        })
        .unwrap();
        assert!(c.program.iter().any(|i| i.code == BPF_JMP_JA));
        check_exhaustively(&allow);
    }

    #[test]
    fn seccomp_three_hundred_calls_compile_to_a_short_program() {
        // The default profile allows about 285 calls; seccompiler's chain
        // for it was 1,457 instructions.
        let allow: BTreeSet<u32> = (0..300).collect();
        let c = CompiledSeccomp::compile(&SeccompSpec { allow }).unwrap();
        assert!(c.instructions() < 100, "{}", c.instructions());
        let sparse: BTreeSet<u32> = (0..600).step_by(2).collect();
        let c = CompiledSeccomp::compile(&SeccompSpec { allow: sparse }).unwrap();
        assert!(c.instructions() < 1400, "{}", c.instructions());
    }

    #[test]
    fn seccomp_empty_or_clone3_only_allowlist_is_rejected() {
        for nrs in [&[][..], &[libc::SYS_clone3][..]] {
            assert!(matches!(
                CompiledSeccomp::compile(&spec(nrs)),
                Err(SeccompError::Empty)
            ));
        }
    }

    #[test]
    fn seccomp_x32_number_in_the_allowlist_is_a_compile_error() {
        let err = CompiledSeccomp::compile(&spec(&[libc::SYS_read | 0x4000_0000])).unwrap_err();
        assert!(err.to_string().contains("0x40000000"), "{err}");
    }

    #[test]
    fn seccomp_clone3_in_allowlist_still_gets_enosys() {
        let with = CompiledSeccomp::compile(&spec(&[libc::SYS_read, libc::SYS_clone3])).unwrap();
        let args = [0; 6];
        let nr = libc::SYS_clone3 as u32;
        assert_eq!(
            run(&with.program, nr, AUDIT_ARCH_X86_64, args),
            ERRNO_ENOSYS
        );
    }

    /// Apply a filter in a forked child (irreversible kernel state stays off
    /// the test thread) and report what the syscalls returned.
    #[test]
    fn seccomp_filter_denies_with_eperm_and_clone3_gets_enosys() {
        let c = CompiledSeccomp::compile(&spec(&[
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_exit_group,
            libc::SYS_exit,
            libc::SYS_getpid,
            libc::SYS_clone3,
            libc::SYS_rt_sigreturn,
            libc::SYS_brk,
            libc::SYS_mmap,
            libc::SYS_munmap,
            libc::SYS_futex,
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
        let c = CompiledSeccomp::compile(&spec(&[
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_exit_group,
            libc::SYS_getpid,
        ]))
        .unwrap();
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

    #[test]
    fn seccomp_program_survives_the_wire_exactly() {
        let allow: BTreeSet<u32> = (0..600).step_by(3).collect();
        let c = CompiledSeccomp::compile(&SeccompSpec { allow }).unwrap();
        let text = serde_json::to_string(&c).unwrap();
        let back: CompiledSeccomp = serde_json::from_str(&text).unwrap();
        assert_eq!(back.digest(), c.digest());
        assert_eq!(back.program.len(), c.program.len());
        for (a, b) in back.program.iter().zip(&c.program) {
            assert_eq!((a.code, a.jt, a.jf, a.k), (b.code, b.jt, b.jf, b.k));
        }
        for bad in ["\"\"", "\"0123\"", "\"zz00000000000000\"", "[1,2]"] {
            assert!(
                serde_json::from_str::<CompiledSeccomp>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
