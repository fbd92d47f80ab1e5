#!/usr/bin/env python3
"""Measures the figures quoted in docs/deploy.md, on loopback only (`make measure`).

- binary size of the release build;
- cold start, process start to ready: Function Compute mode until the port accepts a connection, Lambda
  mode until the first `GET /runtime/invocation/next` reaches a loopback Runtime API; median of N runs;
- peak memory (max RSS, by GNU time) of the janitor process in the `make demo` runs against the emulator,
  and of the FC server after one demo invocation (VmHWM).

Standard library only.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_KEY = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "demo-access-key", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "demo-secret-do-not-use"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(extra):
    env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"}
    env.update(extra)
    return env


def fc_cold_start(binary, policy):
    port = free_port()
    env = base_env({"FC_FUNCTION_NAME": "aliyun-janitor", "FC_CUSTOM_LISTEN_PORT": str(port), "JANITOR_POLICY": policy, **DEMO_KEY})
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < 20:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return time.perf_counter() - t0
            except OSError:
                if p.poll() is not None:
                    raise SystemExit("FC mode exited before listening")
                time.sleep(0.0005)
        raise SystemExit("FC mode did not listen within 20 s")
    finally:
        p.kill()
        p.wait()


def lambda_cold_start(binary, policy):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    seen = {}

    def serve():
        conn, _ = server.accept()
        data = b""
        while b"\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        seen["t"] = time.perf_counter()
        seen["line"] = data.split(b"\r\n", 1)[0].decode(errors="replace")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    env = base_env({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}", "AWS_LAMBDA_FUNCTION_NAME": "aliyun-janitor",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "JANITOR_POLICY": policy, **DEMO_KEY,
    })
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    thread.join(20)
    p.kill()
    p.wait()
    server.close()
    if "invocation/next" not in seen.get("line", ""):
        raise SystemExit(f"Lambda mode did not ask for an event (first request: {seen.get('line')!r}): is the policy valid?")
    return seen["t"] - t0


def wait_port(port, proc=None, limit=20):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit("process exited before listening")
            time.sleep(0.005)
    raise SystemExit(f"nothing listens on {port}")


SIM = os.path.join(ROOT, "target/release/aliyun-sim")


def start_sim(binary, inventory):
    """Starts the emulator (`aliyun-sim`, `make measure` builds it; `binary` is the janitor, unused here)."""
    port = free_port()
    sim = subprocess.Popen([SIM, "--inventory", inventory, "--listen", f"127.0.0.1:{port}"],
                           env=base_env({}), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, sim)
    return sim, port


# The demo's pinned clock (Makefile DEMO_ENV), so the runs decide what `make demo` decides.
DEMO_NOW = "2026-11-25T12:00:00Z"


def demo_peak_rss(binary, inventory, policy):
    """Max RSS of the CLI demo runs, by GNU time (a parent's own wait4 would count the pre-exec image of
    the forking Python process, which is larger than the janitor)."""
    gnu_time = "/usr/bin/time"
    if not os.path.exists(gnu_time):
        raise SystemExit("GNU time is missing: apt-get install -y time")
    sim, port = start_sim(binary, inventory)
    try:
        # The demo's mark key (as the Makefile's demo): without it an apply run with a grace period is refused.
        env = base_env({"JANITOR_ENDPOINT": f"http://127.0.0.1:{port}", "JANITOR_NOW": DEMO_NOW,
                        "JANITOR_MARK_KEY": "demo-mark-key-emulator-only-0001", **DEMO_KEY})
        peaks = {}
        for label, extra in [("dry run", []), ("apply", ["--apply"])]:
            out = os.path.join(ROOT, "target", "measure-time.txt")
            rc = subprocess.call([gnu_time, "-f", "%M", "-o", out, binary, "run", "--policy", policy, *extra],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out) as f:
                peaks[label] = (int(f.read().split()[-1]), rc)  # KiB
        return peaks
    finally:
        sim.kill()
        sim.wait()


def fc_invoke_peak_rss(binary, inventory, policy, event):
    """Peak RSS (VmHWM, which starts at exec) of the FC server after one /invoke of the demo."""
    import urllib.request
    sim, sim_port = start_sim(binary, inventory)
    port = free_port()
    env = base_env({"FC_FUNCTION_NAME": "aliyun-janitor", "FC_CUSTOM_LISTEN_PORT": str(port), "JANITOR_POLICY": policy,
                    "JANITOR_ENDPOINT": f"http://127.0.0.1:{sim_port}", "JANITOR_NOW": DEMO_NOW, **DEMO_KEY})
    fc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, fc)
        with open(event, "rb") as f:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/invoke", data=f.read(), method="POST")
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
            status = resp.status
        with open(f"/proc/{fc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        return hwm, status
    finally:
        fc.kill()
        fc.wait()
        sim.kill()
        sim.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/aliyun-janitor"))
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--policy", default=os.path.join(ROOT, "deploy/policy.yaml"))
    ap.add_argument("--demo-inventory", default=os.path.join(ROOT, "examples/demo-inventory.json"))
    ap.add_argument("--demo-policy", default=os.path.join(ROOT, "examples/demo-policy.yaml"))
    a = ap.parse_args()

    size = os.path.getsize(a.binary)
    fc = [fc_cold_start(a.binary, a.policy) for _ in range(a.runs)]
    lam = [lambda_cold_start(a.binary, a.policy) for _ in range(a.runs)]
    peaks = demo_peak_rss(a.binary, a.demo_inventory, a.demo_policy)
    fc_hwm, fc_status = fc_invoke_peak_rss(a.binary, a.demo_inventory, a.demo_policy, os.path.join(ROOT, "events/fc-timer.json"))

    ms = lambda xs: f"{statistics.median(xs) * 1000:.1f} ms (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})"
    print(f"| figure | value |")
    print(f"|---|---|")
    print(f"| release binary size ({os.path.relpath(a.binary, ROOT)}) | {size} bytes ({size / 1048576:.2f} MiB) |")
    print(f"| cold start, FC mode (spawn → port accepts), median | {ms(fc)} |")
    print(f"| cold start, Lambda mode (spawn → first /next), median | {ms(lam)} |")
    for label, (kib, rc) in peaks.items():
        print(f"| peak RSS, demo {label} (exit {rc}) | {kib} KiB ({kib / 1024:.1f} MiB) |")
    print(f"| peak RSS, FC mode after one demo /invoke (HTTP {fc_status}) | {fc_hwm} KiB ({fc_hwm / 1024:.1f} MiB) |")
    print(f"\nmachine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}", file=sys.stderr)


if __name__ == "__main__":
    main()
