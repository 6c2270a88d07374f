CREATE OR REPLACE FUNCTION public.is_valid_device_id(p_device_id text) RETURNS boolean
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
