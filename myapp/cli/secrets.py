"""`myapp secrets new-key | rotate`: keys of the secrets sealed at rest (docs/security.md §5)."""

from __future__ import annotations

import click

from myapp.cli import get_services, handle_errors


@click.group("secrets")
def secrets_group() -> None:
    """Keys of the secrets stored sealed (Fernet) in the database."""


@secrets_group.command("new-key")
def new_key() -> None:
    """Print a new Fernet key, for MYAPP_SECRETS_KEYS."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@secrets_group.command("rotate")
@click.pass_context
@handle_errors
def rotate(ctx: click.Context) -> None:
    """Re-seal every stored secret with the first key of MYAPP_SECRETS_KEYS (and seal plain ones).

    Rotation: put a new key first in MYAPP_SECRETS_KEYS (keep the old ones after it), restart,
    run this, then remove the old keys.
    """
    from myapp.db.reseal import reseal_all

    services = get_services(ctx)
    count = reseal_all(services.db, services.templates)
    click.echo(
        f"re-sealed the secrets of {count.versions} pipeline versions, {count.runs} runs and "
        f"{count.templates} templates with the first key"
    )


def register(main: click.Group) -> None:
    main.add_command(secrets_group)
