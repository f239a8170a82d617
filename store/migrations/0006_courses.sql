-- 0006: course content — courses, modules, lessons, exercises (issue 8).
--
-- Content is authored in files (a course folder) and loaded with
-- `opencode-live course load PATH`. Ids are the authors' own, made global by
-- prefixing: course `py101`, module `py101.loops`, lesson `py101.loops.intro`,
-- exercise `py101.loops.sum-list` (an exercise is named within its module, so
-- moving it to another lesson of the module keeps its id and its history).
--
-- Progress, submissions and points reference lessons(id) and exercises(id).
-- A reload therefore upserts and never deletes: something removed from the
-- files is marked retired (retired_at) and stays, so nothing a student did is
-- lost, and putting it back un-retires the same row.

-- A course as last loaded. version is the author's own number for the
-- content (course.yaml); loaded_at is when the content now in the database
-- was loaded (a reload that changes nothing leaves it as it was).
CREATE TABLE courses (
    id          text        PRIMARY KEY
                CONSTRAINT courses_id_pattern
                CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$' AND char_length(id) <= 64),
    title       text        NOT NULL CHECK (title <> ''),
    description text        NOT NULL DEFAULT '',
    version     integer     NOT NULL CHECK (version >= 0),
    source      text        NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Modules in course order. The id starts with the course's id: a module
-- belongs to one course for good.
CREATE TABLE modules (
    id          text        PRIMARY KEY
                CONSTRAINT modules_id_pattern
                CHECK (id ~ '^[a-z0-9][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*$'
                       AND char_length(id) <= 200),
    course_id   text        NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    position    integer     NOT NULL CHECK (position >= 0),
    title       text        NOT NULL CHECK (title <> ''),
    description text        NOT NULL DEFAULT '',
    retired_at  timestamptz NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT modules_id_in_course CHECK (starts_with(id, course_id || '.'))
);

CREATE TRIGGER modules_set_updated_at
    BEFORE UPDATE ON modules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A course's modules in order; also serves the ON DELETE CASCADE.
CREATE INDEX modules_course_idx ON modules (course_id, position, id);

-- Lessons in module order. kind says what the lesson shows: text to read,
-- exercises to solve, or a demo from the library (demo_id, no foreign key
-- for the reason given in 0005: demos are replaced under the same id). The
-- kind list is a named constraint so that a later migration can widen it.
CREATE TABLE lessons (
    id          text        PRIMARY KEY
                CONSTRAINT lessons_id_pattern
                CHECK (id ~ '^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*){2}$'
                       AND char_length(id) <= 200),
    module_id   text        NOT NULL REFERENCES modules (id) ON DELETE CASCADE,
    position    integer     NOT NULL CHECK (position >= 0),
    title       text        NOT NULL CHECK (title <> ''),
    kind        text        NOT NULL
                CONSTRAINT lessons_kind_known CHECK (kind IN ('reading', 'exercise', 'demo')),
    demo_id     text        NULL CHECK (demo_id IS NULL OR demo_id <> ''),
    body        text        NOT NULL DEFAULT '',
    retired_at  timestamptz NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lessons_id_in_module CHECK (starts_with(id, module_id || '.')),
    CONSTRAINT lessons_demo_named CHECK (kind <> 'demo' OR demo_id IS NOT NULL)
);

CREATE TRIGGER lessons_set_updated_at
    BEFORE UPDATE ON lessons
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A module's lessons in order; also serves the ON DELETE CASCADE.
CREATE INDEX lessons_module_idx ON lessons (module_id, position, id);

-- Exercises. starter, tests and solution map a relative path to the file's
-- text (what the workspace and the test runner receive). version starts at 1
-- and the loader adds one whenever what a student is graded on changes
-- (starter, tests, solution, language, points, instructions), so a
-- submission can record which version it was graded against.
CREATE TABLE exercises (
    id           text        PRIMARY KEY
                 CONSTRAINT exercises_id_pattern
                 CHECK (id ~ '^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*){2}$'
                        AND char_length(id) <= 200),
    lesson_id    text        NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    position     integer     NOT NULL DEFAULT 0 CHECK (position >= 0),
    title        text        NOT NULL CHECK (title <> ''),
    instructions text        NOT NULL DEFAULT '',
    language     text        NOT NULL CHECK (language <> ''),
    points       integer     NOT NULL CHECK (points >= 0),
    starter      jsonb       NOT NULL DEFAULT '{}'::jsonb
                 CHECK (jsonb_typeof(starter) = 'object'),
    tests        jsonb       NOT NULL DEFAULT '{}'::jsonb
                 CHECK (jsonb_typeof(tests) = 'object'),
    solution     jsonb       NULL
                 CHECK (solution IS NULL OR jsonb_typeof(solution) = 'object'),
    version      integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    retired_at   timestamptz NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER exercises_set_updated_at
    BEFORE UPDATE ON exercises
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A lesson's exercises in order; also serves the ON DELETE CASCADE.
CREATE INDEX exercises_lesson_idx ON exercises (lesson_id, position, id);
