"""Wire formats as KrakenD speaks them: Go JSON, backend decoders, output renderers."""
