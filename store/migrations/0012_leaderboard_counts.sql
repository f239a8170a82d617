-- 0012: how many people a board ranks, as running counts (issue 8).
--
-- A board says how many people it ranks ("ranked": the visible people with
-- points in the window). Counting them per query is a scan of the window's
-- whole index range: ~100,000 entries for the all-time board, tens of ms, too
-- slow for a board that must answer in 50 ms. So the count is kept, like the
-- totals themselves, by triggers on leaderboard_totals and
-- leaderboard_snapshots: each adds the change in "shown" rows (points > 0 AND
-- NOT hidden, the rank index's predicate), in the writer's transaction.
--
-- A count changes only when a person enters or leaves a board (first points
-- in a window, a reversal to zero, hiding or showing), not on every ledger
-- row. Each database session (writer = its backend pid) adds to rows of its
-- own, summed when read: no two sessions ever wait on one count row, so the
-- people who all earn their first points of a new week at once do not queue
-- on one, and a transaction that applies many events at once (progress
-- events in a batch) cannot deadlock with another over them. The rows of
-- sessions that ended are folded into writer 0 now and then
-- (leaderboard_counts_fold, from the server's periodic task), so that a
-- window has about as many rows as sessions writing.
CREATE TABLE leaderboard_counts (
    source text    NOT NULL CHECK (source IN ('totals', 'snapshots')),
    period text    NOT NULL,
    start  date    NOT NULL,
    writer integer NOT NULL,
    ranked bigint  NOT NULL,
    PRIMARY KEY (source, period, start, writer)
);

-- Rows in, rows out: each statement's transition tables, one change per window,
-- to this session's rows.
CREATE FUNCTION leaderboard_counts_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_source text := CASE TG_TABLE_NAME WHEN 'leaderboard_snapshots' THEN 'snapshots'
                                        ELSE 'totals' END;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO leaderboard_counts AS c (source, period, start, writer, ranked)
        SELECT v_source, period, start, pg_backend_pid(), count(*)
        FROM new_rows WHERE points > 0 AND NOT hidden
        GROUP BY 2, 3
        ON CONFLICT (source, period, start, writer) DO UPDATE SET ranked = c.ranked + EXCLUDED.ranked;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO leaderboard_counts AS c (source, period, start, writer, ranked)
        SELECT v_source, period, start, pg_backend_pid(), -count(*)
        FROM old_rows WHERE points > 0 AND NOT hidden
        GROUP BY 2, 3
        ON CONFLICT (source, period, start, writer) DO UPDATE SET ranked = c.ranked + EXCLUDED.ranked;
    ELSE
        INSERT INTO leaderboard_counts AS c (source, period, start, writer, ranked)
        SELECT v_source, period, start, pg_backend_pid(), sum(d)
        FROM (SELECT period, start, user_id, 1 AS d FROM new_rows
              WHERE points > 0 AND NOT hidden
              UNION ALL
              SELECT period, start, user_id, -1 FROM old_rows
              WHERE points > 0 AND NOT hidden) changes
        GROUP BY 2, 3 HAVING sum(d) <> 0
        ON CONFLICT (source, period, start, writer) DO UPDATE SET ranked = c.ranked + EXCLUDED.ranked;
    END IF;
    RETURN NULL;
END;
$$;

-- A trigger with transition tables serves one event: three per table.
-- Except inserts and updates of the live totals: every ledger row upserts three
-- of them in one statement, and almost never does one enter or leave a board.
-- A row trigger whose WHEN is checked before any function is called costs
-- nothing then, where a statement trigger would collect transition tables for
-- every upsert. (A rebuild, which writes them all at once, turns these two off
-- and recounts once: leaderboard_rebuild below.)
CREATE FUNCTION leaderboard_counts_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.points > 0 AND NOT OLD.hidden THEN
        INSERT INTO leaderboard_counts AS c (source, period, start, writer, ranked)
        VALUES ('totals', OLD.period, OLD.start, pg_backend_pid(), -1)
        ON CONFLICT (source, period, start, writer) DO UPDATE SET ranked = c.ranked - 1;
    END IF;
    IF NEW.points > 0 AND NOT NEW.hidden THEN
        INSERT INTO leaderboard_counts AS c (source, period, start, writer, ranked)
        VALUES ('totals', NEW.period, NEW.start, pg_backend_pid(), 1)
        ON CONFLICT (source, period, start, writer) DO UPDATE SET ranked = c.ranked + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER leaderboard_totals_count_insert
    AFTER INSERT ON leaderboard_totals
    FOR EACH ROW WHEN (NEW.points > 0 AND NOT NEW.hidden)
    EXECUTE FUNCTION leaderboard_counts_row();

CREATE TRIGGER leaderboard_totals_count_update
    AFTER UPDATE ON leaderboard_totals
    FOR EACH ROW
    WHEN ((OLD.points > 0 AND NOT OLD.hidden) IS DISTINCT FROM (NEW.points > 0 AND NOT NEW.hidden)
          OR (OLD.period, OLD.start, OLD.user_id) IS DISTINCT FROM
             (NEW.period, NEW.start, NEW.user_id))
    EXECUTE FUNCTION leaderboard_counts_row();
CREATE TRIGGER leaderboard_totals_count_delete
    AFTER DELETE ON leaderboard_totals REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_counts_apply();

CREATE TRIGGER leaderboard_snapshots_count_insert
    AFTER INSERT ON leaderboard_snapshots REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_counts_apply();
CREATE TRIGGER leaderboard_snapshots_count_update
    AFTER UPDATE ON leaderboard_snapshots REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_counts_apply();
CREATE TRIGGER leaderboard_snapshots_count_delete
    AFTER DELETE ON leaderboard_snapshots REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leaderboard_counts_apply();

-- The rows of sessions that have ended, folded into writer 0 (one statement;
-- one fold at a time). Returns the rows folded.
CREATE FUNCTION leaderboard_counts_fold() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('leaderboard_counts_fold')) THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM leaderboard_counts
        WHERE writer <> 0
          AND writer NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
        RETURNING source, period, start, ranked
    ), summed AS (
        SELECT source, period, start, sum(ranked) AS ranked, count(*) AS n
        FROM gone GROUP BY 1, 2, 3
    ), written AS (
        INSERT INTO leaderboard_counts AS c (source, period, start, writer, ranked)
        SELECT source, period, start, 0, ranked FROM summed
        ON CONFLICT (source, period, start, writer) DO UPDATE
        SET ranked = c.ranked + EXCLUDED.ranked
    )
    SELECT COALESCE(sum(n), 0) INTO v_rows FROM summed;
    RETURN v_rows;
END;
$$;

-- Counts from scratch (after rows came in with triggers off, as a bulk load).
CREATE FUNCTION leaderboard_recount() RETURNS void
LANGUAGE sql AS $$
    LOCK TABLE leaderboard_counts IN EXCLUSIVE MODE;
    DELETE FROM leaderboard_counts;
    INSERT INTO leaderboard_counts (source, period, start, writer, ranked)
    SELECT 'totals', period, start, 0, count(*)
    FROM leaderboard_totals WHERE points > 0 AND NOT hidden
    GROUP BY 2, 3;
    INSERT INTO leaderboard_counts (source, period, start, writer, ranked)
    SELECT 'snapshots', period, start, 0, count(*)
    FROM leaderboard_snapshots WHERE points > 0 AND NOT hidden
    GROUP BY 2, 3;
$$;

SELECT leaderboard_recount();

-- 0009's rebuild, with the row-by-row counting off while it writes every total
-- (millions of rows) and one recount at the end. ALTER TABLE is transactional:
-- a rebuild that fails leaves the triggers as they were.
CREATE OR REPLACE FUNCTION leaderboard_rebuild() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_rows bigint;
BEGIN
    LOCK TABLE leaderboard_totals IN EXCLUSIVE MODE;
    ALTER TABLE leaderboard_totals
        DISABLE TRIGGER leaderboard_totals_count_insert,
        DISABLE TRIGGER leaderboard_totals_count_update;
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
    ALTER TABLE leaderboard_totals
        ENABLE TRIGGER leaderboard_totals_count_insert,
        ENABLE TRIGGER leaderboard_totals_count_update;
    PERFORM leaderboard_recount();
    RETURN v_rows;
END;
$$;
