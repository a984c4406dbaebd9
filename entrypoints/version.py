"""memorymesh's version, where both the API and `memorymesh mcp` (which loads nothing else of the
service) read it."""

VERSION = "0.1.0"
