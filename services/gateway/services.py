"""What a station's central system needs to answer it: the registries, the CA and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .admission import Admission
from .authorization import TokenCache
from .certificates import StationCa
from .transaction_ids import TransactionIdAllocator


@dataclass(frozen=True)
class StationServices:
    admission: Admission
    tokens: TokenCache
    transaction_ids: TransactionIdAllocator
    clock: Callable[[], datetime]
    heartbeat_interval_s: int = 300
    boot_retry_interval_s: int = 60
    certificate_authority: StationCa | None = None  # signs station certificates (CSRs)

    def ocpp_time(self, moment: datetime | None = None) -> str:
        moment = self.clock() if moment is None else moment
        return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
