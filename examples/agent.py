#!/usr/bin/env python3
"""A git-ci agent in plain Python, using only the plumbing commands
(docs/protocol.md, "Agents"): claim a job, run its script, keep the claim
alive, stream the log, publish the result. Stdlib only.

    examples/agent.py --hub git://ci.example/hub --queue default --name py1
"""
import argparse, json, os, subprocess, tempfile, threading, time

def ci(*args, stdin=None):
    return subprocess.run(["git-ci", *args], input=stdin, capture_output=True)

def keep_claim(hub, job_id, every, lost, stop):
    # Renew the lease; a lost claim (exit 5) means someone else runs the job now.
    while not stop.wait(every):
        if ci("heartbeat", job_id, "--hub", hub).returncode == 5:
            lost.set()

def run(args, claim):
    job, job_id = claim["job"], claim["id"]
    env = {**os.environ, **job.get("env", {}), **job.get("matrix", {}), "CI": "true", "GIT_CI_JOB_ID": job_id}
    proc = subprocess.Popen(["sh", "-ec", job["run"]], cwd=claim["checkout"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lost, stop = threading.Event(), threading.Event()
    threading.Thread(target=keep_claim, args=(args.hub, job_id, args.lease / 3, lost, stop), daemon=True).start()
    for line in proc.stdout:  # one append-log per line: fine for a sample
        if ci("append-log", job_id, "--hub", args.hub, stdin=line).returncode == 5:
            lost.set()
        if lost.is_set():
            proc.kill()
            break
    code = proc.wait()
    stop.set()
    if lost.is_set():
        return print(f"{job_id}: claim lost, result dropped")
    status = "passed" if code == 0 else "failed"
    done = ci("complete", job_id, "--hub", args.hub, "--status", status, "--exit-code", str(code))
    print(f"{job_id}: {status}" if done.returncode == 0 else f"{job_id}: {done.stderr.decode().strip()}")

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hub", required=True)
    p.add_argument("--queue", default="default")
    p.add_argument("--name", default="py-agent")
    p.add_argument("--lease", type=int, default=30, help="seconds")
    p.add_argument("--idle-exit", type=float, help="exit after this many idle seconds")
    args = p.parse_args()
    idle_since = time.monotonic()
    while args.idle_exit is None or time.monotonic() - idle_since < args.idle_exit:
        with tempfile.TemporaryDirectory() as checkout:
            got = ci("claim", "--hub", args.hub, "--queue", args.queue, "--name", args.name,
                     "--lease", f"{args.lease}s", "--checkout", checkout, "--json")
            if got.returncode == 4:  # nothing to claim
                time.sleep(0.5)
                continue
            got.check_returncode()
            run(args, json.loads(got.stdout))
            idle_since = time.monotonic()

if __name__ == "__main__":
    main()
