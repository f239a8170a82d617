-- 0004: the demo library (issue 7).
--
-- A demo is stored as its validated JSON document (format v1); title and kind
-- are copied out for the listing. Clients fetch a demo's content once over
-- HTTP; rooms only carry which demo plays and where (the playback state).
CREATE TABLE demos (
    id         text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,128}$'),
    title      text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('walkthrough', 'recording')),
    document   jsonb       NOT NULL,
    created_by uuid        NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER demos_set_updated_at
    BEFORE UPDATE ON demos
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The library listing, newest first.
CREATE INDEX demos_created_idx ON demos (created_at DESC, id);
