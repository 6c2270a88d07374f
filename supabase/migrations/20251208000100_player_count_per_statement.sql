-- games.current_players: one UPDATE of a game's row per statement, not one per seat.
--
-- The row trigger updated the game's row once for every player a statement inserted: a
-- batch of 500 joins wrote 500 versions of one hot row (each through games_set_updated_at),
-- held its lock the whole time and left the FK checks of every concurrent write to that
-- game (events, participations) a chain of versions to walk. INSERT and DELETE now count
-- from the statement's transition table; an UPDATE of game_id or is_host (one seat at a
-- time, rare) keeps the row trigger. Same function, still the only writer of the column.
CREATE OR REPLACE FUNCTION public.update_game_player_count() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = ''
AS $$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    IF TG_OP = 'INSERT' THEN
      UPDATE public.games g SET current_players = g.current_players + n.seats
        FROM (SELECT p.game_id, count(*) AS seats FROM new_players p
               WHERE NOT p.is_host GROUP BY p.game_id) n
       WHERE g.id = n.game_id;
    ELSE
      UPDATE public.games g SET current_players = g.current_players - n.seats
        FROM (SELECT p.game_id, count(*) AS seats FROM old_players p
               WHERE NOT p.is_host GROUP BY p.game_id) n
       WHERE g.id = n.game_id;
    END IF;
    RETURN NULL;
  END IF;
  IF OLD.game_id = NEW.game_id AND OLD.is_host = NEW.is_host THEN
    RETURN NULL;
  END IF;
  IF NOT OLD.is_host THEN
    UPDATE public.games SET current_players = current_players - 1 WHERE id = OLD.game_id;
  END IF;
  IF NOT NEW.is_host THEN
    UPDATE public.games SET current_players = current_players + 1 WHERE id = NEW.game_id;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER players_count ON public.players;
CREATE TRIGGER players_count_insert
  AFTER INSERT ON public.players REFERENCING NEW TABLE AS new_players
  FOR EACH STATEMENT EXECUTE FUNCTION public.update_game_player_count();
CREATE TRIGGER players_count_delete
  AFTER DELETE ON public.players REFERENCING OLD TABLE AS old_players
  FOR EACH STATEMENT EXECUTE FUNCTION public.update_game_player_count();
CREATE TRIGGER players_count_update
  AFTER UPDATE OF game_id, is_host ON public.players
  FOR EACH ROW EXECUTE FUNCTION public.update_game_player_count();
