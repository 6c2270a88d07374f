-- The game system the WebSocket tables hang on: games, players, game_flows, game_player_data,
-- and the per-game event sequence counter.
--
-- Writes belong to the server (service_role): joining, scoring, flow and the event log are
-- validated by the game engine, so no client role may write players, scores, flows or
-- counters. The one client write is the host's own game row (locked, game_settings), through
-- a policy whose USING and WITH CHECK agree, so the host path can actually match.
--
-- Membership is by identity, never by "any logged-in user": a game's owner (auth.uid()) and
-- the devices that play in it (x-device-id header) may read it. A game with no owner is a
-- guest-hosted game, visible to its players only; deleting a user deletes their games
-- (ON DELETE CASCADE) rather than leaving them ownerless.

CREATE TYPE public.game_status AS ENUM ('waiting', 'active', 'paused', 'finished');

CREATE TABLE public.games (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  quiz_set_id uuid REFERENCES public.quiz_sets (id) ON DELETE SET NULL,
  user_id uuid REFERENCES auth.users (id) ON DELETE CASCADE,
  game_code varchar(10) NOT NULL CONSTRAINT games_game_code_is_pin CHECK (game_code ~ '^[0-9]{6}$'),
  current_players integer NOT NULL DEFAULT 0 CHECK (current_players >= 0),
  status public.game_status NOT NULL DEFAULT 'waiting',
  current_question_index integer NOT NULL DEFAULT 0 CHECK (current_question_index >= 0),
  current_question_start_time timestamptz,
  game_settings jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(game_settings) = 'object'),
  locked boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  paused_at timestamptz,
  resumed_at timestamptz,
  ended_at timestamptz
);
COMMENT ON TABLE public.games IS 'A game session: PIN, lifecycle, settings; owned by its host user.';
COMMENT ON COLUMN public.games.game_code IS '6-digit PIN, unique among games that are not finished.';
COMMENT ON COLUMN public.games.current_players IS
  'Players other than the host; maintained only by the players_count trigger.';
COMMENT ON COLUMN public.games.user_id IS
  'Host user. NULL means a guest-hosted game (visible to its players only), never public.';

-- Joining by PIN; a PIN is reused only after its game finished.
CREATE UNIQUE INDEX games_game_code_live_key ON public.games (game_code)
  WHERE status <> 'finished';
-- A host's games, and the ON DELETE CASCADE from auth.users.
CREATE INDEX games_user_id_idx ON public.games (user_id) WHERE user_id IS NOT NULL;
-- Games played with a quiz, and the ON DELETE SET NULL from quiz_sets.
CREATE INDEX games_quiz_set_id_idx ON public.games (quiz_set_id) WHERE quiz_set_id IS NOT NULL;

CREATE TABLE public.players (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  game_id uuid NOT NULL REFERENCES public.games (id) ON DELETE CASCADE,
  device_id text NOT NULL
    CONSTRAINT players_device_id_valid CHECK (public.is_valid_device_id(device_id)),
  player_name varchar(100) NOT NULL
    CONSTRAINT players_player_name_trimmed
    CHECK (player_name = btrim(player_name) AND char_length(player_name) >= 1),
  is_logged_in boolean NOT NULL DEFAULT false,
  is_host boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- One seat per device and game; also serves "players of a game" and the FK cascade.
  CONSTRAINT players_game_device_key UNIQUE (game_id, device_id)
);
COMMENT ON TABLE public.players IS 'A seat in a game, held by a device (guest friendly).';

-- Nicknames are unique per game regardless of case.
CREATE UNIQUE INDEX players_game_name_key ON public.players (game_id, lower(player_name));
-- At most one host per game.
CREATE UNIQUE INDEX players_one_host_key ON public.players (game_id) WHERE is_host;

CREATE TABLE public.game_flows (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  game_id uuid NOT NULL REFERENCES public.games (id) ON DELETE CASCADE,
  -- Pointers into quiz content, not foreign keys: a quiz may be edited or deleted while the
  -- record of a game played with it remains.
  quiz_set_id uuid,
  total_questions integer NOT NULL DEFAULT 0 CHECK (total_questions >= 0),
  current_question_id uuid,
  next_question_id uuid,
  current_question_index integer DEFAULT 0 CHECK (current_question_index >= 0),
  current_question_start_time timestamptz,
  current_question_end_time timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT game_flows_game_id_key UNIQUE (game_id),
  CONSTRAINT game_flows_question_window CHECK (
    current_question_end_time IS NULL OR current_question_start_time IS NULL
    OR current_question_end_time >= current_question_start_time
  )
);
COMMENT ON TABLE public.game_flows IS 'The current question of a game (one row per game).';

CREATE TABLE public.game_player_data (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  player_id uuid NOT NULL REFERENCES public.players (id) ON DELETE CASCADE,
  player_device_id text NOT NULL
    CONSTRAINT game_player_data_player_device_id_valid
    CHECK (public.is_valid_device_id(player_device_id)),
  game_id uuid NOT NULL REFERENCES public.games (id) ON DELETE CASCADE,
  score integer NOT NULL DEFAULT 0 CHECK (score >= 0),
  answer_report jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(answer_report) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT game_player_data_player_id_key UNIQUE (player_id)
);
COMMENT ON TABLE public.game_player_data IS 'Score and answer report of a player (one row per player).';

-- Leaderboard of a game; also the FK cascade from games.
CREATE INDEX game_player_data_leaderboard_idx ON public.game_player_data (game_id, score DESC);

CREATE TABLE public.game_event_counters (
  game_id uuid PRIMARY KEY REFERENCES public.games (id) ON DELETE CASCADE,
  last_seq integer NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
COMMENT ON TABLE public.game_event_counters IS
  'Last game_events.sequence_number handed out per game. Writers reserve n numbers with '
  'INSERT ... ON CONFLICT (game_id) DO UPDATE SET last_seq = last_seq + EXCLUDED.last_seq '
  'RETURNING last_seq; the row lock serialises writers of one game until they commit, so '
  'numbers are unique and gapless.';

CREATE TRIGGER games_set_updated_at BEFORE UPDATE ON public.games
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER players_set_updated_at BEFORE UPDATE ON public.players
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER game_flows_set_updated_at BEFORE UPDATE ON public.game_flows
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER game_player_data_set_updated_at BEFORE UPDATE ON public.game_player_data
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- The only place games.current_players changes. SECURITY DEFINER so it counts whichever role
-- wrote the player row, RLS or not.
CREATE FUNCTION public.update_game_player_count() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.game_id = NEW.game_id AND OLD.is_host = NEW.is_host THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') AND NOT OLD.is_host THEN
    UPDATE public.games SET current_players = current_players - 1 WHERE id = OLD.game_id;
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NOT NEW.is_host THEN
    UPDATE public.games SET current_players = current_players + 1 WHERE id = NEW.game_id;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.update_game_player_count() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER players_count
  AFTER INSERT OR DELETE OR UPDATE OF game_id, is_host ON public.players
  FOR EACH ROW EXECUTE FUNCTION public.update_game_player_count();

-- Membership tests for RLS policies. SECURITY DEFINER so a policy on players can look at
-- players (and games at players) without recursing through RLS; they only ever answer for
-- the caller's own identity.
CREATE FUNCTION public.is_game_member(p_game_id uuid) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
  SELECT EXISTS (
           SELECT 1 FROM public.games g
            WHERE g.id = p_game_id AND g.user_id = auth.uid()
         )
      OR EXISTS (
           SELECT 1 FROM public.players p
            WHERE p.game_id = p_game_id AND p.device_id = public.request_device_id()
         )
$$;
COMMENT ON FUNCTION public.is_game_member(uuid) IS
  'True when the caller owns the game or its x-device-id holds a seat in it.';

CREATE FUNCTION public.is_game_host(p_game_id uuid) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
  SELECT EXISTS (
           SELECT 1 FROM public.games g
            WHERE g.id = p_game_id AND g.user_id = auth.uid()
         )
      OR EXISTS (
           SELECT 1 FROM public.players p
            WHERE p.game_id = p_game_id AND p.is_host
              AND p.device_id = public.request_device_id()
         )
$$;
COMMENT ON FUNCTION public.is_game_host(uuid) IS
  'True when the caller owns the game or its x-device-id holds the game''s host seat.';

REVOKE ALL ON FUNCTION public.is_game_member(uuid) FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION public.is_game_host(uuid) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.is_game_member(uuid) TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.is_game_host(uuid) TO anon, authenticated, service_role;

-- Competition ranking (1, 2, 2, 4): equal scores share a rank. SECURITY INVOKER: callers see
-- the leaderboards RLS lets them see.
CREATE FUNCTION public.get_game_leaderboard(game_uuid uuid, limit_count integer DEFAULT 10)
  RETURNS TABLE (player_id uuid, player_name varchar, score integer, rank bigint)
  LANGUAGE sql STABLE
  SET search_path = ''
AS $$
  SELECT p.id, p.player_name, d.score, rank() OVER (ORDER BY d.score DESC)
    FROM public.game_player_data d
    JOIN public.players p ON p.id = d.player_id
   WHERE d.game_id = game_uuid AND NOT p.is_host
   ORDER BY d.score DESC, p.player_name, p.id
   LIMIT greatest(limit_count, 0)
$$;
REVOKE ALL ON FUNCTION public.get_game_leaderboard(uuid, integer) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.get_game_leaderboard(uuid, integer)
  TO anon, authenticated, service_role;

-- Row level security (service_role bypasses it). Not FORCEd: the owner runs the definer
-- helpers above.
ALTER TABLE public.games ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.players ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.game_flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.game_player_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.game_event_counters ENABLE ROW LEVEL SECURITY;

CREATE POLICY games_read_members ON public.games
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(id));
CREATE POLICY games_host_update ON public.games
  FOR UPDATE TO anon, authenticated
  USING (public.is_game_host(id))
  WITH CHECK (public.is_game_host(id));

CREATE POLICY players_read_members ON public.players
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(game_id));

CREATE POLICY game_flows_read_members ON public.game_flows
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(game_id));

CREATE POLICY game_player_data_read_members ON public.game_player_data
  FOR SELECT TO anon, authenticated
  USING (public.is_game_member(game_id));

-- game_event_counters: no client policy at all.

REVOKE ALL ON public.games, public.players, public.game_flows, public.game_player_data,
  public.game_event_counters FROM PUBLIC, anon, authenticated;
GRANT SELECT ON public.games, public.players, public.game_flows, public.game_player_data
  TO anon, authenticated;
-- The host may lock the room and change settings; status, scores and flow stay with the server.
GRANT UPDATE (locked, game_settings) ON public.games TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.games, public.players, public.game_flows,
  public.game_player_data, public.game_event_counters TO service_role;
