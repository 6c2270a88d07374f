-- The small part of Supabase the later migrations rely on, created only where it is missing.
--
-- On a Supabase project every object below already exists and this file changes nothing in
-- the `auth` schema. On vanilla PostgreSQL it creates:
--   * schema auth with auth.users (minimal), auth.jwt(), auth.uid(), auth.role(), reading the
--     claims PostgREST puts in `request.jwt.claims` (missing, empty or malformed -> NULL);
--   * roles anon, authenticated (NOLOGIN) and service_role (NOLOGIN BYPASSRLS);
--   * USAGE on schema public (and on auth when this file created it) for those roles.
-- Every auth object it creates carries the comment 'tuiz-shim', so the down file removes only
-- what this file made and never touches a real Supabase auth schema.
--
-- It also creates tuiz's own device-id helpers, used by CHECK constraints, functions and RLS
-- policies in the later migrations:
--   * public.is_valid_device_id(text)   the one definition of a valid device id;
--   * public.assert_device_id(text, text) raises SQLSTATE 22023 naming the offending field;
--   * public.request_device_id()        the x-device-id request header, or NULL.

-- Roles are cluster-wide and may already exist (another database, a concurrent runner).
DO $shim$
DECLARE
  wanted record;
BEGIN
  FOR wanted IN
    SELECT * FROM (VALUES
      ('anon', 'NOLOGIN NOINHERIT'),
      ('authenticated', 'NOLOGIN NOINHERIT'),
      ('service_role', 'NOLOGIN NOINHERIT BYPASSRLS')
    ) AS r(name, options)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = wanted.name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', wanted.name, wanted.options);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a runner on another database of the cluster
      END;
    END IF;
  END LOOP;
END
$shim$;

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

DO $shim$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'auth') THEN
    CREATE SCHEMA auth;
    COMMENT ON SCHEMA auth IS 'tuiz-shim: stand-in for the Supabase auth schema';
    GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
  END IF;

  IF to_regclass('auth.users') IS NULL THEN
    CREATE TABLE auth.users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email text UNIQUE,
      raw_user_meta_data jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    COMMENT ON TABLE auth.users IS 'tuiz-shim: minimal stand-in for Supabase auth.users';
    GRANT SELECT, INSERT, UPDATE, DELETE ON auth.users TO service_role;
  END IF;

  IF to_regprocedure('auth.jwt()') IS NULL THEN
    CREATE FUNCTION auth.jwt() RETURNS jsonb
      LANGUAGE plpgsql STABLE
      SET search_path = ''
    AS $fn$
    DECLARE
      raw text := nullif(current_setting('request.jwt.claims', true), '');
    BEGIN
      IF raw IS NULL THEN
        RETURN NULL;
      END IF;
      RETURN raw::jsonb;
    EXCEPTION WHEN data_exception THEN
      RETURN NULL;  -- malformed claims identify nobody
    END
    $fn$;
    COMMENT ON FUNCTION auth.jwt() IS 'tuiz-shim: request.jwt.claims as jsonb, NULL when unset or malformed';
  END IF;

  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid
      LANGUAGE plpgsql STABLE
      SET search_path = ''
    AS $fn$
    BEGIN
      RETURN coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        auth.jwt() ->> 'sub'
      )::uuid;
    EXCEPTION WHEN data_exception THEN
      RETURN NULL;  -- a sub that is not a uuid identifies nobody
    END
    $fn$;
    COMMENT ON FUNCTION auth.uid() IS 'tuiz-shim: the caller''s user id (claim sub), NULL when absent';
  END IF;

  IF to_regprocedure('auth.role()') IS NULL THEN
    CREATE FUNCTION auth.role() RETURNS text
      LANGUAGE sql STABLE
      SET search_path = ''
    AS $fn$
      SELECT coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        auth.jwt() ->> 'role'
      )
    $fn$;
    COMMENT ON FUNCTION auth.role() IS 'tuiz-shim: the caller''s role claim, NULL when absent';
  END IF;
END
$shim$;

CREATE FUNCTION public.is_valid_device_id(p_device_id text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  SET search_path = ''
AS $$
  -- Real clients send UUIDs, `device_<ts>_<rand>` or `tuiz_device_<uuid>`; the length test
  -- comes first so a 10 kB value is rejected without running the pattern over it.
  SELECT p_device_id IS NOT NULL
     AND char_length(p_device_id) BETWEEN 1 AND 255
     AND p_device_id ~ '^[A-Za-z0-9_.:-]+$'
     AND p_device_id ~ '[A-Za-z0-9]'
$$;
COMMENT ON FUNCTION public.is_valid_device_id(text) IS
  'A device id is 1-255 characters of A-Z a-z 0-9 _ . : - with at least one letter or digit.';

CREATE FUNCTION public.assert_device_id(p_device_id text, p_field text DEFAULT 'p_device_id')
  RETURNS text
  LANGUAGE plpgsql IMMUTABLE
  SET search_path = ''
AS $$
BEGIN
  IF NOT public.is_valid_device_id(p_device_id) THEN
    RAISE EXCEPTION 'invalid %: a device id must be 1-255 characters of A-Z a-z 0-9 _ . : -',
        p_field
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('got %s', CASE WHEN p_device_id IS NULL THEN 'NULL'
                                           ELSE char_length(p_device_id) || ' characters' END);
  END IF;
  RETURN p_device_id;
END
$$;
COMMENT ON FUNCTION public.assert_device_id(text, text) IS
  'Returns the device id unchanged, or raises 22023 naming the field.';

CREATE FUNCTION public.request_device_id() RETURNS text
  LANGUAGE plpgsql STABLE
  SET search_path = ''
AS $$
DECLARE
  raw text := nullif(current_setting('request.headers', true), '');
  device text;
BEGIN
  -- Pooled connections carry an empty setting; a guest without a valid header is nobody.
  IF raw IS NULL THEN
    RETURN NULL;
  END IF;
  device := raw::jsonb ->> 'x-device-id';
  IF public.is_valid_device_id(device) THEN
    RETURN device;
  END IF;
  RETURN NULL;
EXCEPTION WHEN data_exception THEN
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.request_device_id() IS
  'The x-device-id request header when it is a valid device id, else NULL; never raises.';

-- Pure helpers of the caller's own input: executable by everyone (CHECK constraints and RLS
-- policies evaluate them as whichever role is writing or reading).
GRANT EXECUTE ON FUNCTION public.is_valid_device_id(text) TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.assert_device_id(text, text) TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.request_device_id() TO anon, authenticated, service_role;
