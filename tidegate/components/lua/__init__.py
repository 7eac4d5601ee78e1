"""KrakenD's Lua modifiers (krakend-lua) on lupa's Lua 5.1 runtime."""
