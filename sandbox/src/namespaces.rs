//! Namespaces: user, pid, mount, net, ipc and uts at clone time; cgroup
//! unshared by the child once the parent has put it in its cgroup (so that
//! the namespace's root is the run's own cgroup). Parent half: the id maps.

use std::fs;

use nix::sched::CloneFlags;

use crate::error::{SpawnError, Step};
use crate::spec::IdMap;

/// The flags passed to clone3.
pub(crate) fn clone_flags() -> u64 {
    (CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS)
        .bits() as u64
}

/// The maps written to /proc/<pid>/{uid,gid}_map: sandbox 0 → one host id.
pub(crate) fn map_lines(ids: &IdMap) -> (String, String) {
    (
        format!("0 {} 1\n", ids.host_uid),
        format!("0 {} 1\n", ids.host_gid),
    )
}

/// Parent: write the child's maps. We are privileged in the parent
/// namespace, so setgroups may stay "allow"; the child clears its groups.
pub(crate) fn write_maps(pid: libc::pid_t, ids: &IdMap) -> Result<(), SpawnError> {
    let (uid, gid) = map_lines(ids);
    for (file, line) in [("uid_map", uid), ("gid_map", gid)] {
        fs::write(format!("/proc/{pid}/{file}"), line).map_err(|e| SpawnError::Parent {
            step: Step::IdMap,
            call: "write",
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    }
    Ok(())
}

/// Child: become uid/gid 0 of the namespace (the mapped host ids) with no
/// supplementary groups. Done first, so every file the sandbox creates (its
/// tmpfs roots included) belongs to its own uid; capabilities are kept
/// because uid 0 is the namespace's root.
pub(crate) fn switch_ids() -> Result<(), nix::errno::Errno> {
    crate::sys::clear_groups().map_err(|e| e.errno)?;
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g)?;
    nix::unistd::setresuid(root_u, root_u, root_u)
}

/// Child: a cgroup namespace rooted at the run's cgroup.
pub(crate) fn unshare_cgroup() -> Result<(), nix::errno::Errno> {
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_maps_only_sandbox_root_to_one_host_id() {
        let (u, g) = map_lines(&IdMap {
            host_uid: 100_007,
            host_gid: 100_008,
        });
        assert_eq!(u, "0 100007 1\n");
        assert_eq!(g, "0 100008 1\n");
    }

    #[test]
    fn clone_flags_hold_six_namespaces() {
        assert_eq!(clone_flags().count_ones(), 6);
    }
}
