-- Reverts 20251101000000_supabase_shim.sql.
--
-- Only objects the shim created are removed: auth objects are dropped when they carry the
-- 'tuiz-shim' comment, and schema auth only when the shim created it and it is empty
-- afterwards. A real Supabase auth schema is never touched.
--
-- The roles anon, authenticated and service_role are NOT dropped: roles belong to the whole
-- cluster, other databases may use them (or own objects through them), and DROP ROLE fails
-- while any database still holds a privilege granted to them. They cost nothing when unused.

DROP FUNCTION IF EXISTS public.request_device_id();
DROP FUNCTION IF EXISTS public.assert_device_id(text, text);
DROP FUNCTION IF EXISTS public.is_valid_device_id(text);

DO $shim$
DECLARE
  shim_function text;
BEGIN
  FOREACH shim_function IN ARRAY ARRAY['auth.role()', 'auth.uid()', 'auth.jwt()'] LOOP
    IF to_regprocedure(shim_function) IS NOT NULL
       AND obj_description(to_regprocedure(shim_function), 'pg_proc') LIKE 'tuiz-shim:%' THEN
      EXECUTE 'DROP FUNCTION ' || shim_function;
    END IF;
  END LOOP;

  IF to_regclass('auth.users') IS NOT NULL
     AND obj_description(to_regclass('auth.users'), 'pg_class') LIKE 'tuiz-shim:%' THEN
    DROP TABLE auth.users;
  END IF;

  IF EXISTS (
    SELECT 1 FROM pg_catalog.pg_namespace n
     WHERE n.nspname = 'auth'
       AND obj_description(n.oid, 'pg_namespace') LIKE 'tuiz-shim:%'
  ) THEN
    -- RESTRICT: anything added to the schema since is not ours to delete.
    BEGIN
      DROP SCHEMA auth RESTRICT;
    EXCEPTION WHEN dependent_objects_still_exist THEN
      RAISE NOTICE 'schema auth kept: it holds objects the shim did not create';
    END;
  END IF;
END
$shim$;
