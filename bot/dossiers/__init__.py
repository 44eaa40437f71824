"""Dossiers of the one-stop system: statuses, receipt numbers, dates, reading exports, importing them, and
the sources the lookup dialogue reads from.

* :mod:`.statuses`: the status codes, how labels map to them, the :class:`~.statuses.Dossier` record;
* :mod:`.receipts`: finding a receipt number in a message, the key dossiers are stored under;
* :mod:`.dates`: Vietnamese date formats;
* :mod:`.readers`: CSV/XLSX exports into rows, with the bad ones reported;
* :mod:`.importer`: :func:`~.importer.import_dossiers` (upsert, history, report);
* :mod:`.sources`: :class:`~.sources.DossierSource`, the local table and a province's HTTP API.
"""
