"""plugin/req-resp-modifier example: a header on the way in, renamed fields on the way out.

Settings: {"request_header": ["X-Modified", "yes"], "rename": {"old": "new"},
"forbid_param": "Id"} (a request whose route parameter `forbid_param` is "0" is refused: 403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.messages import ProxyRequest, ProxyResponse
from tidegate.plugins import ModifierPlugin, PluginError


class RenameFields:
    def __init__(self, config: Mapping[str, Any]) -> None:
        name, value = config.get("request_header", ("X-Modified", "yes"))
        self.header = (str(name), str(value))
        self.rename = dict(config.get("rename", {}))
        self.forbid = config.get("forbid_param")

    def request(self, req: ProxyRequest) -> None:
        if self.forbid and req.params.get(self.forbid) == "0":
            raise PluginError("id 0 is reserved", status=403)
        req.headers = {**req.headers, self.header[0]: [self.header[1]]}

    def response(self, resp: ProxyResponse) -> None:
        if resp.data is None:
            return
        for old, new in self.rename.items():
            if old in resp.data:
                resp.data[new] = resp.data.pop(old)


plugin = ModifierPlugin(RenameFields)
