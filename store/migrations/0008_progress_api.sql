-- 0008: indexes for the progress API (issue 8: server/learnersapi.py,
-- server/submissionsapi.py). Their other queries use the primary keys and
-- the indexes of 0006/0007.

-- GET /api/users/<id>/points pages a person's ledger newest first by entry id
-- (?before=<id>); user_points_user_idx orders by created_at, which is the
-- event's time and not the order entries were written in.
CREATE INDEX user_points_user_id_idx ON user_points (user_id, id);

-- POST /api/users/<id>/progress caps reported study time by the time since the
-- server last saw the lesson opened or studied by the person: the latest such
-- event of one person and lesson, without reading all their lesson events.
CREATE INDEX progress_events_lesson_seen_idx
    ON progress_events (user_id, (payload->>'lesson_id'), occurred_at)
    WHERE type IN ('lesson.opened', 'lesson.studied');
