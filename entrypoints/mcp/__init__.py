"""The MCP server: memorymesh's use cases as tools an agent can call, over streamable HTTP at
/mcp (endpoint.py) and, through `memorymesh mcp`, over stdio (proxy.py)."""

# The person a connection is for, set once in the MCP client's configuration (or by `memorymesh
# mcp --user-id`): remember, recall and get_context use it when a call names no user_id.
USER_HEADER = "x-memorymesh-user-id"
