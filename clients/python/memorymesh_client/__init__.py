"""memorymesh-client: the Python client of memorymesh.

from memorymesh_client import MemoryMesh

with MemoryMesh() as memory:  # MEMORY_URL, MEMORY_API_KEY
    memory.store_message("acme", "support-42", "user", "My son is allergic to peanuts.")
    for hit in memory.search("acme", "any food restrictions?")["results"]:
        print(hit["message"]["content"])
"""

from memorymesh_client.aio import AsyncMemoryMesh
from memorymesh_client.calls import OPERATIONS, UNSET, Call
from memorymesh_client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MemoryMeshError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Throttled,
    Unauthorized,
    Unreachable,
    ValidationError,
)
from memorymesh_client.operations import message_fields
from memorymesh_client.retries import Retries
from memorymesh_client.sync import MemoryMesh

__all__ = [
    "OPERATIONS",
    "UNSET",
    "AsyncMemoryMesh",
    "BadRequest",
    "Call",
    "Conflict",
    "Forbidden",
    "MemoryMesh",
    "MemoryMeshError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RateLimited",
    "Retries",
    "ServerError",
    "Throttled",
    "Unauthorized",
    "Unreachable",
    "ValidationError",
    "message_fields",
]
