"""Cold import of the Lambda handler module, before and after, measured in the same run.

    .venv/bin/python -m bench.edge_cold_import [--runs 9] [--before REV] [--zip] [--module edge_api.authorizer]

"Before" is the edge at REV (default: the commit before the edge imported only what a route needs), checked out
in a temporary `git worktree`; "after" is this working tree. Each sample is `import edge_api.handler` (or, with
--module, the authorizer's entry point, which API Gateway calls before every request) in a fresh
interpreter (the Lambda's cold start: module-level logger, metrics, settings, app), before and after alternating
so machine load hits both alike; wall and CPU time are both reported (CPU is steadier on a busy machine).

Source trees (this virtualenv, bytecode cached) by default. With --zip, the Lambda zips that each tree's
scripts/build_lambda.py builds (pip downloads their dependencies), extracted and imported as Lambda does: with
only the zip and the runtime's boto3 on the path, and no bytecode written (Lambda's code folder is read-only).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from scripts.build_lambda import compile_bytecode
from tests.utils.lambda_zip import build_bundle, extract, runtime

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "f4f801b"  # the edge as the issue measured it (478 ms on a quiet machine)
HEAVY = ("boto3", "botocore", "httpx", "s3transfer")
MODULES = ("edge_api.handler", "edge_api.authorizer")  # the API function's and the authorizer's entry points
PROBE = (
    "import sys; sys.path[:0] = sys.argv[2:]\n"
    "import importlib, time; t, c = time.perf_counter(), time.process_time()\n"
    "module = importlib.import_module(sys.argv[1])\n"
    "dt, dc = time.perf_counter() - t, time.process_time() - c\n"
    f"print(dt, dc, module.__file__, ','.join(m for m in {HEAVY} if m in sys.modules) or '-')\n"
)
# Bytecode is written (the first sample of each tree, outside the figures) and then used, as the Lambda zip carries
# it: with PYTHONDONTWRITEBYTECODE set, every sample would compile the tree's own modules from source again.
ENV = {
    **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
    "AWS_DEFAULT_REGION": "us-west-2",
    "WORKER_URL": "http://worker.internal",
    "EMIT_METRICS": "true",
}


class Target:
    """Where one side's edge_api is imported from, and how."""

    module = MODULES[0]

    def __init__(self, code: Path, extra: list[Path] | None = None, lambda_like: bool = False) -> None:
        self.code, self.extra, self.lambda_like = code, extra or [], lambda_like

    def sample(self) -> tuple[float, float, str]:
        """One cold import: (wall s, CPU s, heavy modules it loaded)."""
        flags = ["-B", "-I", "-S"] if self.lambda_like else []
        argv = [sys.executable, *flags, "-c", PROBE, self.module, str(self.code), *map(str, self.extra)]
        out = subprocess.run(
            argv, cwd=self.code, env=ENV, capture_output=True, text=True, check=True
        ).stdout.split()
        assert out[2].startswith(str(self.code)), f"imported {out[2]}, not from {self.code}"
        return float(out[0]), float(out[1]), out[3]


def lambda_targets(trees: dict[str, Path], folder: Path) -> dict[str, Target]:
    """Each tree's Lambda zip, built by its own build script, extracted next to a copy of the runtime's boto3."""
    provided = runtime(folder / "runtime")
    targets = {}
    for name, tree in trees.items():
        bundle = build_bundle(folder / f"{name}.zip", tree)
        pyc = sum(n.endswith(".pyc") for n in zipfile.ZipFile(bundle).namelist())
        code = extract(bundle, folder / name)
        note = ""
        if not pyc and compile_bytecode(code):
            # An old build script shipped no bytecode: compiled here, as the current one does, so that the two
            # sides differ in what they import, not in whether they compile it at every cold start.
            note = " (compiled here)"
        print(f"{name} zip: {bundle.stat().st_size / 2**20:.1f} MiB, {pyc} .pyc files{note}")
        targets[name] = Target(code, [provided], lambda_like=True)
    return targets


def largest_imports(tree: Path, module: str, top: int = 12) -> list[tuple[float, str]]:
    """The biggest imports (cumulative ms) up to three levels under `import MODULE`."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=tree, env=ENV,
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    rows = []
    for line in err.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and 2 <= len(match[2]) <= 6:
            rows.append((int(match[1]) / 1000, match[3]))
    return sorted(rows, reverse=True)[:top]


def measure(targets: dict[str, Target], runs: int) -> None:
    """Alternate the targets `runs` times; print medians (wall and CPU), ranges and ratios."""
    for target in targets.values():
        target.sample()  # warm the file cache (and, for source trees, compile the bytecode) outside the figures
    wall: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    loaded: dict[str, str] = {}
    for _ in range(runs):
        for name, target in targets.items():
            seconds, cpu_seconds, loaded[name] = target.sample()
            wall[name].append(seconds * 1000)
            cpu[name].append(cpu_seconds * 1000)
    print(f"cold `import {Target.module}`, median of {runs} fresh interpreters, alternating:")
    for name in targets:
        print(f"  {name:<7} wall {statistics.median(wall[name]):6.0f} ms (range {min(wall[name]):.0f}-"
              f"{max(wall[name]):.0f})  CPU {statistics.median(cpu[name]):6.0f} ms  "
              f"heavy libraries loaded: {loaded[name]}")  # fmt: skip
    for label, figures in (("wall", wall), ("CPU", cpu)):
        before, after = statistics.median(figures["before"]), statistics.median(figures["after"])
        print(f"  after/before ({label}): {after / before:.2f}x ({after - before:+.0f} ms)")


def main() -> None:
    """Print before/after medians and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' edge")
    parser.add_argument(
        "--zip", action="store_true", help="measure the Lambda zips instead of the source trees"
    )
    parser.add_argument("--module", choices=MODULES, default=MODULES[0], help="which function's entry point")
    args = parser.parse_args()
    Target.module = args.module
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        before = folder / "before-tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before],
                       check=True)  # fmt: skip
        try:
            trees = {"before": before, "after": ROOT}
            if args.zip:
                measure(lambda_targets(trees, folder), args.runs)
            else:
                measure({name: Target(tree) for name, tree in trees.items()}, args.runs)
                print("largest imports now (cumulative ms, one run):")
                for ms, name in largest_imports(ROOT, args.module):
                    print(f"  {ms:7.1f}  {name}")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False
            )


if __name__ == "__main__":
    main()
