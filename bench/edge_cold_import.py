"""Cold import of the Lambda handler module, before and after, measured in the same run.

    .venv/bin/python -m bench.edge_cold_import [--runs 9] [--before REV]

"Before" is the edge at REV (default: the commit before the edge imported only what a route needs), checked out
in a temporary `git worktree`; "after" is this working tree. Each sample is `import edge_api.handler` in a fresh
interpreter (the Lambda's cold start: module-level logger, metrics, settings, app), the two alternating so
machine load hits both alike. Also prints which heavy libraries each loads at import and the largest imports
of "after" (`python -X importtime`).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "f4f801b"  # the edge as the issue measured it (478 ms on a quiet machine)
HEAVY = ("boto3", "botocore", "httpx", "s3transfer")
PROBE = (
    "import sys, time; t, c = time.perf_counter(), time.process_time(); import edge_api.handler; "
    "dt, dc = time.perf_counter() - t, time.process_time() - c; "
    f"print(dt, dc, edge_api.handler.__file__, ','.join(m for m in {HEAVY} if m in sys.modules))"
)
ENV = {
    **os.environ,
    "AWS_DEFAULT_REGION": "us-west-2",
    "WORKER_URL": "http://worker.internal",
    "EMIT_METRICS": "true",
}


def sample(tree: Path) -> tuple[float, float, str]:
    """One cold import with `tree` first on sys.path: (wall s, CPU s, heavy modules loaded)."""
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, env=ENV, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out[2].startswith(str(tree)), f"imported {out[2]}, not from {tree}"
    return float(out[0]), float(out[1]), out[3] if len(out) > 3 else "-"


def largest_imports(tree: Path, top: int = 12) -> list[tuple[float, str]]:
    """The biggest direct imports (cumulative ms) under `import edge_api.handler`."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import edge_api.handler"], cwd=tree, env=ENV,
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    rows = []
    for line in err.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and 2 <= len(match[2]) <= 6:  # below the handler, three levels deep
            rows.append((int(match[1]) / 1000, match[3]))
    return sorted(rows, reverse=True)[:top]


def report(
    times: dict[str, list[float]], cpu: dict[str, list[float]], loaded: dict[str, str], runs: int
) -> None:
    """Medians (wall and CPU), ranges and ratios."""
    wall = {name: statistics.median(values) * 1000 for name, values in times.items()}
    used = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
    print(f"cold `import edge_api.handler`, median of {runs} fresh interpreters, alternating:")
    for name in times:
        spread = f"{min(times[name]) * 1000:.0f}-{max(times[name]) * 1000:.0f}"
        print(f"  {name:<7} wall {wall[name]:6.0f} ms (range {spread})  CPU {used[name]:6.0f} ms  "
              f"heavy libraries loaded: {loaded[name]}")  # fmt: skip
    for label, figures in (("wall", wall), ("CPU", used)):
        ratio, delta = figures["after"] / figures["before"], figures["after"] - figures["before"]
        print(f"  after/before ({label}): {ratio:.2f}x ({delta:+.0f} ms)")


def main() -> None:
    """Print before/after medians and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' edge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before],
                       check=True)  # fmt: skip
        try:
            trees = {"before": before, "after": ROOT}
            for tree in trees.values():
                sample(tree)  # compile the .pyc files once, outside the figures
            times: dict[str, list[float]] = {name: [] for name in trees}
            cpu: dict[str, list[float]] = {name: [] for name in trees}
            loaded: dict[str, str] = {}
            for _ in range(args.runs):
                for name, tree in trees.items():
                    seconds, cpu_seconds, loaded[name] = sample(tree)
                    times[name].append(seconds)
                    cpu[name].append(cpu_seconds)
            report(times, cpu, loaded, args.runs)
            print("largest imports now (cumulative ms, one run):")
            for ms, name in largest_imports(ROOT):
                print(f"  {ms:7.1f}  {name}")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False
            )


if __name__ == "__main__":
    main()
