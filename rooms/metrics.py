"""Prometheus collectors for rooms; the server exposes them at /metrics.

Counters are bumped once per broadcast (by the number of recipients), never
once per recipient, so metrics add no per-peer work to the fan-out path.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("opencode_live_connections", "Open WebSocket connections")
ROOMS = Gauge("opencode_live_rooms", "Rooms loaded in memory")
MESSAGES_IN = Counter("opencode_live_messages_in_total", "Messages received", ["kind"])
BYTES_IN = Counter("opencode_live_bytes_in_total", "Bytes received in WebSocket frames")
MESSAGES_OUT = Counter("opencode_live_messages_out_total", "Messages sent")
BYTES_OUT = Counter("opencode_live_bytes_out_total", "Bytes sent in WebSocket frames")
FANOUT_SECONDS = Histogram(
    "opencode_live_fanout_seconds",
    "From a frame's arrival to its copies being handed to every peer's transport",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0),
)
ERRORS = Counter("opencode_live_errors_total", "Errors by kind", ["kind"])
CLOSES = Counter(
    "opencode_live_closes_total", "Connections closed by the server, by code", ["code"]
)
SLOW_CONSUMERS = Counter(
    "opencode_live_slow_consumer_disconnects_total",
    "Connections closed because they fell behind their send queue",
)
COMMIT_SECONDS = Histogram(
    "opencode_live_commit_seconds",
    "Time to commit one batch of updates to the durable log",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0),
)
COMMIT_BATCH = Histogram(
    "opencode_live_commit_batch_updates",
    "Updates per group-commit transaction",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
COMPACTIONS = Counter("opencode_live_compactions_total", "Room logs folded into a snapshot")
REFUSED_UPGRADES = Counter(
    "opencode_live_refused_upgrades_total",
    "Room sockets turned away before the upgrade (token or room access)",
    ["status"],
)
REFUSED_EDITS = Counter(
    "opencode_live_refused_edits_total", "Updates refused because the sender may not edit"
)
RATE_LIMITED = Counter(
    "opencode_live_rate_limited_total", "Requests or sockets over a rate limit", ["limit"]
)
BUS_MESSAGES_OUT = Counter(
    "opencode_live_bus_messages_out_total",
    "Messages queued for the other nodes on the cluster bus, by kind",
    ["kind"],
)
BUS_MESSAGES_IN = Counter(
    "opencode_live_bus_messages_in_total",
    "Messages received from other nodes on the cluster bus, by kind",
    ["kind"],
)
BUS_LAG_SECONDS = Histogram(
    "opencode_live_bus_lag_seconds",
    "From a bus message's publication (sender's clock) to its receipt here",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0),
)
BUS_CATCHUPS = Counter(
    "opencode_live_bus_catchups_total",
    "Reads of a room's log to fill what the bus did not bring, by cause",
    ["reason"],
)
BUS_SNAPSHOT_CATCHUPS = Counter(
    "opencode_live_bus_snapshot_catchups_total",
    "Catch-ups that read a snapshot: compaction had folded updates this node lacked",
)
BUS_CAUGHT_UP = Counter(
    "opencode_live_bus_caught_up_updates_total",
    "Updates delivered from the log by catch-ups (missed on the bus)",
)
BUS_DUPLICATES = Counter(
    "opencode_live_bus_duplicates_total",
    "Updates from the bus this node held already (dropped, not sent again)",
)
BUS_DROPPED = Counter(
    "opencode_live_bus_dropped_total",
    "Messages this node could not publish (Redis away, queue full); peers catch up",
)
BUS_CONNECTED = Gauge(
    "opencode_live_bus_connected", "1 while the bus subscription connection is up"
)
DEMO_SWAPS_LOST = Counter(
    "opencode_live_demo_swaps_lost_total",
    "Demo commands that found the shared demo changed by another node first (then redone)",
)
COMPACTIONS_REDUNDANT = Counter(
    "opencode_live_compactions_redundant_total",
    "Compactions that found the log already folded as far by another node (work repeated)",
)
