"""Progress, submissions, points and achievements (issue 8).

The server turns what it observed into events and calls :func:`apply_event`;
everything else here (points, daily caps, streaks, achievements) follows from
the event ledger in Postgres. Course content (courses, modules, lessons,
exercises) comes from course folders through :func:`read_course` and
:func:`load_course`. This package knows the store only.
"""

from .course import Course, CourseError, Exercise, Lesson, Module, check_course, read_course
from .events import (
    AnyEvent,
    Applied,
    DemoWatched,
    Event,
    EventRejected,
    EventReversed,
    LessonCompleted,
    LessonOpened,
    LessonStudied,
    PairingMinutes,
    QuestionAnswered,
    QuestionAsked,
    RunFinished,
    SolutionViewed,
    SubmissionGraded,
    apply_event,
    code_hash,
    decode_event,
    exercise_xp,
)
from .ledger import PointAward
from .loader import LoadReport, load_course
from .rules import (
    DEFAULT_RULES,
    METRICS,
    Achievement,
    Condition,
    Installed,
    RulesError,
    backfill,
    install_rules,
    load_rules,
    parse_rules,
)

__all__ = [
    "DEFAULT_RULES",
    "METRICS",
    "Achievement",
    "AnyEvent",
    "Applied",
    "Condition",
    "Course",
    "CourseError",
    "DemoWatched",
    "Event",
    "EventRejected",
    "EventReversed",
    "Exercise",
    "Installed",
    "Lesson",
    "LessonCompleted",
    "LessonOpened",
    "LessonStudied",
    "LoadReport",
    "Module",
    "PairingMinutes",
    "PointAward",
    "QuestionAnswered",
    "QuestionAsked",
    "RulesError",
    "RunFinished",
    "SolutionViewed",
    "SubmissionGraded",
    "apply_event",
    "backfill",
    "check_course",
    "code_hash",
    "decode_event",
    "exercise_xp",
    "install_rules",
    "load_course",
    "load_rules",
    "parse_rules",
    "read_course",
]
