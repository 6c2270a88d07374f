-- Removed seats would collide with current ones under the old constraints: they go first.
DELETE FROM public.players WHERE removed_at IS NOT NULL;

DROP INDEX public.players_game_name_key;
CREATE UNIQUE INDEX players_game_name_key ON public.players (game_id, lower(player_name));

DROP INDEX public.players_game_device_key;
ALTER TABLE public.players
  ADD CONSTRAINT players_game_device_key UNIQUE (game_id, device_id);

DROP INDEX public.players_game_id_idx;
ALTER TABLE public.players DROP COLUMN removed_at;
