-- Each live game has exactly one owner process at a time. A process leases the games it runs
-- and renews the lease while it runs them; another process may take a game over only once
-- the lease has expired (its owner died or stopped), so two processes never apply commands
-- to one game at once.

CREATE TABLE public.game_owners (
  game_id uuid PRIMARY KEY REFERENCES public.games (id) ON DELETE CASCADE,
  owner text NOT NULL CHECK (char_length(owner) BETWEEN 1 AND 200),
  expires_at timestamptz NOT NULL
);
COMMENT ON TABLE public.game_owners IS
  'Lease of a live game by one tuiz process (owner id), renewed while that process runs it.';

ALTER TABLE public.game_owners ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.game_owners FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.game_owners TO service_role;
