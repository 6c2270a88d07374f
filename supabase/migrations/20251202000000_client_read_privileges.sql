-- What the client roles (anon, authenticated) may read, narrowed to what the server's audience
-- views would show them (DESIGN §5). Writes stay with the server, as before.
--
-- Answer keys. Column privileges cannot depend on the row, so answers.is_correct and
-- questions.accepted_answers are granted to no client role at all: SELECT is granted column
-- by column (every other column, as before) and RLS still decides the rows. Filtering or
-- sorting on those columns, or reading whole rows (`select=*`), is refused as well, so
-- PostgREST clients name their columns. An owner reads their quiz's key through
-- public.get_quiz_answer_key(p_quiz_set_id) (PostgREST: POST /rest/v1/rpc/get_quiz_answer_key),
-- SECURITY DEFINER with a pinned search_path, returning rows only when auth.uid() owns the
-- quiz. A function, not a view: a view that reads past a column privilege must run as its
-- owner (security_invoker = false), which then applies no RLS of the caller and which
-- Supabase's database linter reports as a security definer view; the function states its one
-- ownership check in its body. Owners keep INSERT and UPDATE on the key columns.
--
-- Games. Members read what the live views would give them and nothing more:
--   * game_events is the raw log (the quiz with its answer key, every device id): the server
--     and service_role only. No client grant or policy; get_game_event_sequence, which reads
--     the log as its caller, is no longer executable by clients.
--   * Device ids are never disclosed: players.device_id, room_participants.device_id and
--     game_player_data.player_device_id are not granted (a device knows its own id), nor is
--     room_participants.metadata (the server's notes on a socket).
--   * Scores: game_player_data is written as answers arrive, before the question's reveal, so
--     clients read it only once the game is finished; until then the live views, which show
--     scores as of the last reveal, are the only source.
--
-- Connection rows (IP address, user agent): a signed-in user reads their own
-- (user_id = auth.uid()), service_role all. A claimed x-device-id reads none, so anon holds
-- no privilege on websocket_connections or device_sessions.

-- ---------------------------------------------------------------------------------------
-- Answer keys
-- ---------------------------------------------------------------------------------------

REVOKE SELECT ON public.questions, public.answers FROM anon, authenticated;
GRANT SELECT (
  id, question_set_id, question_text, question_type, image_url, show_question_time,
  answering_time, show_explanation_time, points, difficulty, order_index, explanation_title,
  explanation_text, explanation_image_url, created_at, updated_at, deleted_at
) ON public.questions TO anon, authenticated;
GRANT SELECT (
  id, question_id, answer_text, image_url, order_index, created_at, updated_at, deleted_at
) ON public.answers TO anon, authenticated;

CREATE FUNCTION public.get_quiz_answer_key(p_quiz_set_id uuid)
  RETURNS TABLE (question_id uuid, accepted_answers text[], answer_id uuid, is_correct boolean)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = ''
AS $$
  -- One row per live answer; a question without answers (type_answer) gives one row with
  -- its accepted answers and a NULL answer_id.
  SELECT q.id, q.accepted_answers, a.id, a.is_correct
    FROM public.quiz_sets qs
    JOIN public.questions q ON q.question_set_id = qs.id AND q.deleted_at IS NULL
    LEFT JOIN public.answers a ON a.question_id = q.id AND a.deleted_at IS NULL
   WHERE qs.id = p_quiz_set_id
     AND qs.deleted_at IS NULL
     AND qs.user_id = (SELECT auth.uid())
   ORDER BY q.order_index, q.id, a.order_index, a.id
$$;
COMMENT ON FUNCTION public.get_quiz_answer_key(uuid) IS
  'The answer key of a quiz the caller owns (auth.uid()): accepted answers per question and '
  'is_correct per answer; no rows for anyone else.';
REVOKE ALL ON FUNCTION public.get_quiz_answer_key(uuid) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.get_quiz_answer_key(uuid) TO authenticated;

-- ---------------------------------------------------------------------------------------
-- Games
-- ---------------------------------------------------------------------------------------

DROP POLICY game_events_read_members ON public.game_events;
REVOKE SELECT ON public.game_events FROM anon, authenticated;
REVOKE EXECUTE ON FUNCTION public.get_game_event_sequence(uuid, integer) FROM anon, authenticated;

REVOKE SELECT ON public.players, public.room_participants, public.game_player_data
  FROM anon, authenticated;
GRANT SELECT (
  id, game_id, player_name, is_logged_in, is_host, created_at, updated_at, removed_at
) ON public.players TO anon, authenticated;
GRANT SELECT (
  id, game_id, socket_id, player_id, user_id, joined_at, left_at, role, status
) ON public.room_participants TO anon, authenticated;
GRANT SELECT (
  id, player_id, game_id, score, answer_report, created_at, updated_at
) ON public.game_player_data TO anon, authenticated;

DROP POLICY game_player_data_read_members ON public.game_player_data;
CREATE POLICY game_player_data_read_finished ON public.game_player_data
  FOR SELECT TO anon, authenticated
  USING (
    public.is_game_member(game_id)
    AND EXISTS (
      SELECT 1 FROM public.games g
       WHERE g.id = game_player_data.game_id AND g.status = 'finished'
    )
  );

-- ---------------------------------------------------------------------------------------
-- Connection rows
-- ---------------------------------------------------------------------------------------

DROP POLICY websocket_connections_read_own ON public.websocket_connections;
DROP POLICY device_sessions_read_own ON public.device_sessions;
REVOKE SELECT ON public.websocket_connections, public.device_sessions FROM anon;
CREATE POLICY websocket_connections_read_own_user ON public.websocket_connections
  FOR SELECT TO authenticated
  USING (user_id = (SELECT auth.uid()));
CREATE POLICY device_sessions_read_own_user ON public.device_sessions
  FOR SELECT TO authenticated
  USING (user_id = (SELECT auth.uid()));
