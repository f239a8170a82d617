-- 0007: progress, submissions, points, streaks and achievements (issue 8).
--
-- The source of truth is progress_events: an append-only ledger of what the
-- server observed (a run finished, a submission was graded, a lesson was
-- opened...). progress/events.py applies each event in one transaction that
-- also writes everything the event caused (points, progress, achievements),
-- so a point can always be traced to the event that earned it, and a replayed
-- event (same idempotency key) finds the work done and changes nothing.
-- Corrections are new events that reverse an earlier one; nothing is deleted.

-- Streaks are counted in calendar days where the person lives. The trigger
-- accepts only IANA zone names (Europe/Paris): an unknown one stored here
-- would make every later event of the person fail to apply, and POSIX
-- strings like 'UTC+3' mean the opposite of what they seem (three hours
-- *behind* UTC). The default needs no look-up (pg_timezone_names is slow).
ALTER TABLE users ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

CREATE FUNCTION users_check_time_zone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.time_zone = 'UTC'
       OR EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = NEW.time_zone) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'unknown time zone %: use an IANA name such as Europe/Paris',
        quote_literal(NEW.time_zone)
        USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER users_check_time_zone
    BEFORE INSERT OR UPDATE OF time_zone ON users
    FOR EACH ROW EXECUTE FUNCTION users_check_time_zone();

-- Refuses UPDATE and direct DELETE on a ledger table. A DELETE cascading from
-- users (pg_trigger_depth() > 1: it runs inside the foreign key's trigger) is
-- let through, so that a person can still be erased entirely.
CREATE FUNCTION refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND pg_trigger_depth() > 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused (correct with a reversing event)',
        TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

-- The event ledger. idempotency_key is the caller's name for the event (e.g.
-- "run:<run id>:graded"): the UNIQUE constraint is what makes a duplicate, even
-- one delivered concurrently on another connection, wait for the first and
-- then do nothing. payload is the event's own fields (validated by the
-- msgspec structs in progress/events.py). reverses names the event a
-- correction undoes; UNIQUE, so an event is reversed at most once.
CREATE TABLE progress_events (
    id              bigserial   PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE
                    CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type            text        NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb
                    CHECK (jsonb_typeof(payload) = 'object'),
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    reverses        bigint      NULL UNIQUE REFERENCES progress_events (id),
    CHECK (reverses IS NULL OR reverses <> id)
);

-- A person's events of a type (counts for achievements, the history page).
CREATE INDEX progress_events_user_type_idx ON progress_events (user_id, type, occurred_at);

CREATE TRIGGER progress_events_append_only
    BEFORE UPDATE OR DELETE ON progress_events
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change();

-- Progress through a lesson: opened (started_at), studied (time_spent),
-- exercises passed (percentage), completed.
CREATE TABLE user_progress (
    id                 bigserial   PRIMARY KEY,
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lesson_id          text        NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    status             text        NOT NULL DEFAULT 'in_progress'
                       CHECK (status IN ('not_started', 'in_progress', 'completed')),
    percentage         real        NOT NULL DEFAULT 0 CHECK (percentage BETWEEN 0 AND 100),
    started_at         timestamptz NULL,
    completed_at       timestamptz NULL,
    time_spent_seconds integer     NOT NULL DEFAULT 0 CHECK (time_spent_seconds >= 0),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, lesson_id)
);

CREATE TRIGGER user_progress_set_updated_at
    BEFORE UPDATE ON user_progress
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- "Who is in this lesson" for staff, and the ON DELETE CASCADE from lessons.
CREATE INDEX user_progress_lesson_idx ON user_progress (lesson_id, status);

-- Every graded submission, as the executor graded it. files is the code
-- (path -> text); code_hash (sha256 of the canonical files) is what "the same
-- code again" means. event_id is the submission.graded event that stored it.
CREATE TABLE code_submissions (
    id               bigserial   PRIMARY KEY,
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exercise_id      text        NOT NULL REFERENCES exercises (id) ON DELETE CASCADE,
    exercise_version integer     NULL,
    event_id         bigint      NOT NULL UNIQUE REFERENCES progress_events (id),
    room_id          text        NULL,
    files            jsonb       NOT NULL CHECK (jsonb_typeof(files) = 'object'),
    language         text        NOT NULL CHECK (language <> ''),
    test_results     jsonb       NOT NULL DEFAULT '[]'::jsonb,
    score            double precision NOT NULL CHECK (score BETWEEN 0 AND 1),
    passed           boolean     NOT NULL,
    feedback         text        NOT NULL DEFAULT '',
    execution_ms     double precision NULL CHECK (execution_ms IS NULL OR execution_ms >= 0),
    memory_bytes     bigint      NULL CHECK (memory_bytes IS NULL OR memory_bytes >= 0),
    code_hash        text        NOT NULL CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- A person's submissions of an exercise, newest first; "was this code seen".
CREATE INDEX code_submissions_user_exercise_idx
    ON code_submissions (user_id, exercise_id, created_at DESC);
CREATE INDEX code_submissions_hash_idx ON code_submissions (user_id, exercise_id, code_hash);
-- The ON DELETE CASCADE from exercises, and per-exercise statistics.
CREATE INDEX code_submissions_exercise_idx ON code_submissions (exercise_id);

-- Per person and exercise: what the XP rules need, kept under the same lock
-- as the events (best score so far, XP the rules gave before daily caps,
-- solution seen, first pass; a pass after viewing the solution is no first try).
CREATE TABLE exercise_progress (
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exercise_id        text        NOT NULL REFERENCES exercises (id) ON DELETE CASCADE,
    attempts           integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    best_score         double precision NOT NULL DEFAULT 0 CHECK (best_score BETWEEN 0 AND 1),
    xp                 integer     NOT NULL DEFAULT 0,
    first_passed_at    timestamptz NULL,
    passed_first_try   boolean     NOT NULL DEFAULT false,
    solution_viewed_at timestamptz NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, exercise_id)
);

CREATE TRIGGER exercise_progress_set_updated_at
    BEFORE UPDATE ON exercise_progress
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE INDEX exercise_progress_exercise_idx ON exercise_progress (exercise_id);

-- Distinct pair-programming partners (minutes together), for "paired with N people".
CREATE TABLE user_partners (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    partner_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    minutes    integer     NOT NULL DEFAULT 0 CHECK (minutes >= 0),
    first_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, partner_id),
    CHECK (user_id <> partner_id)
);

CREATE INDEX user_partners_partner_idx ON user_partners (partner_id);

-- The achievement catalogue, loaded from progress/achievements.yaml (or a
-- file given to `opencode-live achievements load`). An achievement dropped
-- from the file is retired, not deleted: people keep what they earned.
CREATE TABLE achievements (
    id          text        PRIMARY KEY
                CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$' AND char_length(id) <= 64),
    name        text        NOT NULL CHECK (name <> ''),
    description text        NOT NULL DEFAULT '',
    icon        text        NOT NULL DEFAULT '',
    xp          integer     NOT NULL DEFAULT 0 CHECK (xp >= 0),
    rarity      text        NOT NULL
                CHECK (rarity IN ('common', 'rare', 'epic', 'legendary')),
    conditions  jsonb       NOT NULL CHECK (jsonb_typeof(conditions) = 'array'),
    retired_at  timestamptz NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER achievements_set_updated_at
    BEFORE UPDATE ON achievements
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Progress towards each achievement ({"metric": {"value": v, "target": t}}),
-- and when it was awarded (NULL: not yet). event_id is the event that
-- awarded it (a backfill writes an achievement.backfilled event).
CREATE TABLE user_achievements (
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id text        NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    progress       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    awarded_at     timestamptz NULL,
    event_id       bigint      NULL REFERENCES progress_events (id),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, achievement_id)
);

CREATE TRIGGER user_achievements_set_updated_at
    BEFORE UPDATE ON user_achievements
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Who has an achievement (badge pages, backfill), and "what did event X award".
CREATE INDEX user_achievements_awarded_idx
    ON user_achievements (achievement_id, awarded_at) WHERE awarded_at IS NOT NULL;
CREATE INDEX user_achievements_event_idx
    ON user_achievements (event_id) WHERE event_id IS NOT NULL;

-- The points ledger: one row per award, negative rows for reversals (reverses
-- names the row undone). day is the person's local calendar day of the event
-- the points came from (the day the daily cap counted them on). wanted is
-- what the rules asked for before the daily cap; points what was granted.
CREATE TABLE user_points (
    id         bigserial   PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       text        NOT NULL CHECK (type ~ '^[a-z_]+$'),
    points     integer     NOT NULL,
    wanted     integer     NOT NULL DEFAULT 0,
    reason     text        NOT NULL DEFAULT '',
    metadata   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    event_id   bigint      NOT NULL REFERENCES progress_events (id),
    day        date        NOT NULL,
    reverses   bigint      NULL UNIQUE REFERENCES user_points (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Leaderboards: a person's points over time, and everyone's points in a period.
CREATE INDEX user_points_user_idx ON user_points (user_id, created_at) INCLUDE (points);
CREATE INDEX user_points_created_idx ON user_points (created_at, user_id) INCLUDE (points);
-- What an event awarded (replays answer from it; reversals undo it).
CREATE INDEX user_points_event_idx ON user_points (event_id);

CREATE TRIGGER user_points_append_only
    BEFORE UPDATE OR DELETE ON user_points
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change();

-- Daily caps per point type (NULL: no cap). Operators may change a cap; the
-- new one applies to the tallies of days still to come and to today's
-- remaining room.
CREATE TABLE point_caps (
    type      text    PRIMARY KEY CHECK (type ~ '^[a-z_]+$'),
    daily_cap integer NULL CHECK (daily_cap IS NULL OR daily_cap >= 0)
);

INSERT INTO point_caps (type, daily_cap) VALUES
    ('exercise', 500),
    ('lesson', 200),
    ('demo', 100),
    ('pairing', 120),
    ('question', 10),
    ('answer', 50),
    ('achievement', NULL);

-- Points granted per person, local day and type. The cap in force when the
-- row was last written is copied in, so the CHECK holds the line in the
-- database itself, whatever code writes here.
CREATE TABLE user_daily_points (
    user_id uuid    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day     date    NOT NULL,
    type    text    NOT NULL,
    points  integer NOT NULL DEFAULT 0 CHECK (points >= 0),
    cap     integer NULL,
    PRIMARY KEY (user_id, day, type),
    CONSTRAINT user_daily_points_capped CHECK (cap IS NULL OR points <= cap)
);

-- Grant up to p_wanted points of a type on a person's day, within the day's
-- cap; returns what was granted. The tally row is locked (FOR UPDATE) while
-- the remaining room is computed, so concurrent grants take turns and the
-- sum never passes the cap.
CREATE FUNCTION grant_capped_points(p_user uuid, p_day date, p_type text, p_wanted integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_cap     integer;
    v_points  integer;
    v_granted integer;
BEGIN
    IF p_wanted <= 0 THEN
        RETURN 0;
    END IF;
    SELECT daily_cap INTO v_cap FROM point_caps WHERE type = p_type;
    INSERT INTO user_daily_points (user_id, day, type, points, cap)
    VALUES (p_user, p_day, p_type, 0, v_cap)
    ON CONFLICT (user_id, day, type) DO NOTHING;
    SELECT points INTO v_points FROM user_daily_points
    WHERE user_id = p_user AND day = p_day AND type = p_type
    FOR UPDATE;
    IF v_cap IS NULL THEN
        v_granted := p_wanted;
    ELSE
        v_granted := LEAST(p_wanted, GREATEST(v_cap - v_points, 0));
    END IF;
    UPDATE user_daily_points
    SET points = points + v_granted,
        cap = CASE WHEN v_cap IS NULL THEN NULL ELSE GREATEST(v_cap, points + v_granted) END
    WHERE user_id = p_user AND day = p_day AND type = p_type;
    RETURN v_granted;
END;
$$;

-- Per person: total XP (for leaderboards without summing the ledger) and
-- streak state. The row is also the person's lock: every event of a person
-- takes it FOR UPDATE first, so a person's events apply one at a time while
-- different people's run in parallel.
CREATE TABLE user_stats (
    user_id        uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    xp             bigint      NOT NULL DEFAULT 0,
    streak_current integer     NOT NULL DEFAULT 0 CHECK (streak_current >= 0),
    streak_longest integer     NOT NULL DEFAULT 0 CHECK (streak_longest >= streak_current),
    streak_last_day date       NULL,
    grace_days     integer     NOT NULL DEFAULT 0 CHECK (grace_days BETWEEN 0 AND 2),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER user_stats_set_updated_at
    BEFORE UPDATE ON user_stats
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Leaderboard of all time.
CREATE INDEX user_stats_xp_idx ON user_stats (xp DESC, user_id);
