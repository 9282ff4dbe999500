"""The GraphQL schema (one module per domain) and its transport glue."""
