-- 0002: users from tokens, and one-time sign-in links (issue 5).
--
-- A token names a user by its subject and display name; an email is optional
-- (identity providers may not share it). UNIQUE still holds for those given.
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- Sign-in links carry a one-time token: its id is recorded when it is
-- exchanged for a session, so the same link cannot sign anyone in twice.
CREATE TABLE signin_tokens_used (
    jti        text        PRIMARY KEY,
    user_id    uuid        NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);
