"""The GraphQL layer: one module per domain (its types, queries, mutations and subscriptions;
resolvers call the domain and map its values with ``from_domain``), the schema assembled in
``schema``, and the request pipeline: operation limits and validation, storable text, error
codes, caching, GraphQL over HTTP (``http``) and the Strawberry ASGI view (``view``)."""
