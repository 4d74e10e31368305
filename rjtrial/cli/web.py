"""``rjtrial serve`` and ``rjtrial users``: run the randomisation service, manage its accounts.

``rjtrial serve --db DB --key KEYFILE [--host 127.0.0.1] [--port 8000] [--config FILE]``
prints where it listens (``--port 0`` picks a free port) and never prints the key.
``rjtrial serve --config SERVER.toml`` (no ``--db``) serves every trial the file lists
under ``[trials.NAME]`` (``db``, ``key``), each at ``/t/NAME/`` (see :mod:`rjtrial.web.multi`).

``rjtrial users add|token|revoke|disable|enable|password|email NAME --db DB --key KEYFILE``
change accounts: each change is a signed entry of the audit log, written with the
account rows in one transaction, and ``verify`` checks the account tables against
those entries, so they need the trial's key (``--key`` or ``RJTRIAL_KEY``) — run them
on the server that holds it. ``rjtrial users list|tokens`` only read, without the key.
A new password (``users password``) ends the user's sessions and revokes their API
tokens unless ``--keep-tokens`` is given.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import sys

from rjtrial.errors import RjtrialError


def add_commands(subparsers) -> None:
    """Add ``serve`` and ``users`` to the ``rjtrial`` argparse ``subparsers``."""
    help_text = "run the randomisation service (browser pages and a JSON API)"
    p = subparsers.add_parser("serve", help=help_text, description=help_text)
    p.add_argument("--db", help="SQLite file or database URL of the registry (without it: the trials of --config)")
    p.add_argument("--key", help="the trial's key file (or RJTRIAL_KEY); kept in this process only")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument(
        "--config",
        help="TOML settings: [web] sessions and throttling, [smtp] e-mail reports; "
        "[trials.NAME] db and key for several trials (then no --db)",
    )
    p.set_defaults(func=cmd_serve)

    help_text = "accounts of the randomisation service"
    users = subparsers.add_parser("users", help=help_text, description=help_text)
    commands = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    def common(parser):
        parser.add_argument("--db", required=True, help="SQLite file or database URL of the registry")
        parser.add_argument(
            "--key",
            help="the trial's key file (or RJTRIAL_KEY): account changes are signed "
            "audit entries and need it; listing does not",
        )
        parser.add_argument("--config", help="service settings (for [web] site_stratum)")
        parser.add_argument("--by", default="cli", help="who makes the change (audit log; default cli)")

    add = commands.add_parser("add", help="add a user")
    add.add_argument("name")
    common(add)
    add.add_argument("--role", required=True, choices=("coordinator", "manager", "auditor"))
    add.add_argument("--site", action="append", default=[], help="a site a coordinator works at (repeat)")
    password = add.add_mutually_exclusive_group()
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password.add_argument("--no-password", action="store_true", help="no log-in by password (API tokens only)")
    add.add_argument("--email", default="", help="address the user's receipts may be e-mailed to (optional)")
    add.set_defaults(func=cmd_users_add)

    token = commands.add_parser("token", help="issue an API token (printed once)")
    token.add_argument("name")
    common(token)
    token.set_defaults(func=cmd_users_token)

    listing = commands.add_parser("list", help="list users")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=cmd_users_list)

    disable = commands.add_parser("disable", help="disable a user (ends sessions, revokes tokens)")
    disable.add_argument("name")
    common(disable)
    disable.set_defaults(func=cmd_users_disable)

    enable = commands.add_parser("enable", help="re-enable a disabled user (old tokens stay revoked)")
    enable.add_argument("name")
    common(enable)
    enable.set_defaults(func=cmd_users_enable)

    listing_tokens = commands.add_parser("tokens", help="list a user's API tokens (ids, never the tokens)")
    listing_tokens.add_argument("name")
    common(listing_tokens)
    listing_tokens.add_argument("--json", action="store_true", help="print one JSON object")
    listing_tokens.set_defaults(func=cmd_users_tokens)

    revoke = commands.add_parser("revoke", help="revoke one API token by its id (see `users tokens`)")
    revoke.add_argument("name")
    common(revoke)
    revoke.add_argument("--token", required=True, metavar="ID", help="the token's id (hexadecimal)")
    revoke.set_defaults(func=cmd_users_revoke)

    help_text = "set a user's password: ends their sessions and revokes their API tokens (unless --keep-tokens)"
    passwd = commands.add_parser("password", help=help_text, description=help_text)
    passwd.add_argument("name")
    common(passwd)
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd.add_argument(
        "--keep-tokens",
        action="store_true",
        help="keep the user's API tokens working (default: a new password revokes them)",
    )
    passwd.set_defaults(func=cmd_users_password)

    email = commands.add_parser("email", help="set the address a user's receipts may be e-mailed to")
    email.add_argument("name")
    email.add_argument("address", help='an address like someone@example.org, or "" for none')
    common(email)
    email.set_defaults(func=cmd_users_email)


# -------------------------------------------------------------------- serve
def cmd_serve(args) -> int:
    """Run ``rjtrial serve``; returns the exit code."""
    import uvicorn

    from rjtrial.registry import key_path_from_env, redact_url
    from rjtrial.web import security
    from rjtrial.web.app import create_app

    if not 0 <= args.port < 65536:
        raise RjtrialError(f"--port {args.port}: must be 0-65535")
    if args.db is None:
        if args.config is None:
            raise RjtrialError("serve needs --db DB --key KEYFILE (one trial) or --config FILE listing [trials.NAME]")
        from rjtrial.web.multi import create_server_app

        app = create_server_app(args.config)
        services = [(f"/t/{name}/", a.state.service) for name, a in app.state.trials.items()]
    else:
        key = key_path_from_env(args.key)
        if key is None:
            raise RjtrialError("serve needs the trial's key file: --key KEYFILE or RJTRIAL_KEY=KEYFILE")
        app = create_app(args.db, key, config=args.config)
        services = [("/", app.state.service)]
    service = services[0][1]
    proxies = service.config.trusted_proxies
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) or None,
    )
    server = uvicorn.Server(config)
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise RjtrialError(f"cannot listen on {args.host}:{args.port} (in use or not allowed)") from None
    sock.listen(config.backlog)  # connections wait in the backlog from the moment we say we listen
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for where, each in services:
        print(
            f"rjtrial: serving trial {each.protocol.id!r} from {redact_url(str(each.registry.db))} at {where}",
            flush=True,
        )
        if not each.accounts.list():
            print(
                f"rjtrial: no users yet in {each.protocol.id!r}: add one with "
                "`rjtrial users add NAME --db DB --role manager`",
                flush=True,
            )
    api = "/api" if args.db is not None else "/api/t/NAME"
    print(f"rjtrial: listening on http://{shown}:{port}/ (API under {api}; Ctrl-C stops)", flush=True)
    for warning in security.startup_warnings(
        args.host, secure_cookies=service.config.secure_cookies, trusted_proxies=proxies
    ):
        print(f"rjtrial: warning: {warning}", file=sys.stderr, flush=True)
    try:
        server.run(sockets=[sock])
    finally:  # (on SIGTERM uvicorn re-raises the signal: the app's shutdown has flushed the security log)
        for _, each in services:
            each.security_log.flush()
            each.registry.close()
    return 0


# -------------------------------------------------------------------- users
@contextlib.contextmanager
def _accounts(args, *, change: bool = True):
    """The accounts of ``--db``, its registry closed afterwards; a change needs the key."""
    from rjtrial.registry import Registry, key_path_from_env
    from rjtrial.web.accounts import Accounts
    from rjtrial.web.app import WebConfig

    config = WebConfig.load(args.config)
    key = key_path_from_env(args.key)
    if change and key is None:
        raise RjtrialError(
            f"users {args.users_command} changes an account, which is a signed audit entry: "
            "it needs the trial's key file (--key KEYFILE or RJTRIAL_KEY)"
        )
    registry = Registry.open(args.db, key_path=key)
    try:
        yield Accounts(registry, site_stratum=config.site_stratum, policy=config.throttle)
    finally:
        registry.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        raise RjtrialError("give the password with --password-stdin (or --no-password for an API-only user)")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise RjtrialError("the two passwords differ")
    return first


def cmd_users_add(args) -> int:
    """Run ``rjtrial users add``; returns the exit code."""
    with _accounts(args) as accounts:
        password = None if args.no_password else _read_password(args.password_stdin)
        user = accounts.add(args.name, role=args.role, sites=args.site, password=password, email=args.email, by=args.by)
    sites = f" at {', '.join(user.sites)}" if user.sites else ""
    print(f"added {user.role} {user.name}{sites}{' (no password: API tokens only)' if password is None else ''}")
    return 0


def cmd_users_token(args) -> int:
    """Run ``rjtrial users token``; returns the exit code."""
    with _accounts(args) as accounts:
        token = accounts.issue_token(args.name, by=args.by)
    print(token)
    print(f"rjtrial: API token for {args.name}: shown only this once; only its hash is kept", file=sys.stderr)
    return 0


def cmd_users_list(args) -> int:
    """Run ``rjtrial users list``; returns the exit code."""
    with _accounts(args, change=False) as accounts:
        users = accounts.list()
    if args.json:
        print(json.dumps({"users": [u.to_dict() for u in users]}, indent=2))
    else:
        for u in users:
            state = "disabled" if u.disabled else "active"
            print(f"{u.name}\t{u.role}\t{','.join(u.sites) or '-'}\t{state}")
    return 0


def cmd_users_disable(args) -> int:
    """Run ``rjtrial users disable``; returns the exit code."""
    with _accounts(args) as accounts:
        accounts.disable(args.name, by=args.by)
    print(f"disabled {args.name}: sessions ended, API tokens revoked")
    return 0


def cmd_users_enable(args) -> int:
    """Run ``rjtrial users enable``; returns the exit code."""
    with _accounts(args) as accounts:
        accounts.enable(args.name, by=args.by)
    print(f"enabled {args.name}: issue new API tokens if needed (the old ones stay revoked)")
    return 0


def cmd_users_tokens(args) -> int:
    """Run ``rjtrial users tokens``; returns the exit code."""
    import datetime as dt

    with _accounts(args, change=False) as accounts:
        rows = accounts.tokens(args.name)
    if args.json:
        print(json.dumps({"user": args.name, "tokens": rows}))
        return 0
    if not rows:
        print(f"{args.name} has no API tokens")
    for row in rows:
        made = dt.datetime.fromtimestamp(row["created_at"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{row['id']}  issued {made}  {'revoked' if row['revoked'] else 'active'}")
    return 0


def cmd_users_revoke(args) -> int:
    """Run ``rjtrial users revoke``; returns the exit code."""
    with _accounts(args) as accounts:
        accounts.revoke_token(args.name, args.token, by=args.by)
    print(f"revoked token {args.token} of {args.name}")
    return 0


def cmd_users_password(args) -> int:
    """Run ``rjtrial users password``; returns the exit code."""
    with _accounts(args) as accounts:
        revoked = accounts.set_password(
            args.name, _read_password(args.password_stdin), by=args.by, keep_tokens=args.keep_tokens
        )
    tokens = "API tokens kept" if args.keep_tokens else f"{len(revoked)} API token(s) revoked"
    print(f"new password set for {args.name}; their sessions have ended; {tokens}")
    return 0


def cmd_users_email(args) -> int:
    """Run ``rjtrial users email``; returns the exit code."""
    with _accounts(args) as accounts:
        accounts.set_email(args.name, args.address, by=args.by)
    print(f"e-mail address of {args.name}: {args.address or 'none'}")
    return 0
