#!/usr/bin/env python3
"""Job rows of bench/run: jobs through ComfyGate's native and Comfy API v2 doors, through comfy-api-proxy, and
straight to ComfyUI (bench/jobstub.py), and how fairly one GPU is shared (standard library only).

  jobbench.py throughput DOOR URL TOKEN STUB JOBS CONCURRENCY
      DOOR is native (POST URL/prompt) or v2 (POST URL/api/v2/jobs, Idempotency-Key); TOKEN may be "-" (none).
      Submits JOBS instant prompts from CONCURRENCY connections, waits until the stub ran them all, and prints
      `jobs_per_s=…`: jobs per second from the first submission to the last end.
  jobbench.py latency DOOR URL TOKEN STUB JOBS
      Submits JOBS instant prompts one at a time, each once the one before has run, and prints
      `wait_p50_ms=… wait_p99_ms=…`: the time from sending a job to ComfyUI seeing it, with nothing else
      waiting (what a gateway adds before ComfyUI).
  jobbench.py fairness URL STUB SECONDS JOB_MS TOKEN:RATE...
      With each job taking JOB_MS on the stub's GPU, one user per TOKEN:RATE (TOKEN "-" for none) submits RATE
      prompts per second through URL's POST /prompt for SECONDS; then the queues are cleared. Prints `jain=… served=a/b/…`: Jain's index of each user's jobs
      run in that time over their max-min fair share of what the GPU ran (1 is perfectly fair).
"""
import http.client, json, sys, threading, time, uuid
from urllib.parse import urlsplit


def prompt(tag):
    return {"5": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": tag, "images": ["5", 0]}}}


class Client:
    def __init__(self, url, token):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.token = None if token in ("-", "") else token
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def send(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=data, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise

    def submit(self, door, tag):
        if door == "v2":
            status, body = self.send("POST", "/api/v2/jobs", {"workflow": prompt(tag)}, {"Idempotency-Key": str(uuid.uuid4())})
            if status != 201:
                raise SystemExit(f"POST /api/v2/jobs answered {status}: {body[:300]!r}")
            return json.loads(body)["id"]
        status, body = self.send("POST", "/prompt", {"prompt": prompt(tag)})
        if status != 200:
            raise SystemExit(f"POST /prompt answered {status}: {body[:300]!r}")
        return json.loads(body)["prompt_id"]


def run_all(tasks, failures):
    """Runs each (function, arguments) on a thread of its own until all end; exits on a recorded failure."""
    threads = [threading.Thread(target=function, args=arguments) for function, arguments in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a submission failed: {failures[0]}")


def stub_stats(stub):
    status, body = Client(stub, "-").send("GET", "/bench/stats")
    return json.loads(body)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0


def throughput(door, urls, token, stubs, jobs, concurrency):
    """`urls` and `stubs` are comma-separated: the workers take the gateways in turn, and the jobs' ends are read from
    every stub."""
    urls, stubs = urls.split(","), stubs.split(",")
    for stub in stubs:
        Client(stub, "-").send("POST", "/bench/reset", {"job_ms": 0})
    sent, lock, failures = {}, threading.Lock(), []
    remaining = iter(range(jobs))
    turn = iter(range(concurrency))

    def worker():
        with lock:
            url = urls[next(turn) % len(urls)]
        client = Client(url, token)
        while True:
            with lock:
                index = next(remaining, None)
            if index is None:
                return
            started = time.time()
            try:
                job_id = client.submit(door, "t")
            except BaseException as error:  # reported below; the run then fails
                failures.append(error)
                return
            with lock:
                sent[job_id] = started

    begin = time.time()
    run_all([(worker, ()) for _ in range(concurrency)], failures)
    deadline = time.time() + 300
    while True:
        stats = {}
        for stub in stubs:
            stats.update(stub_stats(stub))
        done = [s for job_id, s in stats.items() if job_id in sent and "finished" in s]
        if len(done) == jobs:
            break
        if time.time() > deadline:
            raise SystemExit(f"only {len(done)} of {jobs} jobs ran within 300 s")
        time.sleep(0.02)
    end = max(s["finished"] for s in done)
    print(f"jobs_per_s={jobs / (end - begin):.1f}")


def latency(door, url, token, stub, jobs):
    Client(stub, "-").send("POST", "/bench/reset", {"job_ms": 0})
    client, observer, waits = Client(url, token), Client(stub, "-"), []
    for _ in range(jobs):
        started = time.time()
        job_id = client.submit(door, "t")
        deadline = started + 60
        while True:
            seen = json.loads(observer.send("GET", f"/bench/stats/{job_id}")[1])
            if "finished" in seen:
                break
            if time.time() > deadline:
                raise SystemExit(f"job {job_id} did not run within 60 s")
            time.sleep(0.001)
        waits.append((seen["arrived"] - started) * 1000)
    print(f"wait_p50_ms={percentile(waits, 0.5):.2f} wait_p99_ms={percentile(waits, 0.99):.2f}")


def fairness(url, stub, seconds, job_ms, users):
    Client(stub, "-").send("POST", "/bench/reset", {"job_ms": job_ms})
    begin = time.time() + 0.2
    window_end = begin + seconds
    submitted, failures = {}, []

    def user(index, token, rate):
        client, tag, count = Client(url, token), f"u{index}", 0
        while True:
            slot = begin + count / rate
            if slot >= window_end:
                break
            time.sleep(max(0, slot - time.time()))
            try:
                client.submit("native", tag)
            except BaseException as error:
                failures.append(error)
                return
            count += 1
        submitted[tag] = count
        # Over: take every job still waiting out of the queues, so the next row starts from an idle GPU.
        client.send("POST", "/queue", {"clear": True})

    run_all([(user, (i, token, rate)) for i, (token, rate) in enumerate(users)], failures)
    time.sleep(0.5)
    stats = stub_stats(stub)
    served = [sum(1 for s in stats.values() if s["tag"] == f"u{i}" and begin <= s.get("finished", 0) <= window_end)
              for i in range(len(users))]
    demands = [submitted[f"u{i}"] for i in range(len(users))]
    fair = max_min_fair(demands, sum(served))
    shares = [s / f for s, f in zip(served, fair) if f > 0]
    jain = sum(shares) ** 2 / (len(shares) * sum(x * x for x in shares)) if shares and any(shares) else 0
    print(f"jain={jain:.2f} served={'/'.join(map(str, served))} submitted={'/'.join(map(str, demands))}")


def max_min_fair(demands, capacity):
    """Water-filling: every user gets an equal part of what is left, never more than they asked for."""
    fair, left, order = [0.0] * len(demands), float(capacity), sorted(range(len(demands)), key=lambda i: demands[i])
    for position, i in enumerate(order):
        fair[i] = min(demands[i], left / (len(order) - position))
        left -= fair[i]
    return fair


if __name__ == "__main__":
    if sys.argv[1] == "throughput":
        throughput(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7]))
    elif sys.argv[1] == "latency":
        latency(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif sys.argv[1] == "fairness":
        users = [(spec.rsplit(":", 1)[0], float(spec.rsplit(":", 1)[1])) for spec in sys.argv[6:]]
        fairness(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), users)
    else:
        raise SystemExit(__doc__)
