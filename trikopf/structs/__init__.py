"""attrs bodies of the Kubernetes API that the framework reads and writes, and their converter.

``Any`` stops here: everything above this package works with the typed classes below or with
:data:`RawBody` mappings that it does not look into.
"""

from __future__ import annotations

from trikopf.structs.bodies import (
    Event,
    EventSource,
    Lease,
    LeaseSpec,
    ListMeta,
    ObjectList,
    ObjectMeta,
    ObjectReference,
    OwnerReference,
    RawBody,
    Status,
    StatusCause,
    StatusDetails,
    WatchEvent,
)
from trikopf.structs.convert import (
    SpecError,
    converter,
    structure,
    structure_spec,
    to_camel,
    unstructure,
)
from trikopf.structs.resource import Resource

__all__ = [
    "Event",
    "EventSource",
    "Lease",
    "LeaseSpec",
    "ListMeta",
    "ObjectList",
    "ObjectMeta",
    "ObjectReference",
    "OwnerReference",
    "RawBody",
    "Resource",
    "SpecError",
    "Status",
    "StatusCause",
    "StatusDetails",
    "WatchEvent",
    "converter",
    "structure",
    "structure_spec",
    "to_camel",
    "unstructure",
]
