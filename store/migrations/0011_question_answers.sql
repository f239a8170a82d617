-- 0011: answers to questions, and when a person first reported a self-paced demo (issue 8).
--
-- Any participant may answer someone else's question; the asker (or staff)
-- accepts one answer, which is what the progress ledger rewards
-- (question.answered for the answer's author, once per question).

CREATE TABLE question_answers (
    id          bigserial   PRIMARY KEY,
    question_id bigint      NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    text        text        NOT NULL CHECK (char_length(text) BETWEEN 1 AND 2000),
    answered_by uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Set once, when the asker or staff accepted it; never cleared.
    accepted_at timestamptz NULL
);

-- A question's answers in the order they are shown (oldest first).
CREATE INDEX question_answers_question_idx ON question_answers (question_id, created_at, id);
-- At most one accepted answer per question: the index is the rule, so two
-- acceptances racing on two server processes cannot both win.
CREATE UNIQUE INDEX question_answers_accepted_idx
    ON question_answers (question_id) WHERE accepted_at IS NOT NULL;
-- The ON DELETE CASCADE from users without a scan.
CREATE INDEX question_answers_user_idx ON question_answers (answered_by);

-- Self-paced progress is reported by the client; the server credits only
-- what could have been watched since the first report (server/progressapi.py).
-- Rows that exist already start their clock now: nothing is credited for the past.
ALTER TABLE demo_progress
    ADD COLUMN first_reported_at timestamptz NOT NULL DEFAULT now();
