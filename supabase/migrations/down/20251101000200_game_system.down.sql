-- Reverts 20251101000200_game_system.sql (policies, triggers and indexes go with the tables).
DROP TABLE IF EXISTS public.game_event_counters;
DROP TABLE IF EXISTS public.game_player_data;
DROP TABLE IF EXISTS public.game_flows;
DROP TABLE IF EXISTS public.players;
DROP TABLE IF EXISTS public.games;
DROP FUNCTION IF EXISTS public.get_game_leaderboard(uuid, integer);
DROP FUNCTION IF EXISTS public.is_game_host(uuid);
DROP FUNCTION IF EXISTS public.is_game_member(uuid);
DROP FUNCTION IF EXISTS public.update_game_player_count();
DROP TYPE IF EXISTS public.game_status;
