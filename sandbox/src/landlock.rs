//! Landlock: after this step the payload can reach only the paths the policy
//! names (read and execute), its own /tmp and /work and the policy's writable
//! host paths (read-write) and /dev (read-write, ioctl); no TCP bind or connect; no abstract unix socket and no
//! signal outside its own domain (ABI 6 scoping).
//!
//! `Required` uses landlock's HardRequirement: if the kernel lacks any of
//! this, the launch fails. `BestEffort` applies what the kernel has and the
//! handle reports it. Never silently weaker: the status always reaches the caller.

use std::path::PathBuf;

use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use nix::errno::Errno;

use crate::spec::LandlockMode;

/// The ABI whose rights we ask for: V6 adds abstract-unix-socket and signal scoping.
const TARGET_ABI: ABI = ABI::V6;

/// What landlock actually enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockStatus {
    FullyEnforced,
    PartiallyEnforced,
    NotEnforced,
}

impl LandlockStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LandlockStatus::FullyEnforced => "fully_enforced",
            LandlockStatus::PartiallyEnforced => "partially_enforced",
            LandlockStatus::NotEnforced => "not_enforced",
        }
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            LandlockStatus::NotEnforced => 0,
            LandlockStatus::PartiallyEnforced => 1,
            LandlockStatus::FullyEnforced => 2,
        }
    }

    pub(crate) fn from_code(c: i64) -> LandlockStatus {
        match c {
            2 => LandlockStatus::FullyEnforced,
            1 => LandlockStatus::PartiallyEnforced,
            _ => LandlockStatus::NotEnforced,
        }
    }
}

/// The rules, as paths inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LandlockPlan {
    pub mode: LandlockMode,
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
}

fn errno_of<'a>(e: &'a (dyn std::error::Error + 'static)) -> Errno {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(n) = io.raw_os_error() {
                return Errno::from_raw(n);
            }
        }
        cur = err.source();
    }
    Errno::EOPNOTSUPP
}

/// In the child, after no_new_privs: restrict this process and its future children.
pub(crate) fn restrict_self(plan: &LandlockPlan) -> Result<LandlockStatus, Errno> {
    let compat = match plan.mode {
        LandlockMode::Required => CompatLevel::HardRequirement,
        LandlockMode::BestEffort => CompatLevel::BestEffort,
    };
    let abi = TARGET_ABI;
    let run = || -> Result<RulesetStatus, landlock::RulesetError> {
        let status = Ruleset::default()
            .set_compatibility(compat)
            .handle_access(AccessFs::from_all(abi))?
            .handle_access(AccessNet::from_all(abi))?
            .scope(Scope::from_all(abi))?
            .create()?
            .no_new_privs(false)
            .add_rules(path_beneath_rules(&plan.read, AccessFs::from_read(abi)))?
            .add_rules(path_beneath_rules(&plan.write, AccessFs::from_all(abi)))?
            .add_rules(path_beneath_rules(
                ["/dev"],
                AccessFs::from_read(abi) | AccessFs::WriteFile | AccessFs::IoctlDev,
            ))?
            .add_rules(path_beneath_rules(["/proc"], AccessFs::from_read(abi)))?
            // Listing `/` itself (everything beneath it already has its own rule).
            .add_rules(path_beneath_rules(["/"], AccessFs::ReadDir))?
            .restrict_self()?;
        Ok(status.ruleset)
    };
    match run() {
        Ok(RulesetStatus::FullyEnforced) => Ok(LandlockStatus::FullyEnforced),
        Ok(RulesetStatus::PartiallyEnforced) => Ok(LandlockStatus::PartiallyEnforced),
        Ok(RulesetStatus::NotEnforced) => Ok(LandlockStatus::NotEnforced),
        Err(e) => Err(errno_of(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// open(2) of `path` read-only: 0 or the errno.
    fn open_errno(path: &std::path::Path) -> i32 {
        match std::fs::File::open(path) {
            Ok(_) => 0,
            Err(e) => e.raw_os_error().unwrap_or(-1),
        }
    }

    /// Landlock alone, with no mount or namespace around it: a readable host
    /// file outside the plan's paths becomes EACCES, one inside stays
    /// readable, and writing inside a read-only path is EACCES too. Applied
    /// in a forked child, since restrict_self cannot be undone.
    #[test]
    fn landlock_plan_denies_paths_it_does_not_list() {
        let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
        let (listed, other) = (tmp.path().join("listed"), tmp.path().join("other"));
        for d in [&listed, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("f"), "x").unwrap();
        }
        // Without Landlock both are readable: DAC and the mounts allow it.
        assert_eq!(open_errno(&other.join("f")), 0);
        let plan = LandlockPlan {
            mode: LandlockMode::Required,
            read: vec![listed.clone()],
            write: Vec::new(),
        };
        let (r, w) = nix::unistd::pipe().unwrap();
        match crate::sys::fork().unwrap() {
            0 => {
                drop(r);
                // Other tests run in threads of this process: drop our copies
                // of their fds, or their peers would not see a hang-up.
                let _ = crate::fd::close_all_except(&[w.as_raw_fd()]);
                let msg = match crate::sys::set_no_new_privs()
                    .map_err(|e| e.errno)
                    .and_then(|()| restrict_self(&plan))
                {
                    Err(e) => [1, e as i32 as u8, 0, 0],
                    Ok(status) => [
                        0,
                        status.code() as u8,
                        open_errno(&other.join("f")) as u8,
                        open_errno(&listed.join("f")) as u8,
                    ],
                };
                let create = std::fs::write(listed.join("new"), "y")
                    .err()
                    .and_then(|e| e.raw_os_error())
                    .unwrap_or(0) as u8;
                let _ = nix::unistd::write(&w, &[msg[0], msg[1], msg[2], msg[3], create]);
                crate::sys::exit_now(0);
            }
            pid => {
                drop(w);
                let mut buf = [0u8; 5];
                let n = nix::unistd::read(&r, &mut buf).unwrap();
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                assert_eq!(n, 5);
                assert_eq!(buf[0], 0, "restrict_self failed with errno {}", buf[1]);
                assert_eq!(
                    LandlockStatus::from_code(buf[1].into()),
                    LandlockStatus::FullyEnforced
                );
                assert_eq!(buf[2] as i32, libc::EACCES, "unlisted path");
                assert_eq!(buf[3], 0, "listed path");
                assert_eq!(buf[4] as i32, libc::EACCES, "write in a read-only path");
                assert!(!listed.join("new").exists());
            }
        }
    }

    #[test]
    fn landlock_status_codes_round_trip() {
        for s in [
            LandlockStatus::FullyEnforced,
            LandlockStatus::PartiallyEnforced,
            LandlockStatus::NotEnforced,
        ] {
            assert_eq!(LandlockStatus::from_code(s.code()), s);
        }
    }
}
