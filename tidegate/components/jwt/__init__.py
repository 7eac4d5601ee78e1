"""``auth/validator`` (krakend-jose semantics): JWT validation at the router level.

Modules, each with one job: `config` (the section → a frozen value, located errors), `keys`
(a JWK set → an index by key id), `fetch` (one bounded download with krakend-jose's TLS
options), `cache` (one key set per URL, shared and kept across reloads), `verify` (one token
checked), `claims` (roles, scopes, claims to headers and parameters), `component` (the stage).
"""
