import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module, env, needle", [
    ("gpu_worker", {"OCR_ENGINE": "bogus"}, "invalid worker settings: OCR_ENGINE"),
    ("gpu_worker", {"MAX_BATCH_SIZE": "0"}, "invalid worker settings: MAX_BATCH_SIZE"),
    ("gpu_worker", {"S3_READ_TIMEOUT_S": "0"}, "invalid worker settings: S3_READ_TIMEOUT_S"),
    ("gpu_worker", {"SPOOL_MAX_BYTES": "10"}, "invalid worker settings: SPOOL_MAX_BYTES"),
    ("edge_api", {"PORT": "abc"}, "invalid edge settings: PORT"),
])  # fmt: skip
def test_a_bad_setting_stops_the_service_at_start_with_one_clear_line(module, env, needle):
    result = subprocess.run([sys.executable, "-m", module], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(needle)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value, expected", [("true", True), ("0", False), (None, False)])
def test_the_static_cache_setting_reaches_the_deepseek_engine(monkeypatch, value, expected):
    from gpu_worker.engines import create_engine
    from gpu_worker.settings import load_settings

    monkeypatch.setenv("OCR_ENGINE", "deepseek")
    if value is None:
        monkeypatch.delenv("DEEPSEEK_STATIC_CACHE", raising=False)
    else:
        monkeypatch.setenv("DEEPSEEK_STATIC_CACHE", value)
    engine = create_engine(load_settings())
    assert engine.name == "deepseek" and engine.static_cache is expected
