"""What the fault-injection suite (tests/test_faults.py, bench/fault_run.py) is made of.

* :class:`FakePlatforms`: one local HTTP server standing in for the Telegram Bot API (``/bot<token>/...``)
  and the Zalo OA API (``/v3.0/oa/message/cs``, ``/v4/oa/access_token``). It records every message
  delivered and fails on command: ``mode`` = ``"500"``, ``"429"`` (Telegram's ``retry_after``) or
  ``"timeout"`` (the request hangs and nothing is delivered).
* :class:`ServerProcess`: ``uvicorn --factory handlers.server:app_from_env`` as a real subprocess, with
  both channels pointed at the fakes; ``kill()`` is ``kill -9``.
* :class:`Platform`: the platforms' side of the webhooks: posts updates/events and, like Telegram, keeps
  re-sending one until it gets a 2xx (a Zalo 409 "already received" also ends it).
* :class:`FaultCluster`: a throw-away PostgreSQL cluster (``pg_createcluster 15 fault -p 5433``) that a
  test may stop and start; never the shared server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from handlers.zalo import signature

REPO = Path(__file__).resolve().parent.parent
TG_TOKEN = "123456:FAULT-token_abcdefghijklmnopqrstuvwxyz"
TG_SECRET = "fault-secret"
ZALO_APP_ID = "4321987650001"
ZALO_OA_SECRET = "oa-secret-fault"
ZALO_APP_SECRET = "app-secret-fault"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the fake platforms -------------------------------------------------------------------------------


class FakePlatforms:
    def __init__(self) -> None:
        self.mode: str | None = None
        self.hang_seconds = 5.0
        self.telegram: list[tuple[str, str]] = []
        self.zalo: list[tuple[str, str]] = []
        self.refused = 0
        self.lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    # recording
    def sent(self, channel: str) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.telegram if channel == "telegram" else self.zalo)

    def per_chat(self, channel: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for chat, text in self.sent(channel):
            out[chat].append(text)
        return out

    def wait(self, cond: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.5))
            return True

    # the server
    def start(self) -> FakePlatforms:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(self, status: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                status, obj = fake.dispatch(self.path, self.headers, body)
                if status == 0:  # hang: the client times out, nothing was delivered
                    time.sleep(fake.hang_seconds)
                    self.close_connection = True
                    return
                self._reply(status, obj)

            do_GET = do_POST

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return None  # a client gone (a killed server process): nothing to report

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-platforms").start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _failure(self, telegram: bool) -> tuple[int, Any] | None:
        mode = self.mode
        if mode is None:
            return None
        with self.lock:
            self.refused += 1
        if mode == "timeout":
            return 0, None
        if mode == "429" and telegram:
            return 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                         "parameters": {"retry_after": 1}}
        return 500, ({"ok": False, "error_code": 500, "description": "Internal Server Error"} if telegram
                     else {"error": -32, "message": "internal error"})

    def dispatch(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        if path.startswith(f"/bot{TG_TOKEN}/"):
            method = path.rsplit("/", 1)[-1]
            params = _params(headers.get("Content-Type") or "", body)
            if method == "getMe":
                return 200, {"ok": True, "result": _bot_user()}
            if method == "sendMessage":
                failure = self._failure(True)
                if failure is not None:
                    return failure
                with self.lock:
                    self.telegram.append((str(params["chat_id"]), str(params["text"])))
                    self.lock.notify_all()
                return 200, {"ok": True, "result": {
                    "message_id": len(self.telegram), "date": int(time.time()),
                    "chat": {"id": int(params["chat_id"]), "type": "private"}, "from": _bot_user(),
                    "text": params["text"]}}
            return 200, {"ok": True, "result": True}
        if path == "/v3.0/oa/message/cs":
            failure = self._failure(False)
            if failure is not None:
                return failure
            msg = json.loads(body)
            with self.lock:
                self.zalo.append((str(msg["recipient"]["user_id"]), str(msg["message"]["text"])))
                self.lock.notify_all()
                n = len(self.zalo)
            return 200, {"error": 0, "message": "Success", "data": {"message_id": f"m{n}"}}
        if path == "/v4/oa/access_token":
            return 200, {"access_token": "acc-1", "refresh_token": "ref-1", "expires_in": "90000"}
        return 404, {"error": -1}


def _bot_user() -> dict[str, Any]:
    return {"id": 42, "is_bot": True, "first_name": "Trợ lý", "username": "fault_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}


def _params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return dict(json.loads(body))
    return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


# --- the server as a subprocess -------------------------------------------------------------------------


def server_env(*, db_url: str, data_dir: Path, knowledge: Path, fakes: FakePlatforms,
               **serve: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LDTBXH_")}
    env.update({
        "PYTHONPATH": str(REPO), "LDTBXH_DATABASE_URL": db_url, "LDTBXH_DATA_DIR": str(data_dir),
        "LDTBXH_KNOWLEDGE_DIR": str(knowledge), "LDTBXH_TEST_EMBEDDER": "tests.fakes:hashing_embedder",
        "LDTBXH_DEPT_NAME": "Sở Thử Nghiệm", "LDTBXH_RELOAD_SECONDS": "3600",
        "LDTBXH_TELEGRAM_TOKEN": TG_TOKEN, "LDTBXH_TELEGRAM_SECRET_TOKEN": TG_SECRET,
        "LDTBXH_TELEGRAM_BASE_URL": fakes.url + "/bot", "LDTBXH_TELEGRAM_MAX_PER_SECOND": "1000",
        "LDTBXH_ZALO_APP_ID": ZALO_APP_ID, "LDTBXH_ZALO_OA_SECRET_KEY": ZALO_OA_SECRET,
        "LDTBXH_ZALO_APP_SECRET_KEY": ZALO_APP_SECRET, "LDTBXH_ZALO_REFRESH_TOKEN": "ref-0",
        "LDTBXH_ZALO_ACCESS_TOKEN": "acc-1", "LDTBXH_ZALO_API_BASE": fakes.url,
        "LDTBXH_ZALO_OAUTH_BASE": fakes.url, "LDTBXH_ZALO_REFRESH_CHECK_SECONDS": "0",
        "LDTBXH_ZALO_HTTP_TIMEOUT_SECONDS": "2", "LDTBXH_CONSOLE_SECURE_COOKIES": "false",
        # compressed timings (a full-length run passes longer ones)
        "LDTBXH_INBOX_POLL_SECONDS": "0.2", "LDTBXH_INBOX_CLAIM_SECONDS": "3",
        "LDTBXH_OUTBOX_POLL_SECONDS": "0.2", "LDTBXH_OUTBOX_CLAIM_SECONDS": "3",
        "LDTBXH_OUTBOX_SEND_TIMEOUT": "2", "LDTBXH_OUTBOX_BACKOFF_BASE_SECONDS": "0.5",
        "LDTBXH_OUTBOX_BACKOFF_CAP_SECONDS": "2", "LDTBXH_OUTBOX_LATE_SECONDS": "0",
        "LDTBXH_WEB_RATE_PER_MINUTE": "0", "LDTBXH_WEB_CHAT_RATE_PER_MINUTE": "0",
    })
    env.update({f"LDTBXH_{k.upper()}": str(v) for k, v in serve.items()})
    return env


class ServerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "handlers.server:app_from_env", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--timeout-graceful-shutdown", "5"],
            env=self.env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start: " + self.log_tail())

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


# --- the platforms' side of the webhooks -------------------------------------------------------------------


def telegram_update(update_id: int, chat: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "chat": {"id": chat, "type": "private", "first_name": "Dân"},
        "from": {"id": chat, "is_bot": False, "first_name": "Dân"}}}


def zalo_event(msg_id: str, user: str, text: str) -> dict[str, Any]:
    return {"app_id": ZALO_APP_ID, "event_name": "user_send_text", "timestamp": str(int(time.time() * 1000)),
            "sender": {"id": user}, "recipient": {"id": "388613280878808645"},
            "message": {"msg_id": msg_id, "text": text}}


class Platform:
    """Posts events to a server (or several, round robin) and keeps re-sending until acknowledged."""

    def __init__(self, urls: list[str], retry_every: float = 0.3) -> None:
        self.urls = urls
        self.retry_every = retry_every
        self.client = httpx.Client(timeout=10)
        self.acked: dict[str, int] = {}
        """event key -> the status that ended its delivery"""
        self.attempts = 0
        self.non_2xx = 0
        self.lock = threading.Lock()
        self._rr = 0

    def _post(self, url: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            r = self.client.post(url + path, content=body, headers=headers)
            return r.status_code
        except httpx.HTTPError:
            return 0

    def deliver(self, key: str, path: str, body: bytes, headers: dict[str, str], *, deadline: float,
                done: tuple[int, ...] = (200,)) -> int:
        while True:
            with self.lock:
                url = self.urls[self._rr % len(self.urls)]
                self._rr += 1
                self.attempts += 1
            status = self._post(url, path, body, headers)
            if status in done:
                with self.lock:
                    self.acked[key] = status
                return status
            with self.lock:
                self.non_2xx += 1
            if time.monotonic() > deadline:
                return status
            time.sleep(self.retry_every)

    def telegram(self, update: dict[str, Any], deadline: float) -> int:
        body = json.dumps(update, ensure_ascii=False).encode()
        return self.deliver(f"tg:{update['update_id']}", "/telegram/webhook", body,
                            {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
                            deadline=deadline)

    def zalo(self, event: dict[str, Any], deadline: float) -> int:
        body = json.dumps(event, ensure_ascii=False).encode()
        sig = signature(ZALO_APP_ID, body, event["timestamp"], ZALO_OA_SECRET)
        return self.deliver(f"zl:{event['message']['msg_id']}", "/zalo/webhook", body,
                            {"Content-Type": "application/json", "X-ZEvent-Signature": sig}, deadline=deadline,
                            done=(200, 409))

    def close(self) -> None:
        self.client.close()


def run_parallel(jobs: list[Callable[[], Any]], threads: int = 16) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(j) for j in jobs]:
            f.result()


QUOTE_RE = re.compile(r"«([^»]*)»")


def quoted(text: str) -> str | None:
    """The question a reply quotes (the outbox quotes it when late; the suite sets "late" to 0 s)."""
    m = QUOTE_RE.search(text)
    return m.group(1) if m else None


# --- a throw-away PostgreSQL cluster -------------------------------------------------------------------------


class FaultCluster:
    """``pg_createcluster 15 fault -p 5433`` (trust authentication on 127.0.0.1), started and stopped by the
    test; dropped at the end."""

    def __init__(self, version: str = "15", name: str = "fault", port: int = 5433) -> None:
        self.version, self.name, self.port = version, name, port

    @staticmethod
    def available() -> str | None:
        if shutil.which("pg_createcluster") is None or shutil.which("pg_ctlcluster") is None:
            return "pg_createcluster/pg_ctlcluster not installed"
        return None

    def _run(self, *args: str) -> None:
        subprocess.run(list(args), check=True, capture_output=True, timeout=120)

    def create(self) -> FaultCluster:
        self.drop()
        self._run("pg_createcluster", self.version, self.name, "-p", str(self.port), "--",
                  "--auth-local=trust", "--auth-host=trust")
        self.start()
        return self

    def start(self) -> None:
        self._run("pg_ctlcluster", self.version, self.name, "start")

    def stop(self) -> None:
        self._run("pg_ctlcluster", self.version, self.name, "stop", "-m", "fast")

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", self.version, self.name, "--stop"], capture_output=True, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)
