"""The faust worker's logging: at the level asked for, so that the debug calls aiokafka and faust
make for every message cost no log record."""

from __future__ import annotations

import logging
from collections.abc import Iterator

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
def test_a_worker_at_warning_makes_no_record_of_debug_calls() -> None:
    ledger = FaustLedger(
        bootstrap="127.0.0.1:9", database_url="postgresql://nowhere/x", partitions=1, processors=[]
    )
    worker = _Worker(ledger, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker._setup_logging()
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("chargeledger").isEnabledFor(logging.WARNING)
