"""The browser client: sources in ``web/src``, the built bundle in ``web/dist``.

``web/dist`` is committed and installed as package data, so the server serves the
page with no Node at run time (see ``server/pages.py``). Rebuild with ``make web``;
``make web-check`` fails when the committed bundle does not match the sources.
"""
