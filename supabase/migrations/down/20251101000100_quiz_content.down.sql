-- Reverts 20251101000100_quiz_content.sql (policies, triggers and indexes go with the tables).
DROP TABLE IF EXISTS public.answers;
DROP TABLE IF EXISTS public.questions;
DROP TABLE IF EXISTS public.quiz_sets;
DROP FUNCTION IF EXISTS public.set_updated_at();
DROP TYPE IF EXISTS public.question_type;
DROP TYPE IF EXISTS public.quiz_status;
DROP TYPE IF EXISTS public.difficulty_level;
