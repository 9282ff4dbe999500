"""Which types client caches normalize: every object type of the schema is either an entity
with a stable `id` (a Relay Node with a global id, or one of the types whose `Int` id is part
of the public contract) or a value that lives inside its parent. A new object type fails here
until it is put on one side, so caches never silently stop normalizing."""

from __future__ import annotations

from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLScalarType

from gateway.graphql.globalids import decode, encode
from gateway.graphql.nodes import LOOKUPS
from gateway.graphql.schema import schema

SCHEMA = schema._schema

# Entities whose `id: Int!` is the public contract (DESIGN.md: "ids are Int"); Apollo and urql
# normalize them by `__typename` and id (`SyncRun:42`). They cannot be Relay Nodes, whose id
# must be `ID!`.
INT_IDS = {"Sync", "SyncRun", "Conflict", "SyncStatusConflict"}
# The caller, identified by the user id (`Me:alice`).
OTHER_IDS = {"Me"}
# Values without an identity of their own, cached inside the object or list that holds them:
# pages and edges, progress and counts computed per request, merged batches of actions (a
# delivered action may be several stored ones merged, so it has no stable identity), reports
# computed from the arguments, and parts of an entity.
VALUES = {
    "ActionBatch", "DatabaseAction", "Progress", "ReadStats", "WriteProgress", "WriteResult",
    "CaseStatus", "PendingCase", "PendingCaseConnection", "PendingCaseEdge",
    "ConflictConnection", "ConflictEdge", "ConflictVersion", "ConflictResolutionSummary",
    "RecordConnection", "RecordEdge", "SyncEventConnection", "SyncEventEdge", "PageInfo",
    "Pagination", "SyncRunPage", "SyncTriggerReason", "FieldDefinition", "DataSummary",
    "TableActivity", "SyncLag", "SyncStatusReport", "SyncSummary", "SyncService", "Heartbeat",
    "Overlap",  # part of a Table
    "RecordDocuments", "RecordCheckpoint",  # RxDB replication: documents carry their own ids
}  # fmt: skip
ROOTS = {"Query", "Mutation", "Subscription"}


def _object_types() -> dict[str, GraphQLObjectType]:
    return {
        name: t
        for name, t in SCHEMA.type_map.items()
        if isinstance(t, GraphQLObjectType) and not name.startswith("__") and name not in ROOTS
    }


def _id_type(t: GraphQLObjectType) -> str | None:
    field = t.fields.get("id")
    if field is None:
        return None
    assert isinstance(field.type, GraphQLNonNull), f"{t.name}.id may be null"
    inner = field.type.of_type
    assert isinstance(inner, GraphQLScalarType)
    return inner.name


def test_every_object_type_is_an_entity_with_an_id_or_a_value() -> None:
    types = _object_types()
    nodes = {name for name, t in types.items() if any(i.name == "Node" for i in t.interfaces)}
    unclassified = set(types) - nodes - INT_IDS - OTHER_IDS - VALUES
    assert not unclassified, (
        f"classify {sorted(unclassified)}: a Node (gateway/graphql/globalids.py) if clients "
        "may cache it, else add it to VALUES here"
    )
    for name in nodes:
        assert _id_type(types[name]) == "ID"
    for name in INT_IDS:
        assert _id_type(types[name]) == "Int", name
    for name in VALUES:
        assert _id_type(types[name]) is None, f"{name} has an id: make it an entity"


def test_every_node_type_can_be_fetched_by_node() -> None:
    implementations = {t.name for t in SCHEMA.get_possible_types(SCHEMA.type_map["Node"])}
    assert implementations == set(LOOKUPS)


def test_global_ids_are_opaque_url_safe_and_decode_to_their_key() -> None:
    global_id = encode("Device", ("live", "alice/ü", "phone:1"))
    assert set(global_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode(global_id) == ("Device", ["live", "alice/ü", "phone:1"])
    assert decode(encode("SyncEvent", (7,))) == ("SyncEvent", [7])
