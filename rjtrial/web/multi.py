"""Several trials on one service: each its own registry, key, accounts and sessions.

``rjtrial serve --config SERVER.toml`` (no ``--db``) serves every trial the file lists::

    [trials.london]                 # the trial's name in URLs: letters, digits, _ . -
    db = "london.db"                # SQLite file (relative to this file) or database URL
    key = "keys/london.key"         # its key file

    [trials.thames]
    db = "postgresql+psycopg://rj@db.example.org/thames"
    key = "/etc/rjtrial/thames.key"

    [web]                           # settings shared by every trial (see rjtrial.web.app)
    session_secret = "..."          # each trial's sessions are signed with its own secret
                                    # derived from this one
    [smtp]                          # optional, shared

A trial's pages are under ``/t/NAME/`` and its API under ``/api/t/NAME/`` (also
``/t/NAME/api/``); ``/`` lists the trials (the trial switcher), nothing more. Each trial
is the single-trial service of :func:`rjtrial.web.create_app` mounted there, so:

* accounts, API tokens and the security log are the trial's own (in its registry):
  a coordinator of one trial has no account in another, and their session cookie
  (named after the trial, sent only under its path, signed with the trial's secret)
  and tokens are worthless there;
* nothing is shared between trials but the process and the shared settings.

The single-trial command line (``rjtrial serve --db DB --key KEY``) is unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from rjtrial.errors import RjtrialError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TRIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def read_server_config(config: str | Path | Mapping[str, Any]) -> tuple[dict[str, dict[str, str]], dict, Path]:
    """(trials: name -> {db, key}, the shared [web]/[smtp] tables, the folder paths are relative to)."""
    source, folder = "configuration", Path.cwd()
    if isinstance(config, (str, Path)):
        source, folder = str(config), Path(config).resolve().parent
        try:
            config = tomllib.loads(Path(config).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RjtrialError(f"configuration file {source} not found") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RjtrialError(f"cannot read configuration file {source}: {exc}") from None
    if not isinstance(config, Mapping):
        raise RjtrialError(f"{source}: the configuration must be a table")
    trials = config.get("trials")
    if not isinstance(trials, Mapping) or not trials:
        raise RjtrialError(f"{source}: no [trials.NAME] table (each with db = ... and key = ...)")
    out = {}
    for name, table in trials.items():
        where = f"{source}: [trials.{name}]"
        if not TRIAL_NAME.fullmatch(name):
            raise RjtrialError(f"{where}: a trial's name must be 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(table, Mapping):
            raise RjtrialError(f"{where}: must be a table with db and key")
        unknown = set(table) - {"db", "key"}
        if unknown:
            raise RjtrialError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: db, key)")
        for key in ("db", "key"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise RjtrialError(f"{where}: {key} is missing (a {'database' if key == 'db' else 'key file'})")
        db = table["db"] if "://" in table["db"] else str(folder / table["db"])
        out[name] = {"db": db, "key": str(folder / table["key"])}
    shared = {k: v for k, v in config.items() if k != "trials"}
    return out, shared, folder


def _trial_settings(shared: Mapping[str, Any], name: str) -> dict:
    """The shared settings with the trial's own session secret (derived from the shared one)."""
    web = dict(shared.get("web") or {})
    secret = web.get("session_secret")
    if isinstance(secret, str) and len(secret) >= 16:
        web["session_secret"] = hmac.new(
            secret.encode(), f"rjtrial-trial-session|{name}".encode(), hashlib.sha256
        ).hexdigest()
    return {**shared, "web": web}


class _ApiAlias:
    """``/api/t/NAME/...`` is ``/t/NAME/api/...`` (raw ASGI: the path is rewritten before routing)."""

    def __init__(self, app, names):
        self.app = app
        self.names = set(names)
        self.state = app.state  # the root application's state, reachable as on any app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            parts = path.split("/", 4)  # "", "api", "t", NAME, rest
            if len(parts) >= 4 and parts[1] == "api" and parts[2] == "t" and parts[3] in self.names:
                rest = parts[4] if len(parts) > 4 else ""
                new = f"/t/{parts[3]}/api/{rest}"
                scope = {**scope, "path": new, "raw_path": new.encode()}
        await self.app(scope, receive, send)


def create_server_app(config: str | Path | Mapping[str, Any]):
    """The service of several trials (see the module docstring) as an ASGI application.

    ``app.state.trials`` maps each trial's name to its single-trial application.
    """
    import html

    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.routing import Mount

    from rjtrial.web import security
    from rjtrial.web.app import create_app

    trials, shared, _ = read_server_config(config)
    apps = {
        name: create_app(t["db"], t["key"], config=_trial_settings(shared, name), mount=f"/t/{name}")
        for name, t in trials.items()
    }
    root = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        routes=[Mount(f"/t/{name}", app=app) for name, app in apps.items()],
    )
    root.state.trials = apps

    @root.get("/", include_in_schema=False)
    def trial_list():
        items = "".join(
            f'<li><a href="/t/{html.escape(name)}/" id="trial-{html.escape(name)}">'
            f'{html.escape(app.state.service.protocol.name)}</a> <span class="id">({html.escape(name)})</span></li>'
            for name, app in apps.items()
        )
        return HTMLResponse(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Trials · rjtrial</title>'
            f'<link rel="stylesheet" href="/t/{html.escape(next(iter(apps)))}/static/style.css"></head><body>'
            '<header><p class="trial">rjtrial randomisation service</p></header><main><h1>Trials</h1>'
            f'<p>Log in to a trial with your account for that trial.</p><ul id="trials">{items}</ul></main></body></html>'
        )

    @root.get("/api/health", include_in_schema=False)
    def health():
        return JSONResponse({"status": "ok"})

    root.add_middleware(security.SecurityHeadersMiddleware)
    return _wrap(root, apps)


def _wrap(root, apps):
    """The root application behind the ``/api/t/NAME`` alias, keeping ``state`` reachable."""
    return _ApiAlias(root, apps)
