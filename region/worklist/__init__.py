"""The care team's worklist: a server-rendered web application of the region's service.

Starlette and Jinja2 templates, no JavaScript: patients (pseudonyms) sorted by what needs
attention, a patient's page with the latest readings, plots per vital sign over 7 and 30
days (inline SVG drawn on the server, :mod:`region.worklist.svg`), findings with their
history, the hub's and devices' state, and acknowledging a finding (a POST with a CSRF
token). Swedish and English (:mod:`region.worklist.i18n`). Authentication is in front of it:
an OIDC login at a reverse proxy that passes the user in a header from trusted addresses,
or a client certificate (:mod:`region.worklist.auth`; docs/worklist.md). Its libraries are
the ``region`` extra's: a hub never installs them.
"""
