-- The lobby expiry job (live/hub.expire_lobbies) asks every few seconds for games still
-- waiting some time after creation. Without an index that is a scan of every game ever
-- played; the partial index holds only the games still in their lobby, oldest first.
CREATE INDEX games_waiting_created_at_idx ON public.games (created_at)
  WHERE status = 'waiting';
