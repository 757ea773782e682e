-- Each customer's activity (survey responses at respond_time, interactions at open_time)
-- per UTC calendar month: how many records (`n`), and the earliest and latest instant among
-- them. Cohort reports read this instead of every raw record (design section 4).
--
-- Why this is enough, exactly, in any zone: a local month, quarter or year meets a UTC
-- month in the whole month, a prefix or a suffix of it, so a customer is active in a local
-- bucket that meets UTC month u iff its first instant in u (for a prefix) or its last (for a
-- suffix) lies in that bucket. Its first activity ever is the least first instant. Storage
-- checks that the buckets of a query are of that kind (no bucket lies strictly inside a UTC
-- month) and reads the raw rows otherwise (days, weeks).
--
-- Rows are appended as for the rollups, so writers never wait on each other: a statement
-- adds one row per (tenant, customer, month) it changes, with the change in `n` and the
-- least and greatest instant it added. A least or greatest instant cannot be retracted by
-- arithmetic, so a row that retracts records says so (`retracts`): until that month is
-- compacted, readers take its activity from the raw rows, and compaction recomputes it from
-- them. `compact_customer_months` folds a month's rows into one (fresh = false).
-- Writers that started before the triggers exist are waited for, and new ones held off
-- until the backfill at the end is committed with the triggers.
lock table survey_responses, interactions in share row exclusive mode;

create table customer_months (
    tenant_id   text not null,
    customer_id text not null,
    month       timestamptz not null,
    n           bigint not null,
    first_at    timestamptz,
    last_at     timestamptz,
    retracts    boolean not null default false,
    fresh       boolean not null default true
);
-- A tenant's months in customer order (what a cohort read groups by), without visiting the
-- table; compaction finds each month's rows with it too.
create index customer_months_key on customer_months (tenant_id, customer_id, month)
    include (n, first_at, last_at, retracts, fresh);
create index customer_months_fresh on customer_months (tenant_id) where fresh;
alter table customer_months set (autovacuum_vacuum_scale_factor = 0.01,
                                 autovacuum_vacuum_insert_scale_factor = 0.01);

-- The first instant after the UTC month that starts at `month`.
create function utc_month_end(month timestamptz) returns timestamptz
language sql immutable parallel safe as $$
    select timezone('UTC', timezone('UTC', month) + interval '1 month')
$$;

-- Appends the changes of one statement on survey_responses or interactions, whose activity
-- instant is the column named by the trigger's argument: per instant, the records added
-- minus those replaced or deleted; then per month, their sum, the least and greatest
-- instant added, and whether any was taken away. Instants whose changes cancel (an update
-- that changed only a comment) add nothing.
create function customer_months_apply() returns trigger language plpgsql as $$
declare
    source text;
begin
    source := case tg_op
        when 'INSERT' then format('select tenant_id, customer_id, %I as t, 1 as delta
                                   from new_rows', tg_argv[0])
        when 'DELETE' then format('select tenant_id, customer_id, %I as t, -1 as delta
                                   from old_rows', tg_argv[0])
        else format('select tenant_id, customer_id, %1$I as t, 1 as delta from new_rows
                     union all select tenant_id, customer_id, %1$I, -1 from old_rows',
                    tg_argv[0])
    end;
    execute format(
        'insert into customer_months
             (tenant_id, customer_id, month, n, first_at, last_at, retracts)
         select tenant_id, customer_id, utc_month(t), sum(d), min(t) filter (where d > 0),
                max(t) filter (where d > 0), bool_or(d < 0)
         from (select tenant_id, customer_id, t, sum(delta) as d from (%s) s
               group by 1, 2, 3 having sum(delta) <> 0) changed
         group by 1, 2, 3', source);
    return null;
end;
$$;

create trigger customer_months_insert after insert on survey_responses
    referencing new table as new_rows
    for each statement execute function customer_months_apply('respond_time');
create trigger customer_months_update after update on survey_responses
    referencing old table as old_rows new table as new_rows
    for each statement execute function customer_months_apply('respond_time');
create trigger customer_months_delete after delete on survey_responses
    referencing old table as old_rows
    for each statement execute function customer_months_apply('respond_time');
create trigger customer_months_insert after insert on interactions
    referencing new table as new_rows
    for each statement execute function customer_months_apply('open_time');
create trigger customer_months_update after update on interactions
    referencing old table as old_rows new table as new_rows
    for each statement execute function customer_months_apply('open_time');
create trigger customer_months_delete after delete on interactions
    referencing old table as old_rows
    for each statement execute function customer_months_apply('open_time');

-- The activity of one customer in one UTC month, from the raw rows.
create function customer_month_activity(tenant text, customer text, month timestamptz)
returns table (n bigint, first_at timestamptz, last_at timestamptz)
language sql stable as $$
    select count(*), min(t), max(t) from (
        select respond_time as t from survey_responses
        where tenant_id = $1 and customer_id = $2
          and respond_time >= $3 and respond_time < utc_month_end($3)
        union all
        select open_time from interactions
        where tenant_id = $1 and customer_id = $2
          and open_time >= $3 and open_time < utc_month_end($3)
    ) a
$$;

-- Folds the rows of the months of up to `max_rows` fresh rows into one row per month,
-- returning how many rows it removed: sums and extremes for months whose rows only add, the
-- raw rows' figures, in the statement's snapshot, for months with a retraction (the raw
-- tables are read only then). One compaction at a time (an advisory lock; the others fold
-- nothing this round), so that a recomputed month is inserted once; rows appended after a
-- statement's snapshot are left for the next round.
create function compact_customer_months(max_rows integer) returns bigint
language plpgsql as $$
declare
    removed bigint;
    recomputed bigint;
begin
    if not pg_try_advisory_xact_lock(hashtext('compact_customer_months')) then
        return 0;
    end if;
    with keys as (
        select distinct f.tenant_id, f.customer_id, f.month
        from (select * from customer_months where fresh limit max_rows) f
        where not exists (select from customer_months r
                          where r.tenant_id = f.tenant_id and r.customer_id = f.customer_id
                            and r.month = f.month and r.retracts)
        order by 1, 2, 3
    ), gone as (
        delete from customer_months c using keys k
        where c.tenant_id = k.tenant_id and c.customer_id = k.customer_id
          and c.month = k.month
        returning c.*
    ), merged as (
        insert into customer_months
            (tenant_id, customer_id, month, n, first_at, last_at, retracts, fresh)
        select tenant_id, customer_id, month, sum(n), min(first_at), max(last_at), false,
               false
        from gone group by 1, 2, 3 having sum(n) <> 0
        returning 1
    )
    select count(*) into removed from gone;
    if exists (select from customer_months where fresh and retracts) then
        with keys as (
            select distinct tenant_id, customer_id, month
            from (select * from customer_months where fresh and retracts
                  limit max_rows) f
            order by 1, 2, 3
        ), gone as (
            delete from customer_months c using keys k
            where c.tenant_id = k.tenant_id and c.customer_id = k.customer_id
              and c.month = k.month
            returning c.tenant_id, c.customer_id, c.month
        ), merged as (
            insert into customer_months
                (tenant_id, customer_id, month, n, first_at, last_at, retracts, fresh)
            select k.tenant_id, k.customer_id, k.month, a.n, a.first_at, a.last_at, false,
                   false
            from keys k
            cross join lateral customer_month_activity(k.tenant_id, k.customer_id,
                                                       k.month) a
            where a.n <> 0
            returning 1
        )
        select count(*) into recomputed from gone;
        removed := removed + recomputed;
    end if;
    return removed;
end;
$$;

-- The months the table must hold, computed from the raw rows of `tenant` (every tenant
-- when null): for the backfill below, `cxmetrics rollups rebuild` and `verify`.
create function customer_month_counts(tenant text)
returns table (tenant_id text, customer_id text, month timestamptz, n bigint,
               first_at timestamptz, last_at timestamptz)
language sql stable as $$
    select tenant_id, customer_id, utc_month(t), count(*), min(t), max(t) from (
        select tenant_id, customer_id, respond_time as t from survey_responses
        where $1 is null or tenant_id = $1
        union all
        select tenant_id, customer_id, open_time from interactions
        where $1 is null or tenant_id = $1
    ) a
    group by 1, 2, 3
$$;

-- What is stored is counted here, so that the table is complete the moment a service
-- reads it (writers were held off at the top).
insert into customer_months (tenant_id, customer_id, month, n, first_at, last_at, fresh)
select c.*, false from customer_month_counts(null) c;
