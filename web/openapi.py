"""The OpenAPI 3.1 document of the routes (built from their specs) and a docs page.

``GET /api/openapi.json`` serves the document; ``GET /api/docs`` an HTML page listing every
operation with its role, parameters and responses, rendered on the server (no scripts, nothing
fetched from elsewhere).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Final

from aiohttp import web

from .models import ERROR
from .respond import dumps
from .spec import SPECS, RouteSpec

__all__ = ["ROUTES", "build_document", "install", "openapi_path"]

TITLE: Final = "StellarOps API"
VERSION: Final = "1.0.0"
_PATH_PARAM: Final = re.compile(r"\{([^}:]+)(:[^}]*)?\}")
_DOCUMENT: Final = web.AppKey("openapi_document", str)


def openapi_path(path: str) -> str:
    """aiohttp's ``/a/{x}`` (or ``{x:regex}``) as OpenAPI's ``/a/{x}``."""
    return _PATH_PARAM.sub(lambda m: "{" + m[1] + "}", path)


def _operation(spec: RouteSpec) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    for name, schema in spec.path_params.items():
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    query = dict(spec.query)
    if spec.query_token:
        query["access_token"] = {"type": "string", "maxLength": 256, "description": "the token, for EventSource clients"}
    for name, schema in query.items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in spec.required_query, "schema": schema}
        if schema.get("type") == "array":
            param.update(style="form", explode=False)
        parameters.append(param)
    for name, schema in spec.headers.items():
        parameters.append({"name": name, "in": "header", "required": False, "schema": schema})
    responses: dict[str, Any] = {}
    for status, (description, body) in sorted(spec.responses.items()):
        response: dict[str, Any] = {"description": description}
        if body is not None:
            media = spec.media_type if 200 <= status < 300 else "application/json"
            response["content"] = {media: {"schema": body}}
            if 200 <= status < 300:
                response["content"].update({alt: {"schema": schema} for alt, schema in spec.alt_media.items()})
        responses[str(status)] = response
    operation: dict[str, Any] = {
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if spec.description:
        operation["description"] = spec.description
    if spec.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": spec.body}}}
    if spec.role is None:
        operation["security"] = []
    else:
        operation["x-required-role"] = spec.role
        operation["description"] = (operation.get("description", "") + f"\n\nNeeds a token with the {spec.role} role (or higher).").strip()
    return operation


def build_document(specs: list[RouteSpec]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        paths.setdefault(openapi_path(spec.path), {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "The StellarOps gateway: satellites, commands, telemetry, passes and events. Errors are "
            '{"error": {"code", "message", "details"}}. Roles: viewer (read) < operator (commands, modes) < admin '
            "(create and delete satellites and stations).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
        },
        "paths": paths,
    }


def _specs(app: web.Application) -> list[RouteSpec]:
    return list(app[SPECS].values())


def install(app: web.Application) -> None:
    """Build the document of every route added so far (call after adding them all)."""
    app[_DOCUMENT] = dumps(build_document(_specs(app)))


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.Response(text=request.app[_DOCUMENT], content_type="application/json")


def _schema_text(schema: Any) -> str:
    return html.escape(json.dumps(schema, indent=1)[:2000])


async def docs(request: web.Request) -> web.StreamResponse:
    document = build_document(_specs(request.app))
    parts = [
        "<!doctype html><html><head><meta charset=utf-8><title>StellarOps API</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "h2{border-bottom:1px solid #ccc;margin-top:2rem}code,pre{background:#f4f4f4;padding:.1rem .3rem}"
        "pre{padding:.5rem;overflow:auto;font-size:.8rem}.m{font-weight:bold;display:inline-block;width:4.5rem}"
        "details{margin:.3rem 0 1rem 1rem}</style></head><body>",
        f"<h1>{TITLE} {VERSION}</h1><p>{html.escape(document['info']['description'])}</p>",
        '<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1). '
        "Send <code>Authorization: Bearer &lt;token&gt;</code>.</p>",
    ]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            role = op.get("x-required-role", "public")
            parts.append(
                f"<h2><span class=m>{method.upper()}</span> <code>{html.escape(path)}</code></h2>"
                f"<p>{html.escape(op['summary'])} <em>({html.escape(role)})</em></p>"
            )
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            for param in op["parameters"]:
                parts.append(
                    f"<div><code>{html.escape(param['name'])}</code> ({param['in']}"
                    f"{', required' if param.get('required') else ''}): {html.escape(param['schema'].get('description', ''))}"
                    f"<details><summary>schema</summary><pre>{_schema_text(param['schema'])}</pre></details></div>"
                )
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                parts.append(f"<details><summary>request body</summary><pre>{_schema_text(body)}</pre></details>")
            statuses = ", ".join(f"{code} {html.escape(r['description'])}" for code, r in op["responses"].items())
            parts.append(f"<p><small>{statuses}</small></p>")
    parts.append("</body></html>")
    return web.Response(text="".join(parts), content_type="text/html")


ROUTES: Final = [
    RouteSpec(
        "GET", "/api/openapi.json", openapi_json, "openapi", "This document", "docs", None,
        {200: ("the OpenAPI 3.1 document", {"type": "object"})},
    ),
    RouteSpec(
        "GET", "/api/docs", docs, "docs", "The API documentation as HTML", "docs", None,
        {200: ("an HTML page", {"type": "string"})}, media_type="text/html",
    ),
]  # fmt: skip
