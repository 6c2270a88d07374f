-- A kicked player's seat stays for the game's record (scores, answers, events) but no longer
-- holds its device or its nickname: the device may join again as a new seat (unless banned),
-- and the name is free for someone else. Seat uniqueness now covers current seats only.

ALTER TABLE public.players ADD COLUMN removed_at timestamptz;
COMMENT ON COLUMN public.players.removed_at IS
  'When the host removed this seat (kick or ban); NULL while the seat is held.';

-- Players of a game (and the ON DELETE CASCADE from games), current or removed.
CREATE INDEX players_game_id_idx ON public.players (game_id);

-- The guarantee is kept, narrowed to current seats, by the partial unique index just below.
-- squawk-ignore ban-drop-constraint
ALTER TABLE public.players DROP CONSTRAINT players_game_device_key;
-- One current seat per device and game.
CREATE UNIQUE INDEX players_game_device_key ON public.players (game_id, device_id)
  WHERE removed_at IS NULL;

DROP INDEX public.players_game_name_key;
-- Nicknames are unique per game regardless of case, among current seats.
CREATE UNIQUE INDEX players_game_name_key ON public.players (game_id, lower(player_name))
  WHERE removed_at IS NULL;
