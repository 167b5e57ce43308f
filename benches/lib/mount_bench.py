#!/usr/bin/env python3
"""The measurements of benches/mount.sh: the same operations on a `tideline mount` and on a
local directory of the same disk, alternating, each printed as a RESULT line with the ratio.

  create_4k      create + 4 KiB write + close, one thread (files/s)
  seq_read       sequential read of a 64 MiB file, second read (cached) (MiB/s)
  git_clone      `git clone` of a local repository of --files files (s)
  git_status     `git status` in that clone, warm (second run) (s)
  remote_visible a write through the files API until `stat` on the mount shows it (ms: p50, max
                 of 30; mount only)
  rss            the mount process's resident memory at the end (MiB, mount only)
"""

import argparse
import json
import os
import statistics
import subprocess
import time
import urllib.request


def result(name, unit, mount, local=None, **extra):
    fields = {"bench": name, "unit": unit, "mount": round(mount, 3)}
    if local is not None:
        fields["local"] = round(local, 3)
        fields["ratio_mount_over_local"] = round(mount / local, 3) if local else None
    fields.update(extra)
    print("RESULT " + json.dumps(fields), flush=True)


def create_4k(root, n, tag):
    d = os.path.join(root, f"create-{tag}")
    os.makedirs(d)
    data = os.urandom(4096)
    start = time.perf_counter()
    for i in range(n):
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(data)
    return n / (time.perf_counter() - start)


def seq_read(root, tag):
    path = os.path.join(root, f"big-{tag}")
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
        rates.append(64 / (time.perf_counter() - start))
    return rates[-1]


def make_repo(work, files):
    repo = os.path.join(work, "repo")
    if os.path.exists(repo):
        return repo
    os.makedirs(repo)
    for i in range(files):
        d = os.path.join(repo, f"d{i // 100}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.txt"), "w") as f:
            f.write(f"file {i}\n" * 20)
    # No automatic gc: one would start in the background after this commit (10 000 loose
    # objects) and delete objects while a clone copies them. Pack them here, once.
    git = ["git", "-C", repo, "-c", "user.email=b@b", "-c", "user.name=bench", "-c", "gc.auto=0"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "bench"], check=True)
    subprocess.run(git + ["gc", "-q"], check=True)
    return repo


def timed(cmd, cwd=None):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def remote_visible(args, trials=30):
    lat = []
    for i in range(trials):
        body = os.urandom(100 + i)
        url = f"{args.server}/api/v1/sandboxvolumes/{args.volume}/files?path=/remote/r{i % 3}"
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Authorization": f"Bearer {args.token}",
                                              "Content-Type": "application/octet-stream"})
        start = time.perf_counter()
        urllib.request.urlopen(req).read()
        path = os.path.join(args.mount, "remote", f"r{i % 3}")
        deadline = start + 10
        while time.perf_counter() < deadline:
            try:
                if os.stat(path).st_size == len(body):
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.005)
        lat.append((time.perf_counter() - start) * 1000)
    lat.sort()
    return statistics.median(lat), lat[-1]


def main():
    p = argparse.ArgumentParser()
    for a in ["--mount", "--local", "--work", "--server", "--token", "--volume"]:
        p.add_argument(a, required=True)
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--mount-pid", type=int, required=True)
    args = p.parse_args()
    sides = {"mount": args.mount, "local": args.local}

    for r in range(args.rounds):
        got = {s: create_4k(root, 500, f"r{r}") for s, root in sides.items()}
        result("create_4k", "files/s", got["mount"], got["local"], round=r)
    for r in range(args.rounds):
        got = {s: seq_read(root, f"r{r}") for s, root in sides.items()}
        result("seq_read", "MiB/s", got["mount"], got["local"], round=r)

    repo = make_repo(args.work, args.files)
    for r in range(args.rounds):
        clone, status = {}, {}
        for s, root in sides.items():
            dst = os.path.join(root, f"clone-r{r}")
            clone[s] = timed(["git", "clone", "-q", repo, dst])
            timed(["git", "status", "--porcelain"], cwd=dst)
            status[s] = timed(["git", "status", "--porcelain"], cwd=dst)
            out = subprocess.run(["git", "status", "--porcelain"], cwd=dst, check=True,
                                 capture_output=True, text=True).stdout
            assert out == "", f"git status on {s} is not clean: {out[:200]}"
        result("git_clone", "s", clone["mount"], clone["local"], files=args.files, round=r)
        result("git_status", "s", status["mount"], status["local"], files=args.files, round=r)

    p50, worst = remote_visible(args)
    result("remote_visible", "ms", p50, None, p50=round(p50, 1), max=round(worst, 1))
    with open(f"/proc/{args.mount_pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    result("rss", "MiB", rss / 1024, None)


if __name__ == "__main__":
    main()
