-- Every read-model table has a tenant_id, so that a rebuild of one tenant
-- (bookingctl replay --tenant) can replace exactly that tenant's rows. A
-- tenant's own row belongs to the tenant itself: the column is its id,
-- generated, so the projection never writes it.
ALTER TABLE read_report_tenants ADD COLUMN tenant_id uuid GENERATED ALWAYS AS (id) STORED;
