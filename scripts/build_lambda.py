"""Build the edge Lambda zip: edge_api, the contract (gpu_worker/__init__.py + the protocol package), the body-limit
middleware and the link signer both services use (gpu_worker/limits.py, gpu_worker/presign.py, torch-free) and their light
dependencies for Lambda's Python 3.11 on x86_64. boto3 is left out: the Lambda runtime provides it.
One zip serves both handlers: `edge_api.handler.handler` and `edge_api.authorizer.handler`.

The zip carries compiled bytecode (`__pycache__/*.pyc`, unchecked-hash): Lambda's code folder is read-only, so
without it every cold start compiles fastapi, pydantic and the rest from source again (measured: 1.1 s of CPU
to import the handler without, 0.4 s with). It is compiled only when this script runs on Lambda's Python
(3.11); elsewhere the zip is built without it and says so. uvicorn (the local server) is left out.

    .venv/bin/python scripts/build_lambda.py [--out dist/edge_lambda.zip]
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_PYTHON = (3, 11)  # infra/modules/edge/lambda.tf: runtime python3.11
PROVIDED_BY_RUNTIME = ("boto3",)
# `python -m edge_api` serves with these; Lambda runs the app through Mangum
LOCAL_ONLY = ("uvicorn", "httptools")
NEVER = ("torch", "transformers", "reflex", "PIL", "numpy", "rapidocr", "onnxruntime")
# pydantic's copy of its old v1 API: nothing in the edge uses it, but FastAPI imports it, when it is there, to
# recognise v1 models at route registration (about 5% of a cold start) and treats its absence as "no v1 models".
# pydantic itself imports it only to build a schema for a type with `__get_validators__` and no
# `__get_pydantic_core_schema__` (none in the edge or its dependencies): such a type would fail without it. The zip
# test builds every route's schema (/openapi.json) and drives routes of each kind from the zip.
UNUSED = ("pydantic/v1",)
# /docs and /redoc load these from the Lambda itself (no CDN): about 0.8 MiB of the zip
DOCS_ASSETS = tuple(f"fastapi_offline/static/{name}" for name in
                    ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"))  # fmt: skip


def requirements() -> list[str]:
    """The base and `edge` dependencies of pyproject.toml, less what the runtime provides or Lambda never runs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["edge"]
    return [req for req in wanted if not req.lower().startswith(PROVIDED_BY_RUNTIME + LOCAL_ONLY)]


def compile_bytecode(target: Path) -> bool:
    """Compile every module for Lambda's Python, as unchecked-hash .pyc (Lambda's file times are not ours)."""
    if sys.version_info[:2] != LAMBDA_PYTHON:
        print(
            f"not Python {'.'.join(map(str, LAMBDA_PYTHON))}: the zip carries no bytecode (slower cold starts)"
        )
        return False
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    return compileall.compile_dir(target, quiet=2, workers=0, invalidation_mode=mode)


def build(out: Path) -> Path:
    """Install the dependencies for Lambda's platform into a folder, add our code, zip it."""
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
             "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11",
             "--only-binary=:all:", "--no-compile", *requirements()],
            check=True,
        )  # fmt: skip
        for name in NEVER:
            if (target / name).exists():
                raise SystemExit(f"{name} must not be in the Lambda bundle")
        for name in UNUSED:
            shutil.rmtree(target / name, ignore_errors=True)  # gone already once pydantic drops it
        if missing := [name for name in DOCS_ASSETS if not (target / name).is_file()]:
            raise SystemExit(f"{missing} not in the Lambda bundle: /docs would be blank")
        shutil.copytree(ROOT / "edge_api", target / "edge_api", ignore=shutil.ignore_patterns("__pycache__"))
        (target / "gpu_worker").mkdir()
        for shared in ("__init__.py", "limits.py", "presign.py"):
            shutil.copy(ROOT / "gpu_worker" / shared, target / "gpu_worker" / shared)
        shutil.copytree(ROOT / "gpu_worker" / "protocol", target / "gpu_worker" / "protocol",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        compile_bytecode(target)  # after everything is in place; pip compiled nothing (--no-compile)
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file():
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
