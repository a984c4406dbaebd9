"""The JSON shapes of the API, one module per area (pydantic lives here, at the edge, and nowhere else)."""
