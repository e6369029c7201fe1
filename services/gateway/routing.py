"""Routing of an inbound CALL to its handler: the ``ocpp`` library's, with less work per message.

The library parses the frame again, converts every payload key with two regular expressions and
inspects the handler's signature on every message; profiles put these near the top of the
gateway's time. Here the CALL parsed by the logged connection is used, key conversions are
memoised (same rules, so the same results; a unit test compares them with the library's) and
each handler's signature is read once. Schema validation happened before (validation.py). As in
the library, an action's ``@after`` handler runs once its answer is sent, as a task of its own
(it may send CALLs, whose answers the connection must keep reading).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from ocpp.routing import create_route_map

logger = logging.getLogger(__name__)


@cache
def snake_key(key: str) -> str:
    key = key.replace("ocppCSMSURL", "ocpp_csms_url")
    key = key.replace("V2X", "_v2x").replace("V2G", "_v2g")
    key = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", key)
    return re.sub("([a-z0-9])([A-Z])(?=\\S)", r"\1_\2", key).lower()


@cache
def camel_key(key: str) -> str:
    key = key.replace("soc", "SoC")
    key = key.replace("_v2x", "V2X")
    key = key.replace("ocpp_csms_url", "ocppCsmsUrl")
    key = key.replace("csms", "CSMS")
    key = key.replace("_url", "URL")
    key = key.replace("soc", "SoC").replace("_SoCket", "Socket")
    key = key.replace("_v2x", "V2X")
    key = key.replace("soc_limit_reached", "SOCLimitReached")
    key = key.replace("_v2x", "V2X").replace("_v2g", "V2G")
    first, *rest = key.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def to_snake(data: Any) -> Any:
    if isinstance(data, dict):
        return {snake_key(k): to_snake(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_snake(v) for v in data]
    return data


def to_camel(data: Any) -> Any:
    if isinstance(data, dict):
        return {camel_key(k): to_camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_camel(v) for v in data]
    return data


@cache
def _wants_unique_id(function: Any) -> bool:
    return "call_unique_id" in inspect.signature(function).parameters


def _call(handler: Any, central_system: Any, kwargs: dict[str, Any], unique_id: str) -> Any:
    if _wants_unique_id(handler):
        return handler(central_system, **kwargs, call_unique_id=unique_id)
    return handler(central_system, **kwargs)


_ROUTE_MAPS: dict[type, dict[str, dict[str, Any]]] = {}


def shared_route_map(cls: type) -> dict[str, dict[str, Any]]:
    """The library's route map of ``cls``, built once per class, with its functions rather than
    one connection's bound methods. The library builds one per connection: some forty objects,
    in a reference cycle with the connection, so that every closed connection waited for a
    full garbage collection (RSS grew with each wave of reconnecting stations)."""
    if cls not in _ROUTE_MAPS:
        _ROUTE_MAPS[cls] = dict(create_route_map(cls))
    return _ROUTE_MAPS[cls]


_AFTER_TASKS: set[asyncio.Task[Any]] = set()


class FastRouting:
    """Mixin before the library's ChargePoint; its connection is a ``LoggedConnection``, which
    hands over only CALLs of handled actions, validated and parsed (``last_call``)."""

    id: str
    route_map: dict[str, dict[str, Any]]
    _connection: Any
    _send: Callable[[str], Awaitable[None]]  # the library's ChargePoint sends

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.route_map = shared_route_map(type(self))

    async def route_message(self, raw_msg: str) -> None:
        _, unique_id, action, payload = self._connection.last_call
        call = Call(unique_id, action, payload)
        handlers = self.route_map[action]
        kwargs = to_snake(payload)
        try:
            response = _call(handlers["_on_action"], self, kwargs, unique_id)
            if inspect.isawaitable(response):
                response = await response
        except OCPPError as error:
            logger.warning(
                "%s: %s refused: %s",
                self.id,
                action,
                error,
                extra={"station_id": self.id, "unique_id": unique_id},
            )
            await self._send(call.create_call_error(error).to_json())
            return
        except Exception as error:  # a bug: the station gets InternalError, we get the trace
            logger.exception(
                "%s: %s failed",
                self.id,
                action,
                extra={"station_id": self.id, "unique_id": unique_id},
            )
            await self._send(call.create_call_error(error).to_json())
            return
        answer = to_camel(remove_nones(serialize_as_dict(response)))
        await self._send(call.create_call_result(answer).to_json())
        after = handlers.get("_after_action")
        if after is not None:
            task = asyncio.ensure_future(self._after(after, kwargs, unique_id, action))
            _AFTER_TASKS.add(task)
            task.add_done_callback(_AFTER_TASKS.discard)

    async def _after(
        self, handler: Any, kwargs: dict[str, Any], unique_id: str, action: str
    ) -> None:
        try:
            result = _call(handler, self, kwargs, unique_id)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception(
                "%s: what follows %s failed",
                self.id,
                action,
                extra={"station_id": self.id, "unique_id": unique_id},
            )
