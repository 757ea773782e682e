-- Business-hours calendars. Weekly hours are three parallel arrays, one element per open
-- interval: ISO weekday (1 = Monday), start and end in local minutes since midnight.
create table calendars (
    tenant_id   text not null,
    calendar_id text not null,
    time_zone   text not null,
    open_days   smallint[] not null,
    open_starts smallint[] not null,
    open_ends   smallint[] not null,
    holidays    date[] not null,
    update_time timestamptz not null,
    primary key (tenant_id, calendar_id),
    check (cardinality(open_days) = cardinality(open_starts)
           and cardinality(open_days) = cardinality(open_ends))
);
