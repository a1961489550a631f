#!/usr/bin/env python3
"""Planner failover, measured: three `heat-reconciler run --roles planner` processes on a fresh
local etcd; the leader is SIGKILLed N times, each time at a random point of its lease refresh
cycle, and restarted. For each kill it prints when etcd deleted `/job_manager_id` and when another
process held it, both from the kill, as etcd's watch reports them (see DESIGN.md, Recovery,
"Failover bound").

Usage: scripts/measure-failover.py [--ttl 3] [--kills 20] [--bin target/debug/heat-reconciler]
Needs `etcd` on PATH (Debian etcd-server) and a built heat-reconciler (`cargo build`).
"""
import argparse
import base64
import json
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Etcd:
    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="heat-reconciler-failover-")
        client, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{client}"
        self.process = subprocess.Popen(
            ["etcd", "--data-dir", self.data, "--listen-client-urls", self.url,
             "--advertise-client-urls", self.url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self.post("/v3/kv/range", {"key": b64("/")})
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("etcd did not start")

    def post(self, path, body, timeout=5):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def leader(self):
        kvs = self.post("/v3/kv/range", {"key": b64("/job_manager_id")}).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.data, ignore_errors=True)


def watch_takeover(etcd, old, seen):
    """Records (monotonic) when the key is deleted and when a process other than `old` holds it."""
    body = {"create_request": {"key": b64("/job_manager_id")}}
    request = urllib.request.Request(etcd.url + "/v3/watch", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as stream:
        for line in stream:
            result = json.loads(line).get("result", {})
            if result.get("created"):
                seen["watching"] = True
            for event in result.get("events") or []:
                if event.get("type") == "DELETE":
                    seen.setdefault("deleted", time.monotonic())
                else:
                    value = base64.b64decode(event.get("kv", {}).get("value", "")).decode()
                    if value and value != old:
                        seen["led"] = time.monotonic()
                        return


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ttl", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--bin", default="target/debug/heat-reconciler")
    args = parser.parse_args()
    etcd = Etcd()
    planners = {}

    def start(name):
        planners[name] = subprocess.Popen(
            [args.bin, "run", "--roles", "planner", "--etcd-endpoints", etcd.url,
             "--leader-ttl", str(args.ttl), "--id", name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    led_after = []
    try:
        for name in ("p1", "p2", "p3"):
            start(name)
        while etcd.leader() is None:
            time.sleep(0.05)
        for n in range(1, args.kills + 1):
            time.sleep(random.uniform(1.0, 1.0 + args.ttl))
            old = etcd.leader()
            seen = {}
            watcher = threading.Thread(target=watch_takeover, args=(etcd, old, seen), daemon=True)
            watcher.start()
            while "watching" not in seen:
                time.sleep(0.01)
            killed = time.monotonic()
            planners[old].send_signal(signal.SIGKILL)
            planners[old].wait()
            watcher.join(30)
            deleted, led = seen.get("deleted", float("nan")) - killed, seen.get("led", float("nan")) - killed
            led_after.append(led)
            print(f"kill {n}: {old} killed; key deleted after {deleted:.2f} s, another leads after {led:.2f} s",
                  flush=True)
            start(old)
    finally:
        for planner in planners.values():
            planner.kill()
            planner.wait()
        etcd.stop()
    led_after.sort()
    print(f"leader TTL {args.ttl} s, {len(led_after)} kills: another leads after "
          f"{led_after[0]:.2f}-{led_after[-1]:.2f} s (median {led_after[len(led_after) // 2]:.2f} s)")


if __name__ == "__main__":
    main()
