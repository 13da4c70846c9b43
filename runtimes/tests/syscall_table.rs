//! Our x86_64 syscall table (policy names → numbers, used to build every
//! seccomp filter) checked against seccompiler's own table, an independent
//! source maintained by rust-vmm.

#[cfg(test)]
mod tests {
    use paddock_policies::seccomp_profiles::{syscall_number, X86_64_SYSCALLS};

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const BPF_JMP_JEQ_K: u16 = 0x15;

    /// The number seccompiler compiles `name` to, or None if its table lacks it.
    fn seccompiler_number(name: &str) -> Option<u32> {
        let json = format!(
            r#"{{"f": {{"mismatch_action": "allow", "match_action": {{"errno": 1}},
                   "filter": [{{"syscall": "{name}"}}]}}}}"#
        );
        let map = seccompiler::compile_from_json(json.as_bytes(), seccompiler::TargetArch::x86_64)
            .ok()?;
        let ks: Vec<u32> = map["f"]
            .iter()
            .filter(|i| i.code == BPF_JMP_JEQ_K && i.k != AUDIT_ARCH_X86_64)
            .map(|i| i.k)
            .collect();
        assert_eq!(ks.len(), 1, "{name}: {ks:?}");
        Some(ks[0])
    }

    #[test]
    fn syscall_numbers_agree_with_seccompilers_table() {
        let mut checked = 0;
        let mut missing = Vec::new();
        for name in X86_64_SYSCALLS {
            let ours = syscall_number(name).expect("every table name has a number");
            match seccompiler_number(name) {
                Some(theirs) => {
                    assert_eq!(ours, theirs, "{name}");
                    checked += 1;
                }
                None => missing.push(*name),
            }
        }
        // seccompiler's table may trail the kernel by a few of the newest calls;
        // everything both know must agree, and that must be nearly everything.
        assert!(
            checked >= X86_64_SYSCALLS.len() - 12,
            "only {checked} checked; missing {missing:?}"
        );
    }
}
