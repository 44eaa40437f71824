"""The officers' and administrators' web console, served by the same process at ``/console``.

:func:`handlers.console.router.console_router` builds the router; pages are server-rendered (Jinja2,
Vietnamese), charts are inline SVG, there is no external resource.

Modules: :mod:`.auth` (sign-in, users, audit log), :mod:`.unanswered` (grouped queue, replies, drafts),
:mod:`.followups`, :mod:`.knowledge` (versions, drafts, rebuild / switch / roll back), :mod:`.documents` (the legal
texts' catalogue, upload, retire, passages), :mod:`.dossiers`,
:mod:`.dashboard`; :mod:`.security` holds passwords, sessions and CSRF tokens, :mod:`.core` the shared
context (:class:`~.core.Console`) and guards.
"""
