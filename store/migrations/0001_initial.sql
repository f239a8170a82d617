-- 0001: users, rooms and the durable room log (issue 3).
--
-- Never edit this file once it has been applied anywhere: the migration runner
-- records its checksum and refuses to start on a changed file. Add 0002_*.sql.

-- Keeps updated_at honest without every query having to remember it; later
-- tables (progress, points, achievements) reuse it.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- People. UUID keys so that the progress and gamification tables of later
-- work (user_progress, code_submissions, user_achievements, user_points) can
-- reference users without exposing a guessable counter.
CREATE TABLE users (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email        text        NOT NULL UNIQUE,
    username     text        NOT NULL UNIQUE,
    display_name text        NOT NULL DEFAULT '',
    role         text        NOT NULL DEFAULT 'student'
                 CHECK (role IN ('student', 'instructor', 'teaching_assistant', 'admin')),
    cohort       text        NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per room. last_seq is the sequence number of the room's newest
-- update: appends bump it under the row lock, which is what makes the
-- per-room sequence gap-free and ordered by commit, across processes.
CREATE TABLE rooms (
    id         text        PRIMARY KEY CHECK (id <> ''),
    title      text        NOT NULL DEFAULT '',
    owner      uuid        NULL REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    settings   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    last_seq   bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- "Rooms of this user", and the ON DELETE SET NULL above, without a scan.
CREATE INDEX rooms_owner_idx ON rooms (owner) WHERE owner IS NOT NULL;

-- The durable log: every Yjs update, in the order it was committed. The
-- primary key serves the log tail (room_id = $1 AND seq > $2 ORDER BY seq)
-- and compaction's delete. author has no foreign key on purpose: a token may
-- name a user this database does not know, and that must never make a batch
-- of other people's keystrokes fail to commit.
CREATE TABLE room_updates (
    room_id    text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        bigint      NOT NULL CHECK (seq > 0),
    update     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    author     uuid        NULL,
    PRIMARY KEY (room_id, seq)
);

-- Compaction output: a Yjs update covering the log up to upto_seq. The
-- primary key serves "latest snapshot of a room" (ORDER BY upto_seq DESC LIMIT 1).
CREATE TABLE room_snapshots (
    room_id    text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    upto_seq   bigint      NOT NULL CHECK (upto_seq >= 0),
    state      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, upto_seq)
);

-- Named versions that users save and restore; kept until deleted, unlike
-- snapshots, which compaction replaces.
CREATE TABLE room_versions (
    id         bigserial   PRIMARY KEY,
    room_id    text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    upto_seq   bigint      NOT NULL CHECK (upto_seq >= 0),
    state      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid        NULL
);

-- A room's versions, newest first.
CREATE INDEX room_versions_room_idx ON room_versions (room_id, id DESC);
