"""tidegate: an API gateway that runs KrakenD configurations unchanged, with hot reload."""

__version__ = "0.1.0"

# The KrakenD version whose behaviour tidegate follows (reported by `tidegate version`).
KRAKEND_COMPAT_VERSION = "2.13.8"
