"""``ldtbxh users``: console accounts (officers and administrators). Create the first administrator with
``ldtbxh users add admin --role admin``; passwords are asked twice and stored as argon2 hashes."""

from __future__ import annotations

import typer

from bot.storage import AlreadyExists
from handlers.cli_common import actor as _actor
from handlers.cli_common import settings, storage

users_app = typer.Typer(help="Tài khoản bảng điều khiển: cán bộ và quản trị viên (console users).",
                        no_args_is_help=True)


def _ask_password(min_len: int) -> str:
    from handlers.console.security import password_problem

    for _ in range(3):
        pw = typer.prompt("Mật khẩu (password)", hide_input=True, confirmation_prompt="Nhập lại mật khẩu (repeat)")
        problem = password_problem(pw, min_len)
        if problem is None:
            return str(pw)
        typer.echo(problem, err=True)
    raise typer.Exit(1)


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Tên đăng nhập"),
    role: str = typer.Option("officer", "--role", help="admin (quản trị) hoặc officer (cán bộ)"),
) -> None:
    """Create an account; the password is asked twice."""
    from handlers.console.security import ROLES, hash_password

    if role not in ROLES:
        typer.echo("Vai trò phải là 'admin' hoặc 'officer'.", err=True)
        raise typer.Exit(2)
    username = username.strip()
    if not username or len(username) > 64:
        typer.echo("Tên đăng nhập không hợp lệ (1–64 ký tự).", err=True)
        raise typer.Exit(2)
    config = settings()
    store = storage(config)
    try:
        if store.users.get(username) is not None:
            typer.echo(f"Tài khoản {username} đã có; dùng `ldtbxh users reset-password {username}`.", err=True)
            raise typer.Exit(1)
        password = _ask_password(config.console.min_password_length)
        try:
            store.users.add(username, hash_password(password), role, actor=_actor())
        except AlreadyExists:
            typer.echo(f"Tài khoản {username} đã có.", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Đã tạo tài khoản {username} ({role}). Đăng nhập tại /console.")
    finally:
        store.close()


@users_app.command("reset-password")
def users_reset_password(username: str = typer.Argument(..., help="Tên đăng nhập")) -> None:
    """Set a new password (asked twice); the user's open sessions end."""
    from handlers.console.security import set_password

    config = settings()
    store = storage(config)
    try:
        if store.users.get(username) is None:
            typer.echo(f"Không có tài khoản {username}.", err=True)
            raise typer.Exit(1)
        set_password(store.users, username, _ask_password(config.console.min_password_length), actor=_actor())
        typer.echo(f"Đã đặt lại mật khẩu cho {username}.")
    finally:
        store.close()


@users_app.command("list")
def users_list() -> None:
    """List the accounts with their role and whether they are active."""
    store = storage()
    try:
        for u in store.users.all():
            typer.echo(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")
    finally:
        store.close()


@users_app.command("disable")
def users_disable(username: str = typer.Argument(...)) -> None:
    """Lock an account (and end its sessions)."""
    store = storage()
    try:
        if store.users.get(username) is None:
            typer.echo(f"Không có tài khoản {username}.", err=True)
            raise typer.Exit(1)
        store.users.set_active(username, False, actor=_actor())
        typer.echo(f"Đã khóa {username}.")
    finally:
        store.close()


@users_app.command("enable")
def users_enable(username: str = typer.Argument(...)) -> None:
    """Unlock an account."""
    store = storage()
    try:
        if store.users.get(username) is None:
            typer.echo(f"Không có tài khoản {username}.", err=True)
            raise typer.Exit(1)
        store.users.set_active(username, True, actor=_actor())
        typer.echo(f"Đã mở khóa {username}.")
    finally:
        store.close()
