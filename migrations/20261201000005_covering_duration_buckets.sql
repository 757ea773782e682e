-- The raw lookups a sketch read leaves (the SLA count inside the target's bucket, the exact
-- extremes inside the outermost buckets) read only the index: each duration index carries
-- the end instant its duration is computed from, so the lookup needs no heap visit once
-- the visibility map covers the rows. At ten million interactions a monthly read of a year
-- judges some 2,000 rows per month and measure there.
--
-- Rebuilt in this migration's transaction: writes to `interactions` wait for it, about a
-- second per 200,000 rows (52 s at ten million on the 2-core development machine).
drop index interactions_first_response_bucket;
create index interactions_first_response_bucket on interactions
    (tenant_id, response_time_bucket(interaction_seconds(open_time, first_response_time)), open_time)
    include (first_response_time);
drop index interactions_resolution_bucket;
create index interactions_resolution_bucket on interactions
    (tenant_id, response_time_bucket(interaction_seconds(open_time, resolve_time)), open_time)
    include (resolve_time);
