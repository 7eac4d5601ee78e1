"""Benchmark: render a generated 1,000-endpoint flexible configuration.

Builds settings + templates + partials in a temporary directory, then times
`render_flexible_config` (parse + execute) over several runs and prints the best and median.

    python bench/render_flexible.py [--endpoints N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tidegate.config.flexible import render_flexible_config

BASE = """{
  "version": 3,
  "name": "{{ .service.name }}",
  "port": {{ .service.port }},
  "timeout": "{{ .service.timeout }}",
  "extra_config": {{ marshal .service.extra_config }},
  "endpoints": [
    {{- range $i, $e := .endpoints.items }}
    {{- if $i }},{{ end }}
    {{ template "endpoint.tmpl" (dict "e" $e "svc" $.service) }}
    {{- end }}
  ]
}
"""

ENDPOINT = """{
      "endpoint": "{{ .e.path }}",
      "method": "{{ .e.method | upper }}",
      "output_encoding": "{{ default "json" .e.encoding }}",
      "input_headers": {{ include "input_headers.tmpl" }},
      {{- if .e.rate }}
      "extra_config": {"qos/ratelimit/router": {"max_rate": {{ .e.rate }}}},
      {{- end }}
      "backend": [
        {{- range $j, $b := .e.backends }}{{ if $j }},{{ end }}
        {
          "host": {{ marshal $.svc.hosts }},
          "url_pattern": "{{ $b.url }}",
          "encoding": "{{ $b.encoding | default "json" }}"{{ with $b.group }},
          "group": "{{ . }}"{{ end }}
        }
        {{- end }}
      ]
    }"""


def build(root: str, n: int) -> str:
    settings = os.path.join(root, "settings")
    templates = os.path.join(root, "templates")
    partials = os.path.join(root, "partials")
    for d in (settings, templates, partials):
        os.makedirs(d)
    service = {"name": "bench", "port": 8080, "timeout": "3s",
               "hosts": ["http://backend-a:8000", "http://backend-b:8000"],
               "extra_config": {"telemetry/logging": {"level": "WARNING", "stdout": True}}}
    items = []
    for i in range(n):
        items.append({
            "path": f"/v1/resource{i}/{{id}}",
            "method": "get" if i % 3 else "post",
            "encoding": "json" if i % 2 else "",
            "rate": 100 + i if i % 4 == 0 else 0,
            "backends": [{"url": f"/r{i}/{{id}}", "encoding": "json", "group": "a" if i % 5 == 0
                          else ""}, {"url": f"/s{i}/{{id}}", "encoding": ""}],
        })
    with open(os.path.join(settings, "service.json"), "w") as fh:
        json.dump(service, fh)
    with open(os.path.join(settings, "endpoints.json"), "w") as fh:
        json.dump({"items": items}, fh)
    with open(os.path.join(templates, "endpoint.tmpl"), "w") as fh:
        fh.write(ENDPOINT)
    with open(os.path.join(partials, "input_headers.tmpl"), "w") as fh:
        fh.write('["Authorization", "Content-Type"]')
    base = os.path.join(root, "krakend.tmpl")
    with open(base, "w") as fh:
        fh.write(BASE)
    return base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--endpoints", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        base = build(root, opts.endpoints)
        env = {"FC_ENABLE": "1", "FC_SETTINGS": os.path.join(root, "settings"),
               "FC_TEMPLATES": os.path.join(root, "templates"),
               "FC_PARTIALS": os.path.join(root, "partials")}
        times = []
        for _ in range(opts.runs):
            t0 = time.perf_counter()
            out = render_flexible_config(base, env)
            times.append(time.perf_counter() - t0)
        json.loads(out.text)  # the result must be valid JSON
        print(f"{opts.endpoints} endpoints, {len(out.text)} bytes: "
              f"best {min(times) * 1000:.1f} ms, median {statistics.median(times) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
