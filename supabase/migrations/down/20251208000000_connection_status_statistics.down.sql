-- IF EXISTS: the seed's own rollback may have dropped the seed's tables first.
ALTER TABLE IF EXISTS public.room_participants ALTER COLUMN status SET STATISTICS -1;
ALTER TABLE IF EXISTS public.room_participants ALTER COLUMN game_id SET STATISTICS -1;
ALTER TABLE IF EXISTS public.websocket_connections ALTER COLUMN status SET STATISTICS -1;
ALTER TABLE public.players ALTER COLUMN game_id SET STATISTICS -1;
