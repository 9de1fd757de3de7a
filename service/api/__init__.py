"""The Developer API, one module per resource."""
