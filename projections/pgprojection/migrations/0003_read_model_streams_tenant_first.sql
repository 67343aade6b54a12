-- The tenant index led with the projection, so for "projection = $1 AND
-- stream_id = ANY($2)" a generic plan made while the table was small
-- could take it over the primary key and read every stream of the
-- projection. Led by the tenant, it serves only what it is for: one
-- tenant's versions in a tenant's shadow swap.
DROP INDEX read_model_streams_tenant_idx;
CREATE INDEX read_model_streams_tenant_idx ON read_model_streams (tenant_id, projection);
