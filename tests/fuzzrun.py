"""Running fuzz cases of `tidegate check -c` and classifying what each one ended in.

Each case runs in a worker process (`python -m tests.fuzzrun --worker`) that calls
`tidegate.cli.main` in-process; the parent writes the case's files, bounds each case in time
(a hang kills and replaces the worker) and classifies the outcome (see `tests/fuzzconfig.py`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fuzzconfig import BUGS, CLASSES, ROOT, ROOT_KEYS, Case, Outcome, cases

# --- classification --------------------------------------------------------------------------

_PREFIX = re.compile(r"^ERROR [a-z]+ the configuration( file)?: ")
_PATH = r"[A-Za-z_$@][\w$@-]*(\[\d+\]|\[\"[^\"]*\"\]|\.[A-Za-z_][\w]*)*"


def unlocated_lines(stderr: str, folder: str) -> list[str]:
    """ERROR lines that name neither a file position nor a JSON path."""
    bad = []
    for line in stderr.splitlines():
        m = _PREFIX.match(line)
        if not m:
            continue
        rest = line[m.end():]
        if "could not be built" in rest or "to be built" in rest:
            bad.append(line)
            continue
        if rest.startswith(folder):
            after = rest[len(folder):].split(":", 1)
            tail = after[1] if len(after) > 1 else ""
            if re.match(r"\d+", tail) or _json_path(tail[1:]):
                continue
            # A file of its own that cannot be read or is not a configuration is located.
            if re.match(r" (cannot read|is a |is not a |not a regular)", tail):
                continue
        elif _json_path(rest):
            continue
        bad.append(line)
    return bad


def _json_path(text: str) -> bool:
    """Whether `text` starts with a JSON path (a message's first word is not one)."""
    m = re.match(f"({_PATH}): ", text)
    return bool(m) and ("[" in m.group(1) or "." in m.group(1) or m.group(1) in ROOT_KEYS)


def signature(kind: str, text: str) -> str:
    """Lines that differ only in names, numbers and quoted values share a signature."""
    text = re.sub(r"/[^\s:]*", "<path>", text)
    text = re.sub(r"\"[^\"]*\"|'[^']*'|`[^`]*`", "<q>", text)
    text = re.sub(r"\d+", "N", text)
    return f"{kind}: {text[:160]}"


def classify(case: Case, folder: str, result: dict[str, Any]) -> Outcome:
    """The class of one finished run (the worker's answer)."""
    out = Outcome(case, "ok", code=result.get("code"), stdout=result.get("stdout", ""),
                  stderr=result.get("stderr", ""), seconds=result.get("seconds", 0.0))
    if result.get("traceback"):
        out.kind = "traceback"
        out.signature = f"traceback: {result['exc']} at {result['where']}"
    elif "Traceback (most recent call last)" in out.stdout + out.stderr:
        out.kind = "traceback"
        out.signature = signature("traceback", (out.stdout + out.stderr).strip().split("\n")[-1])
    elif out.code == 0:
        out.kind = "ok"
    elif out.code == 2:
        out.kind = "usage"
    elif out.code == 1:
        bad = unlocated_lines(out.stderr, folder)
        if bad:
            out.kind = "unlocated"
            out.signature = signature("unlocated", bad[0].replace(folder, "<dir>"))
        else:
            out.kind = "invalid"
    else:
        out.kind = "crash"
        out.signature = f"crash: exit {out.code}"
    return out


# --- running ---------------------------------------------------------------------------------


class Runner:
    """A worker process that checks cases one at a time; killed and replaced on a hang."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer = b""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzzrun", "--worker"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buffer = b""

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()  # our own child, by its handle
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self.proc = None

    def run(self, case: Case, folder: str) -> Outcome:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        env = {k: v.replace("{dir}", folder) for k, v in case.env.items()}
        request = {"config": os.path.join(folder, case.config), "env": env, "args": case.args}
        started = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.stop()
            return Outcome(case, "crash", "crash: worker gone", seconds=0.0)
        line = self._read_line(started + self.timeout)
        seconds = time.monotonic() - started
        if line is None:
            alive = self.proc.poll() is None
            self.stop()
            if alive:
                return Outcome(case, "hang", f"hang: over {self.timeout:g} s", seconds=seconds)
            return Outcome(case, "crash", "crash: the worker died", seconds=seconds)
        result = json.loads(line)
        result["seconds"] = seconds
        return classify(case, folder, result)

    def _read_line(self, deadline: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


def write_case(case: Case, folder: str) -> None:
    for name, content in case.files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(content)
    for sub in ("settings", "partials", "templates"):
        if "FC_ENABLE" in case.env:
            os.makedirs(os.path.join(folder, sub), exist_ok=True)


def run_cases(seed: int, count: int, *, timeout: float = 10.0,
              progress: Any = None) -> list[Outcome]:
    """Generate and check `count` cases; every outcome, in order."""
    outcomes: list[Outcome] = []
    runner = Runner(timeout)
    base = tempfile.mkdtemp(prefix="tidegate-fuzz-")
    try:
        for case in cases(seed, count):
            folder = os.path.join(base, f"c{case.index}")
            os.makedirs(folder)
            write_case(case, folder)
            outcomes.append(runner.run(case, folder))
            shutil.rmtree(folder, ignore_errors=True)
            if progress is not None:
                progress(outcomes[-1])
    finally:
        runner.stop()
        shutil.rmtree(base, ignore_errors=True)
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    """Class counts, then each bug signature with its count and first case."""
    counts = Counter(o.kind for o in outcomes)
    lines = ["  ".join(f"{k}={counts.get(k, 0)}" for k in CLASSES)]
    first: dict[str, Outcome] = {}
    sigs = Counter()
    for o in outcomes:
        if o.kind in BUGS:
            sigs[o.signature] += 1
            first.setdefault(o.signature, o)
    for sig, n in sigs.most_common():
        o = first[sig]
        lines.append(f"{n:5d}  {sig}\n       case {o.case.index}: {'; '.join(o.case.what)[:300]}")
    return "\n".join(lines)


# --- the worker ------------------------------------------------------------------------------


def _clip(text: str) -> str:
    """At most 200 lines of 2,000 characters: enough to classify, small enough to send."""
    return "\n".join(line[:2000] for line in text.splitlines()[:200])


def _worker() -> int:
    """Read one request per line, answer one result per line (stdout is the channel)."""
    channel = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.setrecursionlimit(1000)
    from tidegate import cli

    base_env = dict(os.environ)
    for raw in sys.stdin:
        request = json.loads(raw)
        os.environ.clear()
        os.environ.update(base_env)
        for key in [k for k in os.environ if k.startswith(("FC_", "KRAKEND_", "TIDEGATE_"))]:
            del os.environ[key]
        os.environ.update(request["env"])
        out, err = io.StringIO(), io.StringIO()
        answer: dict[str, Any] = {}
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                answer["code"] = cli.main(["check", *request["args"], "-c", request["config"]])
        except BaseException as exc:  # the fuzzer's finding: reported, never raised
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in frames if "tidegate" in f.filename] or frames
            last = ours[-1] if ours else None
            answer.update(traceback=traceback.format_exc()[-4000:], exc=type(exc).__name__,
                          where=f"{Path(last.filename).name}:{last.name}" if last else "?")
        answer["stdout"] = _clip(out.getvalue())
        answer["stderr"] = _clip(err.getvalue())
        channel.write(json.dumps(answer) + "\n")
        channel.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker())
    print("usage: python -m tests.fuzzrun --worker (see bench/fuzz_check.py)", file=sys.stderr)
    sys.exit(2)
