#!/usr/bin/env python3
"""Talks to an installed paddockd for packaging/ci-deb-roundtrip.sh, with
only Python's standard library (the same way the README shows).

  roundtrip-client.py SOCKET wait SECONDS   wait until the socket accepts
  roundtrip-client.py SOCKET checks         hello, list, the examples the installed
                                            `paddock` CLI does not invoke, a deploy
                                            into /var/lib/paddock and its remove, a
                                            second deploy (roundtrip-kept) left in
                                            place for the remove/reinstall step, stats

The installed `paddock` CLI does the first invocation; this client does
what the CLI does not cover (waiting for the socket, deploy with files).

Exits non-zero, saying why, when an answer is not the expected one.
"""

import base64
import json
import os
import socket
import sys
import time

TIMEOUT_S = 30


def request(path, req):
    """Send one request line, return the one response line as a dict."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT_S)
        s.connect(path)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("connection closed before an answer to %r" % req)
            buf += chunk
    resp = json.loads(buf)
    if resp.get("id") != req["id"]:
        raise SystemExit("answer id %r for request id %r" % (resp.get("id"), req["id"]))
    return resp


def ok(path, req):
    resp = request(path, req)
    if not resp.get("ok"):
        raise SystemExit("%s failed: %s" % (req["op"], json.dumps(resp)))
    return resp["result"]


def invoke(path, function, text):
    res = ok(path, {"id": 1, "op": "invoke", "function": function, "input": text})
    if res.get("status") != "exited" or res.get("exit_code") != 0:
        raise SystemExit("%s did not exit 0: %s" % (function, json.dumps(res)))
    print("  %s: %s (wall %s ms, peak %s bytes)" % (
        function, (res.get("stdout") or res.get("output") or "").strip(),
        res.get("wall_ms"), res.get("memory_peak_bytes")))
    return res


def expect(cond, what):
    if not cond:
        raise SystemExit("unexpected: " + what)


def wait(path, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            ok(path, {"id": 0, "op": "hello"})
            return
        except (OSError, SystemExit) as e:
            if time.monotonic() > deadline:
                raise SystemExit("the socket did not accept within %ss: %s" % (seconds, e))
            time.sleep(0.1)


def checks(path):
    hello = ok(path, {"id": 1, "op": "hello"})
    expect(hello.get("protocol") == 1, "hello: %r" % hello)
    names = {f["name"] for f in ok(path, {"id": 1, "op": "list"})["functions"]}
    expect({"hello-python", "hello-node", "wordcount-sh", "echo-wat"} <= names, "list: %r" % names)

    res = invoke(path, "wordcount-sh", "one two\nthree\n")
    expect(json.loads(res["output"]) == {"lines": 2, "words": 3, "bytes": 14},
           "wordcount-sh output %r" % res.get("output"))
    if os.path.exists("/usr/bin/node"):
        res = invoke(path, "hello-node", '{"name": "Ada"}')
        expect("Hello, Ada!" in res["stdout"], "hello-node stdout %r" % res["stdout"])
    else:
        print("  NOTICE: /usr/bin/node is missing; hello-node not invoked")

    # A deploy lands in /var/lib/paddock and must be runnable by the
    # unprivileged sandbox uid (file modes), then goes away with remove.
    handler = b"import sys\nprint(sys.stdin.read().upper())\n"
    policy = ('runtime = "native"\n'
              'command = ["/usr/bin/python3", "/fn/upper.py"]\n'
              '[filesystem]\n'
              'read_only = ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache"]\n')
    ok(path, {"id": 1, "op": "deploy", "function": "roundtrip-upper", "policy": policy,
              "files": {"upper.py": base64.b64encode(handler).decode()}})
    res = invoke(path, "roundtrip-upper", "deployed")
    expect(res["stdout"].strip() == "DEPLOYED", "deployed stdout %r" % res["stdout"])
    ok(path, {"id": 1, "op": "remove", "function": "roundtrip-upper"})
    names = {f["name"] for f in ok(path, {"id": 1, "op": "list"})["functions"]}
    expect("roundtrip-upper" not in names, "removed function still listed: %r" % names)

    # This one stays: `dpkg -r` must keep it, and the reinstalled daemon
    # must serve it again.
    ok(path, {"id": 1, "op": "deploy", "function": "roundtrip-kept", "policy": policy,
              "files": {"upper.py": base64.b64encode(handler).decode()}})
    res = invoke(path, "roundtrip-kept", "kept")
    expect(res["stdout"].strip() == "KEPT", "roundtrip-kept stdout %r" % res["stdout"])

    stats = ok(path, {"id": 1, "op": "stats"})
    print("  stats: outcomes %s, in_flight %s" % (stats.get("outcomes"), stats.get("in_flight")))


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    path, what = sys.argv[1], sys.argv[2]
    if what == "wait":
        wait(path, float(sys.argv[3]))
    elif what == "checks":
        checks(path)
    else:
        raise SystemExit(__doc__)


main()
