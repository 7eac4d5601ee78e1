"""Reading KrakenD configuration files in every format KrakenD accepts."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tidegate.config.sources import Document, format_for, load_file, parse_text
from tidegate.errors import ConfigIOError, ConfigSyntaxError

EXPECTED = {
    "version": 3,
    "name": "gateway",
    "port": 8080,
    "timeout": "3s",
    "debug_endpoint": True,
    "extra_config": {"qos/ratelimit/router": {"max_rate": 10, "every": "1m"}},
    "endpoints": [
        {
            "endpoint": "/users/{id}",
            "method": "GET",
            "backend": [{"url_pattern": "/u/{id}", "host": ["http://users:8080"]}],
        },
        {
            "endpoint": "/orders",
            "backend": [
                {"url_pattern": "/orders", "host": ["http://orders:8080"], "sd_ratio": 0.5},
            ],
        },
    ],
}

SOURCES = {
    "krakend.json": json.dumps(EXPECTED, indent=2),
    "krakend.yaml": """\
version: 3
name: gateway
port: 8080
timeout: 3s
debug_endpoint: true
extra_config:
  qos/ratelimit/router:
    max_rate: 10
    every: 1m
endpoints:
  - endpoint: /users/{id}
    method: GET
    backend:
      - url_pattern: /u/{id}
        host: ["http://users:8080"]
  - endpoint: /orders
    backend:
      - url_pattern: /orders
        host:
          - http://orders:8080
        sd_ratio: 0.5
""",
    "krakend.toml": """\
version = 3
name = "gateway"
port = 8080
timeout = "3s"
debug_endpoint = true

[extra_config."qos/ratelimit/router"]
max_rate = 10
every = "1m"

[[endpoints]]
endpoint = "/users/{id}"
method = "GET"

  [[endpoints.backend]]
  url_pattern = "/u/{id}"
  host = ["http://users:8080"]

[[endpoints]]
endpoint = "/orders"

  [[endpoints.backend]]
  url_pattern = "/orders"
  host = ["http://orders:8080"]
  sd_ratio = 0.5
""",
    "krakend.hcl": """\
version = 3
name = "gateway"
port = 8080
timeout = "3s"
debug_endpoint = true
extra_config = {
  "qos/ratelimit/router" = { max_rate = 10, every = "1m" }
}
endpoints = [
  {
    endpoint = "/users/{id}"
    method = "GET"
    backend = [{ url_pattern = "/u/{id}", host = ["http://users:8080"] }]
  },
  {
    endpoint = "/orders"
    backend = [
      {
        url_pattern = "/orders"
        host = ["http://orders:8080"]
        sd_ratio = 0.5
      }
    ]
  }
]
""",
}


def parse(name: str, text: str) -> Document:
    return parse_text(text, name)


def error_of(name: str, text: str) -> str:
    with pytest.raises(ConfigSyntaxError) as info:
        parse_text(text, name)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_format_decodes_the_same_configuration(name: str) -> None:
    doc = parse(name, SOURCES[name])
    assert doc.data == EXPECTED
    assert doc.file == name
    assert doc.fmt == name.rsplit(".", 1)[1]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.json", "json"), ("a.yml", "yaml"), ("A.YAML", "yaml"), ("a.toml", "toml"),
     ("a.hcl", "hcl"), ("a.properties", "properties"), ("a.props", "properties"),
     ("dir.d/a.prop", "properties")],
)
def test_format_comes_from_the_extension(name: str, fmt: str) -> None:
    assert format_for(name) == fmt


def test_unknown_extension_lists_the_supported_ones() -> None:
    expected = (
        "krakend.conf: unsupported configuration format ('.conf'): use one of .json, .yaml, "
        ".yml, .toml, .hcl, .properties, .props, .prop"
    )
    assert error_of("krakend.conf", "{}") == expected
    with pytest.raises(ConfigSyntaxError) as info:
        format_for("krakend")
    assert "(no extension)" in str(info.value)


def test_explicit_format_overrides_the_extension() -> None:
    assert parse_text("a: 1", "config.txt", fmt="yaml").data == {"a": 1}


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("k.json", '{\n  "a": 1,\n}',
         "k.json:3:1: invalid JSON: Expecting property name enclosed in double quotes, near `}`"),
        ("k.json", '{\n  "a": 1\n  "b": 2\n}',
         "k.json:3:3: invalid JSON: Expecting ',' delimiter, near `\"b\": 2`"),
        ("k.json", '{"a": NaN}', "k.json:1:7: invalid JSON: NaN is not a JSON value, "
         'near `{"a": NaN}`'),
        ("k.yaml", "a: 1\nb: [1, 2\nc: 3\n",
         "k.yaml:3:2: invalid YAML: did not find expected ',' or ']' "
         "(while parsing a flow sequence), near `c: 3`"),
        ("k.yaml", "a: 1\nb: 2\na: 3\n",
         'k.yaml:3:1: invalid YAML: mapping key "a" already defined at line 1, near `a: 3`'),
        ("k.toml", "a = 1\nb = \n", "k.toml:2:5: invalid TOML: invalid value, near `b =`"),
        ("k.hcl", "a = 1\nb = 2 }\n",
         "k.hcl:2:7: invalid HCL: unexpected '}', expected end of file, near `b = 2 }`"),
        ("k.properties", "a = 1\nb = \\u00zz\n",
         "k.properties:2:1: invalid properties: invalid unicode escape \\u00zz, "
         "near `b = \\u00zz`"),
    ],
)
def test_syntax_errors_say_where_and_what(name: str, text: str, message: str) -> None:
    assert error_of(name, text) == message


def test_syntax_error_carries_the_position_fields() -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        parse_text('{\n  "port": 80,,\n}', "gw.json")
    err = info.value
    assert (err.file, err.line, err.col) == ("gw.json", 2, 14)
    assert err.to_dict()["kind"] == "syntax"


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [("k.json", "[1, 2]", "an array"), ("k.json", '"x"', "a string"),
     ("k.json", "null", "null"), ("k.yaml", "- a\n- b\n", "an array"),
     ("k.yaml", "just text", "a string")],
)
def test_top_level_must_be_an_object(name: str, text: str, what: str) -> None:
    assert error_of(name, text) == (
        f"{name}:1:1: the top level of a configuration must be an object, not {what}"
    )


def test_empty_yaml_and_toml_are_empty_configurations() -> None:
    assert parse("k.yaml", "# nothing yet\n").data == {}
    assert parse("k.toml", "").data == {}


# --------------------------------------------------------------------------- locations

TARGET = ("endpoints", 1, "backend", 0, "url_pattern")


@pytest.mark.parametrize(
    ("name", "where"),
    [("krakend.json", (30, 26)), ("krakend.yaml", (18, 22)), ("krakend.toml", (23, 17)),
     ("krakend.hcl", (19, 23))],
)
def test_locate_finds_nested_values(name: str, where: tuple[int, int]) -> None:
    doc = parse(name, SOURCES[name])
    assert doc.locate(TARGET) == where
    line, col = where
    assert SOURCES[name].split("\n")[line - 1][col - 1:].lstrip('"').startswith("/orders")


def test_json_locates_every_kind_of_value() -> None:
    text = '{"a": {"b\\u0022c": [10, {"d": null}], "e": true},\n "f": -1.5e3}'
    doc = parse("k.json", text)
    assert doc.locate(()) == (1, 1)
    assert doc.locate(("a",)) == (1, 7)
    assert doc.locate(("a", 'b"c')) == (1, 20)
    assert doc.locate(("a", 'b"c', 0)) == (1, 21)
    assert doc.locate(("a", 'b"c', 1)) == (1, 25)
    assert doc.locate(("a", 'b"c', 1, "d")) == (1, 31)
    assert doc.locate(("a", "e")) == (1, 44)
    assert doc.locate(("f",)) == (2, 7)


def test_json_duplicate_keys_last_wins_and_is_located() -> None:
    doc = parse("k.json", '{"port": 1,\n "port": 2}')
    assert doc.data == {"port": 2}
    assert doc.locate(("port",)) == (2, 10)


def test_locate_falls_back_to_the_nearest_ancestor() -> None:
    for name in ("krakend.json", "krakend.yaml"):
        doc = parse(name, SOURCES[name])
        assert doc.locate(("endpoints", 1, "backend", 0, "missing", 3)) == doc.locate(
            ("endpoints", 1, "backend", 0)
        )
        assert doc.locate(("endpoints", 99)) == doc.locate(("endpoints",))


def test_yaml_locates_through_merge_keys_and_aliases() -> None:
    text = "base: &b\n  timeout: 3s\nendpoints:\n  - <<: *b\n    endpoint: /a\n"
    doc = parse("k.yml", text)
    assert doc.data["endpoints"] == [{"timeout": "3s", "endpoint": "/a"}]
    assert doc.locate(("endpoints", 0, "endpoint")) == (5, 15)
    assert doc.locate(("endpoints", 0, "timeout")) == (2, 12)  # where it was written


def test_hcl_blocks_are_lists_of_objects_and_are_located() -> None:
    text = 'endpoint {\n  endpoint = "/a"\n}\nendpoint {\n  endpoint = "/b"\n}\n'
    doc = parse("k.hcl", text)
    assert doc.data == {"endpoint": [{"endpoint": "/a"}, {"endpoint": "/b"}]}
    assert doc.locate(("endpoint", 1, "endpoint")) == (5, 14)


def test_document_without_positions_locates_nothing() -> None:
    assert Document(data={}, file="x.json", fmt="json").locate(("a",)) is None


# --------------------------------------------------------------------------- values


def test_json_keeps_ints_and_floats_apart() -> None:
    assert parse("k.json", '{"a": 1, "b": 1.0, "c": 1e2}').data == {"a": 1, "b": 1.0, "c": 100.0}


def test_yaml_scalars_decode_as_krakend_sees_them() -> None:
    text = (
        "a: [yes, no, on, off, true, False]\n"
        "b: [2001-12-14, 2001-12-14T21:59:43Z, 1:30, 2h, 10.0.0.1]\n"
        "c: [0x1F, 0o17, 1_000, 1e3, ~, null]\n"
        "1: one\n"
    )
    assert parse("k.yaml", text).data == {
        "a": ["yes", "no", "on", "off", True, False],
        "b": ["2001-12-14", "2001-12-14T21:59:43Z", "1:30", "2h", "10.0.0.1"],
        "c": [31, 15, 1000, 1000.0, None, None],
        "1": "one",
    }


def test_yaml_keys_that_are_not_strings_print_as_go_prints_them() -> None:
    """KrakenD stringifies a non-string key with %v: a float64 key in Go's layout."""
    text = "m:\n  1e6: a\n  1234567.0: b\n  1.5e-7: c\n  0.5: d\n  -0.0: e\n  true: f\n  7: g\n"
    assert parse("k.yaml", text).data == {"m": {
        "1e+06": "a", "1.234567e+06": "b", "1.5e-07": "c", "0.5": "d", "-0": "e", "true": "f",
        "7": "g"}}


def test_yaml_reads_only_the_first_document() -> None:
    assert parse("k.yaml", "a: 1\n---\nb: 2\n").data == {"a": 1}


def test_toml_dates_become_strings() -> None:
    assert parse("k.toml", "when = 1979-05-27\n").data == {"when": "1979-05-27"}


def test_hcl_strings_heredocs_and_expressions() -> None:
    text = (
        'a = "x\\ty"\nb = <<EOT\nline\nEOT\n'
        'c = <<-EOT\n    one\n      two\n    EOT\nd = "${x}"\n'
    )
    assert parse("k.hcl", text).data == {
        "a": "x\ty", "b": "line\n", "c": "one\n  two\n", "d": "${x}",
    }


def test_properties_nest_dotted_keys_and_keep_strings() -> None:
    text = (
        "# the service\n"
        "! another comment style\n"
        "version = 3\n"
        "name: My\\ gateway\n"
        "port 8080\n"
        "extra_config.qos/ratelimit/router.max_rate = 10\n"
        "extra_config.qos/ratelimit/router.every = 1m\n"
        "long = first \\\n"
        "       second\n"
        "escaped = tab\\there \\u00e9\n"
        "ref = ${name}!\n"
    )
    doc = parse("krakend.properties", text)
    assert doc.data == {
        "version": "3",
        "name": "My gateway",
        "port": "8080",
        "extra_config": {"qos/ratelimit/router": {"max_rate": "10", "every": "1m"}},
        "long": "first second",
        "escaped": "tab\there \u00e9",
        "ref": "My gateway!",
    }
    assert doc.locate(("extra_config", "qos/ratelimit/router", "every")) == (7, 1)
    assert doc.locate(("long",)) == (8, 1)


def test_properties_circular_reference_is_an_error() -> None:
    assert error_of("k.props", "a = ${b}\nb = ${a}\n") == (
        "k.props:1:1: invalid properties: circular reference: a -> b -> a, near `a = ${b}`"
    )


# --------------------------------------------------------------------------- files


def test_load_file_reads_and_decodes(tmp_path) -> None:
    path = tmp_path / "krakend.yml"
    path.write_text(SOURCES["krakend.yaml"], encoding="utf-8")
    doc = load_file(str(path))
    assert doc.data == EXPECTED
    assert doc.file == str(path)


def test_load_file_accepts_a_byte_order_mark(tmp_path) -> None:
    path = tmp_path / "krakend.json"
    path.write_bytes(b'\xef\xbb\xbf{"version": 3}')
    assert load_file(str(path)).data == {"version": 3}


def test_missing_file_is_an_io_error(tmp_path) -> None:
    path = str(tmp_path / "nope.json")
    with pytest.raises(ConfigIOError) as info:
        load_file(path)
    assert str(info.value) == f"{path}: cannot read the configuration: No such file or directory"


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs file permissions")
def test_unreadable_file_is_an_io_error(tmp_path) -> None:
    path = tmp_path / "krakend.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(ConfigIOError) as info:
        load_file(str(path))
    assert str(info.value) == f"{path}: cannot read the configuration: Permission denied"


def test_directory_is_an_io_error(tmp_path) -> None:
    path = tmp_path / "krakend.json"
    path.mkdir()
    with pytest.raises(ConfigIOError) as info:
        load_file(str(path))
    assert str(info.value) == f"{path}: cannot read the configuration: Is a directory"


def test_invalid_utf8_is_a_syntax_error(tmp_path) -> None:
    path = tmp_path / "krakend.json"
    path.write_bytes(b'{\n  "name": "caf\xe9"\n}')
    with pytest.raises(ConfigSyntaxError) as info:
        load_file(str(path))
    assert str(info.value) == f"{path}:2:15: the file is not valid UTF-8 (byte 0xe9)"
