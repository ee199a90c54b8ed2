"""Build the edge Lambda zip: edge_api, the contract (gpu_worker/__init__.py + the protocol package) and their light
dependencies for Lambda's Python 3.11 on x86_64. boto3 is left out: the Lambda runtime provides it.
One zip serves both handlers: `edge_api.handler.handler` and `edge_api.authorizer.handler`.

    .venv/bin/python scripts/build_lambda.py [--out dist/edge_lambda.zip]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROVIDED_BY_RUNTIME = ("boto3",)
NEVER = ("torch", "transformers", "reflex", "PIL", "numpy", "rapidocr", "onnxruntime")


def requirements() -> list[str]:
    """The base and `edge` dependencies of pyproject.toml, less what the runtime provides."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["edge"]
    return [req for req in wanted if not req.lower().startswith(PROVIDED_BY_RUNTIME)]


def build(out: Path) -> Path:
    """Install the dependencies for Lambda's platform into a folder, add our code, zip it."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
             "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11",
             "--only-binary=:all:", *requirements()],
            check=True,
        )  # fmt: skip
        for name in NEVER:
            if (target / name).exists():
                raise SystemExit(f"{name} must not be in the Lambda bundle")
        shutil.copytree(ROOT / "edge_api", target / "edge_api", ignore=shutil.ignore_patterns("__pycache__"))
        (target / "gpu_worker").mkdir()
        shutil.copy(ROOT / "gpu_worker" / "__init__.py", target / "gpu_worker" / "__init__.py")
        shutil.copytree(ROOT / "gpu_worker" / "protocol", target / "gpu_worker" / "protocol",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    archive.write(path, path.relative_to(target).as_posix())
    return out


def main() -> None:
    """Build and print the size."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "edge_lambda.zip")
    args = parser.parse_args()
    out = build(args.out)
    unzipped = sum(info.file_size for info in zipfile.ZipFile(out).infolist())
    print(
        f"{os.path.relpath(out, ROOT)}: {out.stat().st_size / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped"
    )


if __name__ == "__main__":
    main()
