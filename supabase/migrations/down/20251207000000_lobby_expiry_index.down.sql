DROP INDEX public.games_waiting_created_at_idx;
