#!/usr/bin/env python3
"""Host state a test run must leave as it found it (tests/run-all.sh).

    host_snapshot.py save FILE
    host_snapshot.py compare FILE [--settle SECONDS]

What is recorded:
- the host's mounts (mount point, type, source per /proc/self/mountinfo line);
- every directory whose name contains "paddock" beneath this process's own
  cgroup, in every hierarchy it belongs to (v1 and v2), where run cgroups
  are created;
- every process whose real, effective, saved or fs uid is a sandbox uid
  (PADDOCK_SANDBOX_UIDS, default 100000-101023), zombies included.

`compare` prints what is new since `save` and exits 1 if anything is. Runs
that just ended may still be tearing down, so it looks again for up to
--settle seconds (default 10) before reporting.
"""

import collections
import json
import os
import sys
import time


def uid_range():
    spec = os.environ.get("PADDOCK_SANDBOX_UIDS", "100000-101023")
    lo, hi = spec.split("-")
    return int(lo), int(hi)


def mountinfo():
    """(mount id, root, mount point, fstype, source, super options) per line."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append((fields[0], fields[3], fields[4], fields[sep + 1],
                        fields[sep + 2], fields[sep + 3] if len(fields) > sep + 3 else ""))
    return out


def mounts():
    return sorted(f"{m[2]} {m[3]} {m[4]}" for m in mountinfo())


def cgroup_bases():
    """This process's own cgroup directory in each hierarchy."""
    cgroup_mounts = [m for m in mountinfo() if m[3] in ("cgroup", "cgroup2")]
    bases = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and ctrls == "":
                candidates = [m for m in cgroup_mounts if m[3] == "cgroup2"]
            else:
                want = set(ctrls.split(","))
                candidates = [m for m in cgroup_mounts if m[3] == "cgroup"
                              and want <= set(m[5].split(","))]
            for _, root, point, _, _, _ in candidates[:1]:
                rel = path[len(root):] if root != "/" and path.startswith(root) else path
                bases.append(os.path.join(point, rel.lstrip("/")))
    return sorted(set(bases))


def cgroups():
    found = set()
    for base in cgroup_bases():
        base_depth = base.rstrip("/").count("/")
        for dirpath, dirnames, _ in os.walk(base):
            if dirpath.count("/") - base_depth >= 6:
                dirnames[:] = []
            for d in dirnames:
                if "paddock" in d:
                    found.add(os.path.join(dirpath, d))
    return sorted(found)


def sandbox_processes():
    lo, hi = uid_range()
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        except OSError:
            continue
        uids = [int(u) for u in status.get("Uid", "").split()]
        if any(lo <= u <= hi for u in uids):
            procs[pid] = f"pid {pid} uid {uids[0]} state {status.get('State', '?')} {status.get('Name', '?')}"
    return procs


def snapshot():
    return {"mounts": mounts(), "cgroups": cgroups(), "processes": sandbox_processes()}


def leaks(before, now):
    new_mounts = collections.Counter(now["mounts"]) - collections.Counter(before["mounts"])
    return {
        "mounts": sorted(new_mounts.elements()),
        "cgroups": sorted(set(now["cgroups"]) - set(before["cgroups"])),
        "processes": [v for k, v in sorted(now["processes"].items())
                      if k not in before["processes"]],
    }


def main(argv):
    if len(argv) >= 3 and argv[1] == "save":
        with open(argv[2], "w") as f:
            json.dump(snapshot(), f)
        return 0
    if len(argv) >= 3 and argv[1] == "compare":
        settle = float(argv[4]) if len(argv) >= 5 and argv[3] == "--settle" else 10.0
        with open(argv[2]) as f:
            before = json.load(f)
        deadline = time.monotonic() + settle
        while True:
            found = leaks(before, snapshot())
            if not any(found.values()):
                print("host_snapshot: no mount, cgroup or sandbox process left behind")
                return 0
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        print("host_snapshot: THE TESTS LEFT THINGS BEHIND ON THE HOST:", file=sys.stderr)
        names = {"mounts": "mount", "cgroups": "cgroup", "processes": "process"}
        for kind, items in found.items():
            for item in items:
                print(f"  leaked {names[kind]}: {item}", file=sys.stderr)
        return 1
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
