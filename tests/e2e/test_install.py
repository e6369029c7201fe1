"""The built package installs anywhere: sdist, the wheel built from it, a fresh virtualenv."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx

from tests.support import REPO, eventually, free_port, postgres_pids

SOURCES = {"services": "chargeledger", "schemas": "chargeledger/schemas"}


def run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHARGELEDGER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def source_files() -> set[str]:
    """What the wheel must hold: every file of the package folders, under its package path."""
    found = set()
    for folder, package in SOURCES.items():
        for path in (REPO / folder).rglob("*"):
            relative = path.relative_to(REPO / folder)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                found.add(f"{package}/{relative.as_posix()}")
    return found


def clean_copy(target: Path) -> Path:
    """The working tree as a fresh clone has it (no .venv, egg-info or build/, which setuptools
    would otherwise read from), with the changes not committed yet."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO)
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {n for n in archive.namelist() if ".dist-info/" not in n}


def test_the_wheel_built_from_the_sdist_runs_chargeledger_from_a_fresh_venv(
    tmp_path: Path, data_dir: Path
) -> None:
    tree = clean_copy(tmp_path / "tree")
    # `python -m build` makes the sdist, then builds the wheel from that sdist alone; `--wheel`
    # builds it from the tree, as `pip install .` does. Both hold every file of the packages.
    run(sys.executable, "-m", "build", "--outdir", tmp_path / "dist", tree)
    run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "direct", tree)
    [wheel] = (tmp_path / "dist").glob("chargeledger-*.whl")
    [_sdist] = (tmp_path / "dist").glob("chargeledger-*.tar.gz")
    [direct] = (tmp_path / "direct").glob("chargeledger-*.whl")
    missing = source_files() - wheel_names(wheel)
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert wheel_names(direct) == wheel_names(wheel)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    # Dependencies from PyPI (pip's cache makes this quick), at the versions the tests run with.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(run(sys.executable, "-m", "pip", "freeze", "--exclude-editable"))
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run(*pip, "install", "--no-compile", "--quiet", "--constraint", constraints, wheel)

    where = Path(
        run(python, "-c", "import chargeledger; print(chargeledger.__file__)", cwd=tmp_path).strip()
    )
    assert where.resolve().is_relative_to(venv.resolve() / "lib"), where
    assert not where.resolve().is_relative_to(REPO), where

    chargeledger = venv / "bin" / "chargeledger"
    usage = run(chargeledger, "--help", cwd=tmp_path)
    assert "Usage: chargeledger" in usage and " up " in usage, usage

    http_port = free_port()
    ports = ["--ocpp-port", str(free_port()), "--http-port", str(http_port)]
    up = subprocess.Popen(
        [*map(str, (chargeledger, "up", "--data-dir", data_dir)), *ports],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHARGELEDGER_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            if up.poll() is not None:
                raise AssertionError(f"chargeledger up exited:\n{up.communicate()[0]}")
            try:
                return httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=2).is_success
            except httpx.TransportError:
                return False

        eventually(healthy, 90, "/healthz of the installed chargeledger up")
        assert postgres_pids(data_dir)  # its embedded PostgreSQL
        # The console's files are in the wheel.
        page = httpx.get(f"http://127.0.0.1:{http_port}/", timeout=10)
        assert page.status_code == 200 and "/console/console.js" in page.text
        script = httpx.get(f"http://127.0.0.1:{http_port}/console/console.js", timeout=10)
        assert script.status_code == 200 and "/api/v1/fleet" in script.text
    finally:
        up.send_signal(signal.SIGTERM)
        output = up.communicate(timeout=60)[0]
    assert up.returncode == 0, output
    assert postgres_pids(data_dir) == [], "the embedded PostgreSQL outlived chargeledger up"
