"""A satellite actor: an erldist process that owns one satellite's state.

The actor handles ``command`` and ``stop`` messages in mailbox order. Like erldist's
synchronous GenServers it sets ``Process.direct``, so a message is handled the moment it is
delivered; its task only sits parked in ``receive`` (erldist runs ``direct`` only for a parked
process), costing memory but no CPU. Ticks do not go through the mailbox: the node's single
ticker (``roles.sats``) calls ``advance`` on every actor in one pass, and sends the telemetry it
returns to the shadows' BEAM node in batches (``proto_v1.sat_ticks``); events still go to the
shadow one by one, ahead of the batch holding their tick.

Lifetime: the shadow links to the actor, and the actor does not trap exits, so the shadow's
exit signal ends it (and killing the actor sends the shadow an EXIT). The actor also monitors
the shadow, which covers what the link cannot: a shadow that exits ``normal``, or one that dies
between ``start_actor`` and its ``link``. Without that an orphan would keep ticking and block
its satellite's re-placement with ``already_running``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from py_nodes import proto_v1
from py_nodes.erldist import Atom, BackpressureError, Node, Pid, Process, Reference

from .model import Alarm, Event, SatState, apply_command, tick

__all__ = ["Actor", "now_ms", "start_actor"]

log = logging.getLogger("stellarops.satellite")

DOWN = Atom("DOWN")
TleHook = Callable[[bytes, "tuple[bytes, bytes] | None"], Any]
NORMAL = Atom("normal")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Actor:
    """One satellite's state and the process that stands for it. Made by ``start_actor``."""

    __slots__ = ("log_extra", "on_tle", "proc", "shadow", "shadow_ref", "state")

    proc: Process
    shadow_ref: Reference

    def __init__(self, state: SatState, shadow: Pid, on_tle: TleHook | None = None) -> None:
        self.state = state
        self.shadow = shadow
        self.on_tle = on_tle  # told of new elements (set_tle), so the next tick flies them
        # Structured log metadata; ids off the wire are [A-Za-z0-9_.-], "replace" is for the rest.
        self.log_extra = {"sat_id": state.id.decode("ascii", "replace")}

    def __repr__(self) -> str:
        return f"<Actor {self.log_extra['sat_id']} {self.proc.pid}>"

    @property
    def sat_id(self) -> bytes:
        return self.state.id

    @property
    def alive(self) -> bool:
        return self.proc.alive

    # -- the mailbox -----------------------------------------------------------------------

    async def run(self, proc: Process) -> None:
        """The process body: messages queued before it starts, then parks (see module doc)."""
        proc.direct = self.handle
        while proc.alive:
            self.handle(await proc.receive())

    def handle(self, message: Any) -> None:
        """One message from the mailbox: a command, ``stop``, or the shadow's DOWN."""
        if type(message) is tuple and message and message[0] == proto_v1.COMMAND:
            self._command(message)
        elif proto_v1.is_stop(message):
            log.debug("%s: stopped", self.log_extra["sat_id"], extra=self.log_extra)
            self.proc.node.terminate(self.proc, NORMAL)
        elif type(message) is tuple and len(message) == 5 and message[0] == DOWN and message[1] == self.shadow_ref:
            reason = message[4]
            log.debug("%s: shadow %s exited (%r); exiting", self.log_extra["sat_id"], self.shadow, reason, extra=self.log_extra)
            self.proc.node.terminate(self.proc, reason)
        else:
            log.warning("%s: dropped unexpected message %.200r", self.log_extra["sat_id"], message, extra=self.log_extra)

    def _command(self, message: Any) -> None:
        try:
            cmd = proto_v1.parse_command(message)
        except proto_v1.ProtocolError as exc:
            # Nothing trustworthy to answer to: drop it, say exactly why.
            log.warning("%s: dropped a bad command (%s): %.200r", self.log_extra["sat_id"], exc, message, extra=self.log_extra)
            return
        old_tle = self.state.tle
        state, outcome, events = apply_command(self.state, cmd.command_id, cmd.kind, cmd.args, now_ms())
        self.state = state
        if state.tle != old_tle and self.on_tle is not None:
            self.on_tle(state.id, state.tle)
        log.debug(
            "%s: command %r %s -> %s", self.log_extra["sat_id"], cmd.command_id, cmd.kind, outcome, extra=self.log_extra
        )
        if events:
            self._publish(events)
        self._send(cmd.reply_to, proto_v1.command_result(state.id, cmd.command_id, outcome, state))

    # -- the tick (called by the node's ticker, never concurrently with handle) -------------

    def advance(
        self, rows: proto_v1.TickRows, dt_s: float, in_sunlight: bool, now_ms: int,
        position: tuple[float, float, float] | None = None,
    ) -> None:
        """Advance the state by ``dt_s``, send any events to the shadow, and add this tick to
        ``rows`` (for ``proto_v1.sat_ticks``; ``position`` is lat_deg, lon_deg, alt_km if known)."""
        state, events = tick(self.state, dt_s, in_sunlight, now_ms)
        self.state = state
        if events:
            self._publish(events)
        rows.add(state, self.shadow, in_sunlight=in_sunlight, position=position)

    def _publish(self, events: tuple[Event, ...]) -> None:
        sat_id = self.state.id
        for event in events:
            level = logging.WARNING if isinstance(event, Alarm) else logging.INFO
            log.log(level, "%s: %s", self.log_extra["sat_id"], event, extra=self.log_extra)
            self._send(self.shadow, proto_v1.sat_event(sat_id, event))

    def _send(self, dest: Pid, message: Any) -> None:
        try:
            self.proc.node.send(self.proc.pid, dest, message)
        except BackpressureError as exc:
            # The peer is 64 MiB behind: dropping is better than crashing the actor; the next
            # tick carries the full state again, and a lost command reply is retried by BEAM.
            log.warning("%s: message to %s dropped: %s", self.log_extra["sat_id"], dest, exc, extra=self.log_extra)


def start_actor(node: Node, state: SatState, shadow: Pid, *, link: Pid, on_tle: TleHook | None = None) -> Actor:
    """Start an actor for ``state`` reporting to ``shadow``, linked to ``link`` (its supervisor);
    ``on_tle(sat_id, tle)`` is called when a command changes its TLE."""
    actor = Actor(state, shadow, on_tle)
    actor.proc = node.spawn(actor.run, link=link)
    actor.shadow_ref = actor.proc.monitor(shadow)
    log.debug("%s: actor %s started (shadow %s)", actor.log_extra["sat_id"], actor.proc.pid, shadow, extra=actor.log_extra)
    return actor
