-- Interactions summed per UTC grain, so that GetResponseTimes reads a bounded number of
-- rollup rows whatever the number of interactions (design section 4), with the same
-- append-only accumulation as survey_rollups so that one compaction scheduler serves both.
--
-- A row adds `n` interactions and `seconds` (the exact sum of their durations) to one key:
-- tenant, grain (1 = UTC quarter-hour, 2 = hour, 3 = day, 4 = day over every channel,
-- agent and team, which are then ''), slot (the grain's UTC start, `date_bin` from the
-- epoch), channel, agent_id and team_id ('' for none), measure and bucket:
--   measure 1: answered, the first response took a duration in DDSketch bucket `bucket`;
--   measure 2: resolved, the resolution took a duration in bucket `bucket`;
--   measure 3: not answered yet (bucket 0, seconds 0);
--   measure 4: not resolved yet (bucket 0, seconds 0).
-- So interactions = measures 1 + 3, unanswered = 3, unresolved = 4, and each duration's
-- counts per bucket are its sketch (domain/sketch.rs), mergeable by adding counts.
--
-- The rows are deltas, not totals: statement triggers append one row per key a statement
-- changes (negative for a retraction), and a key's figures are the sums of its rows.
-- Appending takes no lock another writer could hold, so concurrent writers never wait on or
-- deadlock with each other and the sums stay exact. `compact_interaction_rollups` folds a
-- key's deltas into one row (fresh = false).
create table interaction_rollups (
    tenant_id text not null,
    grain     smallint not null,
    slot      timestamptz not null,
    channel   text not null,
    agent_id  text not null,
    team_id   text not null,
    measure   smallint not null,
    bucket    smallint not null,
    n         bigint not null,
    seconds   numeric not null,
    fresh     boolean not null default true,
    check (grain between 1 and 4),
    check (measure between 1 and 4)
);
-- The whole key, and the sums: reads are index-only scans of their slots (the rows of a
-- slot are appended at different times and lie on as many heap pages), and compaction
-- finds each key's rows with it.
create index interaction_rollups_key on interaction_rollups
    (tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket)
    include (n, seconds);
create index interaction_rollups_fresh on interaction_rollups (tenant_id) where fresh;

-- Seconds from `from_time` to `to_time`; null when either is.
create function interaction_seconds(from_time timestamptz, to_time timestamptz)
returns double precision language sql immutable parallel safe as $$
    select extract(epoch from to_time - from_time)::float8
$$;

-- The DDSketch bucket of a duration: ceil(log_gamma(seconds)) with gamma = (1 + a) / (1 - a)
-- and a = 0.01, so bucket i holds (gamma^(i-1), gamma^i]; zero durations have bucket -32768
-- of their own; a missing duration has none (null). Every query that compares a bucket with a target's uses this one function,
-- as do the expression indexes below.
create function response_time_bucket(seconds double precision)
returns smallint language sql immutable parallel safe as $$
    select case when seconds is null then null
                when seconds > 0
                then ceil(ln(seconds) / ln(1.01::float8 / 0.99::float8))::smallint
                else (-32768)::smallint end
$$;

-- The raw rows of one sketch bucket, for the few lookups the rollups leave to them: the
-- exact minimum and maximum inside the lowest and highest non-empty bucket, and the SLA
-- count inside the bucket that holds the target.
create index interactions_first_response_bucket on interactions
    (tenant_id, response_time_bucket(interaction_seconds(open_time, first_response_time)), open_time);
create index interactions_resolution_bucket on interactions
    (tenant_id, response_time_bucket(interaction_seconds(open_time, resolve_time)), open_time);

-- The rollup keys one interaction counts under: its slot in every grain, and in grain 4
-- no channel, agent or team. Shared by the triggers, the backfill and `rebuild`/`verify`.
create function interaction_rollup_slots(open_time timestamptz, channel text, agent_id text,
                                         team_id text)
returns table (grain smallint, slot timestamptz, channel text, agent_id text, team_id text)
language sql immutable parallel safe as $$
    select g.grain, date_bin(g.width, $1, timestamptz '1970-01-01 00:00:00+00'),
           case when g.grain = 4 then '' else coalesce($2, '') end,
           case when g.grain = 4 then '' else coalesce($3, '') end,
           case when g.grain = 4 then '' else coalesce($4, '') end
    from (values (1::smallint, interval '15 minutes'), (2::smallint, interval '1 hour'),
                 (3::smallint, interval '1 day'), (4::smallint, interval '1 day')) g (grain, width)
$$;

-- What one interaction adds: one measure for its first response and one for its resolution.
create function interaction_rollup_measures(open_time timestamptz,
                                            first_response_time timestamptz,
                                            resolve_time timestamptz)
returns table (measure smallint, bucket smallint, seconds numeric)
language sql immutable parallel safe as $$
    select case when t.done is null then t.missing else t.measure end,
           case when t.done is null then 0::smallint
                else response_time_bucket(interaction_seconds($1, t.done)) end,
           coalesce(extract(epoch from t.done - $1), 0)
    from (values (1::smallint, 3::smallint, $2), (2::smallint, 4::smallint, $3))
         t (measure, missing, done)
$$;

-- Appends the deltas of one statement on interactions: +1 for each row it wrote
-- (`new_rows`), -1 for each row it replaced or deleted (`old_rows`), summed per key; keys
-- whose deltas cancel (an update that changed only attributes) add nothing.
create function interaction_rollups_apply() returns trigger language plpgsql as $$
declare
    columns constant text := 'tenant_id, open_time, first_response_time, resolve_time, '
                             'channel, agent_id, team_id';
    source text;
begin
    source := case tg_op
        when 'INSERT' then format('select %s, 1 as delta from new_rows', columns)
        when 'DELETE' then format('select %s, -1 as delta from old_rows', columns)
        else format('select %1$s, 1 as delta from new_rows
                     union all select %1$s, -1 from old_rows', columns)
    end;
    execute format(
        'insert into interaction_rollups
             (tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket, n, seconds)
         select d.tenant_id, s.grain, s.slot, s.channel, s.agent_id, s.team_id, m.measure,
                m.bucket, sum(d.delta), sum(d.delta * m.seconds)
         from (%s) d
         cross join lateral interaction_rollup_slots(d.open_time, d.channel, d.agent_id,
                                                     d.team_id) s
         cross join lateral interaction_rollup_measures(d.open_time, d.first_response_time,
                                                        d.resolve_time) m
         group by 1, 2, 3, 4, 5, 6, 7, 8
         having sum(d.delta) <> 0 or sum(d.delta * m.seconds) <> 0', source);
    return null;
end;
$$;

create trigger interaction_rollups_insert after insert on interactions
    referencing new table as new_rows
    for each statement execute function interaction_rollups_apply();
create trigger interaction_rollups_update after update on interactions
    referencing old table as old_rows new table as new_rows
    for each statement execute function interaction_rollups_apply();
create trigger interaction_rollups_delete after delete on interactions
    referencing old table as old_rows
    for each statement execute function interaction_rollups_apply();

-- Folds the deltas of up to `max_keys` keys that have fresh rows into one row per key,
-- returning how many rows it removed. Exact with concurrent writers and compactors: the
-- delete takes only rows in its snapshot and skips rows another compactor removed first
-- (READ COMMITTED), each removed row's figures are inserted again exactly once, in the
-- same statement, and rows appended after its snapshot are left alone.
create function compact_interaction_rollups(max_keys integer) returns bigint
language sql as $$
    with keys as (
        select distinct tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket
        from (select * from interaction_rollups where fresh limit max_keys) f
        -- In index order, so that the deletes below walk the index forward.
        order by 1, 2, 3, 4, 5, 6, 7, 8
    ), gone as (
        delete from interaction_rollups r using keys k
        where r.tenant_id = k.tenant_id and r.grain = k.grain and r.slot = k.slot
          and r.channel = k.channel and r.agent_id = k.agent_id and r.team_id = k.team_id
          and r.measure = k.measure and r.bucket = k.bucket
        returning r.*
    ), merged as (
        insert into interaction_rollups
            (tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket, n, seconds,
             fresh)
        select tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket, sum(n),
               sum(seconds), false
        from gone
        group by 1, 2, 3, 4, 5, 6, 7, 8
        having sum(n) <> 0 or sum(seconds) <> 0
        returning 1
    )
    select count(*) from gone
$$;

-- The figures the rollups must hold, computed from the raw interactions of `tenant` (every
-- tenant when null): for the backfill below, `cxmetrics rollups rebuild` and `verify`.
create function interaction_rollup_counts(tenant text)
returns table (tenant_id text, grain smallint, slot timestamptz, channel text,
               agent_id text, team_id text, measure smallint, bucket smallint, n bigint,
               seconds numeric)
language sql stable as $$
    select i.tenant_id, s.grain, s.slot, s.channel, s.agent_id, s.team_id, m.measure,
           m.bucket, count(*), sum(m.seconds)
    from interactions i
    cross join lateral interaction_rollup_slots(i.open_time, i.channel, i.agent_id,
                                                i.team_id) s
    cross join lateral interaction_rollup_measures(i.open_time, i.first_response_time,
                                                   i.resolve_time) m
    where $1 is null or i.tenant_id = $1
    group by 1, 2, 3, 4, 5, 6, 7, 8
$$;

-- Existing interactions are counted here, in the migration, so that the rollups are
-- complete the moment a service that reads them starts.
insert into interaction_rollups
    (tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket, n, seconds, fresh)
select c.*, false from interaction_rollup_counts(null) c;
