"""graphdir: a Microsoft Graph-compatible directory service."""

__version__ = "0.1.0"
