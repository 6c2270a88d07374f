"""tuiz: realtime server for live quiz games."""

__version__ = "0.1.0"
