"""Shared helpers for the web service tests: a trial, users, a live server, HTML forms.

Imported by ``tests/test_web_http.py``, ``test_web_schema.py``, ``test_web_browser.py``,
``test_registry_postgres.py`` and ``benchmarks/bench_web.py``. Nothing here is a test.
Servers run for real on loopback: either uvicorn in a thread of the test process
(:class:`LiveServer`, serving ``create_app``) or the ``rjtrial serve`` command in a
subprocess (:func:`serve_process`); clients talk HTTP to them with httpx.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_PATH = ROOT / "synthetic" / "protocols" / "jrc-london-burglary.toml"
ELIGIBLE = {"admitted": "yes", "offender_consent": "yes", "victim_consent": "yes", "domestic_abuse": "no"}
INELIGIBLE = {"admitted": "yes", "offender_consent": "no", "victim_consent": "yes", "domestic_abuse": "yes"}
STRATA = tuple(
    {"site": s, "offence": o} for s in ("london", "northumbria", "thames_valley") for o in ("property", "violence")
)
PASSWORD = "a long test passphrase 42"
_KEYS: dict[str, Path] = {}  # db -> the key file make_trial wrote (account changes are signed with it)


# ----------------------------------------------------------------- the trial
def make_trial(
    folder: Path, *, db: str | None = None, seed: int = 20261122, capacity: int | None = 100
) -> tuple[str, Path]:
    """Seal the JRC London burglary protocol into ``db`` (default ``folder/trial.db``).

    ``capacity`` sealed slots per stratum (default 100, fewer than the protocol's 500,
    so that sealing is quick; None keeps the protocol's). Returns ``(db, key_path)``.
    """
    from rjtrial import Protocol
    from rjtrial.registry import Registry

    protocol = Protocol.from_toml(PROTOCOL_PATH)
    if capacity is not None:
        data = protocol.to_dict()
        data["randomisation"]["capacity"] = capacity
        protocol = Protocol.from_dict(data)
    db = db if db is not None else str(folder / "trial.db")
    key = folder / "trial.key"
    Registry.create(db, protocol, key_path=key, seed=seed, by="tester").close()
    _KEYS[str(db)] = key
    return db, key


def _key_of(db: str, key: Path | str | None) -> str:
    key = key if key is not None else _KEYS.get(str(db))
    if key is None:
        raise RuntimeError(f"no key known for {db}: make it with make_trial or pass key=")
    return str(key)


def run_cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """Run ``rjtrial ARGV`` in this process; return (exit code, stdout, stderr)."""
    from rjtrial.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:  # argparse --help and the like
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()


def add_user(
    db: str,
    name: str,
    role: str,
    *,
    sites: tuple[str, ...] = (),
    password: str = PASSWORD,
    key: Path | str | None = None,
) -> None:
    """``rjtrial users add NAME --db DB --key KEY --role ROLE [--site S ...] --password-stdin``."""
    argv = ["users", "add", name, "--db", str(db), "--key", _key_of(db, key), "--role", role, "--password-stdin"]
    for site in sites:
        argv += ["--site", site]
    code, out, err = run_cli(*argv, stdin=password + "\n")
    if code != 0:
        raise RuntimeError(f"rjtrial users add {name} failed ({code}): {err or out}")


def user_token(db: str, name: str, *, key: Path | str | None = None) -> str:
    """``rjtrial users token NAME --db DB --key KEY``: the bearer token it prints once."""
    code, out, err = run_cli("users", "token", name, "--db", str(db), "--key", _key_of(db, key))
    if code != 0:
        raise RuntimeError(f"rjtrial users token {name} failed ({code}): {err or out}")
    words = [w for w in re.split(r"\s+", out) if len(w) >= 20]
    if not words:
        raise RuntimeError(f"no token in the output of rjtrial users token: {out!r}")
    return max(words, key=len)


def standard_users(db: str) -> dict[str, str]:
    """A coordinator per site (two of them), a manager and an auditor; returns name -> role."""
    users = {
        "carol": ("coordinator", ("london",)),
        "nina": ("coordinator", ("northumbria",)),
        "mary": ("manager", ()),
        "alan": ("auditor", ()),
    }
    for name, (role, sites) in users.items():
        add_user(db, name, role, sites=sites)
    return {name: role for name, (role, _) in users.items()}


# --------------------------------------------------------------- the server
def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with contextlib.closing(free_socket()) as sock:
        return sock.getsockname()[1]


class LiveServer:
    """``create_app(db, key)`` served by uvicorn in a thread on a free loopback port.

    Use as a context manager; ``url`` is the base URL, ``app`` the ASGI application.
    """

    def __init__(self, db: str, key: Path | str | None, *, config: dict | None = None, app=None):
        import uvicorn

        if app is None:
            from rjtrial.web.app import create_app

            app = create_app(db, key, config=config)
        self.app = app
        self._socket = free_socket()
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the web server thread stopped during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start within 30 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)


def rjtrial_script() -> str:
    script = Path(sys.executable).with_name("rjtrial")
    if not script.exists():
        raise RuntimeError("the rjtrial console script is not installed (pip install -e .)")
    return str(script)


@contextlib.contextmanager
def serve_process(
    db: str, key: Path | str, *, log: Path | None = None, timeout: float = 60, config: Path | None = None
) -> Iterator[str]:
    """``rjtrial serve --db DB --key KEY --host 127.0.0.1 --port P [--config FILE]`` in a
    subprocess; yields the URL. The server is stopped with SIGTERM (a graceful shutdown)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    handle = open(log, "wb") if log is not None else subprocess.DEVNULL
    argv = [rjtrial_script(), "serve", "--db", str(db), "--key", str(key), "--host", "127.0.0.1", "--port", str(port)]
    if config is not None:
        argv += ["--config", str(config)]
    proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                detail = Path(log).read_text(errors="replace")[-2000:] if log is not None else ""
                raise RuntimeError(f"rjtrial serve exited with {proc.returncode}: {detail}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"rjtrial serve did not answer /api/health within {timeout} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not None:
            handle.close()


# ------------------------------------------------------------------ HTML forms
class Form:
    """One ``<form>``: its action, method and fields (name -> default value)."""

    def __init__(self, action: str, method: str):
        self.action = action
        self.method = method.upper()
        self.fields: dict[str, str] = {}
        self.hidden: dict[str, str] = {}
        self.options: dict[str, list[str]] = {}  # select name -> option values
        self.radios: dict[str, list[str]] = {}  # radio name -> values
        self.names: list[str] = []  # every named control, in order
        self.buttons: dict[str, list[str]] = {}  # submit button name -> values

    def csrf(self) -> tuple[str, str]:
        """The hidden CSRF field (name, value)."""
        for name, value in self.hidden.items():
            if "csrf" in name.lower():
                return name, value
        raise AssertionError(f"the form to {self.action!r} has no CSRF field: {sorted(self.hidden)}")

    def __repr__(self) -> str:
        return f"Form({self.method} {self.action!r}, {self.names})"


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get"))
            self.forms.append(self._form)
            return
        form = self._form
        if form is None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if name not in form.names:
                form.names.append(name)
            if kind == "hidden":
                form.hidden[name] = a.get("value", "")
                form.fields[name] = a.get("value", "")
            elif kind == "radio":
                form.radios.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
            elif kind == "checkbox":
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "reset"):
                form.fields.setdefault(name, a.get("value", ""))
        elif tag == "button" and name and a.get("type", "submit").lower() == "submit":
            form.buttons.setdefault(name, []).append(a.get("value", ""))
        elif tag in ("select", "textarea") and name:
            if name not in form.names:
                form.names.append(name)
            form.fields.setdefault(name, "")
            if tag == "select":
                self._select = name
                form.options[name] = []
        elif tag == "option" and self._select:
            value = a.get("value", "")
            form.options[self._select].append(value)
            if "selected" in a or not form.fields.get(self._select):
                form.fields[self._select] = value

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def form_with(html: str, *names: str) -> Form:
    """The first form having a control whose name contains each of ``names``."""
    for form in forms(html):
        if all(any(n in field.lower() for field in form.names) for n in names):
            return form
    raise AssertionError(f"no form with fields {names} in the page: {[repr(f) for f in forms(html)]}")


def find_field(form: Form, *needles: str) -> str:
    """The name of the form's control whose name contains all ``needles`` (case-insensitive)."""
    hits = [n for n in form.names if all(x in n.lower() for x in needles)]
    if not hits:
        raise AssertionError(f"no field with {needles} in {form!r}")
    return min(hits, key=len)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the /login form (GET it, POST it back with its CSRF token)."""
    page = client.get("/login")
    page.raise_for_status()
    form = form_with(page.text, "pass")
    data = dict(form.fields)
    data[find_field(form, "user") if any("user" in n.lower() for n in form.names) else find_field(form, "name")] = name
    data[find_field(form, "pass")] = password
    return client.post(form.action or "/login", data=data)


def logged_in_client(url: str, name: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=True)
    response = login(client, name, password)
    if response.status_code >= 400 or "logout" not in response.text.lower():
        raise AssertionError(f"login as {name} failed: {response.status_code} {response.text[:500]}")
    return client


def fill_enrol_form(form: Form, referral_id: str, strata: dict[str, str], answers: dict[str, str]) -> dict[str, str]:
    """The /enrol form's data for one referral (fields matched by the stratum/question id)."""
    data = dict(form.fields)
    data[find_field(form, "referral")] = referral_id
    for key, value in {**strata, **answers}.items():
        data[find_field(form, key)] = value
    return data


def confirmation(html: str) -> dict[str, str]:
    """The data the confirmation page posts when its *Randomise* button is pressed."""
    form = form_with(html, "form_token")
    assert "yes" in form.buttons.get("confirmed", []), f"no confirm button in {form!r}: {form.buttons}"
    return {**form.fields, "confirmed": "yes"}


def api_enrol_body(referral_id: str, strata: dict[str, str], answers: dict[str, str] = ELIGIBLE) -> dict:
    return {"referral_id": referral_id, "strata": dict(strata), "answers": dict(answers)}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- PostgreSQL
from registry_fixtures import fresh_postgres_database  # noqa: E402,F401 - shared with the registry tests


# ------------------------------------------------------------- store reads
def _engine(db: str):
    from sqlalchemy import create_engine

    from rjtrial.registry.store import database_url

    return create_engine(database_url(db))


def referral_rows(db: str) -> dict[str, dict]:
    """Every row of ``rj_referrals`` by referral id, read with SQLAlchemy (not through rjtrial)."""
    from sqlalchemy import text

    engine = _engine(db)
    try:
        with engine.connect() as conn:
            rows = (
                conn.execute(
                    text(
                        "SELECT referral_id, status, arm, sequence_number, receipt, reasons, strata, answers FROM rj_referrals"
                    )
                )
                .mappings()
                .all()
            )
    finally:
        engine.dispose()
    return {r["referral_id"]: dict(r) for r in rows}


def site_number(db: str, referral_id: str) -> int:
    """A randomised referral's number among the randomisations at its site (what coordinators see)."""
    import json

    rows = sorted(
        (r for r in referral_rows(db).values() if r["sequence_number"] is not None), key=lambda r: r["sequence_number"]
    )
    site = json.loads(referral_rows(db)[referral_id]["strata"])["site"]
    return [r["referral_id"] for r in rows if json.loads(r["strata"])["site"] == site].index(referral_id) + 1


def head_sequence_number(db: str) -> int:
    """The number of sequence numbers consumed so far (``rj_head.sequence_number``)."""
    from sqlalchemy import text

    engine = _engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT sequence_number FROM rj_head WHERE id = 1")).scalar_one())
    finally:
        engine.dispose()


# -------------------------------------------------- concurrent HTTP clients
def concurrent_api_enrolments(
    url: str, token: str, *, clients: int = 16, per_client: int = 8, ineligible_every: int = 0
) -> list[tuple[int, dict]]:
    """``clients`` threads, each its own HTTP connection, POST referrals at once.

    Client ``w`` enrols ``C{w}-{i}`` for i < per_client (ineligible when
    ``(w + i) % ineligible_every == 0``, if > 0), strata cycling through :data:`STRATA`;
    all clients also POST ``SHARED-1`` halfway. Returns [(HTTP status, JSON body)].
    """
    barrier = threading.Barrier(clients)
    out: list = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            with httpx.Client(base_url=url, headers=bearer(token), timeout=120) as client:
                client.get("/api/health").raise_for_status()
                barrier.wait(timeout=60)
                for i in range(per_client):
                    if i == per_client // 2:
                        r = client.post("/api/enrolments", json=api_enrol_body("SHARED-1", STRATA[0]))
                        with lock:
                            out.append((r.status_code, r.json()))
                    eligible = not (ineligible_every and (worker + i) % ineligible_every == 0)
                    body = api_enrol_body(
                        f"C{worker}-{i}", STRATA[(worker + i) % len(STRATA)], ELIGIBLE if eligible else INELIGIBLE
                    )
                    r = client.post("/api/enrolments", json=body)
                    with lock:
                        out.append((r.status_code, r.json()))
        except Exception as exc:
            errors.append(f"client {worker}: {exc!r}")
            barrier.abort()

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise AssertionError("; ".join(errors[:3]))
    return out


def check_concurrent_outcome(
    db: str, key, outcome: list[tuple[int, dict]], *, clients: int, per_client: int, ineligible_every: int = 0
) -> None:
    """Assert what :func:`concurrent_api_enrolments` must leave: 1..N, no duplicate, verify ok."""
    from collections import Counter

    from rjtrial.registry import Registry

    assert len(outcome) == clients * (per_client + 1)
    assert all(code < 500 for code, _ in outcome), [o for o in outcome if o[0] >= 500][:3]
    shared = [(code, body) for code, body in outcome if body.get("referral_id") == "SHARED-1"]
    # SHARED-1 is randomised once; the others get that result back (200, replayed) or a refusal (422)
    assert sum(1 for code, _ in shared if code == 201) == 1, shared
    first = next(body for code, body in shared if code == 201)
    for code, body in shared:
        if code == 200:
            assert (body["sequence_number"], body["arm"]) == (first["sequence_number"], first["arm"])
        else:
            assert code in (201, 422), (code, body)
    own = [body for code, body in outcome if body.get("referral_id") != "SHARED-1"]
    expected_ineligible = sum(
        1 for w in range(clients) for i in range(per_client) if ineligible_every and (w + i) % ineligible_every == 0
    )
    assert Counter(b["status"] for b in own) == {
        "randomised": clients * per_client - expected_ineligible,
        **({"ineligible": expected_ineligible} if expected_ineligible else {}),
    }
    told = {b["referral_id"]: (b["arm"], b["sequence_number"]) for b in own if b["status"] == "randomised"}
    told["SHARED-1"] = (first["arm"], first["sequence_number"])
    numbers = sorted(n for _, n in told.values())
    assert numbers == list(range(1, len(told) + 1))  # no duplicate, no gap
    stored = {
        rid: (r["arm"], r["sequence_number"]) for rid, r in referral_rows(db).items() if r["status"] == "randomised"
    }
    assert stored == told
    assert head_sequence_number(db) == len(told)
    with Registry.open(db, key_path=key) as reg:
        result = reg.verify()
    assert result.ok, result.problems
