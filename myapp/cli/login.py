"""`myapp login URL` and `myapp logout`: keep a sign-in to a server for myapp.sdk (docs/sdk.md).

The tokens go to MYAPP_CREDENTIALS (default ~/.myapp/credentials.json, mode 0600); the password
is never stored. `logout` revokes the sign-in on the server (every token of it), then deletes the file.
"""

from __future__ import annotations

import json
import sys

import click

from myapp.cli import fail, handle_errors


@click.command("login")
@click.argument("url")
@click.option("--username", "-u", default="admin", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (no prompt).")
@handle_errors
def login(url: str, username: str, password_stdin: bool) -> None:
    """Sign in to the server at URL and keep the sign-in for myapp.sdk (Workflow.submit)."""
    from myapp.sdk.credentials import Credentials, credentials_path, save_credentials
    from myapp.sdk.server import urllib_transport

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True)
    body = json.dumps({"username": username, "password": password, "provider": "db", "refresh": True}).encode()
    try:
        status, _, content = urllib_transport(30)(
            "POST", url.rstrip("/") + "/api/v1/security/login", {"Content-Type": "application/json"}, body
        )
    except OSError as exc:
        fail(f"cannot reach {url}: {exc}")
    if status != 200:
        fail(f"sign-in as {username!r} at {url} refused ({status})")
    tokens = json.loads(content)
    path = credentials_path()
    save_credentials(path, Credentials(url.rstrip("/"), username, tokens["access_token"], tokens["refresh_token"]))
    click.echo(f"signed in to {url.rstrip('/')} as {username}; kept in {path}")


@click.command("logout")
@handle_errors
def logout() -> None:
    """Revoke the kept sign-in on its server and forget it."""
    from myapp.sdk.credentials import credentials_path, load_credentials
    from myapp.sdk.server import urllib_transport

    path = credentials_path()
    kept = load_credentials(path)
    if kept is None:
        fail(f"not signed in ({path} holds no sign-in)")
        return
    try:
        status, _, _ = urllib_transport(30)(
            "POST", kept.url + "/api/v1/me/logout", {"Authorization": f"Bearer {kept.refresh_token}"}, None
        )
    except OSError as exc:
        status = 0
        click.echo(f"myapp: warning: cannot reach {kept.url} to revoke the sign-in: {exc}", err=True)
    path.unlink()
    click.echo(f"signed out of {kept.url}" + ("" if status == 200 else " (forgotten here; the server did not confirm)"))


def register(main: click.Group) -> None:
    main.add_command(login)
    main.add_command(logout)
