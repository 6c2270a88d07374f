-- Reverts 20251202000000_client_read_privileges.sql: the client roles read whole rows again.
-- The WebSocket tables may already be gone (the seed's own rollback), hence the guards.
-- Revoking a table privilege also revokes the column privileges of that kind.

DROP FUNCTION IF EXISTS public.get_quiz_answer_key(uuid);

REVOKE SELECT ON public.questions, public.answers, public.players, public.game_player_data
  FROM anon, authenticated;
GRANT SELECT ON public.questions, public.answers, public.players, public.game_player_data
  TO anon, authenticated;

DROP POLICY IF EXISTS game_player_data_read_finished ON public.game_player_data;
CREATE POLICY game_player_data_read_members ON public.game_player_data
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(game_id));

DO $down$
BEGIN
  IF to_regclass('public.game_events') IS NOT NULL THEN
    GRANT SELECT ON public.game_events TO anon, authenticated;
    CREATE POLICY game_events_read_members ON public.game_events
      FOR SELECT TO anon, authenticated
      USING (public.is_game_member(game_id));
  END IF;
  IF to_regprocedure('public.get_game_event_sequence(uuid, integer)') IS NOT NULL THEN
    GRANT EXECUTE ON FUNCTION public.get_game_event_sequence(uuid, integer)
      TO anon, authenticated;
  END IF;
  IF to_regclass('public.room_participants') IS NOT NULL THEN
    REVOKE SELECT ON public.room_participants FROM anon, authenticated;
    GRANT SELECT ON public.room_participants TO anon, authenticated;
  END IF;
  IF to_regclass('public.websocket_connections') IS NOT NULL THEN
    DROP POLICY IF EXISTS websocket_connections_read_own_user ON public.websocket_connections;
    GRANT SELECT ON public.websocket_connections TO anon;
    CREATE POLICY websocket_connections_read_own ON public.websocket_connections
      FOR SELECT TO anon, authenticated
      USING (user_id = (SELECT auth.uid()) OR device_id = (SELECT public.request_device_id()));
  END IF;
  IF to_regclass('public.device_sessions') IS NOT NULL THEN
    DROP POLICY IF EXISTS device_sessions_read_own_user ON public.device_sessions;
    GRANT SELECT ON public.device_sessions TO anon;
    CREATE POLICY device_sessions_read_own ON public.device_sessions
      FOR SELECT TO anon, authenticated
      USING (user_id = (SELECT auth.uid()) OR device_id = (SELECT public.request_device_id()));
  END IF;
END
$down$;
