"""The FastAPI application of the randomisation service: configuration, state, errors.

:func:`create_app` opens the registry with its key (the key stays in this process:
it is never stored, served or logged), creates the account tables if missing, and
mounts the pages (:mod:`rjtrial.web.pages`) and the API (:mod:`rjtrial.web.api`).

Configuration (a TOML file, a dict, or nothing)::

    [web]
    session_secret = "..."      # default: a new random secret at each start (set it when
                                # several server processes share the sessions)
    secure_cookies = false      # true behind HTTPS
    session_max_age = 28800     # idle timeout, seconds: a session unused this long ends
    session_lifetime = 43200    # absolute lifetime, seconds: a session ends this long after
                                # its log-in, however active (never renewed past it)
    site_stratum = "site"       # the protocol stratum whose levels are sites
    login_failures = 5          # failed log-ins (per name and address) before a lock
    login_window = 900          # ... counted within this many seconds
    login_lockout = 900         # seconds a lock lasts
    trusted_proxies = []        # addresses of reverse proxies whose X-Forwarded-For is
                                # believed (rjtrial serve); otherwise the peer's address
                                # is the one throttled and logged. Behind a proxy, set it:
                                # else every request has the proxy's address, and 50 failed
                                # log-ins by anyone lock the log-in page for everyone
                                # (rjtrial serve warns when it listens beyond loopback
                                # without it)
    security_log_rows = 10000   # at most this many rows of failed/refused log-in counts

    [smtp]                      # optional: e-mail reports of assignments
    host = "localhost"
    port = 25
    from = "randomiser@example.org"
    to = ["research-team@example.org"]
    starttls = false            # optional
    username = "..."            # optional, with password
    password = "..."
    notify_each = false         # also e-mail each assignment as it is made
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rjtrial.errors import RjtrialError
from rjtrial.web.accounts import SITE_STRATUM, Accounts, ThrottlePolicy, User
from rjtrial.web.mail import SmtpSettings
from rjtrial.web.securitylog import SecurityLog

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("rjtrial.web")
HERE = Path(__file__).parent

_WEB_KEYS = {
    "session_secret",
    "secure_cookies",
    "session_max_age",
    "session_lifetime",
    "site_stratum",
    "login_failures",
    "login_window",
    "login_lockout",
    "trusted_proxies",
    "security_log_rows",
}


@dataclass(frozen=True)
class WebConfig:
    """The service's settings (see the module docstring)."""

    session_secret: str | None = None
    secure_cookies: bool = False
    session_max_age: int = 8 * 3600
    session_lifetime: int = 12 * 3600
    site_stratum: str = SITE_STRATUM
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    smtp: SmtpSettings | None = None
    trusted_proxies: tuple[str, ...] = ()
    security_log_rows: int = 10_000

    @classmethod
    def load(cls, config: "WebConfig | Mapping[str, Any] | str | Path | None") -> "WebConfig":
        """From a TOML file path, a dict of its tables, or None (defaults)."""
        if config is None:
            return cls()
        if isinstance(config, WebConfig):
            return config
        source = "configuration"
        tables: Mapping[str, Any]
        if isinstance(config, (str, Path)):
            source = str(config)
            try:
                tables = tomllib.loads(Path(config).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise RjtrialError(f"configuration file {source} not found") from None
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise RjtrialError(f"cannot read configuration file {source}: {exc}") from None
        else:
            tables = config
        unknown = set(tables) - {"web", "smtp"}
        if unknown:
            raise RjtrialError(f"{source}: unknown table(s) {', '.join(sorted(unknown))} (known: web, smtp)")
        web = dict(tables.get("web") or {})
        bad = set(web) - _WEB_KEYS
        if bad:
            raise RjtrialError(
                f"{source}: [web] unknown key(s) {', '.join(sorted(bad))} (known: {', '.join(sorted(_WEB_KEYS))})"
            )

        def number(name, default, kind=int, minimum=1):
            value = web.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise RjtrialError(f"{source}: [web] {name} must be a number >= {minimum}; got {value!r}")
            return kind(value)

        secret = web.get("session_secret")
        if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
            raise RjtrialError(f"{source}: [web] session_secret must be text of at least 16 characters")
        secure = web.get("secure_cookies", False)
        if not isinstance(secure, bool):
            raise RjtrialError(f"{source}: [web] secure_cookies must be true or false")
        stratum = web.get("site_stratum", SITE_STRATUM)
        if not isinstance(stratum, str):
            raise RjtrialError(f"{source}: [web] site_stratum must be text")
        policy = ThrottlePolicy(
            failures=number("login_failures", 5),
            window=number("login_window", 900.0, float, 0),
            lockout=number("login_lockout", 900.0, float, 0),
        )
        proxies = web.get("trusted_proxies", [])
        if not isinstance(proxies, list) or not all(isinstance(p, str) and p for p in proxies):
            raise RjtrialError(f"{source}: [web] trusted_proxies must be a list of addresses")
        smtp = SmtpSettings.from_table(tables["smtp"], source=source) if tables.get("smtp") else None
        return cls(
            session_secret=secret,
            secure_cookies=secure,
            session_max_age=number("session_max_age", 8 * 3600),
            session_lifetime=number("session_lifetime", 12 * 3600),
            site_stratum=stratum,
            throttle=policy,
            smtp=smtp,
            trusted_proxies=tuple(proxies),
            security_log_rows=number("security_log_rows", 10_000, int, 100),
        )


def when(value) -> str:
    """A timestamp as people read it: ``2026-11-22 06:37 UTC`` (ISO text or datetime; else as is)."""
    import datetime as dt

    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):  # Unix time
        value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return "" if value is None else str(value)


class Service:
    """What the routes share: the registry (with the key), accounts, settings, templates."""

    def __init__(self, registry, config: WebConfig):
        import jinja2
        from fastapi.templating import Jinja2Templates

        self.registry = registry
        self.config = config
        self.accounts = Accounts(registry, site_stratum=config.site_stratum, policy=config.throttle)
        self.security_log = SecurityLog(
            self.accounts.tables, self.accounts.store.derived_secret("security-log"), max_rows=config.security_log_rows
        )
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
        )
        environment.filters["when"] = when
        self.templates = Jinja2Templates(env=environment)

    @property
    def protocol(self):
        return self.registry.protocol

    def site_of(self, strata: Mapping[str, Any]) -> str | None:
        value = strata.get(self.config.site_stratum) if isinstance(strata, Mapping) else None
        return value if isinstance(value, str) else None

    def allowed_sites(self, user: User) -> tuple[str, ...] | None:
        """The site levels the user may enrol at and see; None: every site (or no sites)."""
        if user.role == "manager" or self.config.site_stratum not in self.protocol.strata:
            return None
        return user.sites

    def may_see(self, user: User, strata: Mapping[str, Any]) -> bool:
        if user.role not in ("coordinator", "manager"):
            return False
        sites = self.allowed_sites(user)
        return sites is None or self.site_of(strata) in sites


class LoginRequired(Exception):
    """Raised by page dependencies: redirect to the log-in page."""


def create_app(db, key_path, *, config=None, mount: str = ""):
    """The randomisation service as an ASGI application.

    Parameters
    ----------
    db : str or path
        The registry: a SQLite file or a database URL (``postgresql+psycopg://...``).
    key_path : str or path
        The trial's key file; read once, kept in memory only.
    config : path, dict or WebConfig, optional
        Settings (see the module docstring); default: loopback-friendly defaults,
        a new session secret at each start, no e-mail.
    mount : str, optional
        Where a server of several trials mounts this one (``/t/NAME``, see
        :mod:`rjtrial.web.multi`): its session cookie is then its own (named after it,
        sent only under that path) and its links and redirects stay under it.

    Returns
    -------
    fastapi.FastAPI

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rjtrial import Protocol, Registry
    >>> from rjtrial.web import create_app
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = Registry.create(tmp / "t.db", Protocol.from_toml("synthetic/protocols/jrc-london-burglary.toml"),
    ...                     key_path=tmp / "t.key")
    >>> app = create_app(tmp / "t.db", tmp / "t.key")
    >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/api/enrolments"))
    ['/api/enrolments']
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.sessions import SessionMiddleware

    from rjtrial.registry import Registry
    from rjtrial.web import api, pages, receipts, security

    if key_path is None:
        raise RjtrialError("the service needs the trial's key file (--key KEYFILE or RJTRIAL_KEY=KEYFILE)")
    settings = WebConfig.load(config)
    registry = Registry.open(db, key_path=key_path)
    service = Service(registry, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        service.security_log.flush()  # the counts of the last second, before the server stops

    app = FastAPI(
        lifespan=lifespan,
        title="rjtrial randomisation service",
        description="Concealed randomisation of referrals to a restorative justice trial. "
        "Authenticate with `Authorization: Bearer TOKEN` (tokens from `rjtrial users token`).",
        version=_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.service = service
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret or security.new_secret(),
        session_cookie=security.SESSION_COOKIE + mount.replace("/t/", "_").replace("/", "_"),
        path=mount + "/" if mount else "/",
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(security.SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(receipts.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_copy():
        return JSONResponse(app.openapi())

    def wants_json(request: Request) -> bool:
        return request.url.path[len(pages.base(request)) :].startswith("/api")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired):
        return pages.redirect(request, "/login")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        if wants_json(request):
            if not _has_valid_token(request):  # 401 comes before any complaint about the body
                return JSONResponse(
                    {"detail": "a valid API token is required (Authorization: Bearer TOKEN)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            problems = [
                {
                    "loc": [str(p) for p in e.get("loc", ())],
                    "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", "")),
                }
                for e in exc.errors()
            ]
            return JSONResponse({"detail": problems}, status_code=422)
        return pages.error_page(request, 400, "the request was not understood")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        if wants_json(request):
            return JSONResponse({"detail": "internal error"}, status_code=500)
        return pages.error_page(request, 500, "internal error; the request was not completed")

    return app


def _has_valid_token(request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return request.app.state.service.accounts.user_for_token(token.strip()) is not None


def _version() -> str:
    from rjtrial._version import __version__

    return __version__
