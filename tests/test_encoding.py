"""What users see from the wire formats: Go JSON output, backend decoding, rendering."""

from __future__ import annotations

import pytest

from tidegate.encoding.decoders import DecodeError, decoder_for
from tidegate.encoding.renderers import (
    NO_RESPONSE,
    negotiate_format,
    renderer_for,
    select_output_encoding,
)
from tidegate.encoding.xmlcodec import dumps_xml, loads_xml
from tidegate.encoding.yamlcodec import dumps_yaml
from tidegate.golang.floats import format_v
from tidegate.golang.json_wire import GoNumber, decode_first, dumps, loads

# The conformance mock backend's /xml document, byte for byte.
XML_DOCUMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<user type="admin">
  <name>Elliot</name>
  <social>
    <facebook>https://facebook.com</facebook>
    <twitter>https://twitter.com</twitter>
    <youtube>https://youtube.com</youtube>
  </social>
</user>"""
# The mock backend's /param_forwarding echo as the /xml/json endpoint gets it.
ECHO = (b'{"foo":42,"headers":{"Accept-Encoding":["gzip"],"Referer":["http://127.0.0.1:8081/'
        b'param_forwarding"],"User-Agent":["KrakenD Version 2.13.8"],"X-Forwarded-Host":'
        b'["localhost:8080"]},"path":"/param_forwarding/","query":{}}\n')
XML_AS_JSON = (b'{"user":{"-type":"admin","name":"Elliot","social":{"facebook":"https://'
               b'facebook.com","twitter":"https://twitter.com","youtube":"https://youtube.com"}}}')


# -- Go JSON output ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (100.0, b"100"), (1e21, b"1e+21"), (1e20, b"100000000000000000000"),
    (1e16, b"10000000000000000"), (1e-7, b"1e-7"), (1e-6, b"0.000001"), (1.5e300, b"1.5e+300"),
    (0.1, b"0.1"), (-0.0, b"-0"), (1e-5, b"0.00001"), (5e-324, b"5e-324"), (12.5, b"12.5"),
    (42, b"42"), (2**70, b"1180591620717411303424"), (True, b"true"), (None, b"null"),
])
def test_numbers_print_as_go(value, expected):
    assert dumps(value) == expected
    assert dumps([value]) == b"[" + expected + b"]"
    # The same text from the float rewrite (1e16 forces it) and from the exact encoder (2**70):
    # both once wrote 1e-07 where Go's encoding/json cleans the exponent up to 1e-7.
    assert dumps([value, 1e16]) == b"[" + expected + b",10000000000000000]"
    assert dumps([value, 2**70]) == b"[" + expected + b",1180591620717411303424]"


def test_keys_sorted_and_html_escaped_like_go():
    out = dumps({"b": "<a href='x'>&</a>", "a": "\u2028\u2029", "é": 1, "Z": [{"y": 1, "x": 2}]})
    assert out == (b'{"Z":[{"x":2,"y":1}],"a":"\\u2028\\u2029",'
                   b'"b":"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e","\xc3\xa9":1}')


def test_control_characters_escape_like_go_1_22_plus():
    assert dumps("\x00\b\f\n\r\t\x1b\x7f\"\\") == b'"\\u0000\\b\\f\\n\\r\\t\\u001b\x7f\\"\\\\"'


def test_float_fixups_never_touch_strings():
    assert dumps({"s": "1.0,", "t": "1e+16]", "f": 2.0}) == b'{"f":2,"s":"1.0,","t":"1e+16]"}'


def test_backend_number_literals_are_echoed():
    body = b'{"a": 1.0, "b": 1.50, "c": 1e3, "d": -0, "e": 12345678901234567890123, "f": 1.5}'
    data = decode_first(body)
    assert dumps(data) == b'{"a":1.0,"b":1.50,"c":1e3,"d":-0,"e":12345678901234567890123,"f":1.5}'
    assert isinstance(data["b"], GoNumber) and data["b"] == 1.5  # still usable as a number
    # mixed with computed floats, which still print Go's way
    data["g"] = 3.0
    assert dumps(data).endswith(b'"f":1.5,"g":3}')


def test_invalid_utf8_and_lone_surrogates_become_replacement_chars():
    assert decode_first(b'{"s":"a\xffb"}') == {"s": "a\ufffdb"}
    assert decode_first(b'{"s":"\\ud800x"}') == {"s": "\ufffdx"}
    assert dumps({"s": "bad\udcff"}) == b'{"s":"bad\\ufffd"}'


def test_decoder_reads_only_the_first_value_like_go():
    assert decode_first(b'{"a":1} trailing garbage') == {"a": 1}
    assert decode_first(b'[1]{"b":2}') == [1]
    assert decode_first(b'"x" y') == "x"
    with pytest.raises(ValueError, match="after top-level value"):
        decode_first(b'"x"y')
    with pytest.raises(ValueError, match="after top-level value"):
        loads(b'{"a":1} x')


@pytest.mark.parametrize(("body", "message"), [
    (b"", "EOF"), (b"  \n", "EOF"), (b'{"a":', "unexpected EOF"),
    (b"<html>", "invalid character '<' looking for beginning of value"),
    (b"NaN", "invalid character 'N' looking for beginning of value"),
])
def test_syntax_errors_read_like_go(body, message):
    with pytest.raises(ValueError) as err:
        decode_first(body)
    assert str(err.value) == message


def test_go_float_g_is_fmt_v():
    assert [format_v(v) for v in (100.0, 123456789.0, 1e20, 1e-5, 0.1, 1e6, 123456.5)] == [
        "100", "1.23456789e+08", "1e+20", "1e-05", "0.1", "1e+06", "123456.5"]


def test_huge_body_round_trips():
    data = {"items": [{"id": i, "name": f"n{i}", "tags": ["a", "b"]} for i in range(20000)]}
    body = dumps(data)
    assert len(body) > 500_000
    assert decode_first(body) == data


# -- decoders ---------------------------------------------------------------------------------

def test_json_decoder():
    dec = decoder_for("json", False)
    assert dec(ECHO)["foo"] == 42
    assert dec(b"null") is None  # Go leaves the map nil
    with pytest.raises(DecodeError, match=r"cannot unmarshal array into Go value of type "
                                          r"map\[string\]interface \{\}"):
        dec(b"[1,2]")
    with pytest.raises(DecodeError, match="cannot unmarshal string"):
        dec(b'"x"')
    with pytest.raises(DecodeError, match=r"^EOF$"):
        dec(b"")


def test_json_collection_decoder():
    dec = decoder_for("json", True)
    assert dec(b'[{"i":0}]') == {"collection": [{"i": 0}]}
    assert dec(b"null") == {"collection": None}
    with pytest.raises(DecodeError, match=r"cannot unmarshal object into Go value of type "
                                          r"\[\]interface \{\}"):
        dec(b'{"a":1}')


def test_safejson_wraps_anything():
    for coll in (False, True):
        dec = decoder_for("safejson", coll)
        assert dec(b'{"a":1}') == {"a": 1}
        assert dec(b"[1]") == {"collection": [1]}
        assert dec(b"42") == {"content": 42}
        assert dec(b"null") == {"content": None}
    with pytest.raises(DecodeError):
        decoder_for("safejson", False)(b"nope")


def test_string_decoder_keeps_the_body():
    dec = decoder_for("string", True)
    assert dec(b"hello\n") == {"content": "hello\n"}
    data = dec(b"a\xffb")
    assert dumps(data) == b'{"content":"a\\ufffdb"}'  # Go escapes the bad byte
    assert renderer_for("string")(data, None)[1] == b"a\xffb"  # written back untouched


def test_unknown_encoding_falls_back_to_json():
    assert decoder_for("bogus", False)(b'{"a":1}') == {"a": 1}
    assert decoder_for(None, True)(b"[]") == {"collection": []}


def test_xml_decoder_mxj_conventions():
    assert decoder_for("xml", False)(XML_DOCUMENT) == {"user": {
        "-type": "admin", "name": "Elliot", "social": {
            "facebook": "https://facebook.com", "twitter": "https://twitter.com",
            "youtube": "https://youtube.com"}}}
    assert decoder_for("xml", True)(b"<a>1</a>") == {"collection": {"a": "1"}}


def test_xml_details():
    doc = (b'<r xmlns:x="urn:x"><x:n id="1">7</x:n><n>8</n><e/><t a="b"> hi </t>'
           b"<m>text<c>1</c></m><![CDATA[ignored]]></r> trailing junk")
    assert loads_xml(doc) == {"r": {"-x": "urn:x", "n": [{"-id": "1", "#text": "7"}, "8"],
                                    "e": "", "t": {"-a": "b", "#text": "hi"},
                                    "m": {"#text": "text", "c": "1"}, "#text": "ignored"}}
    assert loads_xml(b"stray text <a>1</a>") == {"a": "1"}  # Go skips it
    assert loads_xml(b'<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\xe9</a>') == {
        "a": "caf\u00e9"}
    with pytest.raises(ValueError):
        loads_xml(b"<a><b></a>")
    with pytest.raises(ValueError, match="EOF"):
        loads_xml(b"")


def test_rss_decoder_best_effort():
    feed = (b"<rss version='2.0'><channel><title>Feed</title><item><title>One</title>"
            b"<link>http://x/1</link></item></channel></rss>")
    data = decoder_for("rss", False)(feed)
    assert data["title"] == "Feed" and data["type"] == "rss"
    assert data["items"] == [{"title": "One", "link": "http://x/1", "links": ["http://x/1"]}]
    with pytest.raises(DecodeError):
        decoder_for("rss", False)(b"not xml")


# -- renderers --------------------------------------------------------------------------------

def test_xml_output_specs():
    data = decoder_for("xml", False)(XML_DOCUMENT)
    assert renderer_for("xml")(data, None) == (None, (
        b'<user type="admin"><name>Elliot</name><social><facebook>https://facebook.com'
        b"</facebook><twitter>https://twitter.com</twitter><youtube>https://youtube.com"
        b"</youtube></social></user>"), "application/xml")
    assert renderer_for("xml")(decoder_for("json", False)(ECHO), None)[1] == (
        b"<doc><foo>42</foo><headers><Accept-Encoding>gzip</Accept-Encoding><Referer>"
        b"http://127.0.0.1:8081/param_forwarding</Referer><User-Agent>KrakenD Version 2.13.8"
        b"</User-Agent><X-Forwarded-Host>localhost:8080</X-Forwarded-Host></headers><path>"
        b"/param_forwarding/</path><query/></doc>")


def test_xml_output_details():
    assert dumps_xml({"a": "x<&>'\"", "b": None, "c": [], "d": True, "e": 2.5}) == (
        b"<doc><a>x&lt;&amp;&gt;&apos;&quot;</a><b/><c/><d>true</d><e>2.5</e></doc>")
    assert dumps_xml({"items": [{"i": 1}, {"i": 2}]}) == (
        b"<items><i>1</i></items><items><i>2</i></items>")
    assert dumps_xml({"items": [1, 2]}) == b"<doc><items>1</items><items>2</items></doc>"
    assert dumps_xml({}) == b"<doc/>"
    assert dumps_xml({"r": {"-b": "2", "-a": "1", "#text": "t"}}) == b'<r a="1" b="2">t</r>'
    # an attribute that is not a scalar: mxj fails, KrakenD writes an empty body
    assert renderer_for("xml")({"r": {"-a": {}}}, None) == (None, b"", "application/xml")


def test_negotiated_output_specs():
    data = decoder_for("xml", False)(XML_DOCUMENT)
    render = renderer_for("negotiate")
    assert render(data, "application/json; charset=utf-8") == (
        None, XML_AS_JSON, "application/json; charset=utf-8")
    assert render(data, "text/plain") == (None, (
        b"user:\n  -type: admin\n  name: Elliot\n  social:\n    facebook: https://facebook.com\n"
        b"    twitter: https://twitter.com\n    youtube: https://youtube.com\n"),
        "application/yaml; charset=utf-8")
    assert render(data, "application/xml")[2] == "application/xml"
    assert render(data, None)[2] == "application/json; charset=utf-8"


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, "application/json"), ("", "application/json"), ("*/*", "application/json"),
    ("text/*", "text/plain"), ("application/x-yaml", "application/x-yaml"),
    ("application/yaml", ""), ("text/html, application/xml;q=0.1", "application/xml"),
    ("application/", "application/json"), ("image/png", ""),
])
def test_negotiation_follows_gin(accept, chosen):
    assert negotiate_format(accept) == chosen


def test_nil_and_missing_responses():
    assert renderer_for("json")(NO_RESPONSE, None)[1] == b"{}"
    assert renderer_for("json")(None, None)[1] == b"null"
    assert renderer_for("json-collection")(NO_RESPONSE, None)[1] == b"[]"
    assert renderer_for("json-collection")({"a": 1}, None)[1] == b"[]"
    assert renderer_for("json-collection")({"collection": [1, {"b": 2}]}, None) == (
        None, b'[1,{"b":2}]', "application/json; charset=utf-8")
    assert renderer_for("xml")(NO_RESPONSE, None) == (None, b"", "application/xml; charset=utf-8")
    assert renderer_for("yaml")(NO_RESPONSE, None)[1] == b"{}\n"
    assert renderer_for("string")({"content": 42}, None) == (None, b"", "text/plain; charset=utf-8")
    assert renderer_for("string")({"content": "hi"}, None)[1] == b"hi"
    assert renderer_for("unknown")({"a": 1}, None)[1] == b'{"a":1}'


def test_output_encoding_selection_like_lura():
    assert select_output_encoding("", ["xml"]) == "xml"
    assert select_output_encoding(None, ["safejson"]) == "json"
    assert select_output_encoding("", ["xml", "json"]) == "json"
    assert select_output_encoding("bogus", ["string"]) == "string"
    assert select_output_encoding("negotiate", ["xml"]) == "negotiate"


def test_yaml_scalars_and_layout():
    # "n" is a YAML 1.1 boolean word: goccy quotes it, as a key too
    data = {"n": 42, "f": 2.0, "g": GoNumber("1.50"), "s": "true", "e": "", "t": "2024-01-01",
            "l": [{"a": 1, "b": [1, 2]}, [3], "x"], "m": {}, "z": None, "q": "a: b", "u": "ok"}
    assert dumps_yaml(data).decode() == (
        'e: ""\nf: 2.0\ng: "1.50"\nl:\n- a: "1"\n  b:\n  - "1"\n  - "2"\n- - "3"\n- x\n'
        'm: {}\n"n": "42"\nq: "a: b"\ns: "true"\nt: "2024-01-01"\nu: ok\nz: null\n')
