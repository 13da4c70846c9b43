#!/usr/bin/env python3
"""Paddock benchmark harness (issue 7): medians, p99 and ratios against
baselines measured in the same run (see ../shared/BENCH.md and
docs/BENCHMARKS.md). Prints Markdown tables.

    tests/bench/bench.py [--quick] [--iterations N] [--seconds S] [--no-build]

Needs root and a C compiler. It builds the release binaries, compiles
tests/bench/agent.c (the native client and baseline launcher that does every
timed operation, so Python's own overhead stays out of the figures) into a
temporary directory under /var/tmp, starts a daemon on a socket there, and
stops everything it started (agents, connections, daemon) and removes the
directory, also on error or SIGTERM. Every loop is bounded. A failed
invocation is an error (exit status 1); no timing is asserted.
"""
import argparse, json, math, os, random, select, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REL = os.path.join(ROOT, "target", "release")
HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LINE = 8 << 20  # the daemon's default request line cap


class BenchError(Exception):
    pass


def p50(v):
    return statistics.median(v)


def p99(v):
    """Nearest-rank 99th percentile."""
    v = sorted(v)
    return v[max(0, math.ceil(0.99 * len(v)) - 1)]


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def mib(kib):
    return kib / 1024


class Agent:
    """tests/bench/agent.c as a co-process: one command line in, one answer line out."""

    def __init__(self, exe):
        self.p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self.buf = b""

    def cmd(self, line, timeout=120):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self._read(timeout, line[:120])

    def _read(self, timeout, what):
        """The answer line to a command already written; an "err" answer raises."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BenchError(f"agent: no answer within {timeout:g} s to {what!r}")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise BenchError(f"agent exited (status {self.p.wait()}) on {what!r}")
            self.buf += chunk
        out, self.buf = self.buf.split(b"\n", 1)
        out = out.decode(errors="replace")
        if out.startswith("err "):
            raise BenchError(f"agent: {out[4:]} (command {what!r})")
        return out

    def launch(self, how, argv, want_status=0, want_out=None):
        """fork/spawn argv; µs. The child's status (and first stdout line) must be as given."""
        us, status, out = (self.cmd(f"{how} {' '.join(argv)}").split(" ", 2) + [""])[:3]
        if int(status) != want_status or (want_out is not None and out != want_out):
            raise BenchError(f"{' '.join(argv)}: status {status}, stdout {out[:300]!r}")
        return float(us), out

    def connect(self, sock):
        self.cmd(f"connect {sock}")

    def req(self, obj):
        """One request through the socket; (µs, parsed response). Must be ok."""
        us, resp = self.cmd("req " + json.dumps(obj, separators=(",", ":"))).split(" ", 1)
        r = json.loads(resp)
        if not r.get("ok"):
            raise BenchError(f"request {obj} failed: {resp[:500]}")
        return float(us), r["result"]

    def invoke(self, function, code=0, out=None):
        """An invocation that must have run and exited with code: a failed launch is no timing."""
        us, r = self.req({"id": 1, "op": "invoke", "function": function})
        if r["status"] != "exited" or r["exit_code"] != code or (out is not None and r.get("stdout") != out):
            raise BenchError(f"invoke {function}: {json.dumps(r)[:500]}")
        return us, r

    def loop(self, cmd, secs):
        """Start a loop command; finish() reads its answer. (Two agents run in parallel.)"""
        self.p.stdin.write((cmd + "\n").encode())
        self.p.stdin.flush()
        self.pending, self.pending_cmd = secs, cmd[:120]

    def finish(self):
        count, elapsed_us = self._read(self.pending + 120, self.pending_cmd).split()
        return int(count), float(elapsed_us)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b"quit\n")
                self.p.stdin.close()
                self.p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


def parallel(agents, cmd, secs):
    """The same loop on every agent at once; total completions per second."""
    for a in agents:
        a.loop(cmd, secs)
    res = [a.finish() for a in agents]
    return sum(c for c, _ in res) / (max(e for _, e in res) / 1e6)


def cpu_busy_s():
    """Machine-wide busy CPU time so far, in seconds (all cores)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)  # user nice system irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    """CPU time of this process and of every descendant reaped so far (daemon, agents, sandboxes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def machine(load_before):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                             text=True).stdout.strip() or "?"
    except OSError:
        rev = "?"
    load_after = open("/proc/loadavg").read().split()[:3]
    return (f"kernel {os.uname().release}; {cpu}; {os.cpu_count()} cores; {mem / 1048576:.1f} GiB; "
            f"commit {rev}; load average (1, 5, 15 min) before the run {' '.join(load_before)}, "
            f"after it {' '.join(load_after)}")


def compile_agent(work):
    cc = next((c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c)), None)
    if not cc:
        raise BenchError("no C compiler (cc, gcc or clang; or set CC): the agent that times every launch "
                         "is tests/bench/agent.c (apt-get install -y gcc)")
    exe = os.path.join(work, "agent")
    r = subprocess.run([cc, "-O2", "-Wall", "-o", exe, os.path.join(HERE, "agent.c")], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"{cc} failed on tests/bench/agent.c:\n{r.stderr}")
    return exe


def write_functions(fns):
    def policy(name, text, files=()):
        os.makedirs(os.path.join(fns, name))
        for src in files:
            shutil.copy(src, os.path.join(fns, name, os.path.basename(src)))
        with open(os.path.join(fns, name + ".toml"), "w") as f:
            f.write(text)
    wasm = os.path.join(ROOT, "tests", "fixtures", "wasm")
    lim = "[limits]\nconcurrency = 8\n"
    policy("true", f'runtime = "native"\ncommand = ["/bin/true"]\n{lim}')
    policy("hello-native", f'runtime = "native"\ncommand = ["/bin/echo", "hello"]\n{lim}')
    policy("hello-wasm", f'runtime = "wasm"\nmodule = "hello.wat"\n{lim}', [os.path.join(wasm, "hello.wat")])
    # The same module, warm: runners keep it compiled; a fresh instance per call.
    policy("hello-wasm-warm", f'runtime = "wasm"\nmode = "warm"\nmodule = "hello.wat"\n{lim}',
           [os.path.join(wasm, "hello.wat")])
    # Warm over FILE: /work emptied and given the input before each call, emptied after it.
    policy("hello-wasm-warm-file", f'runtime = "wasm"\nmode = "warm"\nprotocol = "file"\nmodule = "file_hello.wat"\n{lim}',
           [os.path.join(wasm, "file_hello.wat")])
    policy("fib-wasm", f'runtime = "wasm"\nmodule = "fib.wat"\n{lim}', [os.path.join(wasm, "fib.wat")])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short mode for CI: a few hundred operations in all, short loops, 8 load connections")
    ap.add_argument("--iterations", type=int, help="rounds of the interleaved cold-launch cases (default 400, quick 12)")
    ap.add_argument("--warm-iterations", type=int, help="calls in the warm WASM series (default 3000, quick 100)")
    ap.add_argument("--seconds", type=float, help="length of each throughput loop (default 3, quick 0.4)")
    ap.add_argument("--load-connections", type=int,
                    help="connections holding an almost full request line each in case 6 (default 64, quick 8)")
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    a = ap.parse_args()
    q = a.quick
    n = a.iterations or (12 if q else 400)
    wn = a.warm_iterations or (100 if q else 3000)
    secs = a.seconds or (0.4 if q else 3.0)
    reps = 1 if q else 3  # throughput: rounds of every loop kind, alternated
    nload = a.load_connections or (8 if q else 64)
    n6 = 10 if q else 200  # case 6 rounds per phase
    ncpu = 4 if q else 30  # case 4 rounds
    if os.geteuid() != 0:
        sys.exit("bench.py: needs root (sandboxes need namespaces and cgroups)")
    if min(n, wn, nload, n6) < 1 or secs <= 0 or secs > 600:
        sys.exit("bench.py: iterations and connections must be positive, seconds in (0, 600]")

    t_start = time.monotonic()
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "paddock-supervisor", "-p", "paddock-runtimes",
                        "--bins"], cwd=ROOT, check=True)
    t_built = time.monotonic()

    def progress(what):
        print(f"bench.py: {time.monotonic() - t_built:6.1f} s  {what}", file=sys.stderr, flush=True)
    load_before = open("/proc/loadavg").read().split()[:3]
    busy0, own0 = cpu_busy_s(), own_cpu_s()
    # SIGTERM (a CI timeout) unwinds through the finally below like Ctrl-C does.
    def on_sigterm(*_):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, on_sigterm)

    work = tempfile.mkdtemp(prefix="paddock-bench-", dir="/var/tmp")
    os.chmod(work, 0o755)  # sandboxes (unprivileged uids) bind the function directories below it
    agents, load, daemon = [], [], None
    notes = []
    try:
        agent_exe = compile_agent(work)
        fns = os.path.join(work, "functions")
        write_functions(fns)
        sock = os.path.join(work, "run", "paddockd.sock")
        paddockd = os.path.join(REL, "paddockd")
        # Idle connections are kept (case 6 holds partial lines for a while).
        daemon = subprocess.Popen([paddockd, "serve", "--socket", sock, "--functions", fns,
                                   "--state-dir", os.path.join(work, "state"), "--idle-timeout-ms", "600000"],
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "daemon.log"), "w"))

        def check_daemon():
            if daemon.poll() is not None:
                log = open(os.path.join(work, "daemon.log")).read()[-2000:]
                raise BenchError(f"the daemon exited with status {daemon.returncode}:\n{log}")

        for _ in range(200):
            if os.path.exists(sock):
                break
            check_daemon()
            time.sleep(0.025)
        else:
            raise BenchError("the daemon did not create its socket within 5 s")
        time.sleep(0.2)
        rss_idle = rss_kib(daemon.pid)  # case 7: before any request

        agents = [Agent(agent_exe) for _ in range(2)]
        A, B = agents
        for ag in agents:
            ag.connect(sock)

        bwrap = shutil.which("bwrap")
        if bwrap:
            bw = [bwrap, "--unshare-all", "--die-with-parent"]
            for d in ("/usr", "/lib", "/lib64", "/bin"):
                if os.path.exists(d):
                    bw += ["--ro-bind", d, d]
                else:
                    notes.append(f"bwrap: {d} does not exist here, so its --ro-bind is left out")
            bw += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--"]
        else:
            notes.append("bubblewrap not installed (`apt-get install -y bubblewrap`): its rows and ratios are skipped")
        wasmi = shutil.which("wasmi") or (os.path.exists(os.path.expanduser("~/.cargo/bin/wasmi"))
                                          and os.path.expanduser("~/.cargo/bin/wasmi"))
        if not wasmi:
            notes.append("wasmi CLI not installed (`cargo install wasmi_cli`): the CPU-bound baseline is skipped")
        hello_wat = os.path.join(fns, "hello-wasm", "hello.wat")
        fib_wat = os.path.join(fns, "fib-wasm", "fib.wat")

        def run_json_ok(us_out):
            us, out = us_out
            r = json.loads(out)
            if r.get("status") != "exited" or r.get("exit_code") != 0:
                raise BenchError(f"paddockd run: {out[:500]}")
            return us

        TRUE, ECHO = ["/bin/true"], ["/bin/echo", "hello"]
        progress("cases 1 and 3 (cold launches)")
        # ---- cases 1, 3 (cold): interleaved, in a fresh random order each round --------------
        cases = {
            "fork+exec+wait /bin/true": lambda: A.launch("fork", TRUE)[0],
            "posix_spawn+wait /bin/true": lambda: A.launch("spawn", TRUE)[0],
            "paddockd run /bin/true (whole process)": lambda: run_json_ok(
                A.launch("fork", [paddockd, "run", "--policy", os.path.join(fns, "true.toml")])),
            "socket invoke /bin/true": lambda: A.invoke("true")[0],
            "fork+exec+wait /bin/echo hello": lambda: A.launch("fork", ECHO, want_out="hello")[0],
            "posix_spawn+wait /bin/echo hello": lambda: A.launch("spawn", ECHO, want_out="hello")[0],
            "paddockd run /bin/echo hello (whole process)": lambda: run_json_ok(
                A.launch("fork", [paddockd, "run", "--policy", os.path.join(fns, "hello-native.toml")])),
            "socket invoke /bin/echo hello": lambda: A.invoke("hello-native", out="hello\n")[0],
            "socket invoke WASM hello (cold)": lambda: A.invoke("hello-wasm", out="hello from wasm\n")[0],
        }
        if bwrap:
            cases["bwrap /bin/true"] = lambda: A.launch("fork", bw + TRUE)[0]
            cases["bwrap /bin/echo hello"] = lambda: A.launch("fork", bw + ECHO, want_out="hello")[0]
        if wasmi:
            cases["wasmi CLI hello.wat (whole process)"] = lambda: A.launch(
                "fork", [wasmi, "run", hello_wat], want_out="hello from wasm")[0]
        for fn in cases.values():  # one untimed round: page cache, first-use paths
            fn()
        res = {k: [] for k in cases}
        rng = random.Random(7)
        order = list(cases)
        for _ in range(n):
            rng.shuffle(order)
            for k in order:
                res[k].append(cases[k]())
        check_daemon()

        progress("case 3 (warm WASM)")
        # ---- case 3 (warm): one client, a long series; the daemon's wall_us of each call too ----
        for _ in range(20):
            A.invoke("hello-wasm-warm", out="hello from wasm\n")
        warm_rt, warm_wall = [], []
        for _ in range(wn):
            us, r = A.invoke("hello-wasm-warm", out="hello from wasm\n")
            if not r.get("warm"):
                raise BenchError(f"hello-wasm-warm was not served warm: {json.dumps(r)[:300]}")
            warm_rt.append(us)
            warm_wall.append(r["wall_us"])
        # The same over FILE (file_hello.wat: reads /work/input, writes /work/output).
        for _ in range(20):
            A.invoke("hello-wasm-warm-file", out="")
        wfile_rt, wfile_wall = [], []
        for _ in range(wn):
            us, r = A.invoke("hello-wasm-warm-file", out="")
            if not r.get("warm") or r.get("output") != "hello, ":
                raise BenchError(f"hello-wasm-warm-file: {json.dumps(r)[:300]}")
            wfile_rt.append(us)
            wfile_wall.append(r["wall_us"])

        progress("case 5 (no launch)")
        # ---- case 5: requests that launch nothing, a series of its own (launches interleaved with
        # them would leave the daemon busy reaping and cleaning up when the request arrives) -------
        nolaunch = {"hello": {"id": 1, "op": "hello"}, "describe": {"id": 1, "op": "describe", "function": "true"},
                    "stats": {"id": 1, "op": "stats"}}
        for r in nolaunch.values():
            for _ in range(20):
                A.req(r)
        nres = {k: [] for k in nolaunch}
        for _ in range(wn):
            for k, r in nolaunch.items():
                nres[k].append(A.req(r)[0])
        # The same with the client and the daemon pinned to one CPU: in a VM, waking a process on
        # the other CPU (an IPI through the hypervisor) can cost more than the daemon's own work.
        cpus = sorted(os.sched_getaffinity(daemon.pid))
        npin = {k: [] for k in nolaunch}
        try:
            os.sched_setaffinity(daemon.pid, {cpus[-1]})
            os.sched_setaffinity(A.p.pid, {cpus[-1]})
            for _ in range(wn):
                for k, r in nolaunch.items():
                    npin[k].append(A.req(r)[0])
        finally:
            os.sched_setaffinity(daemon.pid, cpus)
            os.sched_setaffinity(A.p.pid, cpus)

        progress("case 4 (CPU-bound WASM)")
        # ---- case 4: CPU-bound fib(30), Paddock vs the wasmi CLI -----------------------------------
        cpu = {"socket invoke fib(30).wasm": lambda: B.invoke("fib-wasm", 832040 % 256)[0]}
        if wasmi:
            cpu["wasmi CLI fib(30) (whole process)"] = lambda: B.launch(
                "fork", [wasmi, "run", "--invoke", "fib", fib_wat, "30"], want_out="832040")[0]
        for fn in cpu.values():
            fn()
        cres = {k: [] for k in cpu}
        for _ in range(ncpu):
            for k in rng.sample(list(cpu), len(cpu)):
                cres[k].append(cpu[k]())

        progress("case 2 (throughput)")
        # ---- case 2 (and warm WASM throughput): two agents in parallel, loop kinds alternated ----
        inv = lambda f: json.dumps({"id": 1, "op": "invoke", "function": f}, separators=(",", ":"))
        loops = {
            "socket invoke /bin/echo hello (all layers), 2 clients": f"loopreq {secs} {inv('hello-native')}",
            "fork+exec+wait /bin/echo hello, 2 loops": f"loopfork {secs} {' '.join(ECHO)}",
            "posix_spawn+wait /bin/echo hello, 2 loops": f"loopspawn {secs} {' '.join(ECHO)}",
            "socket invoke warm WASM hello, 2 clients": f"loopreq {secs} {inv('hello-wasm-warm')}",
        }
        if bwrap:
            loops["bwrap /bin/echo hello, 2 loops"] = f"loopfork {secs} {' '.join(bw + ECHO)}"
        tput = {k: [] for k in loops}
        for _ in range(reps):
            for k in rng.sample(list(loops), len(loops)):
                tput[k].append(parallel(agents, loops[k], secs))
        tput = {k: p50(v) for k, v in tput.items()}
        check_daemon()

        progress("case 6 (memory held)")
        # ---- case 6: launch latency while the daemon holds ~nload × 8 MiB of request lines. Three
        # phases: before the load, with it, after it; in each, every round times an invocation and a
        # plain fork+exec+wait (in random order), so a machine that speeds up or slows down between
        # phases shows in the baseline too (the load cannot be switched on and off often: glibc
        # keeps the daemon's freed buffers resident once they came from its heap). --------------
        part = MAX_LINE - (100 << 10)  # 7.9 MiB: stays under the cap, so the daemon keeps buffering it
        head = b'{"id":1,"op":"deploy","function":"big","policy":"'
        payload = head + b"x" * (part - len(head))

        def phase():
            inv, base = [], []
            for _ in range(n6):
                for k in rng.sample((0, 1), 2):
                    if k:
                        inv.append(A.invoke("true")[0])
                    else:
                        base.append(A.launch("fork", TRUE)[0])
            return inv, base

        def held():
            """Every load connection still open and unanswered: the daemon holds its line."""
            for s in load:
                s.setblocking(False)  # (with a timeout set, Python would wait for it before recv)
                try:
                    got = s.recv(4096)
                except BlockingIOError:  # nothing to read: still open, unanswered
                    continue
                raise BenchError(f"the daemon answered or closed a connection holding an unfinished line: {got[:200]!r}")

        for _ in range(5):
            A.invoke("true")
        ph = {"before": phase()}
        rss6 = {"before": rss_kib(daemon.pid)}
        for _ in range(nload):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            load.append(s)
            s.settimeout(30)
            s.connect(sock)
            s.sendall(payload)  # no newline: an unfinished request line the daemon buffers
        want = 0.9 * nload * part / 1024
        deadline = time.monotonic() + 20
        while rss_kib(daemon.pid) < want and time.monotonic() < deadline:
            time.sleep(0.02)
        rss_grown = rss_kib(daemon.pid)
        if rss_grown < want:
            raise BenchError(f"the daemon's RSS is {mib(rss_grown):.0f} MiB with {nload} unfinished lines of "
                             f"{part >> 10} KiB (expected at least {mib(want):.0f} MiB)")
        ph["with the load"] = phase()
        held()
        rss6["with the load"] = rss_kib(daemon.pid)
        if rss6["with the load"] < want:
            raise BenchError(f"the daemon's RSS fell to {mib(rss6['with the load']):.0f} MiB during the loaded phase")
        for s in load:
            s.close()
        load = []
        # The daemon sees the hang-ups before this request, which came after them.
        A.req({"id": 1, "op": "hello"})
        time.sleep(0.2)
        rss6["after the connections closed"] = rss_kib(daemon.pid)
        ph["after the connections closed"] = phase()
        check_daemon()
        rss_end = rss_kib(daemon.pid)
    except BenchError as e:
        print(f"bench.py: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print(f"bench.py: interrupted ({e or 'SIGINT'}); stopping what it started", file=sys.stderr)
        sys.exit(130)
    finally:
        for s in load:
            s.close()
        for ag in agents:
            ag.close()
        progress("stopping")
        daemon_status = None
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            try:
                daemon_status = daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        daemon_log = ""
        if daemon is not None:
            try:
                daemon_log = open(os.path.join(work, "daemon.log")).read()[-2000:]
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    if daemon_status != 0:
        sys.exit(f"bench.py: error: the daemon did not stop cleanly on SIGTERM (status {daemon_status}):\n{daemon_log}")
    t_end = time.monotonic()
    others = (cpu_busy_s() - busy0) - (own_cpu_s() - own0)

    # ---- report -------------------------------------------------------------------------------------
    def row(name, v, base=None, unit=1000):
        m, p = p50(v) / unit, p99(v) / unit
        if base is None:
            return f"| {name} | {m:.3f} | {p:.3f} | | |"
        return f"| {name} | {m:.3f} | {p:.3f} | {p50(v) / p50(base):.2f} | {p99(v) / p99(base):.2f} |"

    out = [f"\n{'quick' if q else 'full'} mode; {machine(load_before)}",
           f"\n### 1. Cold native hello ({n} rounds, every case once per round in random order)\n",
           "| case | median ms | p99 ms | × baseline p50 | × baseline p99 |", "|---|---:|---:|---:|---:|"]
    for prog, tag in (("/bin/true", "/bin/true"), ("/bin/echo hello", "/bin/echo hello")):
        base = res[f"fork+exec+wait {tag}"]
        out.append(row(f"fork+exec+wait {prog} (baseline)", base, base))
        out.append(row(f"posix_spawn+wait {prog}", res[f"posix_spawn+wait {tag}"], base))
        if bwrap:
            out.append(row(f"bwrap {prog}", res[f"bwrap {tag}"], base))
        out.append(row(f"paddockd run {prog} (whole process)", res[f"paddockd run {tag} (whole process)"], base))
        out.append(row(f"**socket invoke {prog}** (all layers)", res[f"socket invoke {tag}"], base))
    out.append("\nBaseline: fork+exec+wait of the same program by the C agent, stdout on a pipe it drains. "
               "`paddockd run` is a whole process (its own start-up included); socket invokes are request to "
               "response on a kept connection.")

    sock_true, sock_echo = res["socket invoke /bin/true"], res["socket invoke /bin/echo hello"]
    fork_true, fork_echo = res["fork+exec+wait /bin/true"], res["fork+exec+wait /bin/echo hello"]
    tput_sock = tput["socket invoke /bin/echo hello (all layers), 2 clients"]
    tput_fork = tput["fork+exec+wait /bin/echo hello, 2 loops"]
    tput_bw = tput.get("bwrap /bin/echo hello, 2 loops")
    out += [f"\n### 2. Throughput, 2 concurrent clients or loops ({reps} × {secs:g} s per kind, median)\n",
            "| case | per second | × bwrap | × plain fork+exec |", "|---|---:|---:|---:|"]
    for k, v in tput.items():
        xb = f"{v / tput_bw:.2f}" if tput_bw else ""
        out.append(f"| {k} | {v:.0f} | {xb} | {v / tput_fork:.2f} |")

    cold_wasm = res["socket invoke WASM hello (cold)"]
    out += [f"\n### 3. WASM hello through the socket\n",
            "| case | median | p99 | ratio |", "|---|---:|---:|---:|",
            f"| cold WASM hello ({n} rounds) | {p50(cold_wasm) / 1000:.3f} ms | {p99(cold_wasm) / 1000:.3f} ms | "
            f"{p50(cold_wasm) / p50(sock_echo):.2f} × cold native hello (socket) |",
            f"| cold native hello /bin/echo (socket, same rounds) | {p50(sock_echo) / 1000:.3f} ms | "
            f"{p99(sock_echo) / 1000:.3f} ms | 1.00 |"]
    if wasmi:
        wh = res["wasmi CLI hello.wat (whole process)"]
        out.append(f"| wasmi CLI hello.wat (whole process, same rounds) | {p50(wh) / 1000:.3f} ms | "
                   f"{p99(wh) / 1000:.3f} ms | {p50(wh) / p50(sock_echo):.2f} |")
    warm_tput = tput["socket invoke warm WASM hello, 2 clients"]
    out += [f"| warm WASM hello round trip, 1 client ({wn} calls) | {p50(warm_rt):.0f} µs | {p99(warm_rt):.0f} µs | |",
            f"| of which the call on the runner (daemon's wall_us) | {p50(warm_wall):.0f} µs | "
            f"{p99(warm_wall):.0f} µs | |",
            f"| warm WASM hello, 2 clients | {warm_tput:.0f} /s | | |",
            f"| warm WASM FILE hello round trip, 1 client ({wn} calls; /work emptied and refilled each call) | "
            f"{p50(wfile_rt):.0f} µs | {p99(wfile_rt):.0f} µs | {p50(wfile_rt) / p50(warm_rt):.2f} × warm STDIO |",
            f"| of which the call on the runner (daemon's wall_us) | {p50(wfile_wall):.0f} µs | "
            f"{p99(wfile_wall):.0f} µs | |"]

    fib = cres["socket invoke fib(30).wasm"]
    out += [f"\n### 4. CPU-bound WASM: recursive fib(30), same module ({ncpu} rounds)\n",
            "| case | median ms | p99 ms | × wasmi CLI |", "|---|---:|---:|---:|"]
    wcli = cres.get("wasmi CLI fib(30) (whole process)")
    out.append(f"| socket invoke fib.wat (Paddock, fuel metered) | {p50(fib) / 1000:.2f} | {p99(fib) / 1000:.2f} | "
               + (f"{p50(fib) / p50(wcli):.2f} |" if wcli else "skipped |"))
    if wcli:
        out.append(f"| wasmi CLI `run --invoke fib fib.wat 30` (whole process) | {p50(wcli) / 1000:.2f} | "
                   f"{p99(wcli) / 1000:.2f} | 1.00 |")

    desc = nres["describe"]
    out += [f"\n### 5. Daemon-only overhead: a request that launches nothing ({wn} of each, alternated)\n",
            "| request | median µs | p99 µs | client and daemon on one CPU: median µs | p99 µs |",
            "|---|---:|---:|---:|---:|"]
    out += [f"| {k} | {p50(v):.1f} | {p99(v):.1f} | {p50(npin[k]):.1f} | {p99(npin[k]):.1f} |"
            for k, v in nres.items()]
    out.append("\nFirst as scheduled (what a client sees), then with the agent and the daemon pinned to one "
               "CPU: the difference is the cost of waking a process on the other CPU, not the daemon's work.")

    norm = lambda k: p50(ph[k][0]) / p50(ph[k][1])  # invoke / fork+exec+wait, same phase
    out += [f"\n### 6. Launch latency while the daemon holds {nload} unfinished request lines of "
            f"{part / 1048576:.1f} MiB ({n6} rounds per phase: an invoke and a fork+exec+wait each)\n",
            "| phase | daemon VmRSS MiB | socket invoke /bin/true median ms | p99 ms | fork+exec+wait median ms "
            "| invoke ÷ fork+exec | × before (raw) | × before (each ÷ its fork+exec) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k, (inv, base) in ph.items():
        out.append(f"| {'**' + k + '**' if k == 'with the load' else k} | {mib(rss6[k]):.1f} | {p50(inv) / 1000:.3f} | "
                   f"{p99(inv) / 1000:.3f} | {p50(base) / 1000:.3f} | {norm(k):.2f} | "
                   f"{p50(inv) / p50(ph['before'][0]):.2f} | {norm(k) / norm('before'):.2f} |")
    out.append("\nVmRSS is read at the end of each phase. The last column divides out the machine's drift "
               "between phases; the target uses it.")

    out += ["\n### 7. Daemon RSS\n", "| when | VmRSS MiB |", "|---|---:|",
            f"| idle, right after start-up (before any request) | {mib(rss_idle):.1f} |",
            f"| after the whole run | {mib(rss_end):.1f} |"]

    def target(name, value, ok):
        return f"| {name} | {value} | {'met' if ok else '**not met**'} |"
    tg = ["\n### Targets (../shared/BENCH.md, issue 7)\n", "| target | measured | |", "|---|---:|---|"]
    for prog, s, f in (("/bin/true", sock_true, fork_true), ("/bin/echo hello", sock_echo, fork_echo)):
        r50, r99 = p50(s) / p50(f), p99(s) / p99(f)
        tg.append(target(f"cold native {prog} via the socket: p50 ≤ 1.5× fork+exec+wait", f"{r50:.2f}×", r50 <= 1.5))
        tg.append(target(f"cold native {prog} via the socket: p99 ≤ 3× fork+exec+wait p99", f"{r99:.2f}×", r99 <= 3))
    if tput_bw:
        tg.append(target("fully isolated throughput (2 clients) ≥ 4× bubblewrap", f"{tput_sock / tput_bw:.2f}×",
                         tput_sock / tput_bw >= 4))
    else:
        tg.append("| fully isolated throughput ≥ 4× bubblewrap | bwrap missing | skipped |")
    tg.append(target("fully isolated throughput ≥ 0.7× plain fork+exec", f"{tput_sock / tput_fork:.2f}×",
                     tput_sock / tput_fork >= 0.7))
    tg.append(target("warm WASM hello round trip p50 ≤ 100 µs", f"{p50(warm_rt):.0f} µs", p50(warm_rt) <= 100))
    tg.append(target("warm WASM hello ≥ 10 000 invocations/s (2 clients)", f"{warm_tput:.0f}/s", warm_tput >= 10000))
    rw = p50(cold_wasm) / p50(sock_echo)
    tg.append(target("cold WASM hello ≤ 1.3× cold native hello (socket, p50)", f"{rw:.2f}×", rw <= 1.3))
    if wcli:
        rf = p50(fib) / p50(wcli)
        tg.append(target("CPU-bound WASM ≤ 1.1× wasmi CLI (p50)", f"{rf:.2f}×", rf <= 1.1))
    else:
        tg.append("| CPU-bound WASM ≤ 1.1× wasmi CLI | wasmi CLI missing | skipped |")
    tg.append(target("daemon overhead ≤ 30 µs (describe, p50, as scheduled)", f"{p50(desc):.1f} µs", p50(desc) <= 30))
    tg.append(target("daemon overhead ≤ 30 µs (describe, p50, one CPU)", f"{p50(npin['describe']):.1f} µs",
                     p50(npin["describe"]) <= 30))
    tg.append(target("idle RSS ≤ 8 MiB", f"{mib(rss_idle):.1f} MiB", rss_idle <= 8 * 1024))
    rl = norm("with the load") / norm("before")
    tg.append(target(f"launch latency within ±10% with {mib(nload * part / 1024):.0f} MiB held",
                     f"{(rl - 1) * 100:+.1f}%", abs(rl - 1) <= 0.10))
    out += tg
    out.append(f"\nwall time: build {t_built - t_start:.1f} s, benchmark {t_end - t_built:.1f} s. "
               f"CPU used meanwhile by everything else on the machine (other processes, kernel threads): "
               f"{max(0.0, others):.1f} s, {100 * max(0.0, others) / (t_end - t_built) / os.cpu_count():.0f}% "
               f"of the {os.cpu_count()} cores")
    for note in notes:
        out.append(f"\nnote: {note}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
