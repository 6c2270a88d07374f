DROP TABLE public.game_owners;
