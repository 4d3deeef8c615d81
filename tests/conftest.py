import shutil
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parents[1].parent / "shared" / "captures"


@pytest.fixture(scope="session")
def captures() -> Path:
    """The shared corpus of real captures (skips cleanly where it is absent)."""
    if not (CAPTURES / "manifest.json").exists():
        pytest.skip("../shared/captures is not here")
    return CAPTURES


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed")
    return path
