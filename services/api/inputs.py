"""The types of every HTTP API input, bounded to what our stores hold (see ``core.bounds``).

``Text``, ``Moment``, ``Day``, ``Int4`` and ``Int8`` are the pydantic types of body fields and
of query parameters; ``load_json`` reads a JSON body as the API accepts it: nested at most
``MAX_JSON_DEPTH`` levels, no NUL or lone surrogate in any string (keys too), finite numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

from ..core.bounds import (
    INT4_MAX,
    INT4_MIN,
    INT8_MAX,
    INT8_MIN,
    day_problem,
    text_problem,
    time_problem,
)

MAX_JSON_DEPTH = 32  # OCPP payloads and OCPI tariffs nest fewer than 10 levels


def _text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _moment(value: datetime) -> datetime:
    problem = time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _day(value: date) -> date:
    problem = day_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Text = Annotated[str, AfterValidator(_text)]
"""A string PostgreSQL and Avro can store: no NUL, no lone surrogate."""
Moment = Annotated[AwareDatetime, AfterValidator(_moment)]
"""An aware time from 0001-01-02 to 9999-12-30 in UTC."""
Day = Annotated[date, AfterValidator(_day)]
"""A day from 0001-01-02 to 9999-12-30."""
Int4 = Annotated[int, Field(ge=INT4_MIN, le=INT4_MAX)]
Int8 = Annotated[int, Field(ge=INT8_MIN, le=INT8_MAX)]


class JsonInputError(ValueError):
    """A JSON body the API refuses; ``loc`` is where in the document (keys and indexes)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError((), f"the number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise JsonInputError((), f"{name} is not a JSON number")


def load_json(body: bytes | str, parse_float: Callable[[str], Any] = _finite) -> Any:
    """The JSON document in ``body``; JsonInputError when the API refuses it, ValueError
    (json.JSONDecodeError) when it is not JSON at all."""
    try:
        document = json.loads(body, parse_float=parse_float, parse_constant=_no_constant)
    except RecursionError:
        raise JsonInputError((), f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError:
        raise
    except JsonInputError:
        raise
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise JsonInputError((), str(exc)) from None
    check_json(document)
    return document


def check_json(document: Any) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and strings that cannot be stored."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise JsonInputError(loc, problem)
            continue
        if not isinstance(value, dict | list):
            continue
        if len(loc) >= MAX_JSON_DEPTH:
            raise JsonInputError(loc, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem is not None:
                    raise JsonInputError(loc, f"a key {problem}")
                stack.append((item, (*loc, key)))
        else:
            stack.extend((item, (*loc, n)) for n, item in enumerate(value))
