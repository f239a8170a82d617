-- 0003: who may enter a room (issue 5).
--
-- A room is private (owner and members), open to a cohort (its people edit),
-- or public-read (everyone may watch). Members carry a room role; the owner
-- column stays the room's creator.
ALTER TABLE rooms
    ADD COLUMN visibility text NOT NULL DEFAULT 'private'
        CHECK (visibility IN ('private', 'cohort', 'public')),
    ADD COLUMN cohort text NULL;

-- A cohort room needs its cohort.
ALTER TABLE rooms
    ADD CONSTRAINT rooms_cohort_named CHECK (visibility <> 'cohort' OR cohort IS NOT NULL);

-- "Rooms open to my cohort", for the room listing.
CREATE INDEX rooms_cohort_idx ON rooms (cohort, created_at DESC) WHERE visibility = 'cohort';
-- "Public rooms", for the room listing.
CREATE INDEX rooms_public_idx ON rooms (created_at DESC) WHERE visibility = 'public';

CREATE TABLE room_members (
    room_id  text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id  uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     text        NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    added_by uuid        NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);

-- "Rooms I am a member of"; the primary key serves a room's member list and
-- the per-join lookup of one person's role.
CREATE INDEX room_members_user_idx ON room_members (user_id);
