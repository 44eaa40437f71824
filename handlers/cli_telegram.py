"""``ldtbxh telegram ...``: run the Telegram channel by polling (a laptop), register or remove the webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the channel module (telegram, fastapi) is imported only when a command runs
    from handlers.telegram import TelegramChannel, TelegramSettings

log = logging.getLogger(__name__)

telegram_app = typer.Typer(
    help="Telegram channel: poll for updates (no public URL needed) or register the webhook.",
    no_args_is_help=True,
)


def _tg_settings(**overrides: Any) -> TelegramSettings:
    from pydantic import ValidationError

    from handlers.telegram import TelegramSettings

    try:
        tg = TelegramSettings(**overrides)
    except ValidationError as exc:
        typer.echo("Cấu hình Telegram không hợp lệ (invalid configuration):", err=True)
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            typer.echo(f"  LDTBXH_TELEGRAM_{loc.upper()}: {err['msg']}", err=True)
        raise typer.Exit(2) from None
    if not tg.enabled:
        typer.echo("LDTBXH_TELEGRAM_TOKEN is not set (create a bot with @BotFather and put its token there).",
                   err=True)
        raise typer.Exit(2)
    return tg


async def drain_outbox(channel: TelegramChannel, *, max_attempts: int = 5) -> int:
    """Send the due outbox messages of the Telegram channel once (officer replies); returns how many went."""
    store = channel.store
    if store is None:
        return 0
    sent = 0
    for msg in await asyncio.to_thread(store.due_outbox, channel.name):
        try:
            await channel.send(msg.chat_id, msg.text, list(msg.buttons))
        except Exception as exc:
            status = await asyncio.to_thread(store.mark_outbox_failed, msg.id, f"{type(exc).__name__}: {exc}",
                                             max_attempts=max_attempts)
            log.warning("telegram outbox %d: delivery failed (%s), now %s", msg.id, type(exc).__name__, status)
        else:
            await asyncio.to_thread(store.mark_outbox_sent, msg.id)
            sent += 1
    return sent


async def run_polling(channel: TelegramChannel, stop: asyncio.Event, *, outbox_every: float = 10.0) -> None:
    """Start ``channel`` (polling), deliver the outbox every ``outbox_every`` s (0: never) until ``stop``."""
    await channel.start()
    try:
        while not stop.is_set():
            if outbox_every > 0:
                try:
                    await drain_outbox(channel)
                except Exception:
                    log.exception("telegram outbox delivery failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=outbox_every if outbox_every > 0 else None)
    finally:
        await channel.stop()


@telegram_app.command("poll")
def poll(
    outbox_every: float = typer.Option(10.0, help="Deliver officers' replies every N seconds (0: never)."),
) -> None:
    """Answer citizens on Telegram by long polling until Ctrl-C (removes a registered webhook)."""
    from bot.config import ConfigError, load_settings
    from bot.dialogue import Dialogue
    from bot.privacy import install_log_filter
    from bot.store import Store
    from handlers.telegram import TelegramChannel

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    install_log_filter()
    tg = _tg_settings(mode="polling")
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        store = Store(settings)
        dialogue = Dialogue.from_settings(settings, store=store)
        dialogue.holder.current  # noqa: B018 - load the index now, not on the first message
    except Exception as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    channel = TelegramChannel(tg, dialogue, store)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_polling(channel, stop, outbox_every=outbox_every)

    typer.echo("Telegram: polling; Ctrl-C to stop.", err=True)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # pragma: no cover - when the signal handler could not be installed
        pass
    finally:
        store.close()
    typer.echo("Telegram: stopped.", err=True)


async def _set_webhook(tg: TelegramSettings, url: str, drop_pending: bool) -> bool:
    from telegram import Bot

    from handlers.telegram import ALLOWED_UPDATES

    assert tg.token is not None
    async with Bot(tg.token.get_secret_value(), base_url=tg.base_url) as bot:
        return await bot.set_webhook(url=url, secret_token=tg.webhook_secret, allowed_updates=ALLOWED_UPDATES,
                                     drop_pending_updates=drop_pending)


async def _delete_webhook(tg: TelegramSettings, drop_pending: bool) -> bool:
    from telegram import Bot

    assert tg.token is not None
    async with Bot(tg.token.get_secret_value(), base_url=tg.base_url) as bot:
        return await bot.delete_webhook(drop_pending_updates=drop_pending)


@telegram_app.command("set-webhook")
def set_webhook(
    url: str = typer.Option(None, help="Public base URL of the web app (default: LDTBXH_TELEGRAM_WEBHOOK_URL); "
                                       "/telegram/webhook is appended."),
    drop_pending: bool = typer.Option(False, "--drop-pending", help="Discard updates waiting at Telegram."),
) -> None:
    """Register <url>/telegram/webhook with Telegram, with the secret token the server checks."""
    from telegram.error import TelegramError

    tg = _tg_settings()
    try:
        endpoint = tg.webhook_endpoint(url)
    except ValueError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(2) from None
    if not endpoint.startswith("https://"):
        typer.echo("Cảnh báo: Telegram only delivers webhooks to https:// URLs.", err=True)
    try:
        ok = asyncio.run(_set_webhook(tg, endpoint, drop_pending))
    except TelegramError as exc:
        typer.echo(f"Lỗi: Telegram refused the webhook: {exc}", err=True)
        raise typer.Exit(1) from None
    if not ok:
        typer.echo("Lỗi: Telegram did not accept the webhook.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Webhook registered: {endpoint}")


@telegram_app.command("delete-webhook")
def delete_webhook(
    drop_pending: bool = typer.Option(False, "--drop-pending", help="Discard updates waiting at Telegram."),
) -> None:
    """Remove the webhook (e.g. before polling elsewhere; `poll` also does this itself)."""
    from telegram.error import TelegramError

    tg = _tg_settings()
    try:
        asyncio.run(_delete_webhook(tg, drop_pending))
    except TelegramError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("Webhook removed.")
