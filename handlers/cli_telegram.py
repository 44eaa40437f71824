"""``ldtbxh telegram ...``: run the Telegram channel by polling (a laptop), register or remove the webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING

import typer

from handlers.cli_common import settings as load

if TYPE_CHECKING:  # the channel module (telegram, fastapi) is imported only when a command runs
    from bot.config import Settings, TelegramSettings
    from bot.storage.outbox import OutboxQueue
    from handlers.telegram import TelegramChannel

log = logging.getLogger(__name__)

telegram_app = typer.Typer(
    help="Telegram channel: poll for updates (no public URL needed) or register the webhook.",
    no_args_is_help=True,
)


def _tg_settings(settings: Settings | None = None) -> TelegramSettings:
    tg = (settings or load()).telegram
    if not tg.enabled:
        typer.echo("LDTBXH_TELEGRAM_TOKEN is not set (create a bot with @BotFather and put its token there).",
                   err=True)
        raise typer.Exit(2)
    return tg


async def run_polling(channel: TelegramChannel, outbox: OutboxQueue, stop: asyncio.Event, *,
                      outbox_every: float = 10.0, max_attempts: int = 60, inbox_every: float = 1.0) -> None:
    """Start ``channel`` (polling): its updates are stored in the inbox and answered by an inbox worker;
    the outbox is delivered every ``outbox_every`` s (0: only the answers, at once) until ``stop``."""
    from handlers.inbox import InboxWorker
    from handlers.outbox import OutboxDeliverer

    deliverer = OutboxDeliverer(outbox, {channel.name: channel}, max_attempts=max_attempts)
    worker = InboxWorker(channel.dialogue.store.inbox, channel.dialogue, {channel.name: channel}, deliverer)
    channel.attach(worker.wake)
    await channel.start()
    try:
        tasks = [asyncio.create_task(worker.run(inbox_every, stop))]
        if outbox_every > 0:
            tasks.append(asyncio.create_task(deliverer.run(outbox_every, stop)))
        await stop.wait()
        await asyncio.wait(tasks, timeout=10)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await channel.stop()


@telegram_app.command("poll")
def poll(
    outbox_every: float = typer.Option(10.0, help="Deliver officers' replies every N seconds (0: never)."),
) -> None:
    """Answer citizens on Telegram by long polling until Ctrl-C (removes a registered webhook)."""
    from bot.dialogue import Dialogue
    from bot.privacy import install_log_filter
    from bot.storage import Storage
    from handlers.telegram import TelegramChannel

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    install_log_filter()
    settings = load()
    tg = _tg_settings(settings).model_copy(update={"mode": "polling"})
    try:
        store = Storage(settings)
        dialogue = Dialogue.from_settings(settings, store=store)
        dialogue.holder.current  # noqa: B018 - load the index now, not on the first message
    except Exception as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    channel = TelegramChannel(tg, dialogue)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_polling(channel, store.outbox, stop, outbox_every=outbox_every,
                          max_attempts=settings.serve.outbox_max_attempts)

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

    from handlers.telegram import webhook_endpoint

    tg = _tg_settings()
    try:
        endpoint = webhook_endpoint(tg, url)
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
