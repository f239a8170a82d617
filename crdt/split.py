"""Split one Yjs v1 update into several smaller, individually valid v1 updates.

Why this exists: the server answers a joiner's sync step 1 with the whole
document as one update. For a 50 MB document that is one 50 MB WebSocket
message, which can exceed the frame limit and, on a slow link, leaves a
y-websocket client without any *complete* message for longer than its 30 s
"no message received" watchdog, so it drops the connection, reconnects and
starts over - forever. Sending the same state as a sequence of smaller updates
keeps messages flowing. Every piece is a complete v1 update, so any Yjs/yrs
peer applies it with the ordinary ``applyUpdate``; applying all pieces yields
exactly the document the original update describes.

The module is pure and sans-I/O: bytes in, list of bytes out.

Wire format (Yjs ``encoding.js`` ``writeClientsStructs`` / ``readClientsStructRefs``,
``Item.write``, the ``Content*.write`` methods, lib0 ``decoding.js``; yrs ``Block::encode``)::

    update     = varuint numClients, numClients x clientBlock, deleteSet
    clientBlock= varuint numStructs, varuint client, varuint firstClock, numStructs x struct
    struct     = info byte; info & 0x1F: 0 GC (varuint len), 10 Skip (varuint len),
                 otherwise an Item:
                   [info & 0x80] origin ID, [info & 0x40] rightOrigin ID,
                   [neither] varuint parentInfo (1: varString root key, else parent ID)
                             and [info & 0x20] varString parentSub,
                   content (see ``_skip_content``)
    deleteSet  = varuint numClients, numClients x (varuint client, varuint numRanges,
                 numRanges x (varuint clock, varuint len))

Consecutive structs of one client occupy consecutive bytes, so a run of them is
copied verbatim; only its header (count, client, start clock) is re-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pycrdt import write_var_uint

__all__ = ["split_update"]

# Struct / content reference numbers (low five bits of the info byte).
_GC = 0
_DELETED = 1
_JSON = 2
_BINARY = 3
_STRING = 4
_EMBED = 5
_FORMAT = 6
_TYPE = 7
_ANY = 8
_DOC = 9
_SKIP = 10
_MOVE = 11  # yrs-only (experimental move); never produced by Yjs

_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20

# lib0 varuints longer than this cannot be a u64 (yrs' widest integer).
_MAX_VARINT_BYTES = 10

# In valid UTF-8 every code point outside the BMP (two UTF-16 code units) starts
# with a byte 0xF0..0xF4; deleting them and comparing lengths counts them in C.
_ASTRAL_LEADS = bytes(range(0xF0, 0x100))

_EMPTY_DELETE_SET = b"\x00"

# Item origins are IDs of two varuints whose client half is usually 7-8 bytes;
# skipping them with a compiled pattern runs in C instead of a byte loop.
_VARINT_PATTERN = rb"[\x80-\xff]{0,9}[\x00-\x7f]"
_ONE_ID = re.compile(_VARINT_PATTERN * 2)
_TWO_IDS = re.compile(_VARINT_PATTERN * 4)


def split_update(update: bytes, max_bytes: int) -> list[bytes]:
    """Split a Yjs **v1** update into v1 updates of at most ``max_bytes`` each.

    Applying the returned pieces, in order, to an empty document gives exactly
    the document that applying ``update`` gives. They converge in any other
    order too (out-of-order structs wait in the peer's pending store), but in
    order is cheapest for the receiver.

    * ``len(update) <= max_bytes`` returns ``[update]`` unchanged (fast path).
    * Otherwise consecutive whole structs are grouped, per client and in their
      original order, into pieces; small clients share a piece. Every piece
      carries an empty delete set except the last, which carries the original
      one (if the delete set does not fit there, it is itself split by client
      and by range into struct-less pieces that follow).
    * A single struct larger than a piece is split the way Yjs writes an item
      with an offset (``Item.write(encoder, offset)``) when its content is a
      String (cut on code point boundaries, so never inside a UTF-16 surrogate
      pair), Any or JSON (cut between elements): the continuation items get
      ``origin = (client, clock + offset - 1)``, keep the rightOrigin and drop
      the parent info, exactly as Yjs would encode them.

    Limits: anything that cannot be cut is emitted alone in its own piece,
    which then exceeds ``max_bytes``: a single Any/JSON element, Binary, Embed,
    Format, Type or Doc content, an item whose header alone (e.g. a huge map
    key) is too large, and, for a tiny ``max_bytes``, any struct. GC, Skip and
    Deleted structs are a few bytes and never need cutting. Type ref 5
    (XmlHook) is parsed like yrs (pycrdt) encodes it, i.e. without the hook name
    Yjs writes: pycrdt cannot decode Yjs XmlHook items at all, so a document
    that went through pycrdt never contains one in the Yjs form.

    Raises ``ValueError`` if ``update`` is not a well-formed v1 update (truncated,
    unknown struct, content or Any tag, invalid UTF-8, over-long varint,
    trailing bytes) or if ``max_bytes`` is not positive. Never raises for a
    well-formed update.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if len(update) <= max_bytes:
        return [update]
    data = bytes(update)
    try:
        return _Splitter(data, max_bytes).run()
    except IndexError:
        raise ValueError("malformed Yjs update: unexpected end of data") from None


# ---------------------------------------------------------------------------
# Decoding helpers. They index ``data`` directly: every single-byte read is
# bounds-checked by Python (IndexError, turned into ValueError by
# ``split_update``); every multi-byte skip is checked explicitly here because
# slicing and ``pos += n`` would not be.


def _vlen(value: int) -> int:
    """Number of bytes of ``value`` as a lib0 varuint."""
    return 1 if value < 0x80 else (value.bit_length() + 6) // 7


def _read_uint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a lib0 varuint at ``pos``; return ``(value, new_pos)``."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7
        if shift >= 7 * _MAX_VARINT_BYTES:
            raise ValueError(f"malformed Yjs update: varint too long at byte {pos}")


def _skip_varint(data: bytes, pos: int) -> int:
    """Skip a lib0 varuint or signed varint (both end at a byte < 0x80)."""
    start = pos
    while data[pos] >= 0x80:
        pos += 1
        if pos - start >= _MAX_VARINT_BYTES:
            raise ValueError(f"malformed Yjs update: varint too long at byte {start}")
    return pos + 1


def _skip_id(data: bytes, pos: int) -> int:
    """Skip an ID (varuint client, varuint clock)."""
    return _skip_varint(data, _skip_varint(data, pos))


def _skip_bytes(data: bytes, pos: int) -> int:
    """Skip a varString / varUint8Array (varuint length + that many bytes)."""
    length, pos = _read_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ValueError("malformed Yjs update: string or buffer runs past the end")
    return end


def _skip_fixed(data: bytes, pos: int, size: int) -> int:
    end = pos + size
    if end > len(data):
        raise ValueError("malformed Yjs update: unexpected end of data")
    return end


def _utf16_len(chunk: bytes) -> int:
    """UTF-16 code units of UTF-8 ``chunk`` - Yjs/yrs count string clocks in them."""
    if chunk.isascii():
        return len(chunk)
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"malformed Yjs update: invalid UTF-8 in string content ({exc})") from None
    return len(text) + len(chunk) - len(chunk.translate(None, _ASTRAL_LEADS))


def _skip_any(data: bytes, pos: int) -> int:
    """Skip one lib0 ``Any`` value (iteratively: nesting depth is unbounded)."""
    stack: list[tuple[int, bool]] = []
    remaining = 1  # values still to read at the current nesting level
    keyed = False  # current level is an object: each value is preceded by a key
    while True:
        if remaining == 0:
            if not stack:
                return pos
            remaining, keyed = stack.pop()
            continue
        remaining -= 1
        if keyed:
            pos = _skip_bytes(data, pos)
        tag = data[pos]
        pos += 1
        if tag == 119 or tag == 116:  # string, Uint8Array
            pos = _skip_bytes(data, pos)
        elif tag == 125:  # signed varint
            pos = _skip_varint(data, pos)
        elif tag == 127 or tag == 126 or tag == 121 or tag == 120:  # undefined null false true
            pass
        elif tag == 123 or tag == 122:  # float64, bigint64
            pos = _skip_fixed(data, pos, 8)
        elif tag == 124:  # float32
            pos = _skip_fixed(data, pos, 4)
        elif tag == 118 or tag == 117:  # object, array
            count, pos = _read_uint(data, pos)
            stack.append((remaining, keyed))
            remaining = count
            keyed = tag == 118
        else:
            raise ValueError(f"malformed Yjs update: unknown lib0 Any tag {tag} at byte {pos - 1}")


def _skip_type_ref(data: bytes, pos: int) -> int:
    """Skip the body of a Type content (yrs ``TypeRef::decode``)."""
    type_ref, pos = _read_uint(data, pos)
    if type_ref == 3:  # XmlElement: node name
        return _skip_bytes(data, pos)
    if type_ref in (0, 1, 2, 4, 5, 6, 9, 15):
        # Array, Map, Text, XmlFragment, XmlHook (no name in yrs), XmlText,
        # SubDoc, Undefined: nothing follows.
        return pos
    if type_ref == 7:  # yrs weak link
        flags = data[pos]
        pos += 1
        root = flags & 0x20
        if flags & 0x08:  # start unbounded
            pos = _skip_bytes(data, pos) if root else _skip_id(data, pos)
        else:
            pos = _skip_id(data, pos)
        if flags & 0x10:  # end unbounded
            pos = _skip_bytes(data, pos) if root else _skip_id(data, pos)
        elif flags & 0x01:  # quote (not single): explicit end
            pos = _skip_id(data, pos)
        return pos
    raise ValueError(f"malformed Yjs update: unknown type ref {type_ref} at byte {pos}")


def _skip_content(data: bytes, pos: int, ref: int) -> tuple[int, int]:
    """Skip an item's content; return ``(new_pos, clock_length)``."""
    if ref == _STRING:
        length, pos = _read_uint(data, pos)
        end = pos + length
        if end > len(data):
            raise ValueError("malformed Yjs update: string runs past the end")
        return end, _utf16_len(data[pos:end])
    if ref == _ANY:
        count, pos = _read_uint(data, pos)
        for _ in range(count):
            pos = _skip_any(data, pos)
        return pos, count
    if ref == _DELETED:
        length, pos = _read_uint(data, pos)
        return pos, length
    if ref == _TYPE:
        return _skip_type_ref(data, pos), 1
    if ref == _FORMAT:  # key, JSON value
        return _skip_bytes(data, _skip_bytes(data, pos)), 1
    if ref == _EMBED or ref == _BINARY:
        return _skip_bytes(data, pos), 1
    if ref == _JSON:
        count, pos = _read_uint(data, pos)
        for _ in range(count):
            pos = _skip_bytes(data, pos)
        return pos, count
    if ref == _DOC:  # guid, opts
        return _skip_any(data, _skip_bytes(data, pos)), 1
    if ref == _MOVE:  # signed varint flags (bit 0: collapsed), start ID, [end ID]
        collapsed = data[pos] & 1
        pos = _skip_id(data, _skip_varint(data, pos))
        if not collapsed:
            pos = _skip_id(data, pos)
        return pos, 1
    raise ValueError(f"malformed Yjs update: unknown content type {ref} at byte {pos}")


def _skip_item_header(data: bytes, pos: int, info: int) -> int:
    """Skip origin, rightOrigin and parent info of an item (after its info byte)."""
    if info & _HAS_ORIGIN:
        pos = _skip_id(data, pos)
    if info & _HAS_RIGHT_ORIGIN:
        pos = _skip_id(data, pos)
    if not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
        is_key, pos = _read_uint(data, pos)
        pos = _skip_bytes(data, pos) if is_key == 1 else _skip_id(data, pos)
        if info & _HAS_PARENT_SUB:
            pos = _skip_bytes(data, pos)
    return pos


def _skip_struct(data: bytes, pos: int) -> tuple[int, int]:
    """Skip one struct; return ``(new_pos, clock_length)``."""
    info = data[pos]
    pos += 1
    ref = info & 0x1F
    if ref == _GC or ref == _SKIP:
        length, pos = _read_uint(data, pos)
        return pos, length
    return _skip_content(data, _skip_item_header(data, pos, info), ref)


# ---------------------------------------------------------------------------
# Splitting


class _Splitter:
    """One pass over the update, packing struct runs into pieces as it goes.

    A piece under construction is a list of closed groups (a run of one
    client's consecutive structs) plus the currently open group, which is
    just ``(start byte, start clock, struct count)`` into ``data``.
    """

    def __init__(self, data: bytes, max_bytes: int) -> None:
        self.data = data
        self.view = memoryview(data)
        self.max_bytes = max_bytes
        self.pieces: list[bytes] = []
        self.groups: list[bytes | memoryview] = []  # encoded groups of the open piece
        self.num_groups = 0
        self.groups_size = 0

    # -- piece assembly --------------------------------------------------------

    def _close_group(self, client: int, clock: int, count: int, start: int, end: int) -> None:
        header = write_var_uint(count) + write_var_uint(client) + write_var_uint(clock)
        self.groups.append(header)
        self.groups.append(self.view[start:end])
        self.num_groups += 1
        self.groups_size += len(header) + end - start

    def _flush(self) -> None:
        if self.num_groups:
            self.pieces.append(
                b"".join([write_var_uint(self.num_groups), *self.groups, _EMPTY_DELETE_SET])
            )
            self.groups = []
            self.num_groups = 0
            self.groups_size = 0

    def _room(self, client_len: int, clock: int) -> int:
        """Bytes of structs a group opened now may hold (assuming < 128 structs)."""
        return (
            self.max_bytes
            - _vlen(self.num_groups + 1)
            - self.groups_size
            - 1  # struct count
            - client_len
            - _vlen(clock)
            - len(_EMPTY_DELETE_SET)
        )

    # -- main pass ---------------------------------------------------------------

    def run(self) -> list[bytes]:
        data = self.data
        size = len(data)
        num_clients, pos = _read_uint(data, 0)
        for _ in range(num_clients):
            num_structs, pos = _read_uint(data, pos)
            client, pos = _read_uint(data, pos)
            clock, pos = _read_uint(data, pos)
            client_len = _vlen(client)
            g_start, g_clock, g_count = pos, clock, 0
            room = self._room(client_len, clock)
            for _ in range(num_structs):
                start = pos
                # Inlined fast path for the bulk of real documents: String and
                # Deleted items with an origin; everything else goes generic.
                info = data[pos]
                ref = info & 0x1F
                if info & 0xC0 and (ref == _STRING or ref == _DELETED):
                    match = (_TWO_IDS if info >= 0xC0 else _ONE_ID).match(data, pos + 1)
                    if match is None:
                        raise ValueError(f"malformed Yjs update: bad origin ID at byte {pos + 1}")
                    pos = match.end()
                    length = data[pos]
                    if length < 0x80:
                        pos += 1
                    else:
                        length, pos = _read_uint(data, pos)
                    if ref == _STRING:
                        end = pos + length
                        if end > size:
                            raise ValueError("malformed Yjs update: string runs past the end")
                        chunk = data[pos:end]
                        pos = end
                        if not chunk.isascii():
                            length = _utf16_len(chunk)
                else:
                    pos, length = _skip_struct(data, pos)
                count = g_count + 1
                if pos - g_start <= room - (0 if count < 0x80 else _vlen(count) - 1):
                    g_count = count
                else:
                    if g_count:
                        self._close_group(client, g_clock, g_count, g_start, start)
                    self._flush()
                    room = self._room(client_len, clock)
                    if pos - start <= room:
                        g_start, g_clock, g_count = start, clock, 1
                    else:
                        self._emit_oversized(client, clock, start, pos, length)
                        g_start, g_clock, g_count = pos, clock + length, 0
                        room = self._room(client_len, g_clock)
                clock += length
            if g_count:
                self._close_group(client, g_clock, g_count, g_start, pos)
        self._flush()
        self._finish_delete_set(pos)
        return self.pieces

    # -- oversized structs -------------------------------------------------------

    def _emit_oversized(self, client: int, clock: int, start: int, end: int, length: int) -> None:
        """Emit one struct that does not fit in an empty piece, cut if possible."""
        parts = self._cut_item(client, clock, start, end, length)
        if parts is None:
            parts = [(clock, self.view[start:end])]
        head = write_var_uint(client)
        for part_clock, struct in parts:
            self.pieces.append(
                b"".join([b"\x01\x01", head, write_var_uint(part_clock), struct, _EMPTY_DELETE_SET])
            )

    def _cut_item(
        self, client: int, clock: int, start: int, end: int, length: int
    ) -> list[tuple[int, bytes]] | None:
        """Cut an Item into consecutive items (Yjs ``Item.write(encoder, offset)``).

        Returns ``[(clock, encoded struct), ...]`` or ``None`` when the struct
        cannot be cut usefully.
        """
        data = self.data
        info = data[start]
        ref = info & 0x1F
        if ref not in (_STRING, _ANY, _JSON):
            return None
        ro_start = start + 1
        if info & _HAS_ORIGIN:
            ro_start = _skip_id(data, ro_start)
        ro_end = _skip_id(data, ro_start) if info & _HAS_RIGHT_ORIGIN else ro_start
        content = _skip_item_header(data, start + 1, info)
        first_head = data[start:content]
        right_origin = data[ro_start:ro_end]
        client_bytes = write_var_uint(client)
        # Piece overhead around a struct: numClients, numStructs, client, clock
        # and the empty delete set; clocks and counts bounded by their maxima.
        clock_len = _vlen(clock + length)
        overhead = 3 + len(client_bytes) + clock_len + _vlen(self.max_bytes)
        room_first = self.max_bytes - overhead - len(first_head)
        room_next = (
            self.max_bytes - overhead - (1 + len(client_bytes) + clock_len + len(right_origin))
        )
        if room_next < 4:  # cannot even hold one 4-byte code point per piece
            return None

        def head(offset: int) -> bytes:
            if offset == 0:
                return first_head
            return b"".join(
                [
                    bytes((info | _HAS_ORIGIN,)),
                    client_bytes,
                    write_var_uint(clock + offset - 1),
                    right_origin,
                ]
            )

        if ref == _STRING:
            parts = self._cut_string(content, end, room_first, room_next, head)
        else:
            skip = _skip_any if ref == _ANY else _skip_bytes
            parts = self._cut_list(content, end, room_first, room_next, head, skip)
        if len(parts) < 2:
            return None
        return [(clock + offset, struct) for offset, struct in parts]

    def _cut_string(
        self,
        content: int,
        end: int,
        room_first: int,
        room_next: int,
        head: Callable[[int], bytes],
    ) -> list[tuple[int, bytes]]:
        """Cut String content on UTF-8 code point boundaries (never a surrogate pair)."""
        data = self.data
        _, pos = _read_uint(data, content)
        parts: list[tuple[int, bytes]] = []
        offset = 0
        room = room_first
        while pos < end:
            cut = min(pos + max(room, 1), end)
            if cut < end:
                while cut > pos and 0x80 <= data[cut] < 0xC0:  # continuation byte
                    cut -= 1
                if cut == pos:  # room smaller than one code point: take one anyway
                    cut = pos + 1
                    while cut < end and 0x80 <= data[cut] < 0xC0:
                        cut += 1
            chunk = data[pos:cut]
            parts.append((offset, b"".join([head(offset), write_var_uint(len(chunk)), chunk])))
            offset += _utf16_len(chunk)
            pos = cut
            room = room_next
        return parts

    def _cut_list(
        self,
        content: int,
        end: int,
        room_first: int,
        room_next: int,
        head: Callable[[int], bytes],
        skip: Callable[[bytes, int], int],
    ) -> list[tuple[int, bytes]]:
        """Cut Any/JSON content between elements (each element is one clock)."""
        data = self.data
        count, pos = _read_uint(data, content)
        bounds = [pos]
        for _ in range(count):
            pos = skip(data, pos)
            bounds.append(pos)
        parts: list[tuple[int, bytes]] = []
        first = 0
        room = room_first
        while first < count:
            last = first + 1  # at least one element, even if it alone is too big
            while last < count and bounds[last + 1] - bounds[first] <= room:
                last += 1
            parts.append(
                (
                    first,
                    b"".join(
                        [
                            head(first),
                            write_var_uint(last - first),
                            data[bounds[first] : bounds[last]],
                        ]
                    ),
                )
            )
            first = last
            room = room_next
        return parts

    # -- delete set ----------------------------------------------------------------

    def _finish_delete_set(self, ds_start: int) -> None:
        """Attach the delete set to the last piece, or split it into its own pieces."""
        data = self.data
        num_clients, pos = _read_uint(data, ds_start)
        entries: list[tuple[int, int, int, int]] = []  # client, numRanges, start, end
        for _ in range(num_clients):
            client, pos = _read_uint(data, pos)
            num_ranges, pos = _read_uint(data, pos)
            ranges_start = pos
            for _ in range(num_ranges):
                pos = _skip_varint(data, _skip_varint(data, pos))
            entries.append((client, num_ranges, ranges_start, pos))
        if pos != len(data):
            raise ValueError(
                f"malformed Yjs update: {len(data) - pos} trailing bytes after the delete set"
            )
        delete_set = data[ds_start:]
        pieces = self.pieces
        if pieces:
            last = pieces[-1]
            if len(last) - len(_EMPTY_DELETE_SET) + len(delete_set) <= self.max_bytes:
                pieces[-1] = last[: -len(_EMPTY_DELETE_SET)] + delete_set
                return
        elif 1 + len(delete_set) <= self.max_bytes:
            pieces.append(b"\x00" + delete_set)
            return
        self._split_delete_set(entries)
        if not pieces:  # only a delete set without a single range: still one update
            pieces.append(b"\x00" + _EMPTY_DELETE_SET)

    def _split_delete_set(self, entries: list[tuple[int, int, int, int]]) -> None:
        """Emit struct-less pieces carrying the delete set, cut by client and range."""
        data = self.data
        view = self.view
        max_bytes = self.max_bytes
        parts: list[bytes | memoryview] = []
        num = 0
        size = 0

        def flush() -> None:
            nonlocal parts, num, size
            if num:
                self.pieces.append(b"".join([b"\x00", write_var_uint(num), *parts]))
            parts, num, size = [], 0, 0

        def add(client: int, num_ranges: int, start: int, end: int) -> None:
            nonlocal num, size
            head = write_var_uint(client) + write_var_uint(num_ranges)
            parts.append(head)
            parts.append(view[start:end])
            num += 1
            size += len(head) + end - start

        for client, num_ranges, start, end in entries:
            if num_ranges == 0:
                continue  # carries no deletion
            entry_size = _vlen(client) + _vlen(num_ranges) + end - start
            if 1 + _vlen(num + 1) + size + entry_size <= max_bytes:
                add(client, num_ranges, start, end)
                continue
            flush()
            if 1 + 1 + entry_size <= max_bytes:
                add(client, num_ranges, start, end)
                continue
            # One client's ranges alone are too big: cut between ranges.
            room = max_bytes - 2 - _vlen(client) - _vlen(num_ranges)
            run_start, run_count, pos = start, 0, start
            while pos < end:
                nxt = _skip_varint(data, _skip_varint(data, pos))
                if run_count and nxt - run_start > room:
                    add(client, run_count, run_start, pos)
                    flush()
                    run_start, run_count = pos, 0
                run_count += 1
                pos = nxt
            add(client, run_count, run_start, end)
        flush()
