"""The student's side of a graded Python run: imports their modules and answers calls.

It runs as ``python3 -c <wire.py + this file>`` inside the jail (see jail.py),
as the student's process: whatever the submitted code does here (exit, patch
modules, print fake reports, write files) stays in this process, which holds
nothing but the channel to the test runner on fd 3. Requests, one frame each:

  {"op": "import", "module": m}                  -> imports it (before the tests run)
  {"op": "get", "module": m, "name": n}          -> what ``m.n`` is
  {"op": "call", "module": m, "name": n | null,
   "args": [...], "kwargs": {...}}               -> the result, or the exception

Each answer carries what the code printed meanwhile ("out", "err"), which the
runner prints on its side, where the test's output capture sees it.
"""

import builtins
import importlib
import io
import os
import sys
import traceback

if "encode" not in globals():  # on its own; the runner sends wire.py's text first
    from wire import decode, dumps, encode, read_frame

CHANNEL = 3
MAX_TEXT = 1024 * 1024
WORKDIR = "/work"


def describe_exception(exc):
    kind = type(exc)
    bases = [
        c.__name__
        for c in kind.__mro__
        if c.__module__ == "builtins" and getattr(builtins, c.__name__, None) is c
    ]
    try:
        args = encode(list(exc.args))
    except Exception:
        args = None
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:
        text = ""
    try:
        message = str(exc)
    except Exception:
        message = kind.__name__
    return {
        "type": kind.__name__,
        "module": kind.__module__,
        "qualname": kind.__qualname__,
        "bases": bases,
        "message": message[:4000],
        "args": args,
        "traceback": text[-4000:],
    }


def kind_of(value):
    if isinstance(value, type):
        return "exception" if issubclass(value, BaseException) else "class"
    if callable(value):
        return "function"
    if isinstance(value, type(sys)):
        return "module"
    return "value"


class Host:
    def __init__(self):
        self.modules = {}

    def module(self, name):
        if name not in self.modules:
            self.modules[name] = importlib.import_module(name)
        return self.modules[name]

    def handle(self, request):
        op = request.get("op")
        module = self.module(str(request.get("module")))
        name = request.get("name")
        if op == "import":
            return {}
        if op == "get":
            if not isinstance(name, str):
                raise TypeError("get needs a name")
            value = getattr(module, name)
            kind = kind_of(value)
            answer = {"kind": kind}
            if kind == "value":
                answer["value"] = encode(value)
            elif kind == "exception":
                answer["qualname"] = value.__qualname__
                answer["module"] = value.__module__
                answer["bases"] = [
                    c.__name__
                    for c in value.__mro__
                    if c.__module__ == "builtins" and getattr(builtins, c.__name__, None) is c
                ]
            return answer
        if op == "call":
            target = module if name is None else getattr(module, name)
            args = [decode(a) for a in request.get("args", [])]
            kwargs = {str(k): decode(v) for k, v in dict(request.get("kwargs", {})).items()}
            result = target(*args, **kwargs)
            after = []
            for a in args:
                try:
                    after.append(encode(a) if type(a) in (list, dict, set) else None)
                except Exception:
                    after.append(None)
            return {"value": encode(result), "after": after}
        raise ValueError("unknown request " + repr(op)[:40])


def main():
    host = Host()
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdin = io.StringIO("")
    while True:
        try:
            request = read_frame(CHANNEL)
        except Exception:
            os._exit(0)  # the runner is done (or gone)
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        try:
            answer = {"ok": True, **host.handle(request)}
        except BaseException as exc:  # the code's own exit() too: the test sees it
            answer = {"ok": False, "error": describe_exception(exc)}
        finally:
            sys.stdout, sys.stderr = real_out, real_err
        answer["out"] = out.getvalue()[:MAX_TEXT]
        answer["err"] = err.getvalue()[:MAX_TEXT]
        try:
            frame = dumps(answer)
        except Exception as exc:
            error = {"type": "TypeError", "module": "builtins", "qualname": "TypeError"}
            error.update({"bases": ["TypeError", "Exception", "BaseException"]})
            error.update({"message": "the result cannot be sent to the tests: " + str(exc)})
            frame = dumps({"ok": False, "error": error, "out": answer["out"], "err": ""})
        view = memoryview(frame)
        while view:
            view = view[os.write(CHANNEL, view) :]


if WORKDIR not in sys.path:
    sys.path.insert(0, WORKDIR)
sys.argv = [""]
main()
