-- The persisted WebSocket system: connections, device sessions, the per-game event log and
-- room membership, with the seed's helper functions and triggers (same names and named
-- parameters, so Supabase RPC callers keep working).
--
-- Security model:
--   * service_role (the tuiz server) writes everything and bypasses RLS;
--   * a signed-in user reads their own connections and device sessions;
--   * a guest is identified by the x-device-id request header (public.request_device_id());
--   * members of a game (owner, or a device holding a seat) read its events and participants;
--   * no client role writes any of these tables; game_events is append-only for everyone,
--     with DELETE reserved to retention cleanup (service_role) and cascades from games.
--   * SECURITY DEFINER functions pin search_path = '' and are executable by service_role only;
--     get_game_event_sequence is SECURITY INVOKER so clients replay exactly what RLS shows them.
--
-- Device-session counters (one meaning, whichever triggers fire in whatever order):
--   * total_connections: +1 per websocket_connections row inserted for the device;
--   * total_reconnections: +1 per connection row of a device that had connected before, and
--     +1 per explicit record_reconnection() call (a reconnection that inserts no row);
--   * websocket_connections.reconnect_count is set by the database: the device's reconnection
--     number as of that connection (0 for its first), so INSERT ... RETURNING reconnect_count
--     gives the value for ws:connected.
--   update_device_session() links a user, fingerprint and merged metadata; it never counts.

CREATE TYPE public.connection_status AS ENUM ('active', 'disconnected', 'timeout');

-- ---------------------------------------------------------------------------------------
-- Tables and the indexes their queries use
-- ---------------------------------------------------------------------------------------

CREATE TABLE public.websocket_connections (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  socket_id varchar(255) NOT NULL CHECK (char_length(socket_id) >= 1),
  device_id text NOT NULL
    CONSTRAINT websocket_connections_device_id_valid CHECK (public.is_valid_device_id(device_id)),
  user_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
  connected_at timestamptz NOT NULL DEFAULT now(),
  disconnected_at timestamptz,
  last_heartbeat timestamptz NOT NULL DEFAULT now(),
  reconnect_count integer NOT NULL DEFAULT 0 CHECK (reconnect_count >= 0),
  ip_address varchar(45),
  user_agent text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  status public.connection_status NOT NULL DEFAULT 'active'
);
COMMENT ON TABLE public.websocket_connections IS
  'One row per Socket.IO connection: lifecycle, heartbeat and client details, for audit and analytics.';
COMMENT ON COLUMN public.websocket_connections.socket_id IS 'Socket.IO connection id.';
COMMENT ON COLUMN public.websocket_connections.device_id IS
  'Client device id (localStorage), e.g. a UUID or tuiz_device_<uuid>; see is_valid_device_id().';
COMMENT ON COLUMN public.websocket_connections.reconnect_count IS
  'Set on insert by the database: the device''s reconnection number as of this connection (0 = first).';
COMMENT ON COLUMN public.websocket_connections.metadata IS 'Client details (browser, screen size, ...).';

-- A device's connections (reconnect handling, history).
CREATE INDEX websocket_connections_device_id_idx ON public.websocket_connections (device_id);
-- "My connections" (RLS) and the ON DELETE SET NULL from auth.users.
CREATE INDEX websocket_connections_user_id_idx ON public.websocket_connections (user_id)
  WHERE user_id IS NOT NULL;
-- Heartbeats and disconnects arrive by socket id.
CREATE INDEX websocket_connections_socket_id_idx ON public.websocket_connections (socket_id);
-- Retention cleanup (connected_at < cutoff) and daily statistics (connected_at >= start).
CREATE INDEX websocket_connections_connected_at_idx ON public.websocket_connections (connected_at);
-- The stale sweep (active AND last_heartbeat < cutoff) and the active-connection count.
CREATE INDEX websocket_connections_active_heartbeat_idx
  ON public.websocket_connections (last_heartbeat) WHERE status = 'active';

CREATE TABLE public.device_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  device_id text NOT NULL
    CONSTRAINT device_sessions_device_id_valid CHECK (public.is_valid_device_id(device_id)),
  user_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
  first_seen timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  total_connections integer NOT NULL DEFAULT 0 CHECK (total_connections >= 0),
  total_reconnections integer NOT NULL DEFAULT 0 CHECK (total_reconnections >= 0),
  browser_fingerprint varchar(255),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  -- The one index on device_id (no second, identical unique index).
  CONSTRAINT device_sessions_device_id_key UNIQUE (device_id)
);
COMMENT ON TABLE public.device_sessions IS
  'One row per device: usage counters, the user it was last signed in as, merged metadata.';
COMMENT ON COLUMN public.device_sessions.total_connections IS
  'Connection rows ever inserted for this device.';
COMMENT ON COLUMN public.device_sessions.total_reconnections IS
  'Connections after the device''s first one, plus explicit record_reconnection() calls.';
COMMENT ON COLUMN public.device_sessions.browser_fingerprint IS 'Browser fingerprint hash.';

-- "My devices" (RLS) and the ON DELETE SET NULL from auth.users.
CREATE INDEX device_sessions_user_id_idx ON public.device_sessions (user_id)
  WHERE user_id IS NOT NULL;

CREATE TABLE public.game_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  game_id uuid NOT NULL REFERENCES public.games (id) ON DELETE CASCADE,
  event_type varchar(100) NOT NULL CHECK (char_length(event_type) >= 1),
  socket_id varchar(255),
  device_id text
    CONSTRAINT game_events_device_id_valid
    CHECK (device_id IS NULL OR public.is_valid_device_id(device_id)),
  -- A removed (kicked) player's events stay, with player_id cleared: the one change the
  -- append-only guard lets through, and only as the FK action itself.
  player_id uuid REFERENCES public.players (id) ON DELETE SET NULL,
  -- Not a foreign key: the log keeps the id of a user deleted later.
  user_id uuid,
  "timestamp" timestamptz NOT NULL DEFAULT now(),
  action varchar(255) NOT NULL CHECK (char_length(action) >= 1),
  payload jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object'),
  sequence_number integer NOT NULL CHECK (sequence_number > 0),
  -- Unique and gapless per game (numbers come from game_event_counters). Also serves replay
  -- (by game in sequence order), the FK cascade from games and retention (by game), so there
  -- is no separate game_id, timestamp or event_type index: fewer indexes keep appends fast.
  CONSTRAINT game_events_game_sequence_key UNIQUE (game_id, sequence_number)
);
COMMENT ON TABLE public.game_events IS
  'Append-only log of game events for replay, analytics and debugging; seq is gapless per game.';
COMMENT ON COLUMN public.game_events.sequence_number IS
  'Per-game sequence, 1, 2, 3, ... without gaps or duplicates (see game_event_counters).';
COMMENT ON COLUMN public.game_events.payload IS 'Event data; always a JSON object.';

-- A player's actions, and the ON DELETE SET NULL when a player is removed.
CREATE INDEX game_events_player_id_idx ON public.game_events (player_id)
  WHERE player_id IS NOT NULL;

CREATE TABLE public.room_participants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  game_id uuid NOT NULL REFERENCES public.games (id) ON DELETE CASCADE,
  socket_id varchar(255) NOT NULL CHECK (char_length(socket_id) >= 1),
  device_id text NOT NULL
    CONSTRAINT room_participants_device_id_valid CHECK (public.is_valid_device_id(device_id)),
  player_id uuid NOT NULL REFERENCES public.players (id) ON DELETE CASCADE,
  user_id uuid REFERENCES auth.users (id) ON DELETE SET NULL,
  joined_at timestamptz NOT NULL DEFAULT now(),
  left_at timestamptz,
  role varchar(50) NOT NULL DEFAULT 'player'
    CHECK (role IN ('host', 'player', 'spectator', 'moderator')),
  status public.connection_status NOT NULL DEFAULT 'active',
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object')
);
COMMENT ON TABLE public.room_participants IS
  'Room membership with connection history (complements players: one row per join).';
COMMENT ON COLUMN public.room_participants.role IS 'host, player, spectator or moderator.';

-- One active participation per device and game; also "who is in the room now".
CREATE UNIQUE INDEX room_participants_one_active_key
  ON public.room_participants (game_id, device_id) WHERE status = 'active';
-- A room's full history, and the ON DELETE CASCADE from games.
CREATE INDEX room_participants_game_id_idx ON public.room_participants (game_id);
-- A device's rooms when it reconnects.
CREATE INDEX room_participants_device_id_idx ON public.room_participants (device_id);
-- The ON DELETE CASCADE from players (kick).
CREATE INDEX room_participants_player_id_idx ON public.room_participants (player_id);
-- Disconnects and the stale sweep close a socket's active participations.
CREATE INDEX room_participants_active_socket_idx ON public.room_participants (socket_id)
  WHERE status = 'active';
-- The ON DELETE SET NULL from auth.users.
CREATE INDEX room_participants_user_id_idx ON public.room_participants (user_id)
  WHERE user_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------------------

-- BEFORE INSERT on websocket_connections: decide whether this connection is a reconnection.
-- The device's session row doubles as a per-device lock, so concurrent first connections of
-- one device still count exactly one "first".
CREATE FUNCTION public.auto_record_reconnection() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  previous_connections integer;
  previous_reconnections integer;
BEGIN
  PERFORM public.assert_device_id(NEW.device_id, 'websocket_connections.device_id');
  NEW.metadata := coalesce(NEW.metadata, '{}'::jsonb);

  INSERT INTO public.device_sessions (device_id) VALUES (NEW.device_id)
    ON CONFLICT (device_id) DO NOTHING;
  SELECT ds.total_connections, ds.total_reconnections
    INTO previous_connections, previous_reconnections
    FROM public.device_sessions ds
   WHERE ds.device_id = NEW.device_id
     FOR UPDATE;

  NEW.reconnect_count := CASE WHEN previous_connections > 0
                              THEN previous_reconnections + 1 ELSE 0 END;
  RETURN NEW;
END
$$;

-- AFTER INSERT on websocket_connections: fold the connection into its device session.
CREATE FUNCTION public.auto_update_device_session() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  is_reconnection integer := CASE WHEN NEW.reconnect_count > 0 THEN 1 ELSE 0 END;
BEGIN
  INSERT INTO public.device_sessions AS ds
         (device_id, user_id, last_seen, total_connections, total_reconnections, metadata)
  VALUES (NEW.device_id, NEW.user_id, now(), 1, is_reconnection, NEW.metadata)
  ON CONFLICT (device_id) DO UPDATE SET
    user_id = coalesce(EXCLUDED.user_id, ds.user_id),
    last_seen = now(),
    total_connections = ds.total_connections + 1,
    total_reconnections = ds.total_reconnections + is_reconnection,
    metadata = ds.metadata || EXCLUDED.metadata;
  RETURN NULL;
END
$$;

CREATE TRIGGER trigger_auto_record_reconnection
  BEFORE INSERT ON public.websocket_connections
  FOR EACH ROW EXECUTE FUNCTION public.auto_record_reconnection();
CREATE TRIGGER trigger_auto_update_device_session
  AFTER INSERT ON public.websocket_connections
  FOR EACH ROW EXECUTE FUNCTION public.auto_update_device_session();

-- game_events is append-only. UPDATE is refused, except the ON DELETE SET NULL of
-- player_id, which runs as the table owner and changes nothing else. DELETE is reserved to
-- service_role (retention cleanup) and the table owner (ON DELETE CASCADE from games runs as
-- the owner). Privileges already keep clients out; this also guards against a later GRANT.
-- DELETE is checked once per statement so bulk retention pays nothing per row; UPDATE is
-- checked per row, and only FK actions ever get that far.
CREATE FUNCTION public.game_events_append_only() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = ''
AS $$
DECLARE
  privileged boolean := pg_catalog.pg_has_role(
    current_user,
    (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID),
    'MEMBER');
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF privileged
       AND OLD.player_id IS NOT NULL AND NEW.player_id IS NULL
       AND to_jsonb(NEW) - 'player_id' = to_jsonb(OLD) - 'player_id' THEN
      RETURN NEW;  -- the player was removed: forget who, keep what happened
    END IF;
    RAISE EXCEPTION 'game_events is append-only: events cannot be updated'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT (privileged OR pg_catalog.pg_has_role(current_user, 'service_role', 'MEMBER')) THEN
    RAISE EXCEPTION 'game_events is append-only: only retention cleanup may delete events'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER game_events_no_update
  BEFORE UPDATE ON public.game_events
  FOR EACH ROW EXECUTE FUNCTION public.game_events_append_only();
CREATE TRIGGER game_events_delete_by_cleanup_only
  BEFORE DELETE ON public.game_events
  FOR EACH STATEMENT EXECUTE FUNCTION public.game_events_append_only();

-- ---------------------------------------------------------------------------------------
-- Helper functions (the seed's names and named parameters)
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION public.get_device_reconnect_count(p_device_id varchar) RETURNS integer
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
BEGIN
  PERFORM public.assert_device_id(p_device_id, 'p_device_id');
  RETURN coalesce(
    (SELECT ds.total_reconnections FROM public.device_sessions ds
      WHERE ds.device_id = p_device_id),
    0);
END
$$;
COMMENT ON FUNCTION public.get_device_reconnect_count(varchar) IS
  'How many times the device reconnected (not how many of its connections are closed).';

CREATE FUNCTION public.get_active_connections_count() RETURNS integer
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
  SELECT count(*)::integer FROM public.websocket_connections WHERE status = 'active'
$$;

CREATE FUNCTION public.update_device_session(
  p_device_id varchar,
  p_user_id uuid DEFAULT NULL,
  p_browser_fingerprint varchar DEFAULT NULL,
  p_metadata jsonb DEFAULT '{}'::jsonb
) RETURNS uuid
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  session_id uuid;
BEGIN
  PERFORM public.assert_device_id(p_device_id, 'p_device_id');
  IF p_metadata IS NOT NULL AND jsonb_typeof(p_metadata) <> 'object' THEN
    RAISE EXCEPTION 'invalid p_metadata: must be a JSON object, got %', jsonb_typeof(p_metadata)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  INSERT INTO public.device_sessions AS ds (device_id, user_id, browser_fingerprint, metadata)
  VALUES (p_device_id, p_user_id, p_browser_fingerprint, coalesce(p_metadata, '{}'::jsonb))
  ON CONFLICT (device_id) DO UPDATE SET
    user_id = coalesce(EXCLUDED.user_id, ds.user_id),
    browser_fingerprint = coalesce(EXCLUDED.browser_fingerprint, ds.browser_fingerprint),
    metadata = ds.metadata || EXCLUDED.metadata,
    last_seen = now()
  RETURNING ds.id INTO session_id;
  RETURN session_id;
END
$$;
COMMENT ON FUNCTION public.update_device_session(varchar, uuid, varchar, jsonb) IS
  'Upserts a device session: links the user and fingerprint when given, merges metadata '
  '(keys in p_metadata win); connection counters are left to the connection triggers.';

CREATE FUNCTION public.record_reconnection(p_device_id varchar) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
BEGIN
  PERFORM public.assert_device_id(p_device_id, 'p_device_id');
  INSERT INTO public.device_sessions AS ds (device_id, total_reconnections)
  VALUES (p_device_id, 1)
  ON CONFLICT (device_id) DO UPDATE SET
    total_reconnections = ds.total_reconnections + 1,
    last_seen = now();
END
$$;
COMMENT ON FUNCTION public.record_reconnection(varchar) IS
  'Counts a reconnection that inserts no websocket_connections row (inserted rows count themselves).';

CREATE FUNCTION public.log_game_event(
  p_game_id uuid,
  p_event_type varchar DEFAULT 'game_event',
  p_action varchar DEFAULT NULL,
  p_socket_id varchar DEFAULT NULL,
  p_device_id varchar DEFAULT NULL,
  p_player_id uuid DEFAULT NULL,
  p_user_id uuid DEFAULT NULL,
  p_payload jsonb DEFAULT '{}'::jsonb
) RETURNS uuid
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  next_sequence integer;
  event_id uuid;
BEGIN
  IF p_game_id IS NULL THEN
    RAISE EXCEPTION 'invalid p_game_id: must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_event_type IS NULL OR btrim(p_event_type) = '' THEN
    RAISE EXCEPTION 'invalid p_event_type: must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_action IS NOT NULL AND btrim(p_action) = '' THEN
    RAISE EXCEPTION 'invalid p_action: must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_payload IS NOT NULL AND jsonb_typeof(p_payload) <> 'object' THEN
    RAISE EXCEPTION 'invalid p_payload: must be a JSON object, got %', jsonb_typeof(p_payload)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_device_id IS NOT NULL THEN
    PERFORM public.assert_device_id(p_device_id, 'p_device_id');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM public.games g WHERE g.id = p_game_id) THEN
    RAISE EXCEPTION 'invalid p_game_id: game % does not exist', p_game_id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF p_player_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.players p WHERE p.id = p_player_id AND p.game_id = p_game_id
  ) THEN
    RAISE EXCEPTION 'invalid p_player_id: player % is not in game %', p_player_id, p_game_id
      USING ERRCODE = 'foreign_key_violation';
  END IF;

  -- The counter row is locked until this transaction ends: writers of one game queue here,
  -- and a rollback gives the number back, so sequences stay unique and gapless.
  INSERT INTO public.game_event_counters AS c (game_id, last_seq) VALUES (p_game_id, 1)
  ON CONFLICT (game_id) DO UPDATE SET last_seq = c.last_seq + 1
  RETURNING c.last_seq INTO next_sequence;

  INSERT INTO public.game_events (game_id, event_type, action, socket_id, device_id, player_id,
                                  user_id, payload, sequence_number)
  VALUES (p_game_id, p_event_type, coalesce(p_action, p_event_type), p_socket_id, p_device_id,
          p_player_id, p_user_id, coalesce(p_payload, '{}'::jsonb), next_sequence)
  RETURNING id INTO event_id;
  RETURN event_id;
END
$$;
COMMENT ON FUNCTION public.log_game_event(uuid, varchar, varchar, varchar, varchar, uuid, uuid, jsonb) IS
  'Appends one event with the game''s next sequence number; returns the event id.';

CREATE FUNCTION public.get_game_event_sequence(p_game_id uuid, p_after_sequence integer DEFAULT 0)
  RETURNS TABLE (
    event_id uuid,
    event_type varchar,
    action varchar,
    payload jsonb,
    event_timestamp timestamptz,
    sequence_number integer
  )
  LANGUAGE sql STABLE
  SET search_path = ''
AS $$
  SELECT ge.id, ge.event_type, ge.action, ge.payload, ge."timestamp", ge.sequence_number
    FROM public.game_events ge
   WHERE ge.game_id = p_game_id AND ge.sequence_number > coalesce(p_after_sequence, 0)
   ORDER BY ge.sequence_number
$$;
COMMENT ON FUNCTION public.get_game_event_sequence(uuid, integer) IS
  'A game''s events in sequence order (after p_after_sequence, for catch-up). SECURITY INVOKER: '
  'callers get what RLS lets them read.';

CREATE FUNCTION public.get_daily_connection_stats(days_back integer DEFAULT 30)
  RETURNS TABLE (date date, total_connections bigint, unique_devices bigint, unique_users bigint)
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
BEGIN
  IF days_back IS NULL OR days_back < 1 THEN
    RAISE EXCEPTION 'invalid days_back: must be at least 1, got %', days_back
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- UTC days, whatever the session TimeZone: the last `days_back` days including today.
  RETURN QUERY
  SELECT (wc.connected_at AT TIME ZONE 'UTC')::date,
         count(*),
         count(DISTINCT wc.device_id),
         count(DISTINCT wc.user_id)
    FROM public.websocket_connections wc
   WHERE wc.connected_at >=
         (((now() AT TIME ZONE 'UTC')::date - (days_back - 1))::timestamp AT TIME ZONE 'UTC')
   GROUP BY 1
   ORDER BY 1 DESC;
END
$$;

CREATE FUNCTION public.get_game_completion_stats()
  RETURNS TABLE (game_type varchar, total_games bigint, completed_games bigint, completion_rate numeric)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
  SELECT 'quiz'::varchar,
         count(*),
         count(*) FILTER (WHERE g.status = 'finished'),
         round(100.0 * count(*) FILTER (WHERE g.status = 'finished') / nullif(count(*), 0), 2)
    FROM public.games g
$$;

CREATE FUNCTION public.cleanup_old_websocket_connections(days_old integer DEFAULT 30)
  RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  deleted integer;
BEGIN
  IF days_old IS NULL OR days_old < 0 THEN
    RAISE EXCEPTION 'invalid days_old: must be 0 or more, got %', days_old
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  DELETE FROM public.websocket_connections
   WHERE status IN ('disconnected', 'timeout')
     AND connected_at < now() - make_interval(days => days_old);
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$$;

CREATE FUNCTION public.mark_stale_connections(timeout_minutes integer DEFAULT 5)
  RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  marked integer;
BEGIN
  IF timeout_minutes IS NULL OR timeout_minutes < 0 THEN
    RAISE EXCEPTION 'invalid timeout_minutes: must be 0 or more, got %', timeout_minutes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- A timed-out socket is no longer in its rooms either.
  WITH stale AS (
    UPDATE public.websocket_connections wc
       SET status = 'timeout', disconnected_at = now()
     WHERE wc.status = 'active'
       AND wc.last_heartbeat < now() - make_interval(mins => timeout_minutes)
    RETURNING wc.socket_id, wc.device_id
  ), left_rooms AS (
    UPDATE public.room_participants rp
       SET status = 'timeout', left_at = now()
      FROM stale
     WHERE rp.status = 'active'
       AND rp.socket_id = stale.socket_id
       AND rp.device_id = stale.device_id
    RETURNING rp.id
  )
  SELECT count(*) INTO marked FROM stale;
  RETURN marked;
END
$$;
COMMENT ON FUNCTION public.mark_stale_connections(integer) IS
  'Times out active connections without a heartbeat for timeout_minutes, and their active room '
  'participations; returns the number of connections marked.';

CREATE FUNCTION public.cleanup_old_game_events(days_old integer DEFAULT 30) RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
DECLARE
  deleted integer;
BEGIN
  IF days_old IS NULL OR days_old < 0 THEN
    RAISE EXCEPTION 'invalid days_old: must be 0 or more, got %', days_old
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- By game (the leading column of the log's only index). Counters stay, so a game's
  -- sequence numbers are never handed out twice.
  DELETE FROM public.game_events ge
   USING public.games g
   WHERE ge.game_id = g.id
     AND g.status = 'finished'
     AND coalesce(g.ended_at, g.updated_at) < now() - make_interval(days => days_old);
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$$;
COMMENT ON FUNCTION public.cleanup_old_game_events(integer) IS
  'Retention: deletes the events of games finished more than days_old days ago.';

-- ---------------------------------------------------------------------------------------
-- Function privileges: nothing for PUBLIC (nor for anon/authenticated, which Supabase's
-- default privileges would otherwise include); each function to the roles that need it.
-- ---------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
  public.auto_record_reconnection(),
  public.auto_update_device_session(),
  public.game_events_append_only(),
  public.get_device_reconnect_count(varchar),
  public.get_active_connections_count(),
  public.update_device_session(varchar, uuid, varchar, jsonb),
  public.record_reconnection(varchar),
  public.log_game_event(uuid, varchar, varchar, varchar, varchar, uuid, uuid, jsonb),
  public.get_game_event_sequence(uuid, integer),
  public.get_daily_connection_stats(integer),
  public.get_game_completion_stats(),
  public.cleanup_old_websocket_connections(integer),
  public.mark_stale_connections(integer),
  public.cleanup_old_game_events(integer)
FROM PUBLIC, anon, authenticated;

GRANT EXECUTE ON FUNCTION
  public.get_device_reconnect_count(varchar),
  public.get_active_connections_count(),
  public.update_device_session(varchar, uuid, varchar, jsonb),
  public.record_reconnection(varchar),
  public.log_game_event(uuid, varchar, varchar, varchar, varchar, uuid, uuid, jsonb),
  public.get_daily_connection_stats(integer),
  public.get_game_completion_stats(),
  public.cleanup_old_websocket_connections(integer),
  public.mark_stale_connections(integer),
  public.cleanup_old_game_events(integer)
TO service_role;

GRANT EXECUTE ON FUNCTION public.get_game_event_sequence(uuid, integer)
  TO anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------
-- Row level security and table privileges
-- ---------------------------------------------------------------------------------------

-- Not FORCEd: the SECURITY DEFINER functions above run as the table owner.
ALTER TABLE public.websocket_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.device_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.game_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.room_participants ENABLE ROW LEVEL SECURITY;

CREATE POLICY websocket_connections_read_own ON public.websocket_connections
  FOR SELECT TO anon, authenticated
  USING (user_id = (SELECT auth.uid()) OR device_id = (SELECT public.request_device_id()));

CREATE POLICY device_sessions_read_own ON public.device_sessions
  FOR SELECT TO anon, authenticated
  USING (user_id = (SELECT auth.uid()) OR device_id = (SELECT public.request_device_id()));

CREATE POLICY game_events_read_members ON public.game_events
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(game_id));

CREATE POLICY room_participants_read_members ON public.room_participants
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(game_id));

REVOKE ALL ON public.websocket_connections, public.device_sessions, public.game_events,
  public.room_participants FROM PUBLIC, anon, authenticated;
GRANT SELECT ON public.websocket_connections, public.device_sessions, public.game_events,
  public.room_participants TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.websocket_connections, public.device_sessions,
  public.room_participants TO service_role;
-- The log: append and read; DELETE for retention. No UPDATE, ever.
GRANT SELECT, INSERT, DELETE ON public.game_events TO service_role;
