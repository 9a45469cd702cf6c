#!/usr/bin/env python3
"""Seed an InfluxDB 1.x database with `cpu` points as hostscope-collector writes them.

Usage: seed.py URL DB HOSTS DAYS INTERVAL_S END_S

For each of HOSTS hosts (host-00 … host-NN) and every INTERVAL_S seconds in
[END_S - DAYS days, END_S): one `cpu,cpu=cpu-total,dc=dc1,host=host-07` point with the
ten `usage_*` fields the collector's cpu input writes (percentages summing to 100).
Lines are POSTed gzip-compressed in batches of BATCH lines to /write?precision=s by
WORKERS threads. Prints the number of points and the seconds it took.
"""

import gzip
import math
import random
import sys
import threading
import time
import urllib.request
from queue import Queue

BATCH = 10_000
WORKERS = 2


def batches(hosts, start, end, step):
    # Host-major order: each batch is one host's consecutive points, which is what a
    # collector sends and what the TSM engine ingests fastest.
    fields = ("usage_user", "usage_nice", "usage_system", "usage_idle", "usage_iowait",
              "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")
    for h in range(hosts):
        rnd = random.Random(h)
        prefix = f"cpu,cpu=cpu-total,dc=dc{h % 3 + 1},host=host-{h:02d} "
        base = 10 + 3 * h % 40
        lines = []
        for t in range(start, end, step):
            day = math.sin((t % 86400) / 86400 * 2 * math.pi)
            user = max(0.0, min(90.0, base + 15 * day + rnd.gauss(0, 4)))
            system = max(0.0, min(9.0, user * 0.25 + rnd.gauss(0, 1)))
            iowait = abs(rnd.gauss(0.5, 0.5))
            nice = abs(rnd.gauss(0.05, 0.05))
            irq = abs(rnd.gauss(0.02, 0.01))
            softirq = abs(rnd.gauss(0.3, 0.1))
            idle = max(0.0, 100.0 - user - system - iowait - nice - irq - softirq)
            vals = (user, nice, system, idle, iowait, irq, softirq, 0.0, 0.0, 0.0)
            lines.append(prefix + ",".join(f"{k}={v!r}" for k, v in zip(fields, vals))
                         + f" {t}\n")
            if len(lines) == BATCH:
                yield "".join(lines).encode()
                lines = []
        if lines:
            yield "".join(lines).encode()


def main():
    url, db, hosts, days, step, end = sys.argv[1:7]
    hosts, days, step, end = int(hosts), float(days), int(step), int(end)
    end -= end % step
    start = end - int(days * 86400)
    write_url = f"{url}/write?db={db}&precision=s"
    q: Queue = Queue(maxsize=WORKERS * 2)
    errors = []

    def worker():
        while True:
            body = q.get()
            if body is None:
                return
            req = urllib.request.Request(
                write_url, data=gzip.compress(body, 1), method="POST",
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    if resp.status != 204:
                        errors.append(f"status {resp.status}")
            except Exception as e:  # noqa: BLE001 - report and fail below
                errors.append(str(e))

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    points = 0
    for body in batches(hosts, start, end, step):
        points += body.count(b"\n")
        q.put(body)
        if errors:
            break
    for _ in threads:
        q.put(None)
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    if errors:
        print(f"seed: write failed: {errors[0]}", file=sys.stderr)
        sys.exit(1)
    print(f"{points} {took:.1f} {start} {end}")


if __name__ == "__main__":
    main()
