-- 0010: the event path in the database (issue 8): an event is applied in one
-- to five round trips instead of about seventeen, and writes less.
--
-- progress/events.py still decides what an event means; these functions do
-- the parts every event shares, next to the data: open the event (its
-- person's day, the idempotency key, the person's lock), grant capped points
-- into the ledger, and close it (the streak, then the achievements whose
-- metrics it touched). Each call is one statement inside the caller's
-- transaction, so the whole event still commits or rolls back as one; an
-- event that needs nothing but fixed points is one call in all
-- (progress_event_apply), a statement being a transaction of its own.

-- user_points had two indexes that no query reads any more: the API pages a
-- person's ledger by id (0008's user_points_user_id_idx) and boards read the
-- running totals (0009). Each was one more index write per ledger row.
DROP INDEX user_points_user_idx;
DROP INDEX user_points_created_idx;

-- "At most one reversal of an event (of a ledger row)" needs only the
-- reversals in its unique index: the NULLs of every other row were one more
-- index entry each and never looked up.
ALTER TABLE progress_events DROP CONSTRAINT progress_events_reverses_key;
CREATE UNIQUE INDEX progress_events_reverses_key
    ON progress_events (reverses) WHERE reverses IS NOT NULL;
ALTER TABLE user_points DROP CONSTRAINT user_points_reverses_key;
CREATE UNIQUE INDEX user_points_reverses_key
    ON user_points (reverses) WHERE reverses IS NOT NULL;

-- The metrics an achievement's conditions use, so that an event looks only at
-- the achievements it can change without unpacking every rule's JSON.
ALTER TABLE achievements ADD COLUMN metrics jsonb
    GENERATED ALWAYS AS (jsonb_path_query_array(conditions, '$[*].metric')) STORED;

-- The running totals of 0009, written with less work: the three rows in one
-- statement, and whether the person is hidden (two lookups) asked only when a
-- row was new. A new row goes in as shown and is hidden right after, in the
-- same transaction, so no board ever sees it shown.
CREATE OR REPLACE FUNCTION user_points_to_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamp := NEW.created_at AT TIME ZONE 'UTC';
    v_new boolean;
BEGIN
    IF NEW.points = 0 THEN
        RETURN NULL;
    END IF;
    -- leaderboard_start()'s three windows, spelled out: a call of an SQL function
    -- from PL/pgSQL is not inlined, and this runs for every ledger row
    WITH written AS (
        INSERT INTO leaderboard_totals AS t (period, start, user_id, points, reached_at)
        VALUES ('all', date '1970-01-01', NEW.user_id, NEW.points, NEW.created_at),
               ('week', date_trunc('week', v_at)::date, NEW.user_id, NEW.points,
                NEW.created_at),
               ('month', date_trunc('month', v_at)::date, NEW.user_id, NEW.points,
                NEW.created_at)
        ON CONFLICT (period, start, user_id) DO UPDATE
        SET points = t.points + EXCLUDED.points,
            reached_at = GREATEST(t.reached_at, EXCLUDED.reached_at)
        RETURNING xmax = 0 AS inserted
    )
    SELECT bool_or(inserted) INTO v_new FROM written;
    IF v_new AND leaderboard_hidden(NEW.user_id) THEN
        UPDATE leaderboard_totals SET hidden = true
        WHERE user_id = NEW.user_id AND NOT hidden;
    END IF;
    RETURN NULL;
END;
$$;

-- The daily cap of 0007 in one statement instead of four: the day's row is
-- created or updated in place, and what this grant let through is kept in the
-- row (last_granted, computed from the row as it was) to be returned. The row
-- lock of the upsert orders concurrent grants of one person, type and day.
ALTER TABLE user_daily_points ADD COLUMN last_granted integer NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION grant_capped_points(
    p_user uuid, p_day date, p_type text, p_wanted integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_granted integer;
BEGIN
    IF p_wanted <= 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO user_daily_points AS d (user_id, day, type, points, cap, last_granted)
    SELECT p_user, p_day, p_type, LEAST(p_wanted, COALESCE(c.cap, p_wanted)), c.cap,
           LEAST(p_wanted, COALESCE(c.cap, p_wanted))
    FROM (SELECT (SELECT daily_cap FROM point_caps WHERE type = p_type) AS cap) c
    ON CONFLICT (user_id, day, type) DO UPDATE
    SET last_granted = CASE WHEN EXCLUDED.cap IS NULL THEN p_wanted
                            ELSE LEAST(p_wanted, GREATEST(EXCLUDED.cap - d.points, 0)) END,
        points = d.points + CASE WHEN EXCLUDED.cap IS NULL THEN p_wanted
                                 ELSE LEAST(p_wanted, GREATEST(EXCLUDED.cap - d.points, 0)) END,
        -- the cap as configured now; never below what the day already holds
        cap = CASE WHEN EXCLUDED.cap IS NULL THEN NULL
                   ELSE GREATEST(EXCLUDED.cap, d.points + LEAST(
                        p_wanted, GREATEST(EXCLUDED.cap - d.points, 0))) END
    RETURNING last_granted INTO v_granted;
    RETURN v_granted;
END;
$$;

-- The event row and the person's lock. known = false: no such person (nothing
-- written). event_id NULL: the key was applied before (a replay: nothing
-- written; the caller reads the first application back). A concurrent copy of
-- the same key waits on the key's unique index until the first commits.
CREATE FUNCTION progress_event_open(
    p_key text, p_user uuid, p_type text, p_payload jsonb, p_at timestamptz,
    p_reverses bigint,
    OUT known boolean, OUT event_id bigint, OUT day date)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT (p_at AT TIME ZONE u.time_zone)::date INTO day FROM users u WHERE u.id = p_user;
    known := FOUND;
    IF NOT known THEN
        RETURN;
    END IF;
    INSERT INTO progress_events
        (idempotency_key, user_id, type, payload, occurred_at, reverses)
    VALUES (p_key, p_user, p_type, p_payload, p_at, p_reverses)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO event_id;
    IF event_id IS NULL THEN
        RETURN;
    END IF;
    -- One person's events apply one at a time, from any process; different
    -- people's never wait for each other.
    PERFORM 1 FROM user_stats WHERE user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO user_stats (user_id) VALUES (p_user) ON CONFLICT (user_id) DO NOTHING;
        PERFORM 1 FROM user_stats WHERE user_id = p_user FOR UPDATE;
    END IF;
END;
$$;

-- The one way a point enters the ledger: through the day's cap, as a row that
-- names its event (written even when the cap left nothing, so the ledger says
-- why an event earned less). Returns what was granted; the caller adds it to
-- the person's total (progress_grant does, progress_event_close once for all).
CREATE FUNCTION progress_grant_row(
    p_user uuid, p_event bigint, p_day date, p_type text, p_wanted integer,
    p_reason text, p_metadata jsonb, p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_granted integer := grant_capped_points(p_user, p_day, p_type, p_wanted);
BEGIN
    INSERT INTO user_points
        (user_id, type, points, wanted, reason, metadata, event_id, day, created_at)
    VALUES (p_user, p_type, v_granted, p_wanted, p_reason, COALESCE(p_metadata, '{}'),
            p_event, p_day, COALESCE(p_at, now()));
    RETURN v_granted;
END;
$$;

CREATE FUNCTION progress_grant(
    p_user uuid, p_event bigint, p_day date, p_type text, p_wanted integer,
    p_reason text, p_metadata jsonb, p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_granted integer := progress_grant_row(
        p_user, p_event, p_day, p_type, p_wanted, p_reason, p_metadata, p_at);
BEGIN
    IF v_granted <> 0 THEN
        UPDATE user_stats SET xp = xp + v_granted WHERE user_id = p_user;
    END IF;
    RETURN v_granted;
END;
$$;

-- What an achievement condition may count (progress/rules.py lists the same
-- names for the rules file's check). Reversed events are left out wherever a
-- count comes from the event ledger.
CREATE FUNCTION progress_metric(p_user uuid, p_metric text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    CASE p_metric
    WHEN 'exercises_passed' THEN
        RETURN (SELECT count(*) FROM exercise_progress
                WHERE user_id = p_user AND first_passed_at IS NOT NULL);
    WHEN 'first_try_passes' THEN
        RETURN (SELECT count(*) FROM exercise_progress
                WHERE user_id = p_user AND passed_first_try);
    WHEN 'lessons_completed' THEN
        RETURN (SELECT count(*) FROM user_progress
                WHERE user_id = p_user AND status = 'completed');
    WHEN 'demos_watched' THEN
        RETURN (SELECT count(DISTINCT e.payload->>'demo_id') FROM progress_events e
                WHERE e.user_id = p_user AND e.type = 'demo.watched'
                  AND (e.payload->>'fraction')::float8 >= 0.9
                  AND NOT EXISTS (SELECT 1 FROM progress_events r WHERE r.reverses = e.id));
    WHEN 'distinct_partners' THEN
        RETURN (SELECT count(*) FROM user_partners WHERE user_id = p_user AND minutes > 0);
    WHEN 'questions_asked' THEN
        RETURN (SELECT count(*) FROM progress_events e
                WHERE e.user_id = p_user AND e.type = 'question.asked'
                  AND NOT EXISTS (SELECT 1 FROM progress_events r WHERE r.reverses = e.id));
    WHEN 'questions_answered' THEN
        RETURN (SELECT count(*) FROM progress_events e
                WHERE e.user_id = p_user AND e.type = 'question.answered'
                  AND NOT EXISTS (SELECT 1 FROM progress_events r WHERE r.reverses = e.id));
    WHEN 'streak_days' THEN
        RETURN (SELECT COALESCE(max(streak_longest), 0) FROM user_stats WHERE user_id = p_user);
    ELSE
        RAISE EXCEPTION 'unknown achievement metric %', quote_literal(p_metric)
            USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;

-- The streak rule, one day of activity at a time: calendar days in the
-- person's time zone. A missed day is covered by a grace day if one is held
-- (the streak goes on; covered days do not count); one grace day is earned per
-- 7 consecutive days, at most 2 held. A day not after the last one counted (a
-- late event) changes nothing.
CREATE FUNCTION progress_streak_step(
    INOUT current integer, INOUT last_day date, INOUT grace integer, p_day date)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_missed integer;
BEGIN
    IF last_day IS NOT NULL AND p_day <= last_day THEN
        RETURN;
    END IF;
    IF last_day IS NULL THEN
        current := 1;
    ELSE
        v_missed := p_day - last_day - 1;
        IF v_missed = 0 THEN
            current := current + 1;
        ELSIF v_missed <= grace THEN
            grace := grace - v_missed;
            current := current + 1;
        ELSE
            current := 1;
        END IF;
    END IF;
    IF current % 7 = 0 THEN
        grace := LEAST(2, grace + 1);
    END IF;
    last_day := p_day;
END;
$$;

-- The streak for an activity event on p_day (its day in the person's time
-- zone), and p_xp added to the total: one write of the person's row.
CREATE FUNCTION progress_streak(p_user uuid, p_day date, p_activity boolean, p_xp integer)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s user_stats;
    n record;
BEGIN
    SELECT * INTO s FROM user_stats WHERE user_id = p_user;
    IF NOT p_activity OR (s.streak_last_day IS NOT NULL AND p_day <= s.streak_last_day) THEN
        IF p_xp <> 0 THEN
            UPDATE user_stats SET xp = xp + p_xp WHERE user_id = p_user;
        END IF;
        RETURN;
    END IF;
    n := progress_streak_step(s.streak_current, s.streak_last_day, s.grace_days, p_day);
    UPDATE user_stats SET streak_current = n.current, streak_last_day = n.last_day,
        grace_days = n.grace, streak_longest = GREATEST(streak_longest, n.current),
        xp = xp + p_xp
    WHERE user_id = p_user;
END;
$$;

-- The streak replayed from the activity that stands (events of p_types not
-- reversed), day by day in the person's current time zone: after a reversal,
-- so that a removed event takes its day out of the streak too. The longest
-- streak is recomputed as well; achievements already awarded stay.
CREATE FUNCTION progress_streak_rebuild(p_user uuid, p_types text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n record;
    d date;
    v_longest integer := 0;
BEGIN
    SELECT 0 AS current, NULL::date AS last_day, 0 AS grace INTO n;
    FOR d IN
        SELECT DISTINCT (e.occurred_at AT TIME ZONE u.time_zone)::date
        FROM progress_events e JOIN users u ON u.id = e.user_id
        WHERE e.user_id = p_user AND e.type = ANY (p_types)
          AND NOT EXISTS (SELECT 1 FROM progress_events r WHERE r.reverses = e.id)
        ORDER BY 1
    LOOP
        n := progress_streak_step(n.current, n.last_day, n.grace, d);
        v_longest := GREATEST(v_longest, n.current);
    END LOOP;
    UPDATE user_stats SET streak_current = n.current, streak_last_day = n.last_day,
        grace_days = n.grace, streak_longest = v_longest
    WHERE user_id = p_user;
END;
$$;

-- Progress towards the active achievements that use a touched metric, and the
-- awards now met (with their XP), with the person already locked. Each metric
-- is counted once per call. Progress may go down (after a reversal) and is
-- written only when it changed; an award, once made, stays. Returns a row per
-- achievement awarded by this call, in id order.
CREATE FUNCTION progress_evaluate(
    p_user uuid, p_touched text[], p_event bigint, p_day date, p_at timestamptz,
    p_only text DEFAULT NULL)
RETURNS TABLE (awarded text, wanted integer, granted integer)
LANGUAGE plpgsql AS $$
DECLARE
    a record;
    c jsonb;
    v_values jsonb := '{}';
    v_value bigint;
    v_progress jsonb;
    v_met boolean;
BEGIN
    FOR a IN
        SELECT x.id, x.xp, x.conditions, ua.awarded_at, ua.progress
        FROM achievements x
        LEFT JOIN user_achievements ua ON ua.achievement_id = x.id AND ua.user_id = p_user
        WHERE x.retired_at IS NULL AND (p_only IS NULL OR x.id = p_only)
          AND x.metrics ?| p_touched
        ORDER BY x.id
    LOOP
        v_progress := '{}';
        v_met := true;
        FOR c IN SELECT value FROM jsonb_array_elements(a.conditions) LOOP
            IF NOT v_values ? (c->>'metric') THEN
                v_values := v_values || jsonb_build_object(
                    c->>'metric', progress_metric(p_user, c->>'metric'));
            END IF;
            v_value := (v_values->>(c->>'metric'))::bigint;
            v_progress := v_progress || jsonb_build_object(c->>'metric', jsonb_build_object(
                'value', v_value, 'target', (c->>'at_least')::bigint));
            v_met := v_met AND v_value >= (c->>'at_least')::bigint;
        END LOOP;
        IF v_met AND a.awarded_at IS NULL THEN
            INSERT INTO user_achievements AS ua
                (user_id, achievement_id, progress, awarded_at, event_id)
            VALUES (p_user, a.id, v_progress, COALESCE(p_at, now()), p_event)
            ON CONFLICT (user_id, achievement_id) DO UPDATE SET
                progress = EXCLUDED.progress,
                awarded_at = EXCLUDED.awarded_at,
                event_id = EXCLUDED.event_id;
            awarded := a.id;
            wanted := a.xp;
            granted := 0;
            IF a.xp > 0 THEN
                granted := progress_grant(p_user, p_event, p_day, 'achievement', a.xp,
                    'achievement ' || a.id, jsonb_build_object('achievement', a.id), p_at);
            END IF;
            RETURN NEXT;
        ELSIF a.progress IS DISTINCT FROM v_progress THEN
            INSERT INTO user_achievements AS ua (user_id, achievement_id, progress)
            VALUES (p_user, a.id, v_progress)
            ON CONFLICT (user_id, achievement_id) DO UPDATE SET progress = EXCLUDED.progress;
        END IF;
    END LOOP;
END;
$$;

-- The end every event shares: the points it earns (p_gives: an array of
-- {type, wanted, reason, metadata}, granted in order), the streak (for
-- activity) with the total, then the achievements of the metrics it touched.
-- Returns {"awards": [{type, points, wanted, reason}...], "achievements": [id...]}.
CREATE FUNCTION progress_event_close(
    p_user uuid, p_event bigint, p_day date, p_at timestamptz, p_activity boolean,
    p_touched text[], p_gives jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    g jsonb;
    r record;
    v_granted integer;
    v_total integer := 0;
    v_awards jsonb := '[]';
    v_achievements jsonb := '[]';
BEGIN
    FOR g IN SELECT value FROM jsonb_array_elements(p_gives) LOOP
        v_granted := progress_grant_row(p_user, p_event, p_day, g->>'type',
            (g->>'wanted')::integer, g->>'reason', g->'metadata', p_at);
        v_total := v_total + v_granted;
        v_awards := v_awards || jsonb_build_array(jsonb_build_object(
            'type', g->>'type', 'points', v_granted, 'wanted', (g->>'wanted')::integer,
            'reason', g->>'reason'));
    END LOOP;
    PERFORM progress_streak(p_user, p_day, p_activity, v_total);
    IF p_activity THEN
        p_touched := array_append(p_touched, 'streak_days');
    END IF;
    FOR r IN SELECT * FROM progress_evaluate(p_user, p_touched, p_event, p_day, p_at) LOOP
        v_achievements := v_achievements || to_jsonb(r.awarded);
        IF r.wanted > 0 THEN
            v_awards := v_awards || jsonb_build_array(jsonb_build_object(
                'type', 'achievement', 'points', r.granted, 'wanted', r.wanted,
                'reason', 'achievement ' || r.awarded));
        END IF;
    END LOOP;
    RETURN jsonb_build_object('awards', v_awards, 'achievements', v_achievements);
END;
$$;

-- A whole event whose points are known without the database, in one
-- statement: {"known": false} for no such person, {"known": true, "event_id":
-- null} for a replay, {"known": true, "error": "no-partner"} for time with a
-- partner who is no user (nothing written in any of these), else close's answer
-- with "known" and "event_id". The one state such an event may carry is time
-- with a partner (p_partner, p_minutes: pairing.minutes).
CREATE FUNCTION progress_event_apply(
    p_key text, p_user uuid, p_type text, p_payload jsonb, p_at timestamptz,
    p_activity boolean, p_touched text[], p_gives jsonb,
    p_partner uuid DEFAULT NULL, p_minutes integer DEFAULT 0)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    o record;
BEGIN
    IF p_partner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users WHERE id = p_partner) THEN
        RETURN jsonb_build_object('known', true, 'error', 'no-partner');
    END IF;
    SELECT * INTO o FROM progress_event_open(p_key, p_user, p_type, p_payload, p_at, NULL);
    IF NOT o.known OR o.event_id IS NULL THEN
        RETURN jsonb_build_object('known', o.known, 'event_id', o.event_id);
    END IF;
    IF p_partner IS NOT NULL THEN
        INSERT INTO user_partners AS up (user_id, partner_id, minutes, first_at)
        VALUES (p_user, p_partner, p_minutes, p_at)
        ON CONFLICT (user_id, partner_id) DO UPDATE SET minutes = up.minutes + EXCLUDED.minutes;
    END IF;
    RETURN progress_event_close(p_user, o.event_id, o.day, p_at, p_activity, p_touched, p_gives)
        || jsonb_build_object('known', true, 'event_id', o.event_id);
END;
$$;

-- Many such events in one statement, so one commit: what the server's feed
-- does with what it queued. Each event is still all or nothing (every refusal
-- above writes nothing, and anything else aborts the whole call, to be retried
-- with the same keys) and applied once (its key). p_events is an array of
-- {key, user, type, payload, at, activity, touched, gives, partner, minutes};
-- the answer is the array of progress_event_apply's answers, in order.
CREATE FUNCTION progress_event_apply_many(p_events jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    e jsonb;
    v_out jsonb := '[]';
BEGIN
    FOR e IN SELECT value FROM jsonb_array_elements(p_events) LOOP
        v_out := v_out || jsonb_build_array(progress_event_apply(
            e->>'key', (e->>'user')::uuid, e->>'type', e->'payload',
            (e->>'at')::timestamptz, (e->>'activity')::boolean,
            ARRAY(SELECT jsonb_array_elements_text(e->'touched')), e->'gives',
            (e->>'partner')::uuid, COALESCE((e->>'minutes')::integer, 0)));
    END LOOP;
    RETURN v_out;
END;
$$;
