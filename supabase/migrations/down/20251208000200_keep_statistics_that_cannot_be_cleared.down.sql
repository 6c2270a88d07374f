-- Nothing to undo: the columns it handed back to ANALYZE are what 20251208000000's down file
-- restores for every column.
SELECT 1;
