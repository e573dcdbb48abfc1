"""The box's service budgets, on the binary given: cold start of `playlista serve` to its first
HTTP answer (< 300 ms) and its idle RSS with an empty library (< 20 MB).

    python3 .ci/serve-figures.py target/release/playlista

Three starts on a free loopback port, timed from exec to the first 200 of /api/v1/status; the
first also creates the database, so the budget holds for the other two. RSS is read from
/proc after the empty library's background run has ended (5 s)."""
import os, socket, subprocess, sys, tempfile, time, urllib.request

exe = sys.argv[1]
state = tempfile.mkdtemp(prefix="playlista-figures-")
os.makedirs(state + "/library")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
url = f"http://127.0.0.1:{port}/api/v1/status"
starts, rss = [], None
for run in range(3):
    t = time.perf_counter()
    p = subprocess.Popen([exe, "serve", "--no-mdns", "--bind", f"127.0.0.1:{port}",
                          "--library", state + "/library", "--cache_dir", state + "/state",
                          "--output_dir", state + "/playlists"], stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            break
        except OSError:
            if p.poll() is not None or time.perf_counter() - t > 10:
                sys.exit("serve did not answer within 10 s")
            time.sleep(0.002)
    starts.append((time.perf_counter() - t) * 1e3)
    if run == 2:
        time.sleep(5)
        urllib.request.urlopen(url, timeout=1).read()
        with open(f"/proc/{p.pid}/status") as f:
            rss = int(next(l for l in f if l.startswith("VmRSS")).split()[1])
    p.terminate()
    p.wait(timeout=30)
print(f"cold start to first HTTP answer: {', '.join(f'{s:.0f}' for s in starts)} ms (budget 300)")
print(f"idle RSS of serve, empty library: {rss / 1024:.1f} MB (budget 20)")
assert max(starts[1:]) < 300, f"cold start {starts} ms"
assert rss < 20 * 1024, f"idle RSS {rss} kB"
