"""The dashboard's routes: sign-in, the pages (server-rendered with Jinja2, autoescaped), logs and static files.

Each page is rendered from the same documents the API serves (engine/status.py's status document, the
store's events, history and rollout records) and reshaped by ui/views.py. Actions are not routes of their
own: the page's script calls the API's routes (/rollouts/SERVICE/VERB, …) with the session cookie and
the session's CSRF token in `X-CSRF-Token`, so api/auth.py checks scope and CSRF and writes the audit
log the same way for the dashboard as for the CLI. A request with `X-Fragment: 1` gets only the page's
`<main>`, which the script swaps in when ui/live.py says something changed.
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from shipyard.api.sessions import COOKIE, LIFETIME, Sessions, cookie_value
from shipyard.api.tokens import BOOTSTRAP, Identity, digest, permits, token_problem
from shipyard.cli.logs import tail_lines
from shipyard.engine.status import status_document
from shipyard.errors import ShipyardError
from shipyard.promotion.discovery import version_matrix
from shipyard.state.control import ensure_token
from shipyard.ui import views
from shipyard.ui.live import live_stream

if TYPE_CHECKING:
    from shipyard.daemon import ControlPlane

STATIC = Path(__file__).parent / "static"
# Only the dashboard's own scripts and styles run; no other site may frame it (clickjacking).
HEADERS = {"content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
           "x-frame-options": "DENY", "referrer-policy": "same-origin", "cache-control": "no-store"}
TEMPLATES = Environment(loader=PackageLoader("shipyard.ui", "templates"), autoescape=select_autoescape(["html"]))
TEMPLATES.filters["when"] = lambda t: datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S") if t else "-"
TEMPLATES.filters["pct"] = lambda v: "-" if v is None else f"{v:.1f}%"  # v is a percentage already
TEMPLATES.filters["num"] = lambda v: "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))


def render(request: Request, name: str, sessions: Sessions, **data: Any) -> HTMLResponse:
    identity: Identity | None = request.scope.get("shipyard.identity")
    session = sessions.get(cookie_value(request.scope.get("headers", [])))
    context = {"who": identity, "csrf": session.csrf if session else "", "path": request.url.path,
               "can_deploy": identity is not None and permits(identity.scope, "deploy"), **data}
    template = TEMPLATES.get_template(name)
    if request.headers.get("x-fragment") == "1":
        return HTMLResponse("".join(template.blocks["main"](template.new_context(context))), headers=HEADERS)
    return HTMLResponse(template.render(context), headers=HEADERS)


def ui_routes(plane: "ControlPlane", sessions: Sessions) -> list[Route]:
    def status() -> dict[str, Any]:
        return status_document(plane.reconciler, plane.api, plane.source_status())

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", sessions, error="")

    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0].strip()
        identity, token_digest = None, ""
        if given and hmac.compare_digest(given.encode(), ensure_token(plane.state_dir).encode()):
            identity = Identity(BOOTSTRAP, "admin")
        elif given:
            record = plane.store.token(digest=digest(given))
            if record is not None and token_problem(record, time.time()) is None:
                identity, token_digest = Identity(record["name"], record["scope"]), record["digest"]
        if identity is None:
            response = render(request, "login.html", sessions, error="That token is unknown, revoked or expired.")
            response.status_code = 401
            return response
        sid, _ = sessions.open(identity.name, identity.scope, token_digest)
        plane.store.add_audit(identity.name, "ui sign-in", "", "ok", 303, time.time())
        response = RedirectResponse("/ui", status_code=303)
        response.set_cookie(COOKIE, sid, max_age=int(LIFETIME), path="/", httponly=True, samesite="strict")
        return response

    async def logout(request: Request) -> Response:
        sessions.close(cookie_value(request.scope.get("headers", [])))
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def overview(request: Request) -> Response:
        started = time.perf_counter()
        document = await asyncio.to_thread(status)
        query = request.query_params.get("q", "")
        page = views.overview(document, query, _int(request.query_params.get("page"), 1))
        return render(request, "overview.html", sessions, status=document, page=page, query=query,
                      conditions=views.conditions(document), took_ms=(time.perf_counter() - started) * 1000)

    async def matrix(request: Request) -> Response:
        document = await asyncio.to_thread(status)
        versions = None
        if plane.promotion.directory is not None:  # every environment of the promotion path (`shipyard versions`)
            try:
                versions = await asyncio.to_thread(version_matrix, plane.promotion.directory,
                                                   {plane.environment: document})
            except ShipyardError:
                versions = None
        return render(request, "matrix.html", sessions, status=document, versions=versions)

    async def rollout(request: Request) -> Response:
        name = request.path_params["service"]
        document = await asyncio.to_thread(status)
        service = next((s for s in document["services"] if s["name"] == name), None)
        if service is None:
            return render(request, "missing.html", sessions, what=f"service {name}")
        desired = plane.reconciler.desired.services.get(name) if plane.reconciler.desired else None
        steps = desired.progressive.steps if desired and desired.progressive else ()
        record = service["rollout"] or {}
        decisions = list(record.get("decisions") or [])
        return render(request, "rollout.html", sessions, service=service, rollout=record,
                      timeline=views.timeline(steps, record), decisions=decisions[::-1],
                      series=views.chart_series(decisions), past=plane.store.rollout_history(name)[:10])

    async def history(request: Request) -> Response:
        entries = plane.store.history(limit=50)
        return render(request, "history.html", sessions, entries=entries, changes=views.history_changes(entries),
                      following=plane.follower is not None)

    async def instances(request: Request) -> Response:
        name = request.path_params["service"]
        document = await asyncio.to_thread(status)
        service = next((s for s in document["services"] if s["name"] == name), None)
        if service is None:
            return render(request, "missing.html", sessions, what=f"service {name}")
        return render(request, "instances.html", sessions, service=service)

    async def logs(request: Request) -> Response:
        instance = request.path_params["instance"]
        if instance not in plane.reconciler.instances and not any(i.id == instance for i in plane.store.instances()):
            return JSONResponse({"error": "NotFound", "message": f"no instance {instance}"}, status_code=404)
        run_dir = plane.state_dir / "instances" / instance
        tail = min(_int(request.query_params.get("tail"), 200), 5000)
        lines = [f"{stream}: {line}" for stream in ("stdout", "stderr")
                 for line in tail_lines(run_dir / f"{stream}.log", tail)]
        return JSONResponse({"instance": instance,
                             "lines": views.search_lines(lines, request.query_params.get("q", ""))})

    async def events(request: Request) -> Response:
        params = request.query_params
        chosen = {"service": params.get("service", ""), "reason": params.get("reason", ""),
                  "type": params.get("type", "")}
        every = plane.store.events(limit=1000)
        shown = views.filter_events(every, chosen["service"], chosen["reason"], chosen["type"])[:300]
        return render(request, "events.html", sessions, events=shown, chosen=chosen,
                      reasons=sorted({e["reason"] for e in every}), types=sorted({e["type"] for e in every}))

    async def audit(request: Request) -> Response:
        return render(request, "audit.html", sessions, entries=plane.store.audit(limit=200)[::-1])

    async def live(request: Request) -> Response:
        return live_stream(plane, request)

    async def static(request: Request) -> Response:
        path = (STATIC / request.path_params["path"]).resolve()
        if not path.is_file() or STATIC.resolve() not in path.parents:
            return JSONResponse({"error": "NotFound", "message": "no such file"}, status_code=404)
        return FileResponse(path)

    return [
        Route("/ui/login", login_form, methods=["GET"]), Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui", overview), Route("/ui/matrix", matrix), Route("/ui/rollouts/{service}", rollout),
        Route("/ui/history", history), Route("/ui/instances/{service}", instances),
        Route("/ui/logs/{instance}", logs), Route("/ui/events", events), Route("/ui/audit", audit),
        Route("/ui/live", live), Route("/ui/static/{path:path}", static),
    ]


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default
