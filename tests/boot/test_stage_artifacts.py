"""scripts/stage_artifacts.py's guards: a flash-attn wheel for another Python or torch is refused before
anything is uploaded, and the pins name every wheel exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.stage_artifacts import check_flash_attn, extra_requirements, wheel_pins

PINNED = extra_requirements(["worker-gpu", "flash-attn"])


def test_the_gpu_extras_pin_torch_and_flash_attn_exactly():
    assert "torch==2.13.0" in PINNED and any(r.startswith("flash-attn==") for r in PINNED)


@pytest.mark.parametrize(
    "name",
    [
        "flash_attn-2.8.3.post2+cu12torch2.13cxx11abiTRUE-cp312-cp312-linux_x86_64.whl",
        "flash_attn-2.8.3.post2-cp312-cp312-linux_x86_64.whl",  # built once with `pip wheel` against the pin
    ],
)
def test_a_flash_attn_wheel_for_this_python_and_torch_is_taken(name):
    check_flash_attn(Path(name), "3.12", PINNED)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE-cp312-cp312-linux_x86_64.whl", "built for torch 2.8"),
        ("flash_attn-2.8.3.post2+cu12torch2.13cxx11abiTRUE-cp311-cp311-linux_x86_64.whl", "Python 3.12"),
    ],
)
def test_a_flash_attn_wheel_for_another_python_or_torch_is_refused(name, reason):
    with pytest.raises(SystemExit, match=reason):
        check_flash_attn(Path(name), "3.12", PINNED)


def test_pins_name_every_wheel_with_its_exact_version(tmp_path):
    for name in [
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
        "flash_attn-2.8.3.post2+cu12torch2.13cxx11abiTRUE-cp312-cp312-linux_x86_64.whl",
        "deepseek_ocr_service-0.1.0-py3-none-any.whl",
        "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
    ]:
        (tmp_path / name).touch()
    assert wheel_pins(tmp_path) == [
        "deepseek-ocr-service==0.1.0",
        "flash-attn==2.8.3.post2+cu12torch2.13cxx11abiTRUE",
        "python-dateutil==2.9.0.post0",
        "torch==2.13.0+cpu",
    ]
