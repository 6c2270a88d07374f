-- Where 20251208000000 could not clear a column's old statistics (a role that is not a
-- superuser, before PostgreSQL 18), ANALYZE would never refresh them again (statistics
-- target 0): those columns go back to ANALYZE as before, their old figures refreshed and not
-- frozen. Fresh databases and superusers keep them off.
DO $$
DECLARE
  col record;
BEGIN
  FOR col IN
    SELECT a.attrelid::regclass AS tab, a.attname
      FROM pg_catalog.pg_attribute a
     WHERE a.attstattarget = 0
       AND (a.attrelid, a.attname) IN (('public.room_participants'::regclass, 'status'),
                                       ('public.room_participants'::regclass, 'game_id'),
                                       ('public.websocket_connections'::regclass, 'status'),
                                       ('public.players'::regclass, 'game_id'))
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_stats s
                    WHERE s.schemaname = 'public'
                      AND s.tablename = (SELECT relname FROM pg_catalog.pg_class
                                          WHERE oid = a.attrelid)
                      AND s.attname = a.attname)
  LOOP
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS -1', col.tab, col.attname);
    RAISE NOTICE '%.% keeps statistics: its old ones could not be cleared', col.tab, col.attname;
  END LOOP;
END
$$;
