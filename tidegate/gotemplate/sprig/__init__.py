"""Sprig 3.2.3's functions, one module per family; `tidegate.gotemplate.funcs` assembles them
into the function map KrakenD gives its templates."""
