//! A thin cgroupfs layer for cgroup v1 and v2.
//!
//! Why not cgroups-rs: on a v1 host it creates the group in all nine
//! hierarchies, it hard-codes the v2 root to /sys/fs/cgroup (this host mounts
//! v2 at /sys/fs/cgroup/unified), it cannot read memory.events and it has no
//! CLONE_INTO_CGROUP. What we need is a handful of file writes and reads.
//!
//! Every run cgroup is created beneath the caller's *own* cgroup in each
//! hierarchy it uses (delegation), never at a hierarchy's root, and no process
//! is ever moved out of the caller's subtree.
//!
//! - v1: `memory`, `pids`, `cpu` and `cpuacct` (which may be co-mounted with
//!   `cpu`); the parent writes the child's pid into each `cgroup.procs`.
//! - v2: one directory; the child is cloned straight into it with
//!   CLONE_INTO_CGROUP, and `cgroup.kill` ends it.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::SpawnError;

/// Where run cgroups are created: the caller's own cgroup in each hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupParent {
    /// cgroup v1: one directory per controller hierarchy (cpu and cpuacct may
    /// be the same directory when co-mounted).
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
        cpuacct: PathBuf,
    },
    /// cgroup v2: the directory beneath which runs are created; its
    /// `cgroup.subtree_control` enables memory, pids and cpu.
    V2 { dir: PathBuf },
}

/// Which cgroup version a parent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

const V2_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

impl CgroupParent {
    /// Find this process's own cgroups from /proc/self/cgroup and
    /// /proc/self/mountinfo. Prefers v2 when it has the controllers we need.
    pub fn discover() -> io::Result<CgroupParent> {
        let cgroup = fs::read_to_string("/proc/self/cgroup")?;
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        let parent = CgroupParent::from_proc(&cgroup, &mountinfo, Path::new("/"))?;
        Ok(parent)
    }

    /// The pure part of [`discover`](Self::discover): `root` prefixes every
    /// mount point (so tests can stand a temp directory in for cgroupfs).
    pub fn from_proc(cgroup: &str, mountinfo: &str, root: &Path) -> io::Result<CgroupParent> {
        let mounts = parse_mountinfo(mountinfo);
        let own = parse_proc_cgroup(cgroup);
        let dir_for = |pred: &dyn Fn(&CgroupMount) -> bool, key: &str| -> Option<PathBuf> {
            let m = mounts.iter().find(|m| pred(m))?;
            let rel = own.iter().find(|(k, _)| k == key)?.1.as_str();
            let rel = rel.strip_prefix(m.root.as_str()).unwrap_or(rel);
            Some(join_rel(&join_rel(root, &m.mount_point), rel))
        };
        if let Some(dir) = dir_for(&|m| m.v2, "") {
            let have = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let have: Vec<&str> = have.split_whitespace().collect();
            if V2_CONTROLLERS.iter().all(|c| have.contains(c)) {
                return Ok(CgroupParent::V2 { dir });
            }
        }
        let v1 = |ctl: &str| {
            dir_for(
                &|m: &CgroupMount| !m.v2 && m.controllers.iter().any(|c| c == ctl),
                &own.iter()
                    .find(|(k, _)| k.split(',').any(|c| c == ctl))
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default(),
            )
        };
        match (v1("memory"), v1("pids"), v1("cpu"), v1("cpuacct")) {
            (Some(memory), Some(pids), Some(cpu), Some(cpuacct)) => Ok(CgroupParent::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
            }),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no usable cgroup hierarchy: need v2 with memory, pids and cpu, \
                 or v1 memory, pids, cpu and cpuacct",
            )),
        }
    }

    /// The version this parent uses.
    pub fn version(&self) -> CgroupVersion {
        match self {
            CgroupParent::V1 { .. } => CgroupVersion::V1,
            CgroupParent::V2 { .. } => CgroupVersion::V2,
        }
    }

    /// The distinct directories runs are created in.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = match self {
            CgroupParent::V1 {
                memory,
                pids,
                cpu,
                cpuacct,
            } => vec![memory, pids, cpu, cpuacct],
            CgroupParent::V2 { dir } => vec![dir],
        };
        v.dedup();
        v
    }

    /// On v2, make sure `cgroup.subtree_control` enables memory, pids and
    /// cpu. A non-root cgroup that holds processes cannot enable controllers
    /// ("no internal processes"), so this process first moves itself into a
    /// leaf `supervisor` child of its own cgroup — still inside its subtree.
    /// Other processes in the cgroup are never moved: then this fails.
    pub fn prepare_v2(&self) -> io::Result<()> {
        let CgroupParent::V2 { dir } = self else {
            return Ok(());
        };
        let control = dir.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&control)?;
        let missing: Vec<&str> = V2_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let me = std::process::id().to_string();
        let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
        if procs.split_whitespace().any(|p| p != me) {
            return Err(io::Error::other(format!(
                "{} holds other processes, so its controllers cannot be delegated; \
                 run paddockd in a cgroup of its own (systemd: Delegate=yes)",
                dir.display()
            )));
        }
        if !procs.trim().is_empty() {
            let leaf = dir.join("supervisor");
            match fs::create_dir(&leaf) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            fs::write(leaf.join("cgroup.procs"), &me)?;
        }
        let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
        fs::write(&control, line.join(" "))
    }
}

#[derive(Debug)]
struct CgroupMount {
    root: String,
    mount_point: String,
    v2: bool,
    controllers: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let v2 = r[0] == "cgroup2";
        if !v2 && r[0] != "cgroup" {
            continue;
        }
        let controllers = if v2 {
            Vec::new()
        } else {
            r[2].split(',').map(str::to_owned).collect()
        };
        out.push(CgroupMount {
            root: l[3].to_owned(),
            mount_point: l[4].to_owned(),
            v2,
            controllers,
        });
    }
    out
}

/// `(controllers, path)` pairs; v2's entry has an empty controller list.
fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctl = it.next()?;
            let path = it.next()?;
            Some((ctl.to_owned(), path.to_owned()))
        })
        .collect()
}

fn join_rel(base: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// Limits applied to a run cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_bytes: u64,
    pub pids: u64,
    pub cpu_millicores: u64,
}

/// What a run cost, read from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    pub cpu_user: Duration,
    pub cpu_system: Duration,
    pub memory_peak_bytes: u64,
    /// Processes the kernel OOM-killed in this cgroup.
    pub oom_kills: u64,
    /// Times a fork failed at pids.max.
    pub pids_max_hits: u64,
}

const CFS_PERIOD_US: u64 = 100_000;

/// One run's cgroup. Removed by [`Cgroup::remove`]; dropping it without
/// removing leaks the directory, so the handle always calls `remove`.
#[derive(Debug)]
pub struct Cgroup {
    version: CgroupVersion,
    /// The run's directories: v1 memory, pids, cpu, cpuacct (deduplicated); v2 one.
    dirs: Vec<PathBuf>,
    /// v2 only: an O_PATH fd of the directory, for CLONE_INTO_CGROUP.
    dir_fd: Option<OwnedFd>,
}

fn cg_err(op: &'static str, path: &Path, source: io::Error) -> SpawnError {
    SpawnError::Cgroup {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: &Path, value: &str) -> Result<(), SpawnError> {
    fs::write(path, value).map_err(|e| cg_err("write", path, e))
}

impl Cgroup {
    /// Create the run cgroup `name` under `parent` and set its limits. On
    /// error nothing is left behind.
    pub fn create(
        parent: &CgroupParent,
        name: &str,
        limits: CgroupLimits,
    ) -> Result<Cgroup, SpawnError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(SpawnError::InvalidSpec(format!("cgroup name {name:?}")));
        }
        let mut cg = Cgroup {
            version: parent.version(),
            dirs: Vec::new(),
            dir_fd: None,
        };
        for base in parent.dirs() {
            let dir = base.join(name);
            if let Err(e) = fs::create_dir(&dir) {
                cg.remove_dirs();
                return Err(cg_err("mkdir", &dir, e));
            }
            cg.dirs.push(dir);
        }
        if let Err(e) = cg.set_limits(parent, name, limits) {
            cg.remove_dirs();
            return Err(e);
        }
        Ok(cg)
    }

    fn set_limits(
        &mut self,
        parent: &CgroupParent,
        name: &str,
        l: CgroupLimits,
    ) -> Result<(), SpawnError> {
        let quota = l.cpu_millicores.max(1) * CFS_PERIOD_US / 1000;
        match parent {
            CgroupParent::V1 {
                memory, pids, cpu, ..
            } => {
                let mem = memory.join(name);
                write(
                    &mem.join("memory.limit_in_bytes"),
                    &l.memory_bytes.to_string(),
                )?;
                // Swap 0: memory+swap capped at the memory limit (only where
                // the kernel accounts swap).
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write(&memsw, &l.memory_bytes.to_string())?;
                }
                write(&pids.join(name).join("pids.max"), &l.pids.to_string())?;
                let cpu = cpu.join(name);
                write(&cpu.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            CgroupParent::V2 { dir } => {
                let d = dir.join(name);
                write(&d.join("memory.max"), &l.memory_bytes.to_string())?;
                let swap = d.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                write(&d.join("pids.max"), &l.pids.to_string())?;
                write(&d.join("cpu.max"), &format!("{quota} {CFS_PERIOD_US}"))?;
                let fd = nix::fcntl::open(
                    &d,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| cg_err("open", &d, e.into()))?;
                self.dir_fd = Some(fd);
            }
        }
        Ok(())
    }

    /// The cgroup version.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Take charge of a run cgroup another process created (a
    /// [`crate::Launcher`]): its version and directories, as [`Cgroup::dirs`]
    /// gave them there.
    pub(crate) fn adopt(version: CgroupVersion, dirs: Vec<PathBuf>) -> Cgroup {
        Cgroup {
            version,
            dirs,
            dir_fd: None,
        }
    }

    /// The run's directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// v2: the directory fd for CLONE_INTO_CGROUP.
    pub(crate) fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.dir_fd.as_ref().map(|f| f.as_fd())
    }

    /// v1: put `pid` into every hierarchy (v2 placed it at clone time).
    pub(crate) fn attach(&self, pid: libc::pid_t) -> Result<(), SpawnError> {
        if self.version == CgroupVersion::V2 {
            return Ok(());
        }
        let pid = pid.to_string();
        for d in &self.dirs {
            write(&d.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    /// The directory whose `cgroup.procs` lists every process of the run.
    fn procs_dir(&self) -> &Path {
        // v1: the pids hierarchy is the second directory created.
        match self.version {
            CgroupVersion::V1 => &self.dirs[1.min(self.dirs.len() - 1)],
            CgroupVersion::V2 => &self.dirs[0],
        }
    }

    /// The pids currently in the run cgroup.
    pub fn procs(&self) -> Vec<libc::pid_t> {
        fs::read_to_string(self.procs_dir().join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// SIGKILL everything in the cgroup until it is empty (bounded).
    /// v2 uses cgroup.kill, which also reaches frozen tasks.
    pub fn kill_all(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        if self.version == CgroupVersion::V2 {
            let _ = fs::write(self.dirs[0].join("cgroup.kill"), "1");
        }
        loop {
            let procs = self.procs();
            if procs.is_empty() || Instant::now() > deadline {
                return;
            }
            for p in procs {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Read what the run cost. Missing files read as zero.
    pub fn usage(&self) -> CgroupUsage {
        let read = |dir: &Path, file: &str| fs::read_to_string(dir.join(file)).unwrap_or_default();
        let num = |s: String| s.trim().parse::<u64>().unwrap_or(0);
        let mut u = CgroupUsage::default();
        match self.version {
            CgroupVersion::V1 => {
                let (mem, pids, cpuacct) =
                    (&self.dirs[0], &self.dirs[1], self.dirs.last().unwrap());
                u.memory_peak_bytes = num(read(mem, "memory.max_usage_in_bytes"));
                u.oom_kills = keyed(&read(mem, "memory.oom_control"), "oom_kill");
                u.pids_max_hits = keyed(&read(pids, "pids.events"), "max");
                u.cpu_user = Duration::from_nanos(num(read(cpuacct, "cpuacct.usage_user")));
                u.cpu_system = Duration::from_nanos(num(read(cpuacct, "cpuacct.usage_sys")));
            }
            CgroupVersion::V2 => {
                let d = &self.dirs[0];
                u.memory_peak_bytes = num(read(d, "memory.peak"));
                u.oom_kills = keyed(&read(d, "memory.events"), "oom_kill");
                u.pids_max_hits = keyed(&read(d, "pids.events"), "max");
                let stat = read(d, "cpu.stat");
                u.cpu_user = Duration::from_micros(keyed(&stat, "user_usec"));
                u.cpu_system = Duration::from_micros(keyed(&stat, "system_usec"));
            }
        }
        u
    }

    /// Kill what is left, then remove every directory. Retries while the
    /// kernel still reports the group busy (exiting tasks), bounded.
    pub fn remove(mut self) -> Result<(), SpawnError> {
        self.kill_all();
        self.dir_fd = None;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut result = Ok(());
        for d in std::mem::take(&mut self.dirs) {
            loop {
                match fs::remove_dir(&d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    Err(e) => {
                        result = Err(cg_err("rmdir", &d, e));
                        break;
                    }
                }
            }
        }
        result
    }

    fn remove_dirs(&mut self) {
        for d in self.dirs.drain(..) {
            let _ = fs::remove_dir(&d);
        }
    }
}

/// The value of `key N` in a flat-keyed cgroup file.
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Names of run cgroups under `parent` (any hierarchy) starting with `prefix`.
fn stale_names(parent: &CgroupParent, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for base in parent.dirs() {
        if let Ok(rd) = fs::read_dir(base) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(prefix) && e.path().is_dir() && !names.contains(&n) {
                    names.push(n);
                }
            }
        }
    }
    names
}

/// One attempt, without waiting, to empty and remove each named run cgroup:
/// SIGKILL what is inside, rmdir every hierarchy's directory. Returns the
/// names still present (busy: their tasks are still exiting, or are zombies
/// waiting for a reaper).
pub fn try_reap(parent: &CgroupParent, names: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    for n in names {
        let dirs: Vec<PathBuf> = parent
            .dirs()
            .iter()
            .map(|b| b.join(n))
            .filter(|d| d.exists())
            .collect();
        for d in &dirs {
            let procs = fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for p in procs.split_whitespace().filter_map(|p| p.parse().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if parent.version() == CgroupVersion::V2 {
                let _ = fs::write(d.join("cgroup.kill"), "1");
            }
        }
        let mut busy = false;
        for d in &dirs {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => busy = true,
            }
        }
        if busy {
            left.push(n.clone());
        }
    }
    left
}

/// Remove run cgroups a killed predecessor left under `parent` whose names
/// start with `prefix`, retrying for up to `patience`. Returns the names that
/// are still busy, for the caller to retry later (never blocks longer).
pub fn reap_stale(parent: &CgroupParent, prefix: &str, patience: Duration) -> Vec<String> {
    let deadline = Instant::now() + patience;
    let mut left = stale_names(parent, prefix);
    while !left.is_empty() {
        left = try_reap(parent, &left);
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
32 25 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 25 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 25 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
22 27 0:21 / /proc rw,relatime - proc proc rw
";
    const V1_SELF: &str = "\
8:pids:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn cgroup_v1_paths_nest_under_own_cgroup_per_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let p = CgroupParent::from_proc(V1_SELF, V1_MOUNTINFO, tmp.path()).unwrap();
        let r = tmp.path();
        assert_eq!(
            p,
            CgroupParent::V1 {
                memory: r.join("sys/fs/cgroup/memory/process_api/abc"),
                pids: r.join("sys/fs/cgroup/pids"),
                cpu: r.join("sys/fs/cgroup/cpu"),
                cpuacct: r.join("sys/fs/cgroup/cpuacct"),
            }
        );
    }

    #[test]
    fn cgroup_v1_comounted_cpu_cpuacct_is_one_directory() {
        let mi = "32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  31 25 0:27 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let me = "3:cpu,cpuacct:/a\n2:memory:/a\n1:pids:/a\n";
        let tmp = tempfile::tempdir().unwrap();
        let p = CgroupParent::from_proc(me, mi, tmp.path()).unwrap();
        assert_eq!(p.dirs().len(), 3, "{p:?}");
    }

    #[test]
    fn cgroup_v1_mount_root_is_stripped_from_own_path() {
        // Inside a container the hierarchy's mount root is the container's cgroup.
        let mi = "30 25 0:26 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  31 25 0:27 /docker/x /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
                  32 25 0:28 /docker/x /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n";
        let me = "3:cpu,cpuacct:/docker/x/sub\n2:memory:/docker/x/sub\n1:pids:/docker/x/sub\n";
        let tmp = tempfile::tempdir().unwrap();
        let p = CgroupParent::from_proc(me, mi, tmp.path()).unwrap();
        assert_eq!(p.dirs()[0], tmp.path().join("sys/fs/cgroup/memory/sub"));
    }

    #[test]
    fn cgroup_missing_hierarchies_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = CgroupParent::from_proc("0::/\n", "", tmp.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// A temp directory standing in for a v2 cgroupfs with our own cgroup at
    /// `own`, holding this process.
    fn fake_v2(own: &str) -> (tempfile::TempDir, CgroupParent) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp
            .path()
            .join("sys/fs/cgroup")
            .join(own.trim_start_matches('/'));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        fs::write(
            dir.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let mi = "40 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let p = CgroupParent::from_proc(&format!("0::{own}\n"), mi, tmp.path()).unwrap();
        (tmp, p)
    }

    #[test]
    fn cgroup_v2_is_preferred_when_it_has_the_controllers() {
        let (tmp, p) = fake_v2("/system.slice/paddockd.service");
        assert_eq!(
            p,
            CgroupParent::V2 {
                dir: tmp
                    .path()
                    .join("sys/fs/cgroup/system.slice/paddockd.service")
            }
        );
    }

    #[test]
    fn cgroup_v2_prepare_moves_self_to_leaf_and_enables_controllers() {
        let (_tmp, p) = fake_v2("/svc");
        p.prepare_v2().unwrap();
        let CgroupParent::V2 { dir } = &p else {
            unreachable!()
        };
        assert_eq!(
            fs::read_to_string(dir.join("supervisor/cgroup.procs")).unwrap(),
            std::process::id().to_string()
        );
        assert_eq!(
            fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );
    }

    #[test]
    fn cgroup_v2_prepare_refuses_to_move_other_processes() {
        let (_tmp, p) = fake_v2("/shared");
        let CgroupParent::V2 { dir } = &p else {
            unreachable!()
        };
        fs::write(dir.join("cgroup.procs"), "1\n").unwrap();
        let err = p.prepare_v2().unwrap_err();
        assert!(err.to_string().contains("other processes"), "{err}");
    }

    #[test]
    fn cgroup_v2_create_writes_limits_and_usage_reads_stats() {
        let (_tmp, p) = fake_v2("/svc");
        let limits = CgroupLimits {
            memory_bytes: 64 << 20,
            pids: 16,
            cpu_millicores: 500,
        };
        let cg = Cgroup::create(&p, "paddock-run-1", limits).unwrap();
        let d = cg.dirs()[0].clone();
        assert_eq!(
            fs::read_to_string(d.join("memory.max")).unwrap(),
            "67108864"
        );
        assert_eq!(fs::read_to_string(d.join("pids.max")).unwrap(), "16");
        assert_eq!(
            fs::read_to_string(d.join("cpu.max")).unwrap(),
            "50000 100000"
        );
        assert!(cg.clone_into_fd().is_some());
        fs::write(d.join("memory.peak"), "1234\n").unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(d.join("pids.events"), "max 2\n").unwrap();
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 30\nuser_usec 20\nsystem_usec 10\n",
        )
        .unwrap();
        let u = cg.usage();
        assert_eq!(u.memory_peak_bytes, 1234);
        assert_eq!(u.oom_kills, 1);
        assert_eq!(u.pids_max_hits, 2);
        assert_eq!(u.cpu_user, Duration::from_micros(20));
        assert_eq!(u.cpu_system, Duration::from_micros(10));
    }

    #[test]
    fn cgroup_v1_create_writes_limits_in_each_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let p = CgroupParent::V1 {
            memory: r.join("memory"),
            pids: r.join("pids"),
            cpu: r.join("cpu"),
            cpuacct: r.join("cpuacct"),
        };
        for d in p.dirs() {
            fs::create_dir_all(d).unwrap();
        }
        let limits = CgroupLimits {
            memory_bytes: 1 << 20,
            pids: 8,
            cpu_millicores: 2000,
        };
        let cg = Cgroup::create(&p, "run", limits).unwrap();
        assert_eq!(cg.dirs().len(), 4);
        assert_eq!(
            fs::read_to_string(r.join("memory/run/memory.limit_in_bytes")).unwrap(),
            "1048576"
        );
        assert_eq!(
            fs::read_to_string(r.join("pids/run/pids.max")).unwrap(),
            "8"
        );
        assert_eq!(
            fs::read_to_string(r.join("cpu/run/cpu.cfs_quota_us")).unwrap(),
            "200000"
        );
        fs::write(
            r.join("memory/run/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        fs::write(r.join("cpuacct/run/cpuacct.usage_user"), "5000000\n").unwrap();
        assert_eq!(cg.usage().oom_kills, 3);
        assert_eq!(cg.usage().cpu_user, Duration::from_millis(5));
    }

    #[test]
    fn cgroup_create_with_bad_name_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let p = CgroupParent::V2 {
            dir: tmp.path().to_path_buf(),
        };
        let l = CgroupLimits {
            memory_bytes: 1,
            pids: 1,
            cpu_millicores: 1,
        };
        for bad in ["", "../x", ".hidden", "a/b"] {
            assert!(matches!(
                Cgroup::create(&p, bad, l),
                Err(SpawnError::InvalidSpec(_))
            ));
        }
    }

    #[test]
    fn cgroup_reap_stale_removes_only_the_prefix_in_every_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let p = CgroupParent::V1 {
            memory: r.join("memory"),
            pids: r.join("pids"),
            cpu: r.join("cpu"),
            cpuacct: r.join("cpuacct"),
        };
        for d in p.dirs() {
            fs::create_dir_all(d.join("paddock-d-1")).unwrap();
            fs::create_dir_all(d.join("other")).unwrap();
        }
        // A leftover present in one hierarchy only is found too.
        fs::create_dir_all(r.join("pids/paddock-d-2")).unwrap();
        let left = reap_stale(&p, "paddock-d-", Duration::from_millis(50));
        assert!(left.is_empty(), "{left:?}");
        for d in p.dirs() {
            assert!(!d.join("paddock-d-1").exists());
            assert!(d.join("other").exists());
        }
        assert!(!r.join("pids/paddock-d-2").exists());
    }

    #[test]
    fn cgroup_create_failure_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        // The pids hierarchy does not exist: mkdir there fails after memory's succeeded.
        let p = CgroupParent::V1 {
            memory: r.join("memory"),
            pids: r.join("missing/pids"),
            cpu: r.join("cpu"),
            cpuacct: r.join("cpuacct"),
        };
        fs::create_dir_all(r.join("memory")).unwrap();
        let l = CgroupLimits {
            memory_bytes: 1,
            pids: 1,
            cpu_millicores: 1,
        };
        assert!(Cgroup::create(&p, "run", l).is_err());
        assert!(!r.join("memory/run").exists());
    }
}
