DROP TRIGGER IF EXISTS players_count_insert ON public.players;
DROP TRIGGER IF EXISTS players_count_delete ON public.players;
DROP TRIGGER IF EXISTS players_count_update ON public.players;

CREATE OR REPLACE FUNCTION public.update_game_player_count() RETURNS trigger
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

CREATE TRIGGER players_count
  AFTER INSERT OR DELETE OR UPDATE OF game_id, is_host ON public.players
  FOR EACH ROW EXECUTE FUNCTION public.update_game_player_count();
