-- The lists GET /resource-categories, /resources and /users serve each
-- row as the API shows the object (view: the same JSON as the aggregate's
-- View), ordered by name then id. Rows projected before this migration
-- have no view, so the catalog is emptied and its checkpoint dropped: the
-- projector rebuilds it from the event log at the next start.

TRUNCATE read_catalog_tenants, read_catalog_categories, read_catalog_resources, read_catalog_users;

DO $$
BEGIN
    IF to_regclass('booking_checkpoints') IS NOT NULL THEN
        DELETE FROM booking_checkpoints WHERE name = 'catalog';
    END IF;
END
$$;

ALTER TABLE read_catalog_categories ADD COLUMN view jsonb NOT NULL;
ALTER TABLE read_catalog_resources ADD COLUMN view jsonb NOT NULL;
ALTER TABLE read_catalog_users
    ADD COLUMN name  text  NOT NULL,
    ADD COLUMN email text  NOT NULL,
    ADD COLUMN view  jsonb NOT NULL;

CREATE INDEX read_catalog_categories_name_idx ON read_catalog_categories (tenant_id, (name COLLATE "C"), id);
CREATE INDEX read_catalog_resources_name_idx ON read_catalog_resources (tenant_id, (name COLLATE "C"), id);
CREATE INDEX read_catalog_users_name_idx ON read_catalog_users (tenant_id, (name COLLATE "C"), id);
CREATE INDEX read_catalog_users_email_idx ON read_catalog_users (tenant_id, email);
