"""tuiz: realtime server for live quiz games."""
