"""The sessions fold alone, per frame: no log, no database, one process.

    .venv/bin/python benchmarks/session_fold.py [--stations 50] [--minutes 320] [--runs 3]

The traffic of `benchmarks/scale.py` (OCPP 1.6 and 2.0.1 stations charging an hour with a meter
value every minute, resting 20 minutes) is folded by `SessionsProcessor` as the runner does it,
in two shapes of batch:

- bulk: ten minutes of every station in a batch, as in a replay or a backlog: one revision of a
  session stands for about ten of its messages;
- steady: one minute of every station in a batch, as live processing at a fleet's own pace:
  every message to a session makes a revision of it, and a revision holds the whole session, so
  its cost grows with the session's length.

For each it prints microseconds per frame (CALLs and answers counted alike), split into the
fold itself (`evolve_all`), the revisions at the end of each batch (`settle`), encoding the
outputs as Avro, and encoding each changed state as JSON. The best of ``--runs`` runs, after a
warm-up of two sessions' cycles. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scale import REST_MIN, SESSION_MIN, Station
from chargeledger.core import codec
from chargeledger.core.events import Frame
from chargeledger.core.log_port import Position
from chargeledger.ledger.session_state import StationSessions
from chargeledger.ledger.sessions import SessionsProcessor

PARTS = ("fold", "settle", "encode outputs", "encode state")


def batches(stations: list[Station], minutes: range, per_batch: int) -> Iterator[list[Frame]]:
    for first in range(minutes.start, minutes.stop, per_batch):
        yield [
            frame
            for minute in range(first, min(first + per_batch, minutes.stop))
            for station in stations
            for frame in station.frames(minute)
        ]


def run(stations: int, minutes: int, per_batch: int) -> tuple[int, dict[str, float]]:
    """Fold a warm-up, then ``minutes`` of traffic; the frames and seconds per part measured."""
    processor = SessionsProcessor()
    fleet = [Station(n) for n in range(stations)]
    states: dict[str, StationSessions] = {}
    offset = 0
    warm_up = 2 * (SESSION_MIN + REST_MIN)
    seconds = dict.fromkeys(PARTS, 0.0)
    frames = 0
    clock = time.perf_counter
    for window, measured in ((range(warm_up), False), (range(warm_up, warm_up + minutes), True)):
        for batch in batches(fleet, window, per_batch):
            changed: dict[str, None] = {}
            spent = dict.fromkeys(PARTS, 0.0)
            for frame in batch:
                at = clock()
                keys = processor.state_keys(frame)
                mine = {k: states.get(k) or processor.initial_state() for k in keys}
                new, outputs = processor.evolve_all(mine, frame, Position("ocpp.frames", 0, offset))
                offset += 1
                states.update(new)
                changed.update(dict.fromkeys(new))
                folded = clock()
                for out in outputs:
                    codec.encode(out)
                spent["fold"] += folded - at
                spent["encode outputs"] += clock() - folded
            for key in sorted(changed):
                at = clock()
                state, outputs = processor.settle(key, states[key])
                states[key] = state
                settled = clock()
                for out in outputs:
                    codec.encode(out)
                encoded = clock()
                processor.encode_state(state)
                spent["settle"] += settled - at
                spent["encode outputs"] += encoded - settled
                spent["encode state"] += clock() - encoded
            if measured:
                frames += len(batch)
                for part in PARTS:
                    seconds[part] += spent[part]
    return frames, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=320, help="measured, after the warm-up")
    parser.add_argument("--runs", type=int, default=3, help="the best run is printed")
    args = parser.parse_args()
    print(f"sessions fold, {args.stations} stations, {args.minutes} minutes of traffic each")
    print(f"{'batch':<8}{'frames':>9}{'µs/frame':>10}" + "".join(f"{p:>16}" for p in PARTS))
    for name, per_batch in (("bulk", 10), ("steady", 1)):
        best: tuple[int, dict[str, float]] | None = None
        for n in range(args.runs):
            print(f"  {name}: run {n + 1} of {args.runs}", end="\r", file=sys.stderr, flush=True)
            frames, seconds = run(args.stations, args.minutes, per_batch)
            if best is None or sum(seconds.values()) < sum(best[1].values()):
                best = (frames, seconds)
        assert best is not None
        frames, seconds = best
        each = {p: seconds[p] / frames * 1e6 for p in PARTS}
        print(
            f"{name:<8}{frames:>9,}{sum(each.values()):>10.1f}"
            + "".join(f"{each[p]:>16.1f}" for p in PARTS)
        )


if __name__ == "__main__":
    main()
