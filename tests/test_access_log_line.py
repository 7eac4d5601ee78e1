"""The gin access-log line, built from pieces kept between requests, is byte for byte the line
gin's format gives (checked against a plain formatting of the same request), its clock turns
at the second, and the line reaches stdout's writer within the loop iteration it was logged in.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from tidegate.golang.strconv import quote
from tidegate.messages import Request
from tidegate.telemetry.access_log import AccessLogger, gin_latency
from tidegate.telemetry.logging_config import AccessLog
from tidegate.telemetry.logging_sinks import LineWriter

WALL = 1_780_000_000.25  # a wall clock a quarter into its second


class Clocks:
    """A perf counter and a wall clock that the test moves (together or apart)."""

    def __init__(self, perf: float = 100.0, wall: float = WALL) -> None:
        self.perf = perf
        self.wall = wall

    def advance(self, seconds: float) -> None:
        self.perf += seconds
        self.wall += seconds

    def read_perf(self) -> float:
        return self.perf

    def read_wall(self) -> float:
        return self.wall


def gin_reference(second: float, status: int, ns: int, ip: str, method: str, path: str,
                  query: str) -> str:
    """gin's LoggerWithFormatter line without colours, formatted from scratch."""
    stamp = time.strftime("%Y/%m/%d - %H:%M:%S", time.localtime(int(second)))
    target = unquote(path) if "%" in path else path
    if query:
        target = f"{target}?{query}"
    return (f"[GIN] {stamp} | {status:3d} | {gin_latency(ns):>8} | {ip:>15} | "
            f"{method:<7}  {quote(target)}\n")


def quoted_path(line: str) -> str:
    """The last column of a gin line (after the method's padded column)."""
    assert line.endswith("\n")
    return line.split(" | ", 4)[4][9:-1]


def make_request(method: str = "GET", path: str = "/users/7", query: str = "",
                 ip: str = "127.0.0.1") -> Request:
    target = f"{path}?{query}" if query else path
    return Request(method, target, path, query, [("host", "example.com")], b"", ip, "1.1")


def logger(clocks: Clocks, skip: frozenset[str] = frozenset(),
           writer: LineWriter | None = None) -> tuple[AccessLogger, list[str]]:
    lines: list[str] = []
    access = AccessLogger(AccessLog(True, "gin", skip), 3, lines.append, writer,
                          perf=clocks.read_perf, wall=clocks.read_wall)
    return access, lines


def record(access: AccessLogger, clocks: Clocks, request: Request, status: int,
           ns: int) -> int:
    """Log `request` as answered `ns` ago; the latency the logger measures."""
    started = clocks.perf - ns / 1e9
    access.record(request, status, 10, started)
    return int((clocks.perf - started) * 1e9)


LATENCIES = [0, 45, 999, 1000, 1001, 158_954, 999_999, 1_000_000, 1_000_001, 1_009_999,
             1_010_000, 1_234_567, 12_345_678, 99_990_000, 999_999_999, 1_000_000_000,
             1_500_000_000, 61_234_000_000, 3_600_000_000_000]


@pytest.mark.parametrize("ns", LATENCIES)
def test_latency_column_as_gin_prints_it(ns: int) -> None:
    clocks = Clocks()
    access, lines = logger(clocks)
    measured = record(access, clocks, make_request(), 200, ns)
    assert lines == [gin_reference(clocks.wall, 200, measured, "127.0.0.1", "GET",
                                   "/users/7", "")]


def test_every_latency_step_of_the_two_common_ranges() -> None:
    """Each fraction of both tables, with one- to three-digit integer parts."""
    clocks = Clocks()
    access, lines = logger(clocks)
    expected = []
    for whole in (1, 9, 10, 99, 100, 999):
        for ns in [whole * 1_000_000 + f * 10_000 + 5_000 for f in range(100)] + \
                  [whole * 1000 + f for f in range(1000)]:
            measured = record(access, clocks, make_request(), 200, ns)
            expected.append(gin_reference(clocks.wall, 200, measured, "127.0.0.1", "GET",
                                          "/users/7", ""))
    assert lines == expected


@pytest.mark.parametrize(("method", "path", "query", "ip", "status"), [
    ("GET", "/users/7", "", "127.0.0.1", 200),
    ("POST", "/users/7", "a=b&c=%20", "10.0.0.12", 404),
    ("DELETE", "/a%20b/%C3%A9", "", "::1", 503),
    ("PROPFIND", "/é/ü", "x=é", "2001:db8:ffff:ffff:ffff:ffff:ffff:1", 207),
    ("GET", '/q"uote', "", "127.0.0.1", 99),
    ("GET", "/back\\slash", 'k="v"', "127.0.0.1", 600),
    ("OPTIONS", "/%22%5C%0A", "", "127.0.0.1", 100),
    ("GET", "/tab\there", "", "127.0.0.1", 599),
])
def test_line_is_gins(method: str, path: str, query: str, ip: str, status: int) -> None:
    clocks = Clocks()
    access, lines = logger(clocks)
    for _ in range(2):  # the second line comes from the remembered pieces
        measured = record(access, clocks, make_request(method, path, query, ip), status,
                          1_234_567)
    expected = gin_reference(clocks.wall, status, measured, ip, method, path, query)
    assert lines == [expected, expected]


def test_skip_paths_are_matched_decoded_with_or_without_a_query() -> None:
    clocks = Clocks()
    access, lines = logger(clocks, skip=frozenset({"/health", "/a b"}))
    for path, query in [("/health", ""), ("/a%20b", ""), ("/health", "x=1"), ("/a%20b", "q"),
                        ("/health", ""), ("/users/1", ""), ("/a%20c", "")]:
        record(access, clocks, make_request(path=path, query=query), 200, 2_000_000)
    assert [quoted_path(line) for line in lines] == ['"/users/1"', '"/a c"']


def test_clock_turns_at_the_second() -> None:
    """The time column changes with the wall clock's second, also when the lines come faster
    than the second's end (the logger tells it from the perf counter it reads per line)."""
    clocks = Clocks(perf=50.0, wall=1_780_000_000.9)
    access, lines = logger(clocks)
    seen = []
    for step in [0.0, 0.05, 0.0499, 0.0002, 0.3, 0.6999, 0.0002, 5.0, 0.25]:
        clocks.advance(step)
        record(access, clocks, make_request(), 200, 1_500_000)
        seen.append(int(clocks.wall))
    stamps = [line.split(" | ")[0] for line in lines]
    assert stamps == [time.strftime("[GIN] %Y/%m/%d - %H:%M:%S", time.localtime(s))
                      for s in seen]
    assert len(set(seen)) == 4  # it did cross seconds


def test_a_wall_clock_read_only_once_per_second() -> None:
    reads = []
    clocks = Clocks(perf=10.0, wall=1_780_000_000.5)

    def wall() -> float:
        reads.append(clocks.wall)
        return clocks.wall

    lines: list[str] = []
    access = AccessLogger(AccessLog(), 1, lines.append, perf=clocks.read_perf, wall=wall)
    for _ in range(20):
        clocks.advance(0.02)  # 0.4 s in all: within the second
        record(access, clocks, make_request(), 200, 1_500_000)
    assert len(lines) == 20 and len(reads) == 1


def test_bytes_to_the_writer_are_the_line(tmp_path: Path) -> None:
    """Through stdout's writer (no event loop: written at once) the file gets the same line."""
    out = tmp_path / "out.log"
    with out.open("wb") as f:
        writer = LineWriter(f.fileno())
        clocks = Clocks()
        access, lines = logger(clocks, writer=writer)
        measured = record(access, clocks, make_request(path="/é", query="q=1"), 201, 345_678)
        assert lines == []
        assert out.read_text() == gin_reference(clocks.wall, 201, measured, "127.0.0.1", "GET",
                                                "/é", "q=1")


def test_lines_are_written_before_the_next_loop_iteration(tmp_path: Path) -> None:
    """Lines logged in one iteration reach the file before anything the same iteration
    scheduled runs: never held back behind a timer."""
    out = tmp_path / "out.log"

    async def main() -> list[str]:
        with out.open("wb") as f:
            writer = LineWriter(f.fileno())
            writer.bind(asyncio.get_running_loop())
            clocks = Clocks()
            access, _ = logger(clocks, writer=writer)
            for i in range(3):
                record(access, clocks, make_request(path=f"/n/{i}"), 200, 2_000_000)
            seen = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(lambda: seen.set_result(out.read_text()))
            first: str = await seen
            record(access, clocks, make_request(path="/n/3"), 200, 2_000_000)
            seen = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(lambda: seen.set_result(out.read_text()))
            return [first, await seen]

    first, second = asyncio.run(main())
    assert [quoted_path(line) for line in first.splitlines(keepends=True)] == [
        '"/n/0"', '"/n/1"', '"/n/2"']
    assert second.splitlines()[3].endswith('"/n/3"')


def test_alternating_addresses_each_get_their_column() -> None:
    """Clients in turn (the logger keeps the last address's column in front of its memo),
    including an empty address (a unix socket's peer)."""
    clocks = Clocks()
    access, lines = logger(clocks)
    expected = []
    for ip in ["", "10.0.0.1", "10.0.0.1", "", "::1", "10.0.0.1", "", ""]:
        measured = record(access, clocks, make_request(ip=ip), 200, 3_000_000)
        expected.append(gin_reference(clocks.wall, 200, measured, ip, "GET", "/users/7", ""))
    assert lines == expected


def test_a_closed_output_counts_its_lines_dropped() -> None:
    """stdout gone (the reader closed the pipe): lines are dropped and counted, nothing
    raised into the request."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    writer = LineWriter(write_end)
    try:
        clocks = Clocks()
        access, lines = logger(clocks, writer=writer)
        for _ in range(3):
            record(access, clocks, make_request(), 200, 2_000_000)
        assert lines == [] and writer.dropped == 3
    finally:
        writer.close()
        os.close(write_end)


def test_a_long_path_is_logged_but_not_remembered() -> None:
    """A path (or path and query) past the memo's key bound is quoted each time: the line is
    gin's, and the memos hold nothing for it (a client sending long unique paths cannot grow
    them by megabytes an entry); a short path is remembered as before."""
    clocks = Clocks()
    access, lines = logger(clocks)
    long_path = "/files/" + "a%2Fb" * 400
    ns = record(access, clocks, make_request(path=long_path), 200, 2_500_000)
    ns2 = record(access, clocks, make_request(path=long_path, query="x=1"), 200, 2_500_000)
    assert lines == [gin_reference(WALL, 200, ns, "127.0.0.1", "GET", long_path, ""),
                     gin_reference(WALL, 200, ns2, "127.0.0.1", "GET", long_path, "x=1")]
    assert access._paths == {} and access._queries == {}
    record(access, clocks, make_request(path="/short"), 200, 2_500_000)
    assert list(access._paths) == ["/short"]
