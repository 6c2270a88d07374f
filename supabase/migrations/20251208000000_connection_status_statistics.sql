-- Plans for the live tables must not depend on what they held when ANALYZE last ran.
--
-- Most rows of room_participants and websocket_connections are history (disconnected,
-- timeout); the active ones come and go in bursts (a game's thousands of joins in seconds).
-- Statistics taken while nothing was active (a quiet night, a game's lobby) record 'active'
-- as absent, and the planner then prices every index WHERE status = 'active' as one row: a
-- room:join batch, a socket's close or leave walked every active row of the table
-- (room_participants_one_active_key or _active_socket_idx scanned end to end: 2,300-4,700
-- rows thrown away per batch of 8 joiners at 300 players, a join burst growing with its
-- square). Likewise a game's id: statistics describe yesterday's games, never the one being
-- played, so a new game looks empty and its game_id index as good as the (game_id,
-- device_id) key a seat lookup wants (a pass over the game's seats per lookup). Without
-- statistics on these columns the planner takes the default selectivity, a fraction of the
-- table, and picks the index that matches the lookup's keys.
ALTER TABLE public.room_participants ALTER COLUMN status SET STATISTICS 0;
ALTER TABLE public.room_participants ALTER COLUMN game_id SET STATISTICS 0;
ALTER TABLE public.websocket_connections ALTER COLUMN status SET STATISTICS 0;
ALTER TABLE public.players ALTER COLUMN game_id SET STATISTICS 0;

-- ANALYZE keeps what it collected before; clear it where this role may (a superuser; on
-- PostgreSQL 18 pg_clear_attribute_stats does it for the table owner). A fresh database has
-- none to clear.
DO $$
DECLARE
  col text[];
BEGIN
  FOREACH col SLICE 1 IN ARRAY ARRAY[['room_participants', 'status'],
                                     ['room_participants', 'game_id'],
                                     ['websocket_connections', 'status'],
                                     ['players', 'game_id']] LOOP
    BEGIN
      IF to_regproc('pg_catalog.pg_clear_attribute_stats') IS NOT NULL THEN
        PERFORM pg_catalog.pg_clear_attribute_stats('public', col[1], col[2], false);
      ELSE
        DELETE FROM pg_catalog.pg_statistic s
         USING pg_catalog.pg_attribute a
         WHERE s.starelid = ('public.' || col[1])::regclass AND a.attrelid = s.starelid
           AND a.attname = col[2] AND s.staattnum = a.attnum;
      END IF;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'public.%.% keeps its old statistics until a superuser clears them',
        col[1], col[2];
    END;
  END LOOP;
END
$$;
