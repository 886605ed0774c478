"""Alarms: list (by state, severity, satellite), one alarm's history, and an operator's
acknowledge, shelve, unshelve and clear. Each change made now is published as an ``alarm``
event on BEAM's bus, like the store node's raises and returns (py_nodes/roles/alarming.py)."""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

from py_nodes.db.alarms import MAX_SHELVE_S, AlarmConflict, AlarmRecord, Alarms, AlarmTransition
from py_nodes.roles.alarming import event_data
from py_nodes.vocabulary import ALARM_STATES, ALARM_TRANSITIONS, STORED_ALARM_SEVERITIES

from ..cluster import ClusterError
from ..errors import Conflict
from ..keys import CLUSTER, DATABASE
from ..models import NAME, SAT_ID, TIME, error_replies, iso, items_of
from ..respond import json_response
from ..spec import RouteSpec, params

__all__ = ["ALARM", "ROUTES"]

log = logging.getLogger("stellarops.web")

_NULLABLE_TIME: Final = {**TIME, "type": ["string", "null"]}
ALARM: Final = {
    "type": "object",
    "required": ["id", "satellite_id", "kind", "severity", "message", "raised_at", "state", "active"],
    "properties": {
        "id": {"type": "integer"},
        "satellite_id": {"type": "string"},
        "kind": {"type": "string", "description": "low_energy, memory_full, PARAMETER_low|high (limits), task_failed..."},
        "severity": {"type": "string", "enum": list(STORED_ALARM_SEVERITIES)},
        "message": {"type": "string"},
        "raised_at": TIME,
        "state": {"type": "string", "enum": list(ALARM_STATES)},
        "active": {"type": "boolean", "description": "the condition still holds (the value is out of limits)"},
        "latched": {"type": "boolean", "description": "when the value returns, it waits for an acknowledgement"},
        "value": {"type": ["number", "null"], "description": "the value at the last raise, escalation or return"},
        "acknowledged_at": _NULLABLE_TIME,
        "acknowledged_by": {"type": ["string", "null"]},
        "comment": {"type": ["string", "null"], "description": "the operator's last comment"},
        "shelved_until": _NULLABLE_TIME,
        "shelved_by": {"type": ["string", "null"]},
        "cleared_at": _NULLABLE_TIME,
        "cleared_by": {"type": ["string", "null"], "description": "who cleared it (audit actor, or system)"},
    },
}
TRANSITION: Final = {
    "type": "object",
    "required": ["id", "at", "transition", "state", "severity", "active", "actor", "comment"],
    "properties": {
        "id": {"type": "integer"},
        "at": TIME,
        "transition": {"type": "string", "enum": list(ALARM_TRANSITIONS)},
        "state": {"type": "string", "enum": list(ALARM_STATES)},
        "severity": {"type": "string", "enum": list(STORED_ALARM_SEVERITIES)},
        "active": {"type": "boolean"},
        "actor": {"type": "string", "description": "an operator (audit actor) or system"},
        "comment": {"type": "string"},
        "value": {"type": ["number", "null"]},
    },
}
ALARM_PATH: Final = {"alarm_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "description": "alarm id"}}
_COMMENT: Final = {**NAME, "minLength": 0, "maxLength": 1000, "description": "why (kept with the alarm and its history)"}
ACK_BODY: Final = {"type": "object", "additionalProperties": False, "properties": {"comment": _COMMENT}}
SHELVE_BODY: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["duration_s"],
    "properties": {
        "duration_s": {"type": "number", "minimum": 1, "maximum": MAX_SHELVE_S, "description": "how long, in seconds"},
        "comment": _COMMENT,
    },
}
LIST_QUERY: Final = {
    "sat": SAT_ID,
    "state": {"type": "array", "items": {"type": "string", "enum": list(ALARM_STATES)}, "maxItems": 4,
              "description": "comma-separated; default: every state but cleared"},
    "severity": {"type": "array", "items": {"type": "string", "enum": list(STORED_ALARM_SEVERITIES)}, "maxItems": 3},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "at most this many (default 500)"},
}  # fmt: skip


def alarm_json(a: AlarmRecord) -> dict[str, Any]:
    return {
        "id": a.id, "satellite_id": a.satellite_id, "kind": a.kind, "severity": a.severity, "message": a.message,
        "raised_at": iso(a.raised_at), "state": a.state, "active": a.active, "latched": a.latched, "value": a.value,
        "acknowledged_at": iso(a.acknowledged_at), "acknowledged_by": a.acknowledged_by, "comment": a.comment,
        "shelved_until": iso(a.shelved_until), "shelved_by": a.shelved_by,
        "cleared_at": iso(a.cleared_at), "cleared_by": a.cleared_by,
    }  # fmt: skip


def _transition_json(t: AlarmTransition) -> dict[str, Any]:
    return {
        "id": t.id, "at": iso(t.at), "transition": t.transition, "state": t.state, "severity": t.severity,
        "active": t.active, "actor": t.actor, "comment": t.comment, "value": t.value,
    }  # fmt: skip


async def list_alarms(request: web.Request) -> web.StreamResponse:
    query = params(request).query
    found = await Alarms(request.app[DATABASE]).find(
        satellite_id=query.get("sat"), states=query.get("state", ()), severities=query.get("severity", ()),
        limit=query.get("limit", 500),
    )  # fmt: skip
    return json_response({"items": [alarm_json(a) for a in found]})


async def alarm_history(request: web.Request) -> web.StreamResponse:
    alarm_id = params(request).path["alarm_id"]
    alarms = Alarms(request.app[DATABASE])
    history = await alarms.history(alarm_id)
    return json_response({"alarm": alarm_json(await alarms.get(alarm_id)), "items": [_transition_json(t) for t in history]})


async def _publish(request: web.Request, alarm: AlarmRecord, transitions: tuple[AlarmTransition, ...]) -> None:
    for transition in transitions:
        try:
            await request.app[CLUSTER].publish("alarm", alarm.satellite_id, event_data(alarm, transition))
        except ClusterError as exc:  # stored: it stands; clients see it on refetch
            log.warning("alarm %d %s but its event was not published: %s", alarm.id, transition.transition, exc)


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    p = params(request)
    assert p.principal is not None
    alarms, alarm_id, body = Alarms(request.app[DATABASE]), p.path["alarm_id"], p.body or {}
    comment = body.get("comment", "")
    try:
        if action == "acknowledge":
            alarm, made = await alarms.acknowledge(alarm_id, actor=p.principal.actor, comment=comment)
        elif action == "shelve":
            alarm, made = await alarms.shelve(alarm_id, actor=p.principal.actor, duration_s=body["duration_s"], comment=comment)
        else:
            alarm, made = await alarms.unshelve(alarm_id, actor=p.principal.actor, comment=comment)
    except AlarmConflict as exc:
        raise Conflict(exc.problem, details={"field": "state"}) from None
    await _publish(request, alarm, made)
    return json_response(alarm_json(alarm))


async def acknowledge(request: web.Request) -> web.StreamResponse:
    return await _act(request, "acknowledge")


async def shelve(request: web.Request) -> web.StreamResponse:
    return await _act(request, "shelve")


async def unshelve(request: web.Request) -> web.StreamResponse:
    return await _act(request, "unshelve")


async def clear_alarm(request: web.Request) -> web.StreamResponse:
    """Clear an alarm whatever its state; idempotent. A clear made now is published with the
    event data it always had (alarm_id, kind, severity, cleared, cleared_by, message)."""
    p = params(request)
    assert p.principal is not None
    alarm, now = await Alarms(request.app[DATABASE]).clear(p.path["alarm_id"], actor=p.principal.actor)
    if now:
        data = {
            "alarm_id": alarm.id, "kind": alarm.kind, "severity": alarm.severity, "cleared": True,
            "cleared_by": alarm.cleared_by, "message": alarm.message,
        }  # fmt: skip
        try:
            await request.app[CLUSTER].publish("alarm", alarm.satellite_id, data)
        except ClusterError as exc:  # the clear is in the database: it stands; clients see it on refetch
            log.warning("alarm %d cleared but its event was not published: %s", alarm.id, exc)
    return json_response(alarm_json(alarm))


_EVENTS: Final = (
    " Each change made now is sent to every event stream as an `alarm` event with data {alarm_id, alarm (the kind), "
    "kind, severity, message, transition, state, active, actor, comment, value?, cleared?, shelved_until_ms?}."
)
_ONE: Final = {200: ("the alarm after the action", ALARM), **error_replies(400, 401, 403, 404, 409, 413, 415, 422, 503)}

ROUTES: Final = [
    RouteSpec(
        "GET", "/api/alarms", list_alarms, "listAlarms", "Alarms, open ones first, most severe first", "alarms", "viewer",
        {200: ("alarms", items_of(ALARM)), **error_replies(401, 403, 422, 503)}, query=LIST_QUERY, database="here",
        description="By default every open alarm (not cleared). Lifecycle: unacknowledged -> acknowledged (by whom, "
        "with a comment) -> cleared when the value returns; shelved for a while (it returns unacknowledged at expiry "
        "if still active); a latched alarm whose value returned waits for its acknowledgement; a higher severity asks "
        "for a new acknowledgement. Alarms change as `alarm` events on GET /api/events (data.transition says which)."
        " Clients refetch this list on them.",
    ),
    RouteSpec(
        "GET", "/api/alarms/{alarm_id}/history", alarm_history, "alarmHistory", "Every transition of an alarm", "alarms",
        "viewer", {200: ("the alarm and its transitions, oldest first", items_of(TRANSITION, alarm=ALARM)),
                   **error_replies(401, 403, 404, 422, 503)},
        path_params=ALARM_PATH, database="here",
    ),
    RouteSpec(
        "POST", "/api/alarms/{alarm_id}/acknowledge", acknowledge, "acknowledgeAlarm", "Acknowledge an alarm", "alarms",
        "operator", _ONE, path_params=ALARM_PATH, body=ACK_BODY, database="here",
        description="Idempotent (acknowledging an acknowledged or cleared alarm changes nothing). An alarm whose value "
        "already returned is cleared by it. A shelved alarm: 409 (unshelve it first). Audited." + _EVENTS,
    ),
    RouteSpec(
        "POST", "/api/alarms/{alarm_id}/shelve", shelve, "shelveAlarm", "Shelve an alarm for a while", "alarms",
        "operator", _ONE, path_params=ALARM_PATH, body=SHELVE_BODY, database="here",
        description="Hidden from attention until `duration_s` has passed (shelving again sets a new expiry); then it "
        "is unacknowledged again if its value is still out of limits, cleared if it came back meanwhile. 409 for a "
        "cleared alarm, or one whose value returned (acknowledge it instead). Audited." + _EVENTS,
    ),
    RouteSpec(
        "POST", "/api/alarms/{alarm_id}/unshelve", unshelve, "unshelveAlarm", "Take an alarm off the shelf", "alarms",
        "operator", _ONE, path_params=ALARM_PATH, body=ACK_BODY, database="here",
        description="Idempotent (an alarm not shelved is answered unchanged). Audited." + _EVENTS,
    ),
    RouteSpec(
        "POST", "/api/alarms/{alarm_id}/clear", clear_alarm, "clearAlarm", "Clear an alarm whatever its state", "alarms",
        "operator", {200: ("the alarm, cleared (now or before)", ALARM), **error_replies(401, 403, 404, 422, 503)},
        path_params=ALARM_PATH, database="here",
        description="Idempotent: clearing a cleared alarm answers it unchanged (its cleared_at and cleared_by tell "
        "when and by whom). A clear made now is audited and sent to every event stream as an `alarm` event with "
        "data {alarm_id, kind, severity, cleared: true, cleared_by, message}; clients refetch GET /api/alarms.",
    ),
]  # fmt: skip
