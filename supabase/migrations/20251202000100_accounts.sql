-- Local accounts for the TUIZ web client (POST /auth/register, /auth/login, /profile).
--
-- auth.users stays the identity table (Supabase's own, or the shim's stand-in); what tuiz
-- adds lives beside it, keyed by the user id, so a real Supabase auth schema is never altered:
--   * user_credentials: the argon2id hash of a local password (no row = no local password,
--     e.g. a user made by Supabase Auth or `tuiz quiz import`);
--   * refresh_tokens: SHA-256 digests of the refresh tokens handed out (never the tokens);
--   * profiles: username, display name and avatar the client shows.
-- Only the server (service_role) reads credentials and refresh tokens. A signed-in user may
-- read their own profile row; every write goes through the server.

CREATE TABLE public.user_credentials (
  user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.user_credentials IS 'argon2id hash of a local account password.';

CREATE TABLE public.refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  token_digest bytea NOT NULL UNIQUE CHECK (octet_length(token_digest) = 32),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.refresh_tokens IS
  'Refresh tokens of local sessions, stored as SHA-256 digests; revoked at logout or rotation.';
-- Revoking a user's sessions at logout; also the ON DELETE CASCADE from auth.users.
CREATE INDEX refresh_tokens_user_id_idx ON public.refresh_tokens (user_id);

CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  username text CHECK (username ~ '^[A-Za-z0-9_]{3,20}$'),
  display_name text NOT NULL CHECK (char_length(btrim(display_name)) BETWEEN 1 AND 50),
  avatar_url text CHECK (char_length(avatar_url) <= 2048),
  role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  last_active timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.profiles IS 'What the client shows of a user: username, display name, avatar.';
-- Usernames are unique whatever their case.
CREATE UNIQUE INDEX profiles_username_key ON public.profiles (lower(username));

CREATE TRIGGER user_credentials_set_updated_at BEFORE UPDATE ON public.user_credentials
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER profiles_set_updated_at BEFORE UPDATE ON public.profiles
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- A quiz's join code (play_settings.code) is unique among live quizzes: looked up by
-- GET /quiz/code/check/{code} and when a code is generated.
CREATE INDEX quiz_sets_play_code_idx ON public.quiz_sets ((play_settings ->> 'code'))
  WHERE deleted_at IS NULL AND play_settings ? 'code';

ALTER TABLE public.user_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;

CREATE POLICY profiles_read_own ON public.profiles
  FOR SELECT TO authenticated
  USING (id = (SELECT auth.uid()));

REVOKE ALL ON public.user_credentials, public.refresh_tokens, public.profiles
  FROM PUBLIC, anon, authenticated;
GRANT SELECT ON public.profiles TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE
  ON public.user_credentials, public.refresh_tokens, public.profiles TO service_role;
