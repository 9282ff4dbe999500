"""The sync domain: projects and their tables, access grants, and (later) the action log."""
