#!/usr/bin/env python3
"""Where launch time goes: runs `PADDOCK_TRACE=1 paddockd run` of /bin/true N
times (release build) and prints the median duration of every step, parent
and child, as a Markdown table.

    tests/bench/launch_steps.py [--iterations N] [--no-build]

Needs root. A run that does not exit 0 is an error (exit status 1).
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("launch_steps.py: needs root")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "paddock-supervisor"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="paddock-steps-", dir="/var/tmp")
    os.chmod(work, 0o755)
    os.makedirs(os.path.join(work, "fn"))
    pol = os.path.join(work, "true.toml")
    with open(pol, "w") as f:
        f.write(f'runtime = "native"\ncommand = ["/bin/true"]\ndirectory = "{work}/fn"\n')
    try:
        steps = {}
        order = []
        for _ in range(a.iterations):
            r = subprocess.run([os.path.join(ROOT, "target/release/paddockd"), "run", "--policy", pol],
                               env=dict(os.environ, PADDOCK_TRACE="1"), capture_output=True, text=True, check=True)
            res = json.loads(r.stdout)
            if res.get("status") != "exited" or res.get("exit_code") != 0:
                sys.exit(f"launch_steps.py: a launch failed: {r.stdout[:500]}")
            for line in r.stderr.splitlines():
                if not line.startswith("trace "):
                    continue
                delta = float(line.split("+")[1].split("us")[0])
                label = line.split("us  ")[-1].strip()
                if label not in steps:
                    steps[label] = []
                    order.append(label)
                steps[label].append(delta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(statistics.median(v) for v in steps.values())
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"\n{a.iterations} launches of /bin/true through `paddockd run`, every layer on; "
          f"kernel {os.uname().release}, {os.cpu_count()} cores, commit {rev or '?'}\n")
    print("| step (ends at) | median µs | share |\n|---|---:|---:|")
    for label in order:
        m = statistics.median(steps[label])
        print(f"| {label} | {m:.1f} | {100 * m / total:.0f}% |")
    print(f"| **sum of medians** | **{total:.1f}** | |")

if __name__ == "__main__":
    main()
