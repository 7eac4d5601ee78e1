"""Go's value semantics, at the bottom of the layers: how Go prints floats and decoded values
(`floats`, `sprint`), quotes strings (`strconv`), and what encoding/json reads and writes
(`json_wire` for bodies on the hot path, `json_values` for templates and settings files).
Every layer that must answer byte for byte as KrakenD does uses these, never its own copy."""
