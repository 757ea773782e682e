-- Survey responses counted per UTC grain, so that NPS, CSAT and CES read a few thousand
-- rows whatever the number of responses (design section 4).
--
-- A row is a count `n` of responses of one kind, survey, channel ('' for none), scale and
-- score in one slot: the quarter-hour (grain 1), hour (2) or day (3) starting at `slot`,
-- in UTC. Grain 4 is grain 3 over every survey and channel (survey_id and channel ''), for
-- the unfiltered queries most dashboards ask.
--
-- The rows are deltas, not totals: triggers append one row per key a statement changes,
-- with the change in `n` (negative for a retraction), and a key's count is the sum of its
-- rows. Appending takes no lock on rows another writer could hold, so concurrent writers to
-- the same slot never wait on or deadlock with each other, and the count stays exact.
-- `compact_survey_rollups` folds the deltas of a key into one row (fresh = false).
create table survey_rollups (
    tenant_id text not null,
    kind      smallint not null,
    grain     smallint not null,
    slot      timestamptz not null,
    survey_id text not null,
    channel   text not null,
    scale_min smallint not null,
    scale_max smallint not null,
    score     smallint not null,
    n         bigint not null,
    fresh     boolean not null default true,
    check (grain between 1 and 4)
);
-- The whole key, and the count: reads scan its prefix (tenant, kind, grain, slot range)
-- without visiting the table, compaction finds each key's rows with it.
create index survey_rollups_key on survey_rollups
    (tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score)
    include (n);
create index survey_rollups_fresh on survey_rollups (tenant_id) where fresh;
-- Index-only scans need pages marked all-visible, which vacuum does: vacuum this table of
-- churning deltas after 1% of it changed, rather than the default 20%.
alter table survey_rollups set (autovacuum_vacuum_scale_factor = 0.01,
                                autovacuum_vacuum_insert_scale_factor = 0.01);

-- The rollup keys one response counts under: its slot in every grain, and in grain 4 no
-- survey or channel. Shared by the triggers, `cxmetrics rollups rebuild` and `verify`.
create function survey_rollup_slots(respond_time timestamptz, survey_id text, channel text)
returns table (grain smallint, slot timestamptz, survey_id text, channel text)
language sql immutable parallel safe as $$
    select g.grain, date_bin(g.width, $1, timestamptz '1970-01-01 00:00:00+00'),
           case when g.grain = 4 then '' else $2 end,
           case when g.grain = 4 then '' else coalesce($3, '') end
    from (values (1::smallint, interval '15 minutes'), (2::smallint, interval '1 hour'),
                 (3::smallint, interval '1 day'), (4::smallint, interval '1 day')) g (grain, width)
$$;

-- Appends the deltas of one statement on survey_responses: +1 for each row it wrote (the
-- `new_rows` transition table), -1 for each row it replaced or deleted (`old_rows`), summed
-- per key; keys whose deltas cancel (an update that changed only a comment) add nothing.
-- The transition tables a statement has depend on its event, hence the dynamic source.
create function survey_rollups_apply() returns trigger language plpgsql as $$
declare
    columns constant text := 'tenant_id, kind, respond_time, survey_id, channel, '
                             'scale_min, scale_max, score';
    source text;
begin
    source := case tg_op
        when 'INSERT' then format('select %s, 1 as delta from new_rows', columns)
        when 'DELETE' then format('select %s, -1 as delta from old_rows', columns)
        else format('select %1$s, 1 as delta from new_rows
                     union all select %1$s, -1 from old_rows', columns)
    end;
    execute format(
        'insert into survey_rollups
             (tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score, n)
         select d.tenant_id, d.kind, s.grain, s.slot, s.survey_id, s.channel,
                d.scale_min, d.scale_max, d.score, sum(d.delta)
         from (%s) d
         cross join lateral survey_rollup_slots(d.respond_time, d.survey_id, d.channel) s
         group by 1, 2, 3, 4, 5, 6, 7, 8, 9
         having sum(d.delta) <> 0', source);
    return null;
end;
$$;

create trigger survey_rollups_insert after insert on survey_responses
    referencing new table as new_rows
    for each statement execute function survey_rollups_apply();
create trigger survey_rollups_update after update on survey_responses
    referencing old table as old_rows new table as new_rows
    for each statement execute function survey_rollups_apply();
create trigger survey_rollups_delete after delete on survey_responses
    referencing old table as old_rows
    for each statement execute function survey_rollups_apply();

-- Folds the deltas of up to `max_rows` fresh rows' keys into one row per key, returning how
-- many rows it removed. Exact with concurrent writers and compactors: the delete takes only
-- rows in its snapshot and skips rows another compactor removed first, and each removed
-- row's count is inserted again exactly once, in the same statement.
create function compact_survey_rollups(max_rows integer) returns bigint
language sql as $$
    with keys as (
        select distinct tenant_id, kind, grain, slot, survey_id, channel, scale_min,
               scale_max, score
        from (select * from survey_rollups where fresh limit max_rows) f
        -- In index order, so that the deletes below walk the index forward.
        order by 1, 2, 3, 4, 5, 6, 7, 8, 9
    ), gone as (
        delete from survey_rollups r using keys k
        where r.tenant_id = k.tenant_id and r.kind = k.kind and r.grain = k.grain
          and r.slot = k.slot and r.survey_id = k.survey_id and r.channel = k.channel
          and r.scale_min = k.scale_min and r.scale_max = k.scale_max and r.score = k.score
        returning r.*
    ), merged as (
        insert into survey_rollups
            (tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score,
             n, fresh)
        select tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score,
               sum(n), false
        from gone
        group by 1, 2, 3, 4, 5, 6, 7, 8, 9
        having sum(n) <> 0
        returning 1
    )
    select count(*) from gone
$$;

-- The counts the rollups must hold, computed from the raw responses of `tenant` (every
-- tenant when null): for the backfill below, `cxmetrics rollups rebuild` and `verify`.
create function survey_rollup_counts(tenant text)
returns table (tenant_id text, kind smallint, grain smallint, slot timestamptz,
               survey_id text, channel text, scale_min smallint, scale_max smallint,
               score smallint, n bigint)
language sql stable as $$
    select r.tenant_id, r.kind, s.grain, s.slot, s.survey_id, s.channel, r.scale_min,
           r.scale_max, r.score, count(*)
    from survey_responses r
    cross join lateral survey_rollup_slots(r.respond_time, r.survey_id, r.channel) s
    where $1 is null or r.tenant_id = $1
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9
$$;

-- Existing responses are counted here, in the migration, so that the rollups are complete
-- the moment a service that reads them starts.
insert into survey_rollups
    (tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score, n, fresh)
select c.*, false from survey_rollup_counts(null) c;
