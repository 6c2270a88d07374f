DROP INDEX public.quiz_sets_play_code_idx;
DROP TABLE public.profiles;
DROP TABLE public.refresh_tokens;
DROP TABLE public.user_credentials;
