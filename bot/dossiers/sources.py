"""Where the lookup dialogue reads dossiers from: the imported table or a province's lookup API."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import httpx

from bot.config import DossierSettings
from bot.dossiers.dates import DateError, parse_vn_datetime
from bot.dossiers.readers import cell_text, phone_value
from bot.dossiers.receipts import receipt_key
from bot.dossiers.statuses import Dossier, map_status
from bot.storage.dossiers import Dossiers
from bot.storage.models import Dossier as DossierRow

log = logging.getLogger(__name__)


class DossierSourceUnavailable(RuntimeError):
    """The dossier system cannot be reached or answered with an error (the citizen is told to retry later)."""


@runtime_checkable
class DossierSource(Protocol):
    def get(self, receipt: str) -> Dossier | None:
        """The dossier with this receipt number, None when there is none; may raise DossierSourceUnavailable."""
        ...


def _from_row(r: DossierRow) -> Dossier:
    return Dossier(
        receipt=r.receipt,
        procedure=r.procedure,
        applicant_name=r.applicant_name,
        applicant_phone=r.applicant_phone,
        received_at=r.received_at,
        due_date=r.due_date,
        status=r.status,
        status_label=r.status_label,
        note=r.note,
        updated_at=r.source_updated_at,
    )


class LocalDossierSource:
    """Dossiers imported into the local database (``ldtbxh dossiers import``)."""

    def __init__(self, dossiers: Dossiers) -> None:
        self.dossiers = dossiers

    def get(self, receipt: str) -> Dossier | None:
        key = receipt_key(receipt)
        if not key:
            return None
        try:
            row = self.dossiers.get(key)
        except Exception as exc:  # the database itself is down
            log.error("local dossier lookup failed: %s", type(exc).__name__)
            raise DossierSourceUnavailable("local database unavailable") from exc
        return _from_row(row) if row else None


def _dig(data: Any, path: str) -> Any:
    cur = data
    for part in path.split("."):
        if part == "":
            continue
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.lstrip("-").isdigit():
            idx = int(part)
            cur = cur[idx] if -len(cur) <= idx < len(cur) else None
        else:
            return None
        if cur is None:
            return None
    return cur


class HttpDossierSource:
    """A province's one-stop lookup API.

    ``url_template`` contains ``{receipt}`` (URL-encoded on use). ``fields`` maps our field names (receipt,
    procedure, applicant_name, applicant_phone, received_at, due_date, status_label, note, updated_at) to
    dotted paths in the JSON answer; the optional key ``_root`` is the path of the dossier object itself
    (e.g. ``data`` or ``data.items.0``). 404, an empty root or a missing status mean "no such dossier";
    timeouts, connection errors, 5xx answers and non-JSON bodies raise :class:`DossierSourceUnavailable`.
    """

    def __init__(
        self,
        url_template: str,
        fields: Mapping[str, str] | None = None,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if "{receipt}" not in url_template:
            raise ValueError("url_template must contain {receipt}")
        self.url_template = url_template
        self.fields = dict(fields or {})
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout, headers=dict(headers or {}))
        if client is not None and headers:
            self.client.headers.update(dict(headers))

    @classmethod
    def from_settings(cls, ds: DossierSettings, client: httpx.Client | None = None) -> HttpDossierSource:
        if not ds.dossier_http_url:
            raise ValueError("LDTBXH_DOSSIER_HTTP_URL is not set")
        return cls(
            ds.dossier_http_url,
            ds.dossier_http_fields,
            timeout=ds.dossier_http_timeout,
            headers=ds.dossier_http_headers,
            client=client,
        )

    def _path(self, fld: str) -> str:
        return self.fields.get(fld, fld)

    def get(self, receipt: str) -> Dossier | None:
        url = self.url_template.replace("{receipt}", quote(receipt, safe=""))
        try:
            resp = self.client.get(url, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            log.warning("dossier API timed out after %.1fs", self.timeout)
            raise DossierSourceUnavailable("timeout") from exc
        except httpx.HTTPError as exc:
            log.warning("dossier API unreachable: %s", type(exc).__name__)
            raise DossierSourceUnavailable("unreachable") from exc
        if resp.status_code in (400, 404, 410, 422):
            return None
        if resp.status_code >= 300:
            log.warning("dossier API answered HTTP %d", resp.status_code)
            raise DossierSourceUnavailable(f"HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            log.warning("dossier API answered with something that is not JSON")
            raise DossierSourceUnavailable("bad answer") from exc
        root = _dig(data, self.fields["_root"]) if "_root" in self.fields else data
        if not root:
            return None
        label = cell_text(_dig(root, self._path("status_label")))
        procedure = cell_text(_dig(root, self._path("procedure")))
        if not label and not procedure:
            return None
        try:
            received = parse_vn_datetime(_dig(root, self._path("received_at")))
        except DateError:
            received = None
        try:
            due_dt = parse_vn_datetime(_dig(root, self._path("due_date")))
        except DateError:
            due_dt = None
        try:
            updated = parse_vn_datetime(_dig(root, self._path("updated_at")))
        except DateError:
            updated = None
        phone, _ = phone_value(cell_text(_dig(root, self._path("applicant_phone"))))
        return Dossier(
            receipt=cell_text(_dig(root, self._path("receipt"))) or receipt,
            procedure=procedure,
            applicant_name=cell_text(_dig(root, self._path("applicant_name"))),
            applicant_phone=phone,
            received_at=received,
            due_date=due_dt.date() if due_dt else None,
            status=map_status(label),
            status_label=label,
            note=cell_text(_dig(root, self._path("note"))) or None,
            updated_at=updated,
        )

    def close(self) -> None:
        self.client.close()


def make_dossier_source(ds: DossierSettings, dossiers: Dossiers) -> DossierSource:
    """The source the configuration asks for: ``local`` (the imported table) or ``http``."""
    if ds.dossier_source == "http":
        return HttpDossierSource.from_settings(ds)
    return LocalDossierSource(dossiers)
