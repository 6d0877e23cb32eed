"""The workflow language: what a workflow's nodes may say and how it is checked.

- configs: each node type's config (pydantic models: what the config API validates and the
  executor parses);
- language: the node types as an explicit registry (Language), built by standard_language();
- validation: a whole workflow checked against a Language, each fault with its path;
- templates: `{{$context.body.x}}` paths and rendering; expressions: CEL.

The config API and the executor assemble a Language; the gateway needs none of it (only the
templates' paths, for idempotency keys), and so no expression engine: modules here import
what they need, nothing is imported for its side effects.
"""
