-- The execution whose node emitted a plugin's event (issue 20), so an event trigger or
-- rule is not set off by the events of its own runs (a loop through `events/emit`).
ALTER TABLE events ADD COLUMN execution_id uuid;
