-- Quiz content: quiz_sets -> questions -> answers, owned by a user.
--
-- Access: the owner has full access to their own sets; a published public set (and its
-- questions and answers) is readable by everyone, signed in or not. The server (service_role)
-- reads and writes everything. Column names follow the TUIZ client.

CREATE TYPE public.difficulty_level AS ENUM ('easy', 'medium', 'hard', 'expert');
CREATE TYPE public.quiz_status AS ENUM ('draft', 'published', 'archived');
CREATE TYPE public.question_type AS ENUM (
  'multiple_choice', 'true_false', 'multi_select', 'type_answer', 'poll'
);

CREATE FUNCTION public.set_updated_at() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = ''
AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.set_updated_at() FROM PUBLIC;

CREATE TABLE public.quiz_sets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  title varchar(200) NOT NULL CHECK (char_length(btrim(title)) >= 1),
  description text NOT NULL DEFAULT '',
  thumbnail_url text,
  is_public boolean NOT NULL DEFAULT false,
  difficulty_level public.difficulty_level NOT NULL DEFAULT 'easy',
  category varchar(100) NOT NULL DEFAULT 'General',
  total_questions integer NOT NULL DEFAULT 0 CHECK (total_questions >= 0),
  times_played integer NOT NULL DEFAULT 0 CHECK (times_played >= 0),
  status public.quiz_status NOT NULL DEFAULT 'draft',
  tags text[] NOT NULL DEFAULT '{}',
  play_settings jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(play_settings) = 'object'),
  cloned_from uuid REFERENCES public.quiz_sets (id) ON DELETE SET NULL,
  last_played_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
COMMENT ON TABLE public.quiz_sets IS 'A quiz: its questions, play settings and visibility.';
COMMENT ON COLUMN public.quiz_sets.play_settings IS
  'Client play configuration (show_explanation, time_bonus, streak_bonus, max_players, ...).';

-- Owner listing, and the ON DELETE CASCADE from auth.users.
CREATE INDEX quiz_sets_user_id_idx ON public.quiz_sets (user_id);
-- Browsing public quizzes, newest first.
CREATE INDEX quiz_sets_public_created_idx ON public.quiz_sets (created_at DESC)
  WHERE status = 'published' AND is_public AND deleted_at IS NULL;
-- ON DELETE SET NULL of cloned_from.
CREATE INDEX quiz_sets_cloned_from_idx ON public.quiz_sets (cloned_from)
  WHERE cloned_from IS NOT NULL;

CREATE TABLE public.questions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  question_set_id uuid NOT NULL REFERENCES public.quiz_sets (id) ON DELETE CASCADE,
  question_text text NOT NULL CHECK (char_length(btrim(question_text)) >= 1),
  question_type public.question_type NOT NULL DEFAULT 'multiple_choice',
  image_url text,
  show_question_time integer NOT NULL DEFAULT 10 CHECK (show_question_time >= 0),
  answering_time integer NOT NULL DEFAULT 30 CHECK (answering_time > 0),
  show_explanation_time integer NOT NULL DEFAULT 5 CHECK (show_explanation_time >= 0),
  -- 0 for a poll (no score); a correct answer earns up to `points`.
  points integer NOT NULL DEFAULT 1000 CHECK (points >= 0),
  difficulty public.difficulty_level NOT NULL DEFAULT 'easy',
  order_index integer NOT NULL CHECK (order_index >= 0),
  explanation_title varchar(200),
  explanation_text text,
  explanation_image_url text,
  -- type_answer: every accepted spelling (compared trimmed and case-insensitively by the engine).
  accepted_answers text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  CONSTRAINT questions_poll_scores_nothing CHECK (question_type <> 'poll' OR points = 0)
);
COMMENT ON TABLE public.questions IS 'Questions of a quiz set, in order_index order.';
COMMENT ON COLUMN public.questions.show_question_time IS 'Seconds the question shows before answering opens.';
COMMENT ON COLUMN public.questions.answering_time IS 'Seconds allowed for answering.';
COMMENT ON COLUMN public.questions.show_explanation_time IS 'Seconds the explanation shows.';

-- Loading a quiz in order; also the ON DELETE CASCADE from quiz_sets.
CREATE INDEX questions_set_order_idx ON public.questions (question_set_id, order_index);

CREATE TABLE public.answers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  question_id uuid NOT NULL REFERENCES public.questions (id) ON DELETE CASCADE,
  answer_text text NOT NULL CHECK (char_length(btrim(answer_text)) >= 1),
  image_url text,
  is_correct boolean NOT NULL DEFAULT false,
  order_index integer NOT NULL CHECK (order_index >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
COMMENT ON TABLE public.answers IS 'Answer options of a question (multiple_choice, true_false, multi_select, poll).';

-- Loading a question's options in order; also the ON DELETE CASCADE from questions.
CREATE INDEX answers_question_order_idx ON public.answers (question_id, order_index);

CREATE TRIGGER quiz_sets_set_updated_at BEFORE UPDATE ON public.quiz_sets
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER questions_set_updated_at BEFORE UPDATE ON public.questions
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER answers_set_updated_at BEFORE UPDATE ON public.answers
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Row level security. service_role bypasses RLS (BYPASSRLS); policies below are for clients.
-- Not FORCEd: the table owner runs the SECURITY DEFINER helpers of later migrations.
ALTER TABLE public.quiz_sets ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.questions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.answers ENABLE ROW LEVEL SECURITY;

CREATE POLICY quiz_sets_read_published ON public.quiz_sets
  FOR SELECT TO anon, authenticated
  USING (status = 'published' AND is_public AND deleted_at IS NULL);
CREATE POLICY quiz_sets_owner_all ON public.quiz_sets
  FOR ALL TO authenticated
  USING (user_id = (SELECT auth.uid()))
  WITH CHECK (user_id = (SELECT auth.uid()));

CREATE POLICY questions_read_published ON public.questions
  FOR SELECT TO anon, authenticated
  USING (
    deleted_at IS NULL
    AND EXISTS (
      SELECT 1 FROM public.quiz_sets qs
       WHERE qs.id = questions.question_set_id
         AND qs.status = 'published' AND qs.is_public AND qs.deleted_at IS NULL
    )
  );
CREATE POLICY questions_owner_all ON public.questions
  FOR ALL TO authenticated
  USING (EXISTS (
    SELECT 1 FROM public.quiz_sets qs
     WHERE qs.id = questions.question_set_id AND qs.user_id = (SELECT auth.uid())
  ))
  WITH CHECK (EXISTS (
    SELECT 1 FROM public.quiz_sets qs
     WHERE qs.id = questions.question_set_id AND qs.user_id = (SELECT auth.uid())
  ));

CREATE POLICY answers_read_published ON public.answers
  FOR SELECT TO anon, authenticated
  USING (
    deleted_at IS NULL
    AND EXISTS (
      SELECT 1 FROM public.questions q
        JOIN public.quiz_sets qs ON qs.id = q.question_set_id
       WHERE q.id = answers.question_id AND q.deleted_at IS NULL
         AND qs.status = 'published' AND qs.is_public AND qs.deleted_at IS NULL
    )
  );
CREATE POLICY answers_owner_all ON public.answers
  FOR ALL TO authenticated
  USING (EXISTS (
    SELECT 1 FROM public.questions q
      JOIN public.quiz_sets qs ON qs.id = q.question_set_id
     WHERE q.id = answers.question_id AND qs.user_id = (SELECT auth.uid())
  ))
  WITH CHECK (EXISTS (
    SELECT 1 FROM public.questions q
      JOIN public.quiz_sets qs ON qs.id = q.question_set_id
     WHERE q.id = answers.question_id AND qs.user_id = (SELECT auth.uid())
  ));

-- Explicit grants (Supabase's default privileges would otherwise give anon/authenticated ALL).
REVOKE ALL ON public.quiz_sets, public.questions, public.answers FROM PUBLIC, anon, authenticated;
GRANT SELECT ON public.quiz_sets, public.questions, public.answers TO anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.quiz_sets, public.questions, public.answers
  TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.quiz_sets, public.questions, public.answers
  TO service_role;
