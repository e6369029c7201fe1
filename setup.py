"""Package discovery for a source tree whose folders are not named like its packages.

The package ``chargeledger`` is the folder ``services/`` and ``chargeledger.schemas`` the folder
``schemas/``; pyproject.toml cannot map a discovered tree onto another name, so this file does.
Every folder under them is a package (data folders such as ``core/sql`` and ``schemas/history``
are namespace packages, as setuptools prefers), and every file in them that is not Python source
is its package data: a new subpackage or data file is in the wheel without being listed anywhere.
Everything else is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOTS = {"chargeledger": "services", "chargeledger.schemas": "schemas"}
NOT_DATA = {".py", ".pyc", ".pyo"}


def discovered() -> dict[str, Path]:
    """Every package, with its folder."""
    found = {}
    for name, folder in ROOTS.items():
        found[name] = Path(folder)
        for sub in find_namespace_packages(folder, exclude=["*__pycache__"]):
            found[f"{name}.{sub}"] = Path(folder, *sub.split("."))
    return found


def data_files(folder: Path) -> list[str]:
    return sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and path.suffix not in NOT_DATA and not path.name.startswith(".")
    )


packages = discovered()
setup(
    package_dir=ROOTS,
    packages=sorted(packages),
    package_data={name: data_files(folder) for name, folder in packages.items()},
)
