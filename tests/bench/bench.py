#!/usr/bin/env python3
"""Paddock benchmark harness: medians, p99 and ratios against baselines measured
in the same run (see ../shared/BENCH.md). Prints a Markdown table.

    tests/bench/bench.py [--quick] [--iterations N]

Needs root and a release build (it builds one). Talks only to a Unix socket
under /var/tmp; every loop is bounded; it stops the daemon it started.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL = os.path.join(ROOT, "target", "release")

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]

def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append((time.perf_counter() - t) * 1000)
    return out

class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX); self.s.connect(path)
        self.f = self.s.makefile("rwb"); self.n = 0
    def call(self, op, **kw):
        self.n += 1
        self.f.write((json.dumps(dict(id=self.n, op=op, **kw)) + "\n").encode()); self.f.flush()
        r = json.loads(self.f.readline())
        if not r["ok"]: raise RuntimeError(r)
        return r["result"]
    def invoke(self, function, code=0):
        """An invocation that must have run: a failed launch is no timing."""
        r = self.call("invoke", function=function)
        if r["status"] != "exited" or r["exit_code"] != code:
            raise RuntimeError(f"{function}: {r}")
        return r
    def close(self): self.s.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few iterations, for CI (no thresholds)")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--warm-iterations", type=int, default=2000, help="calls in the warm WASM series")
    a = ap.parse_args()
    n = 30 if a.quick else a.iterations
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (sandboxes need namespaces and cgroups)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "paddock-supervisor", "-p", "paddock-runtimes", "--bins"],
                   cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="paddock-bench-", dir="/var/tmp")
    os.chmod(work, 0o755)  # sandboxes (unprivileged uids) bind the function directories below it
    fns = os.path.join(work, "functions"); os.makedirs(os.path.join(fns, "true"))
    with open(os.path.join(fns, "true.toml"), "w") as f:
        f.write('runtime = "native"\ncommand = ["/bin/true"]\n[limits]\nconcurrency = 8\n')
    with open(os.path.join(fns, "hello-native.toml"), "w") as f:
        f.write('runtime = "native"\ncommand = ["/bin/echo", "hello"]\n[limits]\nconcurrency = 8\n')
    wasm_fixtures = os.path.join(ROOT, "tests", "fixtures", "wasm")
    for name, wat in (("hello-wasm", "hello.wat"), ("fib-wasm", "fib.wat")):
        os.makedirs(os.path.join(fns, name))
        shutil.copy(os.path.join(wasm_fixtures, wat), os.path.join(fns, name, wat))
        with open(os.path.join(fns, name + ".toml"), "w") as f:
            f.write(f'runtime = "wasm"\nmodule = "{wat}"\n[limits]\nconcurrency = 8\n')
    # The same hello module, warm: one runner per concurrent call, a fresh instance per call.
    os.makedirs(os.path.join(fns, "hello-wasm-warm"))
    shutil.copy(os.path.join(wasm_fixtures, "hello.wat"), os.path.join(fns, "hello-wasm-warm", "hello.wat"))
    with open(os.path.join(fns, "hello-wasm-warm.toml"), "w") as f:
        f.write('runtime = "wasm"\nmode = "warm"\nmodule = "hello.wat"\n[limits]\nconcurrency = 8\n')
    sock = os.path.join(work, "run", "paddockd.sock")
    daemon = subprocess.Popen([os.path.join(REL, "paddockd"), "serve", "--socket", sock,
                               "--functions", fns, "--state-dir", os.path.join(work, "state")],
                              stderr=open(os.path.join(work, "daemon.log"), "w"))
    rows = []
    notes = []
    try:
        for _ in range(100):
            if os.path.exists(sock): break
            time.sleep(0.05)
        c = Client(sock)
        bwrap = shutil.which("bwrap")
        true_pol = os.path.join(fns, "true.toml")
        cases = {
            "plain fork+exec+wait /bin/true": lambda: subprocess.run(["/bin/true"]),
            "paddockd run /bin/true (process start included)":
                lambda: subprocess.run([os.path.join(REL, "paddockd"), "run", "--policy", true_pol], stdout=subprocess.DEVNULL),
            "socket invoke /bin/true (all layers)": lambda: c.invoke("true"),
            "socket request, no launch (stats)": lambda: c.call("stats"),
            "socket invoke native hello (/bin/echo, cold)": lambda: c.invoke("hello-native"),
            "socket invoke WASM hello (WAT, cold)": lambda: c.invoke("hello-wasm"),
            "socket invoke WASM hello (WAT, warm)": lambda: c.invoke("hello-wasm-warm"),
        }
        if bwrap:
            cases["bwrap --unshare-all /bin/true"] = lambda: subprocess.run(
                [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--ro-bind", "/lib", "/lib",
                 "--ro-bind", "/lib64", "/lib64", "--ro-bind", "/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
                 "--tmpfs", "/tmp", "--", "/bin/true"])
        res = {k: [] for k in cases}
        for _ in range(n):  # interleaved, so noise hits every case alike
            for k, fn in cases.items():
                res[k] += timed(fn, 1)
        base = statistics.median(res["plain fork+exec+wait /bin/true"])
        for k, v in res.items():
            rows.append((k, statistics.median(v), pct(v, 0.99), statistics.median(v) / base))
        # Warm WASM hello: a long series on one client (runner already up),
        # round trip through the socket as the client sees it, and the
        # daemon's own wall_us of the call on the runner.
        wn = 200 if a.quick else a.warm_iterations
        warm_call = lambda: c.invoke("hello-wasm-warm")
        for _ in range(20): warm_call()
        warm_rt, warm_wall = [], []
        for _ in range(wn):
            t = time.perf_counter(); r = warm_call(); warm_rt.append((time.perf_counter() - t) * 1e6)
            warm_wall.append(r["wall_us"])
        warm_rows = [(f"warm WASM hello round trip, 1 client ({wn} calls)", statistics.median(warm_rt), pct(warm_rt, 0.99)),
                     ("  of which the call on the runner (wall_us)", statistics.median(warm_wall), pct(warm_wall, 0.99))]
        # CPU-bound WASM: fib(30) through Paddock vs the wasmi CLI on the same module.
        fib_wat = os.path.join(fns, "fib-wasm", "fib.wat")
        wasmi_cli = shutil.which("wasmi")
        cpu = {"socket invoke fib(30) WASM": lambda: c.invoke("fib-wasm", 832040 % 256)}
        if wasmi_cli:
            cpu["wasmi CLI fib(30) (whole process)"] = lambda: subprocess.run(
                [wasmi_cli, "run", fib_wat], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cres = {k: [] for k in cpu}
        for _ in range(max(5, n // 10)):
            for k, fn in cpu.items():
                cres[k] += timed(fn, 1)
        cpu_rows = [(k, statistics.median(v), pct(v, 0.99)) for k, v in cres.items()]
        if not wasmi_cli:
            notes.append("wasmi CLI not installed (`cargo install wasmi_cli`): CPU-bound baseline skipped")
        if not bwrap:
            notes.append("bubblewrap not installed (`apt-get install bubblewrap`): its rows are skipped")
        # Throughput with 2 concurrent clients.
        def loop(fn_factory, secs, counts, i):
            fn = fn_factory(); end = time.time() + secs; k = 0
            while time.time() < end: fn(); k += 1
            counts[i] = k
        secs = 2 if a.quick else 5
        tput = {}
        for name, factory in [("plain fork+exec /bin/true", lambda: (lambda: subprocess.run(["/bin/true"]))),
                              ("socket invoke, 2 clients", lambda: (lambda cl=Client(sock): cl.invoke("true"))),
                              ("socket invoke warm WASM hello, 2 clients",
                               lambda: (lambda cl=Client(sock): cl.invoke("hello-wasm-warm")))] + (
                             [("bwrap, 2 loops", lambda: (lambda: subprocess.run([bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr",
                                "--ro-bind", "/lib", "/lib", "--ro-bind", "/lib64", "/lib64", "--ro-bind", "/bin", "/bin",
                                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", "/bin/true"])))] if bwrap else []):
            counts = [0, 0]
            ts = [threading.Thread(target=loop, args=(factory, secs, counts, i)) for i in range(2)]
            [t.start() for t in ts]; [t.join() for t in ts]
            tput[name] = sum(counts) / secs
        rss = int([l for l in open(f"/proc/{daemon.pid}/status") if l.startswith("VmRSS")][0].split()[1])
    finally:
        daemon.terminate()
        try: daemon.wait(15)
        except subprocess.TimeoutExpired: daemon.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{n} iterations per case, interleaved; {os.uname().release}, {os.cpu_count()} cores\n")
    print("| case | median ms | p99 ms | × fork+exec |\n|---|---:|---:|---:|")
    for k, m, p, r in rows:
        print(f"| {k} | {m:.3f} | {p:.3f} | {r:.2f} |")
    print("\n| warm WASM (fresh instance per call) | median µs | p99 µs |\n|---|---:|---:|")
    for k, m, p in warm_rows:
        print(f"| {k} | {m:.0f} | {p:.0f} |")
    print("\n| CPU-bound | median ms | p99 ms |\n|---|---:|---:|")
    for k, m, p in cpu_rows:
        print(f"| {k} | {m:.2f} | {p:.2f} |")
    print("\n| throughput (2 parallel loops) | per second |\n|---|---:|")
    for k, v in tput.items():
        print(f"| {k} | {v:.0f} |")
    print(f"\ndaemon RSS after the run: {rss/1024:.1f} MiB")
    for note in notes:
        print(f"note: {note}")

if __name__ == "__main__":
    main()
