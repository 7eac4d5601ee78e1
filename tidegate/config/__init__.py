"""Configuration layer: sources → flexible templates → env overrides → typed model.

Everything here is pure (no sockets, no event loop) so that a generation can be built in a
worker thread or in the supervisor process and validated before anything serves it.
"""
