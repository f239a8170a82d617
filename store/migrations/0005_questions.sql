-- 0005: questions about a demo, quiz answers, and self-paced progress (issue 7).
--
-- demo_id columns carry no foreign key to demos on purpose: a demo is often
-- removed and published again under the same id (a fixed typo, a new step),
-- and that must not wipe a class's questions, answers and progress.

-- A question asked in a room about the demo loaded there, attached to a
-- walkthrough step or a time in a recording (or neither). votes is kept equal
-- to the number of question_votes rows by the statements that change them, in
-- the same transaction, so that listings can sort without counting.
CREATE TABLE questions (
    id         bigserial   PRIMARY KEY,
    room_id    text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    demo_id    text        NOT NULL CHECK (demo_id <> ''),
    step_id    text        NULL,
    at         double precision NULL CHECK (at IS NULL OR at >= 0),
    text       text        NOT NULL CHECK (char_length(text) BETWEEN 1 AND 2000),
    asked_by   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    votes      integer     NOT NULL DEFAULT 0 CHECK (votes >= 0),
    answered   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A room's questions about a demo in the order they are listed: unanswered
-- first, most voted first, then oldest first (LIMIT reads the index in order).
CREATE INDEX questions_listing_idx
    ON questions (room_id, demo_id, answered, votes DESC, created_at, id);
-- The ON DELETE CASCADE from users without a scan.
CREATE INDEX questions_asked_by_idx ON questions (asked_by);

-- One upvote per person per question: the primary key is the rule.
CREATE TABLE question_votes (
    question_id bigint      NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (question_id, user_id)
);

-- "Which of these questions did these people vote for" (a joiner's voted ids)
-- and the ON DELETE CASCADE from users.
CREATE INDEX question_votes_user_idx ON question_votes (user_id, question_id);

-- A person's answer to a walkthrough step's question in a room: one per
-- person, a later answer replaces the earlier one. correct is NULL when the
-- question has no right answer. The primary key serves the tally of a step
-- and of a whole demo (room_id, demo_id, step_id prefixes).
CREATE TABLE quiz_answers (
    room_id     text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    demo_id     text        NOT NULL,
    step_id     text        NOT NULL,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    choice      integer     NULL CHECK (choice IS NULL OR choice >= 0),
    text        text        NULL CHECK (text IS NULL OR char_length(text) <= 2000),
    correct     boolean     NULL,
    answered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, demo_id, step_id, user_id),
    CHECK (choice IS NOT NULL OR text IS NOT NULL)
);

-- The ON DELETE CASCADE from users without a scan.
CREATE INDEX quiz_answers_user_idx ON quiz_answers (user_id);

-- How far a person got in a demo they play on their own. fraction and
-- completed only move forward (the furthest reached is what counts);
-- position and step are where they were last.
CREATE TABLE demo_progress (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    demo_id    text        NOT NULL,
    position   double precision NOT NULL CHECK (position >= 0),
    step_id    text        NULL,
    fraction   double precision NOT NULL CHECK (fraction BETWEEN 0 AND 1),
    completed  boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, demo_id)
);

CREATE TRIGGER demo_progress_set_updated_at
    BEFORE UPDATE ON demo_progress
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Everyone's progress in one demo, for staff, most recently active first.
CREATE INDEX demo_progress_demo_idx ON demo_progress (demo_id, updated_at DESC, user_id);
