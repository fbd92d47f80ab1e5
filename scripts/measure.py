#!/usr/bin/env python3
"""Measures the figures quoted in docs/deploy.md, on loopback only (`make measure`).

- binary size of the release build;
- cold start, process start to ready: Function Compute mode until the port accepts a connection, Lambda
  mode until the first `GET /runtime/invocation/next` reaches a loopback Runtime API; median of N runs;
- peak memory (max RSS, from wait4) of the janitor process in the `make demo` runs against the emulator.

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


def demo_peak_rss(binary, inventory, policy):
    port = free_port()
    sim = subprocess.Popen([binary, "sim", "--inventory", inventory, "--listen", f"127.0.0.1:{port}"],
                           env=base_env({}), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.01)
        env = base_env({"JANITOR_ENDPOINT": f"http://127.0.0.1:{port}", **DEMO_KEY})
        peaks = {}
        for label, extra in [("dry run", []), ("apply", ["--apply"])]:
            p = subprocess.Popen([binary, "run", "--policy", policy, *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            peaks[label] = (usage.ru_maxrss, p.returncode)  # KiB on Linux
        return peaks
    finally:
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

    ms = lambda xs: f"{statistics.median(xs) * 1000:.1f} ms (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})"
    print(f"| figure | value |")
    print(f"|---|---|")
    print(f"| release binary size ({os.path.relpath(a.binary, ROOT)}) | {size} bytes ({size / 1048576:.2f} MiB) |")
    print(f"| cold start, FC mode (spawn → port accepts), median | {ms(fc)} |")
    print(f"| cold start, Lambda mode (spawn → first /next), median | {ms(lam)} |")
    for label, (kib, rc) in peaks.items():
        print(f"| peak RSS, demo {label} (exit {rc}) | {kib} KiB ({kib / 1024:.1f} MiB) |")
    print(f"\nmachine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}", file=sys.stderr)


if __name__ == "__main__":
    main()
