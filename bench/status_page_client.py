#!/usr/bin/env python3
"""A client of the coordinator's status server for bench/status_page_bench.sh.

    status_page_client.py cost URL TOKEN PID [N]
Fetches URL's /api/status N times, then the page's full load (/, /app.js, /chart.js,
/api/status) N/10 times, over one keep-alive connection, and reads the coordinator's CPU time
(utime + stime of /proc/PID/stat) before and after each batch. Prints one line:
    api_status_cpu_ms=<ms per request> page_load_cpu_ms=<ms per full page load>
Run it while the coordinator waits for its sites (nothing else uses its CPU then).

    status_page_client.py poll URL TOKEN
Makes the requests an open page makes, without a browser: /api/status every 2 s and a full
page load every 5 s, until the server goes away or SIGTERM; then prints the request count.
"""
import http.client
import os
import signal
import sys
import time
import urllib.parse


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def getter(url, token):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    headers = {"Authorization": "Bearer " + token}

    def get(path):
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"{path}: HTTP {r.status}")
    return get


def poll(url, token):
    get = getter(url, token)
    count = 0

    def done(*_):
        print(f"requests={count}")
        sys.exit(0)
    signal.signal(signal.SIGTERM, done)
    start = time.monotonic()
    tick = 0
    while True:
        try:
            paths = ["/api/status"]
            if (tick * 2) % 5 < 2:  # a full page load about every 5 s
                paths = ["/", "/app.js", "/chart.js", "/api/status"]
            for p in paths:
                get(p)
                count += 1
        except (OSError, http.client.HTTPException):
            done()
        tick += 1
        time.sleep(max(0.0, start + 2 * tick - time.monotonic()))


def main():
    if sys.argv[1] == "poll":
        return poll(sys.argv[2], sys.argv[3])
    url, token, pid = sys.argv[2], sys.argv[3], int(sys.argv[4])
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
    get = getter(url, token)

    before = cpu_seconds(pid)
    for _ in range(n):
        get("/api/status")
    api = (cpu_seconds(pid) - before) / n
    loads = max(1, n // 10)
    before = cpu_seconds(pid)
    for _ in range(loads):
        for path in ("/", "/app.js", "/chart.js", "/api/status"):
            get(path)
    page = (cpu_seconds(pid) - before) / loads
    print(f"api_status_cpu_ms={api * 1000:.4f} page_load_cpu_ms={page * 1000:.4f}")


if __name__ == "__main__":
    main()
