-- Reverts 20251124000000_create_websocket_system.sql. IF EXISTS throughout, so it also
-- completes after the seed's own rollback script has removed part of it.
DROP TABLE IF EXISTS public.room_participants;
DROP TABLE IF EXISTS public.game_events;
DROP TABLE IF EXISTS public.device_sessions;
DROP TABLE IF EXISTS public.websocket_connections;

DROP FUNCTION IF EXISTS public.cleanup_old_game_events(integer);
DROP FUNCTION IF EXISTS public.mark_stale_connections(integer);
DROP FUNCTION IF EXISTS public.cleanup_old_websocket_connections(integer);
DROP FUNCTION IF EXISTS public.get_game_completion_stats();
DROP FUNCTION IF EXISTS public.get_daily_connection_stats(integer);
DROP FUNCTION IF EXISTS public.get_game_event_sequence(uuid, integer);
DROP FUNCTION IF EXISTS public.log_game_event(uuid, varchar, varchar, varchar, varchar, uuid, uuid, jsonb);
DROP FUNCTION IF EXISTS public.record_reconnection(varchar);
DROP FUNCTION IF EXISTS public.update_device_session(varchar, uuid, varchar, jsonb);
DROP FUNCTION IF EXISTS public.get_active_connections_count();
DROP FUNCTION IF EXISTS public.get_device_reconnect_count(varchar);
DROP FUNCTION IF EXISTS public.game_events_append_only();
DROP FUNCTION IF EXISTS public.auto_update_device_session();
DROP FUNCTION IF EXISTS public.auto_record_reconnection();

DROP TYPE IF EXISTS public.connection_status;
