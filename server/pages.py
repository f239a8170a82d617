"""The classroom page: ``/`` (your rooms, new room, open a room), ``/r/<room-id>`` (the room),
``/progress`` (progress, achievements, leaderboards; ``?user=`` for staff) and the built
web bundle under ``/static/`` (from the installed ``web/dist``).

The pages themselves need no session: the bundle asks ``/api/me`` who is signed in and
shows the sign-in screen (``GATE_HTML``) instead of the page when nobody is, before it
opens any socket. What a person may do is decided by the server on every request and
message; the page only hides or disables what their role does not allow.

Everything the page needs comes from this origin: no CDN, no external fonts. The
bundle's files are read once at start-up; their URLs carry a content hash, so they
are cached for a year and a new bundle is fetched as soon as it changes.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import logging
import mimetypes
import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aiohttp import web

from .errors import json_error
from .upgrade import ROOM_ID, ROOM_ID_RULE

log = logging.getLogger("opencode_live.server")

# The page may only talk to its own origin ('self' covers same-origin ws: in CSP 3).
CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"

ADJECTIVES = (
    "brave calm clever cosmic cozy crisp eager fancy gentle happy jolly keen lively lucky "
    "mellow merry nimble noble plucky proud quick quiet rapid shiny smart snappy sunny swift "
    "tidy witty zesty bold bright curious daring friendly"
).split()
ANIMALS = (
    "otter panda koala falcon badger beaver dolphin fox gecko heron ibis jaguar lemur lynx "
    "marmot narwhal octopus owl penguin puffin quokka rabbit raven seal sloth tiger turtle "
    "walrus wombat yak zebra bison crane"
).split()


def new_room_id() -> str:
    """A readable room id such as ``brave-otter-42``."""
    adjective = secrets.choice(ADJECTIVES)
    animal = secrets.choice(ANIMALS)
    return f"{adjective}-{animal}-{secrets.randbelow(90) + 10}"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    content_type: str
    digest: str


def dist_dir() -> Path:
    """The built bundle, wherever the ``web`` package is installed."""
    return Path(str(resources.files("web") / "dist"))


def load_assets(folder: Path) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    if not folder.is_dir():
        return assets
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        body = path.read_bytes()
        content_type = {
            ".js": "text/javascript; charset=utf-8",
            ".css": "text/css; charset=utf-8",
        }.get(path.suffix) or (mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        digest = hashlib.sha256(body).hexdigest()[:16]
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        assets[path.name] = Asset(body, gzipped, content_type, digest)
    return assets


class Pages:
    def __init__(self, assets: dict[str, Asset]) -> None:
        self.assets = assets

    def _asset_url(self, name: str) -> str:
        asset = self.assets.get(name)
        return f"/static/{name}?v={asset.digest}" if asset else f"/static/{name}"

    def _page(
        self, title: str, body_attrs: str, content: str, *, status: int = 200
    ) -> web.Response:
        missing = (
            ""
            if "app.js" in self.assets
            else (
                '<p class="error" role="alert">The web bundle is not built: run '
                "<code>make web</code>.</p>"
            )
        )
        text = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{self._asset_url("app.css")}">
<script type="module" src="{self._asset_url("app.js")}"></script>
</head>
<body {body_attrs}>
{missing}{content}
<div id="toast" class="toast" role="status" aria-live="polite"></div>
</body>
</html>
"""
        return web.Response(
            text=text,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers=PAGE_HEADERS,
        )

    async def index(self, request: web.Request) -> web.Response:
        _not_a_socket(request)
        # A readable id for the new-room form, editable before the room is created.
        content = INDEX_HTML.replace("{me}", ME_HTML).replace("{new_id}", new_room_id())
        return self._page("opencode-live: rooms", 'data-page="index"', GATE_HTML + content)

    async def progress(self, request: web.Request) -> web.Response:
        """Progress, achievements and leaderboards: the bundle fills them in from the API,
        which decides whose progress the person may see (``?user=`` for staff)."""
        _not_a_socket(request)
        content = PROGRESS_HTML.replace("{me}", ME_HTML)
        return self._page("Progress · opencode-live", 'data-page="progress"', GATE_HTML + content)

    async def new_room(self, request: web.Request) -> web.Response:
        raise web.HTTPSeeOther(f"/r/{new_room_id()}", headers={"Cache-Control": "no-store"})

    async def open_room(self, request: web.Request) -> web.Response:
        """The no-JavaScript path of the "open a room" form."""
        room_id = request.query.get("room", "").strip()
        if not ROOM_ID.match(room_id):
            return self._bad_room(room_id)
        raise web.HTTPSeeOther(f"/r/{room_id}")

    async def room(self, request: web.Request) -> web.Response:
        _not_a_socket(request)
        room_id = request.match_info["room_id"]
        if not ROOM_ID.match(room_id):
            return self._bad_room(room_id)
        room = html.escape(room_id)
        return self._page(
            f"{room_id} · opencode-live",
            f'data-page="room" data-room="{room}"',
            GATE_HTML + ROOM_HTML.replace("{me}", ME_HTML).replace("{room}", room),
        )

    def _bad_room(self, room_id: str) -> web.Response:
        content = f"""<main class="error-page">
<h1>That is not a room id</h1>
<p><code>{html.escape(room_id) or "(empty)"}</code> cannot name a room: room ids use
{html.escape(ROOM_ID_RULE)}.</p>
<p><a class="btn primary" href="/new">Start a new room</a> <a class="btn" href="/">All rooms</a></p>
</main>"""
        title = "Invalid room id · opencode-live"
        return self._page(title, 'data-page="error"', content, status=400)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        asset = self.assets.get(name)
        if asset is None:
            raise web.HTTPNotFound(text=f"no such file: {name}")
        etag = f'"{asset.digest}"'
        headers = {
            "ETag": etag,
            "X-Content-Type-Options": "nosniff",
            # A hashed URL never changes; a bare one must be revalidated.
            "Cache-Control": IMMUTABLE if request.query.get("v") == asset.digest else "no-cache",
        }
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = asset.content_type
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=asset.gzipped, headers=headers)
        return web.Response(body=asset.body, headers=headers)


def _not_a_socket(request: web.Request) -> None:
    """A WebSocket upgrade to a page (e.g. ``/rooms/..`` normalised to ``/``) is an error."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        raise json_error(
            web.HTTPBadRequest, "not a WebSocket endpoint: rooms are at /rooms/<room-id>"
        )


def add_routes(app: web.Application, folder: Path | None = None) -> None:
    """Serve the pages and the bundle (read once, now)."""
    folder = folder or dist_dir()
    assets = load_assets(folder)
    if "app.js" not in assets:
        log.warning("web bundle missing", extra={"folder": str(folder)})
    pages = Pages(assets)
    app.router.add_get("/", pages.index)
    app.router.add_get("/new", pages.new_room)
    app.router.add_get("/progress", pages.progress)
    app.router.add_get("/open", pages.open_room)
    app.router.add_get("/r/{room_id:.*}", pages.room)
    app.router.add_get("/static/{name}", pages.static)


#: Shown instead of the page when nobody is signed in (or the session expired), or when
#: the room cannot be entered. The bundle fills in the reason; nothing here needs a session.
GATE_HTML = """<main class="gate" id="gate" hidden>
<section class="card gate-card" id="signin" aria-labelledby="signin-title" hidden>
<h1 id="signin-title">Sign in to opencode-live</h1>
<p class="gate-reason" id="signin-reason" role="alert">You are not signed in.</p>
<p>Open the <strong>sign-in link</strong> your instructor gave you (it looks like
<code><span class="here-origin">http://HOST</span>/signin?token=…</code>). It signs you in on
this browser for 12 hours. Each link works once: ask for a new one if yours was used already.
Then come back to this page.</p>
<h2>Instructors</h2>
<p>When the server starts it prints a sign-in link for an instructor in its log (the
<code>"sign-in link for an instructor"</code> line). To make links for yourself or a class,
run on the server:</p>
<pre class="signin-command"><code>opencode-live token --role instructor --name "Your Name" \\
  --signin-url <span class="here-origin">http://HOST</span>/</code></pre>
<p>(<code>--role student --cohort 2026-a</code> for a student of a cohort).</p>
</section>
<section class="card gate-card" id="problem" aria-labelledby="problem-title" hidden>
<h1 id="problem-title">This room cannot be opened</h1>
<p class="gate-reason" id="problem-text" role="alert"></p>
<p><a class="btn primary" href="/">All rooms</a></p>
</section>
</main>
<p class="checking" id="checking" role="status">Checking your sign-in…</p>"""

#: The signed-in person, in every page's header (inside #app: shown once /api/me answers),
#: and a plain form to sign out (POST /signout clears the HttpOnly cookie).
ME_HTML = """<span class="me" id="me" hidden><span class="me-name" id="me-name"></span>
<span class="badge" id="me-role"></span>
<span class="badge subtle" id="me-cohort" hidden></span></span>
<form class="signout-form" method="post" action="/signout">
<button class="btn small" id="signout" type="submit">Sign out</button></form>"""

INDEX_HTML = """<div class="app" id="app" hidden>
<header class="topbar">
<a class="brand" href="/" aria-label="All rooms">opencode<span>-live</span></a>
<span class="spacer"></span>
<a class="btn small" id="progress-link" href="/progress">Progress</a>
{me}
</header>
<main class="home">
<h1>opencode<span style="color:var(--accent)">-live</span></h1>
<p class="lead">Edit code together, live: open a room and share its link with your class.</p>
<section class="card" aria-labelledby="start-title">
<h2 id="start-title">Start or join</h2>
<div class="actions">
<button class="btn primary" id="new-room" type="button" aria-expanded="false"
 aria-controls="new-room-form">+ New room</button>
<form class="open-form" id="open-form" action="/open" method="get" role="search"
 aria-label="Open a room by id">
<label class="visually-hidden" for="open-room-id">Room id</label>
<input id="open-room-id" name="room" placeholder="room id, e.g. brave-otter-42"
 autocomplete="off" spellcheck="false" required aria-describedby="open-error">
<button class="btn" type="submit" aria-label="Open this room">Open</button>
</form>
</div>
<p class="error" id="open-error" aria-live="polite"></p>
<form class="new-room-form" id="new-room-form" aria-label="New room" hidden>
<label for="new-room-id">Room id</label>
<input id="new-room-id" name="id" value="{new_id}" required autocomplete="off" spellcheck="false"
 maxlength="128">
<label for="new-room-title">Title</label>
<input id="new-room-title" name="title" maxlength="200" placeholder="optional, e.g. Lab 3: loops"
 autocomplete="off">
<label for="new-room-visibility">Who can enter</label>
<select id="new-room-visibility" name="visibility">
<option value="private" selected>Private: you and the people you add</option>
<option value="cohort">Cohort: everyone in the cohort can edit</option>
<option value="public">Public: anyone signed in can watch</option>
</select>
<label for="new-room-cohort" class="staff-only">Cohort</label>
<input id="new-room-cohort" name="cohort" class="staff-only" maxlength="100"
 placeholder="e.g. 2026-a" autocomplete="off">
<div class="form-actions"><button class="btn primary" type="submit">Create room</button>
<button class="btn" type="button" id="new-room-cancel">Cancel</button></div>
<p class="error" id="new-room-error" aria-live="polite"></p>
</form>
</section>
<section class="card" aria-labelledby="rooms-title">
<h2 id="rooms-title">Your rooms</h2>
<ul class="room-list" id="room-list" aria-label="Your rooms"></ul>
<p class="status-line" id="rooms-status" aria-live="polite">Loading…</p>
</section>
</main>
</div>"""

ROOM_HTML = """<div class="app" id="app" hidden>
<header class="topbar">
<a class="brand" href="/" aria-label="All rooms">opencode<span>-live</span></a>
<span class="room-name" id="room-name" title="Room id">{room}</span>
<span class="badge room-role" id="room-role" title="Your role in this room"></span>
<span class="spacer"></span>
<div class="connection" id="connection" data-state="connecting" role="status" aria-live="polite"
 aria-label="Connection"><span class="dot" aria-hidden="true"></span>
<span id="connection-text">Connecting…</span></div>
<ul class="people" id="people" aria-label="People in this room"></ul>
<span class="people-count" id="people-count"></span>
<a class="btn small" id="progress-link" href="/progress" target="_blank"
 title="Your progress, achievements and leaderboards (opens a new tab)">Progress</a>
{me}
<button class="btn small" id="toggle-settings" type="button" aria-expanded="false"
 aria-controls="settings" aria-label="Room settings" hidden>Settings</button>
<button class="btn small" id="toggle-versions" type="button" aria-expanded="false"
 aria-controls="versions" aria-label="Show versions">Versions</button>
<button class="btn small primary" id="run" type="button" data-action="run"
 aria-label="Run (Ctrl or Cmd + Enter)" title="Run (Ctrl/Cmd-Enter)">▶ Run</button>
</header>
<div class="room-alert" id="room-alert" role="alert" hidden><span id="room-alert-text"></span>
<span class="room-alert-actions" id="room-alert-actions"></span></div>
<div class="room">
<nav class="sidebar" aria-label="Files">
<div class="sidebar-head"><h2>Files <span class="count" id="file-count"></span></h2>
<button class="btn small" id="add-file" type="button" aria-label="New file">+ New file</button>
</div>
<ul class="file-list" id="file-list" aria-label="Files in this room"></ul>
<div class="sidebar-foot"><p id="save-hint">Changes are saved automatically.</p>
<p><kbd>Ctrl</kbd>/<kbd>⌘</kbd> <kbd>Enter</kbd> Run</p></div>
</nav>
<main class="main">
<div class="editor-bar">
<span class="current-file" id="current-file" aria-live="polite">Loading…</span>
<span class="readonly-badge" id="readonly" hidden
 title="You are a viewer in this room: you see every change live but cannot edit"
 >Read-only · viewer</span>
<button class="btn small" id="run-file" type="button" hidden>▶ Run this file</button></div>
<div class="notice" id="notice" role="status" aria-live="polite" hidden>
<span id="notice-text"></span><span class="notice-actions" id="notice-actions"></span>
<button class="icon-btn" id="notice-close" type="button" aria-label="Dismiss">✕</button></div>
<div class="editor" id="editor"></div>
<section class="output" id="output" data-state="idle" aria-labelledby="output-title">
<div class="output-resize" id="output-resize" role="separator" aria-orientation="horizontal"
 aria-label="Resize the output panel (arrow keys)" aria-controls="output" tabindex="0"></div>
<div class="output-bar">
<button class="icon-btn output-toggle" id="output-toggle" type="button" aria-expanded="true"
 aria-controls="output-body" aria-label="Hide the output">▾</button>
<h2 class="output-title" id="output-title">Output</h2>
<span class="run-status" id="run-status" role="status" aria-live="polite">Nothing run yet</span>
<button class="btn small" id="output-clear" type="button"
 title="Clear the output on this page (others keep theirs)">Clear</button>
</div>
<div class="output-body" id="output-body">
<div class="output-log" id="output-log" tabindex="0" aria-label="Output of the room's runs">
<p class="output-empty" id="output-empty"></p></div>
<form class="run-input" id="run-input-form" aria-label="Input for the running program" hidden>
<label class="run-input-prompt" for="run-input">stdin &gt;</label>
<input id="run-input" autocomplete="off" autocapitalize="off" spellcheck="false"
 placeholder="Type a line for the program and press Enter">
<button class="btn small" type="submit">Send</button>
<button class="btn small" id="run-eof" type="button"
 title="Close the program's input: end of file (Ctrl-D)">EOF</button>
</form>
</div>
</section>
</main>
<aside class="panel versions" id="versions" aria-label="Versions" hidden>
<div class="sidebar-head"><h2>Versions</h2>
<button class="icon-btn" id="close-versions" type="button" aria-label="Close versions">✕</button>
</div>
<form class="version-form" id="version-form" aria-label="Save a version">
<label class="visually-hidden" for="version-name">Version name</label>
<input id="version-name" placeholder="Name this version" maxlength="200" autocomplete="off">
<button class="btn small primary" type="submit" aria-label="Save version">Save</button>
</form>
<ul class="version-list" id="version-list" aria-label="Saved versions"></ul>
<p class="status-line" id="versions-status" aria-live="polite"></p>
</aside>
<aside class="panel settings" id="settings" aria-label="Room settings" hidden>
<div class="sidebar-head"><h2>Room settings</h2>
<button class="icon-btn" id="close-settings" type="button"
 aria-label="Close room settings">✕</button>
</div>
<form class="settings-form" id="access-form" aria-label="Who can enter">
<label for="room-visibility">Who can enter</label>
<select id="room-visibility">
<option value="private">Private: owner and members</option>
<option value="cohort">Cohort: its people can edit</option>
<option value="public">Public: anyone signed in can watch</option>
</select>
<label for="room-cohort">Cohort</label>
<input id="room-cohort" maxlength="100" placeholder="e.g. 2026-a" autocomplete="off">
<div class="form-actions"><button class="btn small primary" type="submit">Save</button></div>
</form>
<h3 class="panel-title">Members</h3>
<ul class="member-list" id="member-list" aria-label="Members"></ul>
<form class="settings-form member-form" id="member-form" aria-label="Add a member">
<label for="member-user">Add a person (user id or UUID)</label>
<input id="member-user" maxlength="200" placeholder="e.g. ada" autocomplete="off" required>
<label for="member-role">Role</label>
<select id="member-role">
<option value="editor" selected>editor</option>
<option value="viewer">viewer</option>
<option value="owner">owner</option>
</select>
<div class="form-actions"><button class="btn small primary" type="submit">Add</button></div>
</form>
<p class="status-line" id="settings-status" aria-live="polite"></p>
</aside>
</div>
</div>"""


#: Progress, achievements and leaderboards (progress-page.js builds the views).
PROGRESS_HTML = """<div class="app" id="app" hidden>
<header class="topbar">
<a class="brand" href="/" aria-label="All rooms">opencode<span>-live</span></a>
<a class="btn small" href="/">Rooms</a>
<span class="spacer"></span>
{me}
</header>
<main class="progress-page" id="progress-root" aria-busy="true">
<p class="status-line">Loading…</p>
</main>
</div>"""
