"""PathPro Developer API service."""
