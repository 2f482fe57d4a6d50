"""The OpenAPI 3 document of the control API (served at ``/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from draas import __version__

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "bad input (the message names the field, the value and what is allowed)",
        401: "no token or a wrong token",
        403: "not allowed from this network, or commands disabled (no token configured)",
        409: "refused in the current state; nothing was changed",
        503: "coordination store unreachable",
    }
    return {str(c): _json({"$ref": "#/components/schemas/Error"}, text[c]) for c in codes}


def _command(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "202": _json(
                {"$ref": "#/components/schemas/Started"},
                "accepted: the runbook runs; follow its run in /v1/events",
            ),
            **_errors(400, 401, 403, 409, 503),
        },
    }
    op["requestBody"] = {
        "required": False,
        "content": {
            "application/json": {
                "schema": body
                or {"type": "object", "additionalProperties": False, "properties": {}}
            }
        },
    }
    return op


def document() -> dict[str, Any]:
    event_params = [
        {
            "name": n,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": d,
        }
        for n, d in (
            ("run", "run id prefix, e.g. failover-"),
            ("node", "agent that recorded it"),
            ("step", "runbook step"),
            ("outcome", "started, done, failed, ..."),
            ("runbook", "failover, switchover, failback, command, drill, monitor, ..."),
            ("after", "page after this event id (the previous page's next)"),
        )
    ]
    event_params += [
        {
            "name": "since",
            "in": "query",
            "required": False,
            "schema": {"type": "number"},
            "description": "only events at or after this Unix time",
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
        {
            "name": "last",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            "description": "only the newest N matching events (no next page)",
        },
    ]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "draas agent control API",
            "version": __version__,
            "description": "Status, events and metrics of a draas deployment as this "
            "agent sees it, and the operator's commands.",
        },
        "paths": {
            "/v1/health": {
                "get": {
                    "summary": "the agent answers",
                    "responses": {"200": _json({"type": "object"}, "alive"), **_errors(403)},
                }
            },
            "/v1/status": {
                "get": {
                    "summary": "sites, vantage points, lease, traffic",
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Status"}, "status"),
                        **_errors(403),
                    },
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "the event log, oldest first, paged",
                    "parameters": event_params,
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Events"}, "a page"),
                        **_errors(400, 403, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text format",
                    "responses": {
                        "200": {
                            "description": "metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(403),
                    },
                }
            },
            "/v1/keys": {
                "get": {
                    "summary": "this site's key directories and their checksums (token needed)",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _json({"type": "object"}, "directories and checksums"),
                        **_errors(401, 403),
                    },
                }
            },
            "/v1/keys/{index}": {
                "get": {
                    "summary": "one key directory's files (token needed; agents only)",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "index",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                        }
                    ],
                    "responses": {
                        "200": _json({"type": "object"}, "the directory's manifest"),
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/v1/switchover": {
                "post": _command(
                    "planned switchover to a site (zero loss)",
                    {
                        "type": "object",
                        "required": ["to"],
                        "additionalProperties": False,
                        "properties": {"to": {"type": "string"}},
                    },
                )
            },
            "/v1/failover": {
                "post": _command(
                    "fail over to the DR site (force: without the quorum's confirmation)",
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"force": {"type": "boolean", "default": False}},
                    },
                )
            },
            "/v1/failback": {"post": _command("rejoin the primary site and move back", None)},
            "/v1/pause": {
                "post": {
                    **_command(
                        "pause automatic action (maintenance) until resumed or for for_s seconds",
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["reason"],
                            "properties": {
                                "reason": {"type": "string", "minLength": 1, "maxLength": 200},
                                "for_s": {"type": "number", "minimum": 10, "maximum": 604800},
                            },
                        },
                    ),
                    "responses": {
                        "200": _json({"type": "object"}, "paused: the event id and the pause"),
                        **_errors(400, 401, 403, 503),
                    },
                }
            },
            "/v1/resume": {
                "post": {
                    **_command("resume automatic action", None),
                    "responses": {
                        "200": _json({"type": "object"}, "resumed: whether a pause was in force"),
                        **_errors(400, 401, 403, 503),
                    },
                }
            },
            "/v1/drill": {
                "post": {
                    **_command("prove a failover would work now (moves no traffic)", None),
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Drill"}, "the report"),
                        **_errors(400, 401, 403, 503),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Started": {
                    "type": "object",
                    "required": ["event", "run", "kind", "target"],
                    "properties": {
                        "event": {"type": "string"},
                        "run": {"type": "string"},
                        "kind": {"type": "string"},
                        "target": {"type": "string"},
                    },
                },
                "Events": {
                    "type": "object",
                    "required": ["events", "next"],
                    "properties": {
                        "events": {"type": "array", "items": {"type": "object"}},
                        "next": {"type": "string", "nullable": True},
                    },
                },
                "Status": {
                    "type": "object",
                    "required": [
                        "node",
                        "scheme",
                        "active",
                        "sites",
                        "frontends",
                        "vantage_points",
                        "summary",
                    ],
                    "properties": {
                        "node": {"type": "string"},
                        "scheme": {"type": "string"},
                        "active": {"type": "object", "nullable": True},
                        "sites": {"type": "array", "items": {"type": "object"}},
                        "frontends": {"type": "array", "items": {"type": "object"}},
                        "vantage_points": {"type": "array", "items": {"type": "object"}},
                        "summary": {"type": "string"},
                        "home": {"type": "string", "description": "the site failback returns to"},
                        "controller": {
                            "type": "string",
                            "nullable": True,
                            "description": "the agent that holds the controller lease",
                        },
                        "automatic": {
                            "type": "object",
                            "nullable": True,
                            "properties": {
                                "action": {"type": "string"},
                                "reason": {"type": "string"},
                            },
                        },
                    },
                },
                "Drill": {
                    "type": "object",
                    "required": ["passed", "checks"],
                    "properties": {
                        "passed": {"type": "boolean"},
                        "checks": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "verdict": {"type": "string"},
                                    "detail": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    }
