"""The ``sats`` role: hosts satellite actors for the BEAM shadows (docs/protocol-v1.md).

Registers ``sats``, a GenServer answering ``{start_actor, 1, SatState, ShadowPid}`` and ``load``.
It supervises its actors the Erlang way: it traps exits and links to each actor, so it learns of
every actor's end, and if the server itself dies every actor dies with it (and each shadow
re-places its satellite). One ticker process, linked to the server, advances every actor once per
``tick_s`` in a single pass: no timer or wake-up per actor (an actor's own task stays parked, see
``satellite.actor``), and no message per actor either: each chunk of the pass goes to each BEAM
node whose shadows it serves as one ``sat_ticks`` message (to ``stellar_ticks`` there), so the
per-actor cost of a tick is one model step and one packed row on the wire. The
positions and sunlight of all actors with a TLE come from one vectorised SGP4 call per pass
(``satellite.orbit``); the others use the ``sunlight`` placeholder cycle and have no position.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any, Final

from py_nodes import proto_v1
from py_nodes.erldist import Atom, BackpressureError, Caller, GenServer, Node, Pid, Process
from py_nodes.erldist.process import python_exception_reason
from py_nodes.satellite.actor import Actor, start_actor
from py_nodes.satellite.orbit import OrbitTracker
from py_nodes.satellite.sunlight import SunlightFn, in_sunlight
from py_nodes.settings import Settings

__all__ = ["DEFAULT_TICK_S", "SatsServer", "serve_sats", "start"]

log = logging.getLogger("stellarops.sats")

DEFAULT_TICK_S: Final = 1.0
# Young collections between two full ones of the cyclic GC (CPython's default is 10). Every tick
# makes a new state per actor that lives a second, so it reaches the oldest generation and
# makes full collections frequent: each walks every object of 100,000 actors (measured at 50,000:
# start_actor 55 -> 20 us, a tick pass 3.3 -> 2.0 us per actor). Garbage cycles (actors that
# ended) are still collected, later.
GC_FULL_EVERY: Final = 1000
# Actors advanced between two yields to the event loop: keeps commands and distribution ticks
# flowing during a long pass, and lets the write buffers drain.
CHUNK_ACTORS: Final = 500
# A pass never simulates more than this many tick periods (after a stall, time is not replayed).
MAX_DT_TICKS: Final = 5.0

EXIT = Atom("EXIT")
UNKNOWN_CALL = Atom("unknown_call")


class SatsServer(GenServer):
    """The ``sats`` server: places actors, counts them, owns the ticker."""

    node: Node  # set by serve_sats: actors are spawned and connections drained on it

    def __init__(self, *, tick_s: float = DEFAULT_TICK_S, sunlight: SunlightFn = in_sunlight) -> None:
        if not tick_s > 0:
            raise ValueError(f"tick_s must be > 0 seconds, got {tick_s!r}")
        self.tick_s = tick_s
        self.sunlight = sunlight
        self.actors: dict[bytes, Actor] = {}
        self._sat_by_pid: dict[Pid, bytes] = {}
        self.orbit = OrbitTracker()
        self.ticker: Process | None = None

    async def init(self) -> None:
        self.process.trap_exit = True
        self.ticker = self.process.node.spawn(_ticker, self, link=self.process.pid, name="sats_ticker")

    # -- calls -----------------------------------------------------------------------------

    def handle_call(self, request: Any, caller: Caller) -> Any:
        if type(request) is Atom and request == proto_v1.LOAD:
            return proto_v1.load_ok(len(self.actors))
        if proto_v1.is_start_actor(request):
            return self._start_actor(request)
        log.warning("sats: unknown call %.200r from %s", request, caller[0])
        return (proto_v1.ERROR, UNKNOWN_CALL)

    def _start_actor(self, request: Any) -> Any:
        try:
            state, shadow = proto_v1.parse_start_actor(request)
        except proto_v1.ProtocolError as exc:
            log.warning("sats: refused start_actor: %s", exc)
            return proto_v1.bad_state(exc.field)
        running = self.actors.get(state.id)
        if running is not None and running.alive:
            return proto_v1.already_running(running.proc.pid)
        actor = start_actor(self.node, state, shadow, link=self.process.pid, on_tle=self.orbit.track)
        self.actors[state.id] = actor
        self._sat_by_pid[actor.proc.pid] = state.id
        self.orbit.track(state.id, state.tle)
        return proto_v1.start_actor_ok(actor.proc.pid)

    # -- exits of linked processes (we trap them) ------------------------------------------

    def handle_info(self, message: Any) -> Any:
        if type(message) is tuple and len(message) == 3 and message[0] == EXIT:
            _, pid, reason = message
            sat_id = self._sat_by_pid.pop(pid, None)
            if sat_id is not None:
                actor = self.actors.get(sat_id)
                if actor is not None and actor.proc.pid == pid:  # not already replaced
                    del self.actors[sat_id]
                    self.orbit.forget(sat_id)
            elif self.ticker is not None and pid == self.ticker.pid:
                log.error("sats: ticker exited (%r); stopping the role and its actors", reason)
                self.process.node.terminate(self.process, reason)
            else:
                log.warning("sats: ignored exit signal from %s (%.200r)", pid, reason)
            return None
        log.debug("sats: unexpected message %.200r", message)
        return None

    # -- the tick --------------------------------------------------------------------------

    async def tick_all(self, dt_s: float, now_s: float) -> None:
        """Advance every live actor by ``dt_s`` and report it, in chunks (see CHUNK_ACTORS)."""
        now_ms = int(now_s * 1000)
        sunlight = self.sunlight
        fixes = self.orbit.fixes(now_s) if len(self.orbit) else {}
        actors = list(self.actors.values())  # actors may come and go at each yield
        for start in range(0, len(actors), CHUNK_ACTORS):
            batches: dict[Atom, proto_v1.TickRows] = {}  # BEAM node -> this chunk's ticks of its shadows
            for actor in actors[start : start + CHUNK_ACTORS]:
                if not actor.proc.alive:
                    continue
                beam = actor.shadow.node
                rows = batches.get(beam)
                if rows is None:
                    rows = batches[beam] = proto_v1.TickRows()
                try:
                    fix = fixes.get(actor.state.id)
                    if fix is None:
                        actor.advance(rows, dt_s, sunlight(actor.state.id, now_s), now_ms)
                    else:
                        position = (fix.lat_deg, fix.lon_deg, fix.alt_km)
                        actor.advance(rows, dt_s, fix.in_sunlight, now_ms, position)
                except Exception as exc:
                    # One broken actor must not stop the others: it crashes alone, and its
                    # shadow (linked) re-places it (its row is added only once all went well).
                    log.error("%s: tick failed: %r", actor, exc, exc_info=True, extra=actor.log_extra)
                    actor.proc.node.terminate(actor.proc, python_exception_reason(exc))
                    continue
            self._send_ticks(batches)
            await self._breathe()

    def _send_ticks(self, batches: dict[Atom, proto_v1.TickRows]) -> None:
        for beam, rows in batches.items():
            if not rows:
                continue
            try:
                self.node.send(self.process.pid, (proto_v1.TICKS_SINK, beam), proto_v1.sat_ticks(rows))
            except BackpressureError as exc:
                # The BEAM node is 64 MiB behind: this chunk's ticks are lost (the next pass
                # carries every state again); the shadows' links still report real failures.
                log.warning("sats: %d tick(s) for %s dropped: %s", len(rows), beam, exc)

    async def _breathe(self) -> None:
        await asyncio.sleep(0)  # let messages in, and let this chunk's frames be written
        node = self.node
        for name in node.connected_nodes():
            conn = node.connection(name)
            if conn is not None:
                await conn.drain()  # waits only while a peer is over its high-water mark


async def _ticker(proc: Process, server: SatsServer) -> None:
    """One pass over all actors every ``tick_s``; late passes are skipped, not bunched."""
    loop = asyncio.get_running_loop()
    tick_s = server.tick_s
    next_at = loop.time() + tick_s
    last_s = time.time()
    while True:
        await asyncio.sleep(next_at - loop.time())
        now_s = time.time()
        dt_s = min(max(now_s - last_s, 0.0), MAX_DT_TICKS * tick_s)
        last_s = now_s
        await server.tick_all(dt_s, now_s)
        next_at += tick_s
        if next_at < loop.time():
            next_at = loop.time() + tick_s


def serve_sats(node: Node, *, tick_s: float = DEFAULT_TICK_S, sunlight: SunlightFn = in_sunlight) -> SatsServer:
    """Start the ``sats`` server (and its ticker) on ``node``."""
    server = SatsServer(tick_s=tick_s, sunlight=sunlight)
    server.node = node
    node.start_server(server, name="sats")
    return server


def start(node: Node, settings: Settings) -> None:
    """The role's entry point for ``stellarops node --role sats`` (its own process: the GC
    setting below is process-wide)."""
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_EVERY)
    serve_sats(node, tick_s=settings.node.tick_s)
