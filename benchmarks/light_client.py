"""A light Streamlit client: one browser tab's websocket conversation, without a browser.

Thirty Chromium tabs would take the two cores this app is measured on; thirty of these
take a few per cent of one, in one asyncio loop. Each client does to the server what
Streamlit's frontend (1.67, `frontend/app/src/App.tsx` and `WebsocketConnection`) does,
so the server does the same work as for a real browser:

* connects to `ws://HOST:PORT/_stcore/stream` (subprotocol "streamlit"; no Origin header,
  so no XSRF cookie is needed) and sends one `BackMsg.rerun_script` whose `ClientState`
  carries the page's URL path as `page_name` (st.navigation pages: "" is the default
  page, then "data", "train", ...), the query string, the frontend's `context_info` and
  the hashes of the messages it has cached;
* reads the `ForwardMsg` stream: `new_session` (a full run, or a fragment run when
  `metadata.run.fragment_ids` is set), `navigation` (the current page's script hash,
  sent back in every later rerun), `delta`s (`new_element` / `add_block` at
  `metadata.delta_path`), `script_finished`, `page_info_changed` (the query string),
  `page_not_found`, `session_status_changed`, ...;
* keeps the frontend's message cache: a message marked `metadata.cacheable` is kept by
  its hash, a `ref_hash` message is replaced by the cached one (the server sends a
  reference only for hashes the client listed), and entries age out after
  `config.max_cached_message_age` finished runs, as in `ForwardMessageCache`;
* answers `auto_rerun` as the frontend does: a timer per fragment id that sends
  `rerun_script(fragment_id=..., is_auto_rerun=True)` every `interval` seconds whether
  or not the last one has finished (setInterval); timers are cleared by a full run's
  `new_session` and by `stop_auto_rerun`. This is how `st.fragment(run_every=...)`
  polls: the browser drives it, so an idle client must do the same.

It never clicks: widget states are sent empty (the server keeps every widget's last
value). What it keeps: every received message (time, type, bytes of the decoded
websocket payload), the page as the frontend would show it (element per delta path with
its kind, text and hash; stale elements dropped when a run finishes, as
`clearStaleNodes` does), every arrival of a Vega-Lite chart with whether its content
changed (`ChartUpdate`), and every element text as it arrived (`TextSeen`), so a
benchmark can ask "when did this client first show X?".
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

FINISHED_OK = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
# Element fields that are not what a person reads (or are big): left out of `text`.
_NOT_TEXT = {"id", "form_id", "spec", "data", "theme", "help", "icon", "page", "url",
             "format", "placeholder", "json_args", "arrow_data", "page_script_hash", "type",
             "tag"}


@dataclass
class Element:
    """What the page shows at one delta path."""
    kind: str  # the Element oneof ("markdown", "vega_lite_chart", ...) or "block"
    text: str  # its readable strings, joined with " | "
    hash: str  # the ForwardMsg hash: equal hashes, equal content
    run_id: str  # the script run that sent it
    fragment_id: str  # the fragment that drew it ("" outside fragments)
    t: float  # when it arrived


@dataclass
class Received:
    t: float
    type: str  # the ForwardMsg oneof, with ":kind" for deltas ("delta:markdown")
    nbytes: int  # the decoded websocket payload


@dataclass
class ChartUpdate:
    t: float
    path: tuple[int, ...]
    changed: bool  # content differs from what was at that path before (False: re-sent)
    run_id: str  # the script run (full or fragment) that sent it


@dataclass
class TextSeen:
    t: float
    kind: str
    text: str


def element_text(kind: str, element) -> str:
    """The strings of an element a person would read: body, label, caption, options..."""
    sub = getattr(element, kind)
    parts: list[str] = []
    for descriptor, value in sub.ListFields():
        if descriptor.name in _NOT_TEXT:
            continue
        if isinstance(value, str):
            parts.append(value[:2000])
        elif isinstance(value, Sequence) and value and isinstance(value[0], str):
            parts.extend(v[:500] for v in value)
    return " | ".join(p for p in parts if p)


@dataclass
class LightClient:
    """One simulated browser tab on `base_url` (http://127.0.0.1:PORT) showing `page`
    (its URL path: "" for the default page, "train", ...) with `query` (no "?")."""

    base_url: str
    page: str = ""
    query: str = ""
    name: str = ""
    clock: Callable[[], float] = time.monotonic

    # The page, as the frontend would show it.
    elements: dict[tuple[int, ...], Element] = field(default_factory=dict)
    # Logs.
    received: list[Received] = field(default_factory=list)
    charts: list[ChartUpdate] = field(default_factory=list)
    texts: list[TextSeen] = field(default_factory=list)
    full_runs_finished: list[float] = field(default_factory=list)  # script_finished times
    fragment_runs_finished: list[float] = field(default_factory=list)
    reruns_sent: int = 0
    connected_at: float | None = None
    closed_at: float | None = None
    error: str | None = None  # why the connection ended, if not by close()
    page_not_found: bool = False

    def __post_init__(self):
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._cache: dict[str, tuple[bytes, int, str]] = {}  # hash -> (msg, run count, frag)
        self._run_count = 0
        self._max_age = 2
        self._page_hash = ""
        self._run_id = ""
        self._run_fragments: list[str] = []
        self._seen_new_session = False
        self._changed = asyncio.Event()

    # --- connection ------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1).rstrip("/") + "/_stcore/stream"

    @property
    def page_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.page}" + (f"?{self.query}" if self.query
                                                               else "")

    async def connect(self, timeout: float = 60, attempts: int = 3) -> None:
        """Open the websocket and ask for the page, as a fresh page load does. A busy server
        may not answer the handshake in time: try again, as the frontend does."""
        for attempt in range(attempts):
            try:
                # No keepalive pings: browsers send none, and a server too busy to answer
                # one must not lose its clients for it. max_size: a page with images can
                # exceed websockets' 1 MiB.
                self._ws = await websockets.connect(
                    self.ws_url, subprotocols=["streamlit"], open_timeout=timeout,
                    ping_interval=None, max_size=256 * 2**20, max_queue=None,
                    user_agent_header=None)
                break
            except (TimeoutError, OSError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(1)
        self.connected_at = self.clock()
        self._reader = asyncio.create_task(self._read(), name=f"client {self.name}")
        await self._rerun(page_name=self.page)

    async def close(self) -> None:
        for _, task in self._timers.values():
            task.cancel()
        self._timers.clear()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
        self.closed_at = self.clock()

    @property
    def alive(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def _rerun(self, fragment_id: str = "", page_name: str = "",
                     auto: bool = False) -> None:
        state = ClientState(
            query_string=self.query, page_script_hash=self._page_hash,
            page_name="" if self._page_hash else page_name, fragment_id=fragment_id,
            is_auto_rerun=auto, cached_message_hashes=list(self._cache),
            context_info=ContextInfo(timezone="UTC", timezone_offset=0, locale="en-GB",
                                     url=self.page_url, is_embedded=False,
                                     color_scheme="light"))
        state.widget_states.SetInParent()
        await self._ws.send(BackMsg(rerun_script=state).SerializeToString())
        self.reruns_sent += 1

    async def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        # setInterval: fires every `interval` whatever the server is doing.
        start = self.clock()
        ticks = 0
        while True:
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * interval - self.clock()))
            try:
                await self._rerun(fragment_id=fragment_id, auto=True)
            except websockets.ConnectionClosed:
                return

    # --- the ForwardMsg stream --------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for payload in self._ws:
                self._handle(payload, self.clock())
        except websockets.ConnectionClosedOK:
            pass
        except websockets.ConnectionClosed as error:
            self.error = f"connection closed: {error}"
        except Exception as error:  # noqa: BLE001  (a bug here must not pass silently)
            self.error = f"{type(error).__name__}: {error}"
        finally:
            for _, task in self._timers.values():
                task.cancel()
            self._timers.clear()
            self._changed.set()

    def _handle(self, payload: bytes, now: float) -> None:
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.error = f"cache miss for {msg.ref_hash}"
                return
            full = ForwardMsg()
            full.ParseFromString(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            self._cache[msg.ref_hash] = (cached[0], self._run_count, cached[2])
            msg = full
        elif msg.metadata.cacheable and msg.hash:
            stored = ForwardMsg()
            stored.CopyFrom(msg)
            stored.ClearField("metadata")
            self._cache[msg.hash] = (stored.SerializeToString(), self._run_count,
                                     msg.delta.fragment_id if msg.HasField("delta") else "")
        kind = msg.WhichOneof("type") or "?"
        if kind == "delta":
            kind = f"delta:{self._delta(msg, now)}"
        elif kind == "new_session":
            self._new_session(msg)
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self._page_hash = msg.navigation.page_script_hash
        elif kind == "script_finished":
            self._script_finished(msg, now)
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "page_not_found":
            self.page_not_found = True
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self._stop_timer(fragment_id)
        self.received.append(Received(now, kind, len(payload)))
        self._changed.set()

    def _new_session(self, msg: ForwardMsg) -> None:
        run = msg.metadata.run
        self._run_id = run.script_run_id
        self._run_fragments = list(run.fragment_ids)
        self._seen_new_session = True
        if not self._run_fragments:  # a full run: the frontend drops every timer
            for fragment_id in list(self._timers):
                self._stop_timer(fragment_id)
            session = msg.new_session
            self._max_age = session.config.max_cached_message_age or self._max_age
            if session.page_script_hash and not self._page_hash:
                self._page_hash = session.page_script_hash

    def _delta(self, msg: ForwardMsg, now: float) -> str:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        which = delta.WhichOneof("type")
        if which == "new_element":
            kind = delta.new_element.WhichOneof("type") or "?"
            text = element_text(kind, delta.new_element) if kind != "vega_lite_chart" else ""
        elif which == "add_block":
            kind, text = "block", ""
        else:
            return which or "?"
        before = self.elements.get(path)
        self.elements[path] = Element(kind, text, msg.hash, self._run_id, delta.fragment_id,
                                      now)
        if kind == "vega_lite_chart":
            changed = before is None or before.kind != kind or before.hash != msg.hash
            self.charts.append(ChartUpdate(now, path, changed, self._run_id))
        if text and (before is None or before.text != text):
            self.texts.append(TextSeen(now, kind, text))
        return kind

    def _script_finished(self, msg: ForwardMsg, now: float) -> None:
        status = msg.script_finished
        run = msg.metadata.run
        fragments = list(run.fragment_ids) if run.script_run_id else self._run_fragments
        run_id = run.script_run_id or self._run_id
        if status in FINISHED_OK:
            # clearStaleNodes: what this run did not redraw is gone.
            if not fragments:
                self.elements = {p: e for p, e in self.elements.items() if e.run_id == run_id}
            else:
                self.elements = {p: e for p, e in self.elements.items()
                                 if e.fragment_id not in fragments or e.run_id == run_id}
            (self.fragment_runs_finished if fragments else self.full_runs_finished).append(now)
        if status != ForwardMsg.FINISHED_EARLY_FOR_RERUN and self._seen_new_session:
            # ForwardMessageCache.incrementRunCount
            self._run_count += 1
            self._cache = {h: entry for h, entry in self._cache.items()
                           if (fragments and entry[2] not in fragments)
                           or self._run_count - entry[1] <= self._max_age}

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:
            return
        if fragment_id in self._timers and self._timers[fragment_id][0] == interval:
            return
        self._stop_timer(fragment_id)
        task = asyncio.create_task(self._auto_rerun(fragment_id, interval))
        self._timers[fragment_id] = (interval, task)

    def _stop_timer(self, fragment_id: str) -> None:
        entry = self._timers.pop(fragment_id, None)
        if entry is not None:
            entry[1].cancel()

    # --- questions ----------------------------------------------------------------------------
    @property
    def polling(self) -> dict[str, float]:
        """The fragments this client reruns on a timer: id -> interval (s)."""
        return {fragment_id: interval for fragment_id, (interval, _) in self._timers.items()}

    def page_text(self) -> str:
        """Everything readable on the page now, in delta-path order."""
        return "\n".join(e.text for _, e in sorted(self.elements.items()) if e.text)

    def first_text(self, pattern: str | re.Pattern, since: float = float("-inf")
                   ) -> float | None:
        """When an element whose text matches `pattern` first arrived (after `since`)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        return next((seen.t for seen in self.texts
                     if seen.t >= since and regex.search(seen.text)), None)

    def shows(self, pattern: str | re.Pattern) -> bool:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        return any(regex.search(e.text) for e in self.elements.values() if e.text)

    def chart_changes(self, since: float = float("-inf"), until: float = float("inf")
                      ) -> list[float]:
        """Times at which a chart on the page got new content, one per script run (the
        loss and accuracy charts of one redraw count once, at the first)."""
        runs: dict[str, float] = {}
        for update in self.charts:
            if update.changed and since <= update.t <= until:
                runs.setdefault(update.run_id, update.t)
        return sorted(runs.values())

    def traffic(self, since: float = float("-inf"), until: float = float("inf")) -> dict:
        """Messages, deltas and bytes received in [since, until]."""
        inside = [r for r in self.received if since <= r.t <= until]
        return {"messages": len(inside),
                "deltas": sum(r.type.startswith("delta") for r in inside),
                "bytes": sum(r.nbytes for r in inside),
                "chart_messages": sum(r.type == "delta:vega_lite_chart" for r in inside)}

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Until `condition()` holds after a message (True) or `timeout` s pass (False)."""
        deadline = self.clock() + timeout
        while not condition():
            if not self.alive:
                return condition()
            self._changed.clear()
            left = deadline - self.clock()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return condition()
        return True

    async def wait_loaded(self, timeout: float = 60) -> bool:
        """Until the first full run of the page has finished."""
        return await self.wait_for(lambda: bool(self.full_runs_finished), timeout)
