"""PostgreSQL access: the pool, migrations, embedded server, repositories and the event log."""
