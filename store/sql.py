"""Every query the store runs, in one place, with why it is shaped the way it is."""

from __future__ import annotations

#: Group commit in one statement (one round trip, atomic without BEGIN/COMMIT).
#: ``input`` numbers the batch entries; ``bumped`` creates missing rooms and
#: moves each room's last_seq forward by its count under the row lock, taking
#: the locks in room-id order so that two batches never deadlock; each entry's
#: seq is then last_seq - count + its rank within the room. The row lock is
#: held until commit, so sequences are gap-free and follow commit order, also
#: with several processes appending to the same room.
APPEND_UPDATES = """
WITH input AS (
    SELECT t.room_id, t.data, t.author, t.ord
    FROM unnest($1::text[], $2::bytea[], $3::uuid[])
         WITH ORDINALITY AS t(room_id, data, author, ord)
), counts AS (
    SELECT room_id, count(*) AS n FROM input GROUP BY room_id
), bumped AS (
    INSERT INTO rooms AS r (id, last_seq)
    SELECT room_id, n FROM counts ORDER BY room_id
    ON CONFLICT (id) DO UPDATE SET last_seq = r.last_seq + EXCLUDED.last_seq
    RETURNING r.id, r.last_seq
), numbered AS (
    SELECT i.ord, i.room_id, i.data, i.author,
           b.last_seq - c.n + row_number() OVER (PARTITION BY i.room_id ORDER BY i.ord) AS seq
    FROM input i
    JOIN bumped b ON b.id = i.room_id
    JOIN counts c ON c.room_id = i.room_id
), stored AS (
    INSERT INTO room_updates (room_id, seq, update, author)
    SELECT room_id, seq, data, author FROM numbered
)
SELECT seq FROM numbered ORDER BY ord
"""

#: Latest snapshot and the tail after it in ONE statement, so both come from
#: the same MVCC snapshot even while a compaction commits in between.
LOAD_ROOM = """
WITH snap AS (
    SELECT upto_seq, state FROM room_snapshots
    WHERE room_id = $1 ORDER BY upto_seq DESC LIMIT 1
)
SELECT true AS is_snapshot, upto_seq AS seq, state AS data FROM snap
UNION ALL
SELECT false, seq, update FROM room_updates
WHERE room_id = $1 AND seq > coalesce((SELECT upto_seq FROM snap), 0)
ORDER BY is_snapshot DESC, seq
"""

#: What a node that holds a room up to $2 lacks: the log after $2, or, when
#: compaction folded some of those rows, the latest snapshot and the log after
#: it. One statement, so snapshot and tail come from the same MVCC snapshot.
ROOM_LOG_AFTER = """
WITH snap AS (
    SELECT upto_seq, state FROM room_snapshots
    WHERE room_id = $1 ORDER BY upto_seq DESC LIMIT 1
)
SELECT true AS is_snapshot, upto_seq AS seq, state AS data FROM snap WHERE upto_seq > $2
UNION ALL
SELECT false, seq, update FROM room_updates
WHERE room_id = $1 AND seq > greatest($2, coalesce((SELECT upto_seq FROM snap), 0))
ORDER BY is_snapshot DESC, seq
"""

#: Where each room's log ends: the cluster bus's periodic check.
ROOM_HEADS = "SELECT id, last_seq FROM rooms WHERE id = ANY($1::text[])"

LOG_SIZE = """
SELECT count(*) AS rows, coalesce(sum(octet_length(update)), 0)::bigint AS bytes
FROM room_updates
WHERE room_id = $1
  AND seq > coalesce((SELECT max(upto_seq) FROM room_snapshots WHERE room_id = $1), 0)
"""

#: Lock space (first key of the two-int advisory lock) for per-room compaction,
#: so that compactions of one room take turns while appends go on unhindered.
COMPACT_LOCK_CLASS = 0x6F636C63  # "oclc"

COMPACT_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext($2))"

ROOM_LAST_SEQ = "SELECT last_seq FROM rooms WHERE id = $1"

#: Stores the snapshot only if it is newer than the latest one (else a no-op),
#: then drops what it covers: log rows up to upto_seq and older snapshots.
#: Rows appended meanwhile have seq > upto_seq and are untouched.
COMPACT = """
WITH latest AS (
    SELECT coalesce(max(upto_seq), 0) AS upto_seq FROM room_snapshots WHERE room_id = $1
), snap AS (
    INSERT INTO room_snapshots (room_id, upto_seq, state)
    SELECT $1, $2, $3 FROM latest WHERE $2 > latest.upto_seq
    RETURNING upto_seq
), dropped_log AS (
    DELETE FROM room_updates WHERE room_id = $1 AND seq <= (SELECT upto_seq FROM snap)
), dropped_snapshots AS (
    DELETE FROM room_snapshots WHERE room_id = $1 AND upto_seq < (SELECT upto_seq FROM snap)
)
SELECT count(*) FROM snap
"""

_VERSION_INFO_COLUMNS = "id, room_id, name, upto_seq, created_at, created_by"

#: Saving a version of a room nobody has typed in yet creates the room row.
CREATE_VERSION = f"""
WITH room AS (
    INSERT INTO rooms (id) VALUES ($1) ON CONFLICT (id) DO NOTHING
)
INSERT INTO room_versions (room_id, name, upto_seq, state, created_by)
VALUES ($1, $2, $3, $4, $5)
RETURNING {_VERSION_INFO_COLUMNS}, state
"""

LIST_VERSIONS = f"""
SELECT {_VERSION_INFO_COLUMNS} FROM room_versions WHERE room_id = $1 ORDER BY id DESC
"""

GET_VERSION = f"""
SELECT {_VERSION_INFO_COLUMNS}, state FROM room_versions WHERE room_id = $1 AND id = $2
"""

ROOM_EXISTS = "SELECT EXISTS (SELECT 1 FROM rooms WHERE id = $1)"

#: Create or refresh a user from a token's claims on sign-in; the username is
#: the token's subject, so the same person keeps one row across sign-ins.
UPSERT_USER = """
INSERT INTO users AS u (id, username, display_name, role, cohort)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
SET display_name = EXCLUDED.display_name, role = EXCLUDED.role, cohort = EXCLUDED.cohort
RETURNING u.id
"""

#: True once: a second exchange of the same sign-in token finds the row there.
CONSUME_SIGNIN_TOKEN = """
INSERT INTO signin_tokens_used (jti, user_id) VALUES ($1, $2)
ON CONFLICT (jti) DO NOTHING
RETURNING jti
"""

#: One person's standing in a room: the room's rules and their member row.
ROOM_ACCESS = """
SELECT r.owner, r.visibility, r.cohort, m.role AS member_role
FROM rooms r
LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2
WHERE r.id = $1
"""

_ROOM_INFO_COLUMNS = "r.id, r.title, r.owner, r.visibility, r.cohort, r.created_at"

#: A new room; nothing when the id is taken (the caller says so).
CREATE_ROOM = f"""
INSERT INTO rooms AS r (id, title, owner, visibility, cohort)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO NOTHING
RETURNING {_ROOM_INFO_COLUMNS}
"""

GET_ROOM = f"SELECT {_ROOM_INFO_COLUMNS} FROM rooms r WHERE r.id = $1"

#: Title, visibility and cohort; a NULL argument keeps the stored value, and
#: $5 says whether $4 (the cohort) is meant, since NULL is a valid cohort.
UPDATE_ROOM = f"""
UPDATE rooms AS r
SET title = coalesce($2, r.title),
    visibility = coalesce($3, r.visibility),
    cohort = CASE WHEN $5 THEN $4 ELSE r.cohort END
WHERE r.id = $1
RETURNING {_ROOM_INFO_COLUMNS}
"""

#: Rooms a person can enter, newest first: every room for staff, else owned,
#: member of, open to their cohort, or public. $2: staff; $3: cohort.
ROOMS_FOR = f"""
SELECT {_ROOM_INFO_COLUMNS}, m.role AS member_role
FROM rooms r
LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $1
WHERE $2
   OR r.owner = $1
   OR m.user_id IS NOT NULL
   OR (r.visibility = 'cohort' AND r.cohort = $3)
   OR r.visibility = 'public'
ORDER BY r.created_at DESC, r.id
LIMIT $4
"""

ROOM_MEMBERS = """
SELECT m.user_id, u.username, u.display_name, m.role, m.added_at
FROM room_members m JOIN users u ON u.id = m.user_id
WHERE m.room_id = $1
ORDER BY m.added_at, m.user_id
"""

SET_MEMBER = """
INSERT INTO room_members AS m (room_id, user_id, role, added_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (room_id, user_id) DO UPDATE SET role = EXCLUDED.role
RETURNING m.user_id
"""

REMOVE_MEMBER = "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2 RETURNING user_id"

#: A user named before they ever signed in (added as a member by id): the row
#: exists for the foreign key and is filled in at their first sign-in.
ENSURE_USER = """
INSERT INTO users (id, username, display_name) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""

GET_USER = "SELECT id, username, display_name, role, cohort FROM users WHERE id = $1"

#: Add or replace a demo; xmax = 0 tells an insert from an update.
PUT_DEMO = """
INSERT INTO demos AS d (id, title, kind, document, created_by)
VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (id) DO UPDATE
SET title = EXCLUDED.title, kind = EXCLUDED.kind, document = EXCLUDED.document
RETURNING (xmax = 0) AS created
"""

GET_DEMO = "SELECT document::text FROM demos WHERE id = $1"

LIST_DEMOS = """
SELECT id, title, kind, created_at, updated_at FROM demos
ORDER BY created_at DESC, id LIMIT $1
"""

DELETE_DEMO = "DELETE FROM demos WHERE id = $1 RETURNING id"


# -- questions, quiz answers and demo progress (issue 7) ----------------------------------------

_QUESTION_COLUMNS = (
    "q.id, q.room_id, q.demo_id, q.step_id, q.at, q.text, q.asked_by, "
    "u.display_name AS by_name, q.votes, q.answered, q.created_at"
)

#: A new question, with its asker's display name for the broadcast.
ASK_QUESTION = f"""
WITH q AS (
    INSERT INTO questions (room_id, demo_id, step_id, at, text, asked_by)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING *
)
SELECT {_QUESTION_COLUMNS} FROM q JOIN users u ON u.id = q.asked_by
"""

#: The question a vote is about, locked so the vote and the count change together.
LOCK_QUESTION = "SELECT asked_by FROM questions WHERE id = $1 AND room_id = $2 FOR UPDATE"

ADD_VOTE = """
INSERT INTO question_votes (question_id, user_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING
RETURNING question_id
"""

REMOVE_VOTE = "DELETE FROM question_votes WHERE question_id = $1 AND user_id = $2 RETURNING 1"

#: $2 is +1 or -1: the vote row just added or removed, under the row lock.
COUNT_VOTE = "UPDATE questions SET votes = votes + $2 WHERE id = $1"

GET_QUESTION = f"""
SELECT {_QUESTION_COLUMNS} FROM questions q JOIN users u ON u.id = q.asked_by
WHERE q.id = $1 AND q.room_id = $2
"""

MARK_ANSWERED = f"""
WITH q AS (
    UPDATE questions SET answered = $3 WHERE id = $1 AND room_id = $2 RETURNING *
)
SELECT {_QUESTION_COLUMNS} FROM q JOIN users u ON u.id = q.asked_by
"""

#: Listing order: unanswered first, most voted, oldest (questions_listing_idx).
LIST_QUESTIONS = f"""
SELECT {_QUESTION_COLUMNS}
FROM questions q JOIN users u ON u.id = q.asked_by
WHERE q.room_id = $1 AND q.demo_id = $2
ORDER BY q.answered, q.votes DESC, q.created_at, q.id
LIMIT $3
"""

#: Which of a room's questions about a demo each of these people upvoted.
VOTES_OF = """
SELECT v.user_id, v.question_id
FROM question_votes v JOIN questions q ON q.id = v.question_id
WHERE v.user_id = ANY($3::uuid[]) AND q.room_id = $1 AND q.demo_id = $2
ORDER BY v.question_id
"""

#: A later answer replaces the earlier one of the same person.
PUT_QUIZ_ANSWER = """
INSERT INTO quiz_answers AS a (room_id, demo_id, step_id, user_id, choice, text, correct)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (room_id, demo_id, step_id, user_id) DO UPDATE
SET choice = EXCLUDED.choice, text = EXCLUDED.text, correct = EXCLUDED.correct,
    answered_at = now()
"""

#: Answers per step and choice (NULL choice: free text) of a room's demo;
#: $3 NULL for every step.
QUIZ_COUNTS = """
SELECT step_id, choice, count(*) AS answers, count(*) FILTER (WHERE correct) AS correct
FROM quiz_answers
WHERE room_id = $1 AND demo_id = $2 AND ($3::text IS NULL OR step_id = $3)
GROUP BY step_id, choice
ORDER BY step_id, choice
"""

_PROGRESS_COLUMNS = (
    "p.user_id, p.demo_id, p.position, p.step_id, p.fraction, p.completed, p.updated_at"
)

GET_PROGRESS = f"""
SELECT {_PROGRESS_COLUMNS} FROM demo_progress p WHERE p.user_id = $1 AND p.demo_id = $2
"""

#: Position and step are the latest; fraction the furthest; completed sticks.
PUT_PROGRESS = f"""
INSERT INTO demo_progress AS p (user_id, demo_id, position, step_id, fraction, completed)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (user_id, demo_id) DO UPDATE
SET position = EXCLUDED.position,
    step_id = EXCLUDED.step_id,
    fraction = greatest(p.fraction, EXCLUDED.fraction),
    completed = p.completed OR EXCLUDED.completed
RETURNING {_PROGRESS_COLUMNS}
"""

LIST_PROGRESS = f"""
SELECT {_PROGRESS_COLUMNS}, u.username, u.display_name
FROM demo_progress p JOIN users u ON u.id = p.user_id
WHERE p.demo_id = $1
ORDER BY p.updated_at DESC, p.user_id
LIMIT $2
"""
