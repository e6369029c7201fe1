"""SignCertificate, the same in OCPP 1.6 (security extension), 2.0.1 and 2.1.

The station sends a CSR; without a CA for station certificates the answer is Rejected. With one,
the CSR is checked and signed before the answer (Accepted), and once the answer is sent the
certificate follows in a CertificateSigned CALL, as the certificate-renewal use cases describe.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from .certificates import CsrRefused
from .services import StationServices

logger = logging.getLogger(__name__)

MAX_CHAIN_CHARS = 10_000  # CertificateSigned.certificateChain, every version
ANSWER_TIMEOUT_S = 60


class CertificateSigning:
    """Mixin of the central systems: ``_refusal`` before the answer, ``_deliver`` after it."""

    id: str
    _services: StationServices
    _connection: Any
    _signed: dict[str, dict[str, Any]]  # SignCertificate unique id -> CertificateSigned payload

    def _refusal(
        self,
        unique_id: str,
        csr: str,
        certificate_type: str | None = None,
        request_id: int | None = None,
    ) -> str | None:
        """Why the CSR is not signed; None when it is (the certificate waits for the answer)."""
        ca = self._services.certificate_authority
        if ca is None:
            reason = "no certificate authority for station certificates is configured"
        elif certificate_type == "V2GCertificate":
            reason = "ISO 15118 (V2G) certificates are not signed by this CSMS"
        else:
            try:
                chain = ca.sign(self.id, csr, self._services.clock())
            except CsrRefused as exc:
                reason = str(exc)
            else:
                if len(chain) <= MAX_CHAIN_CHARS:
                    payload: dict[str, Any] = {"certificateChain": chain}
                    if certificate_type is not None:
                        payload["certificateType"] = certificate_type
                    if request_id is not None:
                        payload["requestId"] = request_id  # 2.1
                    self._signed[unique_id] = payload
                    return None
                reason = f"the certificate chain is over {MAX_CHAIN_CHARS} characters"
        logger.warning(
            "%s: SignCertificate rejected: %s",
            self.id,
            reason,
            extra={"station_id": self.id, "unique_id": unique_id},
        )
        return reason

    async def _deliver(self, unique_id: str) -> None:
        """Send the certificate signed for the SignCertificate ``unique_id``, if there is one."""
        payload = self._signed.pop(unique_id, None)
        if payload is None:
            return
        answer = await self._connection.call(
            f"cert-{uuid.uuid4().hex[:12]}", "CertificateSigned", payload, ANSWER_TIMEOUT_S
        )
        status = answer.payload.get("status") if isinstance(answer.payload, dict) else None
        logger.info(
            "%s: CertificateSigned answered %s",
            self.id,
            status or answer.error_code,
            extra={"station_id": self.id, "unique_id": unique_id},
        )
