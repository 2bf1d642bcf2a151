-- Saved views of the consoles' tables (plinth-identity::views): a user's own named
-- filters, sorts and columns for one table, kept on the server so they follow the user
-- from browser to browser.
CREATE TABLE console_views (
    id {{uuid}} PRIMARY KEY,
    user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Which table: `members`, `sessions`, …
    page TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The view as a query string of the table's own fields (checked when saved).
    query TEXT NOT NULL,
    created_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX console_views_name ON console_views (user_id, page, name);
