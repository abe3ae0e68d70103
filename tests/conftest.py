import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROJECT, ROOTFS, Host  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="end-to-end tests need root")
        for item in items:
            if "e2e" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def rootfs() -> Path:
    if not (ROOTFS / "bin" / "busybox").exists():
        subprocess.run([str(PROJECT / "scripts" / "mkrootfs"), str(ROOTFS)], check=True)
    return ROOTFS


@pytest.fixture
def host(rootfs):
    """A throwaway host; after the test, nothing minirun made may be left in it."""
    h = Host()
    baseline = h.inventory()
    try:
        yield h
        after = h.inventory()
        assert after == baseline, f"leaked: before={baseline} after={after}"
    finally:
        h.close()
