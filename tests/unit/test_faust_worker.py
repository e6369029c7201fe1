"""The faust worker's logging: at the level asked for, so that the debug calls aiokafka and faust
make for every message cost no log record; and where it keeps its directories."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargeledger.core.faust_runtime import FaustLedger, _Worker


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_a_worker_at_warning_makes_no_record_of_debug_calls(tmp_path: Path) -> None:
    ledger = FaustLedger(
        bootstrap="127.0.0.1:9",
        database_url="postgresql://nowhere/x",
        partitions=1,
        processors=[],
        datadir=tmp_path,
    )
    worker = _Worker(ledger, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker._setup_logging()
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("chargeledger").isEnabledFor(logging.WARNING)


def test_a_worker_leaves_no_directory_where_it_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faust makes its data directory even with its tables in memory; by default it makes it
    in the working directory (a ``chargeledger-ledger-data`` beside the user's files)."""
    monkeypatch.chdir(tmp_path)
    ledger = FaustLedger(
        bootstrap="127.0.0.1:9", database_url="postgresql://nowhere/x", partitions=1, processors=[]
    )
    ledger.app._create_directories()
    assert list(tmp_path.iterdir()) == []
    assert ledger.datadir.is_dir()
    shutil.rmtree(ledger.datadir)
