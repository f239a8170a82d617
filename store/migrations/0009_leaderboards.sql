-- 0009: leaderboards (issue 8): running totals per window, frozen standings,
-- who shows on public boards.
--
-- Windows are in UTC, whatever the person's time zone: a board is one ranking
-- shared by people in many zones, so its edges must be one instant for all.
-- week = ISO week (Monday 00:00 UTC to the next Monday), month = calendar
-- month, all = since the beginning. A ledger row counts in the windows that
-- hold its created_at (the occurred_at of the event that earned it; for a
-- reversal, the occurred_at of the reversal).

-- Cohorts that need care: minors are private on boards unless they opt in.
-- A cohort named by a token but missing here is treated as not minors.
CREATE TABLE cohorts (
    id         text        PRIMARY KEY CHECK (id <> '' AND char_length(id) <= 200),
    minors     boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- "Members of this cohort" for cohort boards and for the minors' default.
CREATE INDEX users_cohort_idx ON users (cohort) WHERE cohort IS NOT NULL;

-- A person's own choice (PUT /api/leaderboards/me). No row: the default of
-- their cohort (hidden for minors, shown otherwise).
CREATE TABLE leaderboard_prefs (
    user_id    uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    visible    boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- "Who chose to hide" without a scan, for the rank count that skips them.
CREATE INDEX leaderboard_prefs_hidden_idx ON leaderboard_prefs (user_id) WHERE NOT visible;

-- Whether a person is left out of other people's boards now: their own
-- choice, else hidden in a minors' cohort and shown elsewhere.
CREATE FUNCTION leaderboard_hidden(p_user uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT COALESCE(
        (SELECT visible FROM leaderboard_prefs WHERE user_id = p_user),
        NOT EXISTS (SELECT 1 FROM users u JOIN cohorts c ON c.id = u.cohort
                    WHERE u.id = p_user AND c.minors))
$$;

-- Running totals per person and window: what a live board reads, so that a
-- query never sums the ledger (5M rows cannot be summed in 50 ms). Kept by
-- the trigger below, in the same transaction as the ledger row, so a board
-- never disagrees with the ledger. reached_at is when the total last changed
-- (the created_at of the newest non-zero row): the tie-break, earlier first.
-- hidden is leaderboard_hidden() of the person, copied in (and kept by the
-- triggers further down) so that a rank is one count over one index range
-- rather than a count minus a join with everyone hidden.
CREATE TABLE leaderboard_totals (
    period     text        NOT NULL CHECK (period IN ('all', 'week', 'month')),
    start      date        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    points     bigint      NOT NULL,
    reached_at timestamptz NOT NULL,
    hidden     boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (period, start, user_id)
);

-- A board's order over the people shown (top N, neighbours, "how many ahead
-- of me"): one range of one index. Queries repeat the predicate literally.
CREATE INDEX leaderboard_totals_rank_idx
    ON leaderboard_totals (period, start, points DESC, reached_at, user_id)
    WHERE points > 0 AND NOT hidden;
-- ON DELETE CASCADE from users, and re-hiding one person's rows.
CREATE INDEX leaderboard_totals_user_idx ON leaderboard_totals (user_id);

-- The window starts of a moment, in UTC: one definition for the trigger,
-- the rebuild and the queries (progress/leaderboard.py calls it too).
CREATE FUNCTION leaderboard_start(p_period text, p_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_period
        WHEN 'all' THEN date '1970-01-01'
        WHEN 'week' THEN date_trunc('week', p_at AT TIME ZONE 'UTC')::date
        WHEN 'month' THEN date_trunc('month', p_at AT TIME ZONE 'UTC')::date
    END
$$;

-- Capped rows that granted nothing change no total and are skipped.
CREATE FUNCTION user_points_to_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.points = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO leaderboard_totals AS t (period, start, user_id, points, reached_at, hidden)
    SELECT p, leaderboard_start(p, NEW.created_at), NEW.user_id, NEW.points, NEW.created_at,
           h.hidden
    FROM unnest(ARRAY['all', 'week', 'month']) AS p,
         (SELECT leaderboard_hidden(NEW.user_id) AS hidden) AS h
    ON CONFLICT (period, start, user_id) DO UPDATE
    SET points = t.points + EXCLUDED.points,
        reached_at = GREATEST(t.reached_at, EXCLUDED.reached_at);
    RETURN NULL;
END;
$$;

CREATE TRIGGER user_points_totals
    AFTER INSERT ON user_points
    FOR EACH ROW EXECUTE FUNCTION user_points_to_totals();

-- Totals from the ledger, from scratch: for rows that came in with triggers
-- off (a bulk load, a restore) and for the ledger already there now.
CREATE FUNCTION leaderboard_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rows bigint;
BEGIN
    LOCK TABLE leaderboard_totals IN EXCLUSIVE MODE;
    DELETE FROM leaderboard_totals;
    INSERT INTO leaderboard_totals (period, start, user_id, points, reached_at)
    SELECT p.period, leaderboard_start(p.period, u.created_at), u.user_id,
           sum(u.points), max(u.created_at)
    FROM user_points u
    CROSS JOIN (VALUES ('all'), ('week'), ('month')) AS p (period)
    WHERE u.points <> 0
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    UPDATE leaderboard_totals SET hidden = true
    WHERE user_id IN (SELECT user_id FROM leaderboard_hidden_people);
    RETURN v_rows;
END;
$$;


-- A closed window's final standings, written once by the first query after it
-- closed; later ledger rows for that window (reversals, backfills) change the
-- live totals but never these. Everyone with points is kept, hidden or not:
-- hiding is applied when the board is read, so a person who hides later is
-- hidden from old boards too.
CREATE TABLE leaderboard_frozen (
    period    text        NOT NULL CHECK (period IN ('week', 'month')),
    start     date        NOT NULL,
    entries   integer     NOT NULL,
    frozen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, start)
);

CREATE TABLE leaderboard_snapshots (
    period     text        NOT NULL,
    start      date        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    points     bigint      NOT NULL,
    reached_at timestamptz NOT NULL,
    hidden     boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (period, start, user_id),
    FOREIGN KEY (period, start) REFERENCES leaderboard_frozen (period, start)
);

CREATE INDEX leaderboard_snapshots_rank_idx
    ON leaderboard_snapshots (period, start, points DESC, reached_at, user_id)
    WHERE points > 0 AND NOT hidden;
CREATE INDEX leaderboard_snapshots_user_idx ON leaderboard_snapshots (user_id);

-- Everyone hidden now (for rebuilds; boards read the copied flag).
CREATE VIEW leaderboard_hidden_people AS
    SELECT user_id FROM leaderboard_prefs WHERE NOT visible
    UNION
    SELECT u.id FROM cohorts c JOIN users u ON u.cohort = c.id
    WHERE c.minors AND NOT EXISTS (
        SELECT 1 FROM leaderboard_prefs p WHERE p.user_id = u.id AND p.visible);

-- Copy a change of who is hidden into the totals and the snapshots (hiding
-- applies to old boards too). Rare writes (a person's choice, a cohort's
-- flag, a person moving cohort) pay here so that every board read is one range.
CREATE FUNCTION leaderboard_rehide(p_users uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE leaderboard_totals SET hidden = leaderboard_hidden(user_id)
    WHERE user_id = ANY (p_users) AND hidden IS DISTINCT FROM leaderboard_hidden(user_id);
    UPDATE leaderboard_snapshots SET hidden = leaderboard_hidden(user_id)
    WHERE user_id = ANY (p_users) AND hidden IS DISTINCT FROM leaderboard_hidden(user_id);
$$;

CREATE FUNCTION leaderboard_prefs_rehide() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM leaderboard_rehide(ARRAY[OLD.user_id]);
    ELSE
        PERFORM leaderboard_rehide(ARRAY[NEW.user_id]);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER leaderboard_prefs_rehide
    AFTER INSERT OR UPDATE OR DELETE ON leaderboard_prefs
    FOR EACH ROW EXECUTE FUNCTION leaderboard_prefs_rehide();

CREATE FUNCTION users_cohort_rehide() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM leaderboard_rehide(ARRAY[NEW.id]);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_cohort_rehide
    AFTER UPDATE OF cohort ON users
    FOR EACH ROW WHEN (OLD.cohort IS DISTINCT FROM NEW.cohort)
    EXECUTE FUNCTION users_cohort_rehide();

CREATE FUNCTION cohorts_rehide() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_cohort text := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM leaderboard_rehide(ARRAY(SELECT id FROM users WHERE cohort = v_cohort));
    RETURN NULL;
END;
$$;

CREATE TRIGGER cohorts_rehide
    AFTER INSERT OR UPDATE OF minors OR DELETE ON cohorts
    FOR EACH ROW EXECUTE FUNCTION cohorts_rehide();

SELECT leaderboard_rebuild();
