"""The MCP server: memorymesh's use cases as tools an agent can call, over streamable HTTP at
/mcp (endpoint.py) and, through `memorymesh mcp`, over stdio (proxy.py)."""
