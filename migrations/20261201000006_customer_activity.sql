-- Each customer's activity in one row, which is what a monthly cohort read needs: reading
-- every month of every customer (`customer_months`) costs a second per two million months.
-- The row holds the customer's first instant ever, a bit per UTC month (bit 0 is January
-- 2000, before any record) in which the first or last instant lies well inside the month,
-- and those first and last instants of its months that lie near a month's edge.
--
-- Near an edge means within 14 hours of the month's start or end. Every zone's offset lies
-- between -12 and +14 hours, so a local month starts within 14 hours of the UTC month start
-- it is named after, and holds every instant of that UTC month that is not near its edges.
-- So in a grid of local months whose boundaries each lie within 14 hours of consecutive UTC
-- month starts (storage checks this per query), a month's bit is its local month, and an
-- edge instant's local month is found from the grid's boundaries. That is the same answer
-- `customer_months` gives: a customer is active in a local month iff the first or the last
-- instant of one of its UTC months lies in it.
--
-- The compactor of `customer_months` keeps this table: when it folds any month of a
-- customer, it recomputes the customer's row from the folded months, in the same
-- transaction. A customer with a fresh (unfolded) row in `customer_months` is read from
-- there instead, so this table never needs to be current for it.
create table customer_activity (
    tenant_id   text not null,
    customer_id text not null,
    first_at    timestamptz not null,
    months      varbit not null,
    edges       timestamptz[] not null,
    primary key (tenant_id, customer_id)
);

-- The bit of the UTC month that starts at `month`.
create function utc_month_index(month timestamptz) returns integer
language sql immutable parallel safe as $$
    select ((extract(year from month at time zone 'UTC') - 2000) * 12
            + extract(month from month at time zone 'UTC') - 1)::integer
$$;

-- Whether `t`, an instant of the UTC month that starts at `month`, lies within 14 hours of
-- one of its edges.
create function utc_month_edge(month timestamptz, t timestamptz) returns boolean
language sql immutable parallel safe as $$
    select t < month + interval '14 hours' or t >= utc_month_end(month) - interval '14 hours'
$$;

-- `bits` with bit `i` set, lengthened as needed; the step of `month_bits`.
create function month_bits_step(bits varbit, i integer) returns varbit
language sql immutable parallel safe as $$
    select set_bit(case when length(bits) > i then bits
                        else bits || repeat('0', i + 1 - length(bits))::varbit end, i, 1)
$$;

-- The bit string with a bit set for each index aggregated.
create aggregate month_bits(integer) (
    sfunc = month_bits_step,
    stype = varbit,
    initcond = ''
);

-- Each customer's row, folded from its folded months (fresh rows are the readers' to
-- take). Read it for given tenants and customers through a lateral subquery, so that the
-- planner pushes them below the grouping.
create view customer_activity_folded as
select c.tenant_id, c.customer_id, min(c.first_at) as first_at,
       coalesce(month_bits(utc_month_index(c.month))
                    filter (where not utc_month_edge(c.month, v.t)), ''::varbit) as months,
       coalesce(array_agg(distinct v.t order by v.t)
                    filter (where utc_month_edge(c.month, v.t)), '{}') as edges
from customer_months c
cross join lateral (values (c.first_at), (c.last_at)) v (t)
where not c.fresh
group by c.tenant_id, c.customer_id;

-- Recomputes the rows of the given customers (pairs of `tenants` and `customers`) from
-- their folded months: the compactor's last step.
create function customer_activity_refresh(tenants text[], customers text[])
returns void language sql as $$
    insert into customer_activity (tenant_id, customer_id, first_at, months, edges)
    select f.*
    from (select distinct * from unnest(tenants, customers) t (tenant_id, customer_id)) t
    cross join lateral (select * from customer_activity_folded f
                        where f.tenant_id = t.tenant_id and f.customer_id = t.customer_id) f
    on conflict (tenant_id, customer_id) do update
        set first_at = excluded.first_at, months = excluded.months, edges = excluded.edges;
    delete from customer_activity a
    using unnest(tenants, customers) t (tenant_id, customer_id)
    where a.tenant_id = t.tenant_id and a.customer_id = t.customer_id
      and not exists (select from customer_months c
                      where c.tenant_id = a.tenant_id and c.customer_id = a.customer_id
                        and not c.fresh);
$$;

-- As in migration 20261201000004, with each round's customers refreshed at its end.
create or replace function compact_customer_months(max_rows integer) returns bigint
language plpgsql as $$
declare
    removed bigint;
    recomputed bigint;
    tenants text[];
    customers text[];
    more_tenants text[];
    more_customers text[];
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
    select (select count(*) from gone), array_agg(tenant_id), array_agg(customer_id)
    into removed, tenants, customers
    from (select distinct tenant_id, customer_id from keys) k;
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
        select (select count(*) from gone), array_agg(tenant_id), array_agg(customer_id)
        into recomputed, more_tenants, more_customers
        from (select distinct tenant_id, customer_id from keys) k;
        removed := removed + recomputed;
        tenants := tenants || more_tenants;
        customers := customers || more_customers;
    end if;
    if tenants is not null then
        perform customer_activity_refresh(tenants, customers);
    end if;
    return removed;
end;
$$;

insert into customer_activity (tenant_id, customer_id, first_at, months, edges)
select * from customer_activity_folded;
