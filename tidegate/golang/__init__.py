"""Go's value semantics, at the bottom of the layers. Every layer that must answer byte for
byte as KrakenD does uses these, never its own copy:

* `floats`: float text as strconv, fmt's ``%v`` and encoding/json write it;
* `sprint`: ``%v`` of decoded values (Go's types, float64 config values, json.Number bodies);
* `fmt`, `fmt_verbs`: fmt.Sprint/Sprintf/Sprintln with Go's verbs and flags;
* `strconv`, `literals`: quoting, and Go's number/string literal syntax;
* `types`: the Python stand-ins for Go types (int64, []string, nil map, structs...);
* `time`, `time_parse`: time.Time, durations, Go layouts, time.Parse;
* `json_wire`, `json_values`: encoding/json for bodies on the hot path (json.Number) and for
  templates and settings files (float64, Go's error texts, MarshalIndent).
"""
