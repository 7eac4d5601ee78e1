"""`tidegate render`: the gotmpl engine contract on the command line.

    tidegate render [--data F | --settings DIR] [--partials DIR] [--templates DIR] TEMPLATE

Rendered bytes go to stdout; on failure the exit status is 1 and stderr reads
``<kind> error: <Go's message>``; usage mistakes exit with 2.
"""

from __future__ import annotations

import sys

from .loader import RenderError, render

USAGE = ("usage: tidegate render [--data FILE | --settings DIR] [--partials DIR] "
         "[--templates DIR] TEMPLATE\n")


def main(argv: list[str]) -> int:
    """Run the engine contract; returns the exit status."""
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a.startswith("--") and a[2:].split("=", 1)[0] in ("data", "settings", "partials",
                                                             "templates", "out"):
            key, eq, val = a[2:].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    sys.stderr.write(f"usage error: --{key} needs a value\n" + USAGE)
                    return 2
                i += 1
                val = argv[i]
            opts[key] = val
        elif a.startswith("--") and a != "--":
            sys.stderr.write(f"usage error: unknown option {a}\n" + USAGE)
            return 2
        else:
            positional.append(a)
        i += 1
    if len(positional) != 1:
        sys.stderr.write("usage error: give exactly one TEMPLATE\n" + USAGE)
        return 2
    if "data" in opts and opts.get("settings"):
        sys.stderr.write("usage error: --data and --settings are mutually exclusive\n")
        return 2
    try:
        result = render(positional[0], settings=opts.get("settings", ""),
                        partials=opts.get("partials", ""), templates=opts.get("templates", ""),
                        data_file=opts.get("data"))
    except RenderError as e:
        sys.stderr.write(f"{e.kind} error: {e.message}\n")
        return 1
    out = result.text.encode("utf-8", "surrogateescape")
    if opts.get("out"):
        try:
            with open(opts["out"], "wb") as fh:
                fh.write(out)
        except OSError as e:
            sys.stderr.write(f"output error: {e}\n")
            return 1
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
