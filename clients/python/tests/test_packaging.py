"""The package as a user gets it: a wheel built with ``python -m build``, installed into a
fresh virtualenv outside the repository (httpx coming from the package index), used from
a directory outside the repository against the session's ``leasehold dev``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

from conftest import unique
from devserver import PACKAGE_DIR, DevServer

SMOKE = textwrap.dedent(
    """
    import os, sys
    import leasehold
    from leasehold import Client, LeaseholdError

    # The installed copy, not the repository's sources.
    installed = os.path.realpath(leasehold.__file__)
    assert installed.startswith(os.path.realpath(sys.prefix)), installed
    assert leasehold.__version__ == "0.1.0"

    pool = os.environ["SMOKE_POOL"]
    with Client(os.environ["LEASEHOLD_URL"]) as client:
        client.add_items(pool, [{"id": "smoke", "data": {"n": 1}}])
        (lease,) = client.claim_next(pool, holder="smoke-test", lease_ms=5000)
        item = lease.complete({"n": 2})
        assert item["state"] == "done" and item["data"] == {"n": 2}, item
        try:
            lease.complete()
        except LeaseholdError as e:
            assert e.code == "lease_lost", e
        else:
            raise AssertionError("a second complete was accepted")
    print("smoke ok", item["id"], item["version"])
    """
)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_built_wheel_installs_and_works_outside_the_repository(dev: DevServer) -> None:
    # No trace of the test run's environment (its virtualenv, a PYTHONPATH) leaks in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with tempfile.TemporaryDirectory(prefix="leasehold-py-pkg-") as tmp:
        work = Path(tmp)
        dist = work / "dist"
        build = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(PACKAGE_DIR)]
        run(build, work, env)
        (wheel,) = dist.glob("leasehold-0.1.0-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            metadata = archive.read("leasehold-0.1.0.dist-info/METADATA").decode()
        assert "leasehold/py.typed" in names
        assert "leasehold/__init__.py" in names
        assert not any(name.startswith(("tests/", "examples/")) for name in names)
        assert "Requires-Dist: httpx" in metadata
        assert "Apache-2.0" in metadata

        venv = work / "venv"
        run([sys.executable, "-m", "venv", str(venv)], work, env)
        python = str(venv / "bin" / "python")
        run([python, "-m", "pip", "install", "--quiet", str(wheel)], work, env)

        script = work / "smoke.py"
        script.write_text(SMOKE)
        smoke_env = dict(env, LEASEHOLD_URL=dev.url, SMOKE_POOL=unique("smoke"))
        out = run([python, str(script)], work, smoke_env)
        assert out.startswith("smoke ok smoke ")
