-- Two more grains of both rollup tables, over every dimension (survey and channel for
-- responses, channel, agent and team for interactions, all ''): 5, a UTC calendar month,
-- `slot` the month's first instant in UTC; 6, a UTC hour.
--
-- A local month, quarter or year is then its UTC months, minus or plus the few hours
-- between each local boundary and the nearest UTC month start (domain/grains.rs,
-- `cover_by_months`): a one-year monthly series reads twelve month slots and a few hour
-- slots per boundary, instead of 365 days and hours per channel, agent and team, whatever
-- the number of records.

-- Writers that started before this migration counted their rows without grain 5: wait for
-- them, and keep new ones out until the backfill below is committed with the new slots.
lock table survey_responses, interactions in share row exclusive mode;

alter table survey_rollups drop constraint survey_rollups_grain_check,
    add constraint survey_rollups_grain_check check (grain between 1 and 6);
alter table interaction_rollups drop constraint interaction_rollups_grain_check,
    add constraint interaction_rollups_grain_check check (grain between 1 and 6);

-- The UTC month of `t`, as its first instant.
create function utc_month(t timestamptz) returns timestamptz
language sql immutable parallel safe as $$
    select timezone('UTC', date_trunc('month', timezone('UTC', t)))
$$;

create or replace function survey_rollup_slots(respond_time timestamptz, survey_id text,
                                               channel text)
returns table (grain smallint, slot timestamptz, survey_id text, channel text)
language sql immutable parallel safe as $$
    select g.grain,
           case when g.grain = 5 then utc_month($1)
                else date_bin(g.width, $1, timestamptz '1970-01-01 00:00:00+00') end,
           case when g.grain >= 4 then '' else $2 end,
           case when g.grain >= 4 then '' else coalesce($3, '') end
    from (values (1::smallint, interval '15 minutes'), (2::smallint, interval '1 hour'),
                 (3::smallint, interval '1 day'), (4::smallint, interval '1 day'),
                 (5::smallint, null::interval), (6::smallint, interval '1 hour')) g (grain, width)
$$;

create or replace function interaction_rollup_slots(open_time timestamptz, channel text,
                                                    agent_id text, team_id text)
returns table (grain smallint, slot timestamptz, channel text, agent_id text, team_id text)
language sql immutable parallel safe as $$
    select g.grain,
           case when g.grain = 5 then utc_month($1)
                else date_bin(g.width, $1, timestamptz '1970-01-01 00:00:00+00') end,
           case when g.grain >= 4 then '' else coalesce($2, '') end,
           case when g.grain >= 4 then '' else coalesce($3, '') end,
           case when g.grain >= 4 then '' else coalesce($4, '') end
    from (values (1::smallint, interval '15 minutes'), (2::smallint, interval '1 hour'),
                 (3::smallint, interval '1 day'), (4::smallint, interval '1 day'),
                 (5::smallint, null::interval), (6::smallint, interval '1 hour')) g (grain, width)
$$;

-- What is already counted, in the new grains: the months from the days over every
-- dimension (grain 4), the hours over every dimension from the hours (grain 2), fresh
-- deltas included. The same counts as from the raw rows, without reading them.
insert into survey_rollups
    (tenant_id, kind, grain, slot, survey_id, channel, scale_min, scale_max, score, n, fresh)
select tenant_id, kind, g.grain, g.slot, '', '', scale_min, scale_max, score, sum(n), false
from survey_rollups r
cross join lateral (select 5::smallint, utc_month(r.slot) where r.grain = 4
                    union all select 6::smallint, r.slot where r.grain = 2) g (grain, slot)
where r.grain in (2, 4)
group by tenant_id, kind, g.grain, g.slot, scale_min, scale_max, score
having sum(n) <> 0;

insert into interaction_rollups
    (tenant_id, grain, slot, channel, agent_id, team_id, measure, bucket, n, seconds, fresh)
select tenant_id, g.grain, g.slot, '', '', '', measure, bucket, sum(n), sum(seconds), false
from interaction_rollups r
cross join lateral (select 5::smallint, utc_month(r.slot) where r.grain = 4
                    union all select 6::smallint, r.slot where r.grain = 2) g (grain, slot)
where r.grain in (2, 4)
group by tenant_id, g.grain, g.slot, measure, bucket
having sum(n) <> 0 or sum(seconds) <> 0;
