-- Tenants, API keys and the three record types. Every key starts with the tenant so the
-- schema can be distributed by tenant.

create table tenants (
    tenant_id   text primary key,
    create_time timestamptz not null default now()
);

create table api_keys (
    tenant_id      text not null references tenants (tenant_id),
    key_id         text not null,
    key_hash       bytea not null,
    scopes         text[] not null,
    create_time    timestamptz not null default now(),
    last_used_time timestamptz,
    revoke_time    timestamptz,
    primary key (tenant_id, key_id)
);
-- Authentication finds a key by its public id alone.
create unique index api_keys_key_id on api_keys (key_id);

create table survey_responses (
    tenant_id      text not null,
    response_id    text not null,
    survey_id      text not null,
    kind           smallint not null,
    score          smallint not null,
    scale_min      smallint not null,
    scale_max      smallint not null,
    customer_id    text not null,
    interaction_id text,
    channel        text,
    respond_time   timestamptz not null,
    comment        text,
    attributes     jsonb not null default '{}',
    update_time    timestamptz not null,
    primary key (tenant_id, response_id),
    check (kind in (1, 2, 3)),
    check (score between scale_min and scale_max)
);
create index survey_responses_time on survey_responses (tenant_id, respond_time);
create index survey_responses_customer on survey_responses (tenant_id, customer_id);

create table interactions (
    tenant_id           text not null,
    interaction_id      text not null,
    customer_id         text not null,
    channel             text,
    agent_id            text,
    team_id             text,
    open_time           timestamptz not null,
    first_response_time timestamptz,
    resolve_time        timestamptz,
    attributes          jsonb not null default '{}',
    update_time         timestamptz not null,
    primary key (tenant_id, interaction_id),
    check (first_response_time >= open_time),
    check (resolve_time >= open_time)
);
create index interactions_time on interactions (tenant_id, open_time);
create index interactions_customer on interactions (tenant_id, customer_id);

create table customers (
    tenant_id    text not null,
    customer_id  text not null,
    acquire_time timestamptz not null,
    churn_time   timestamptz,
    attributes   jsonb not null default '{}',
    update_time  timestamptz not null,
    primary key (tenant_id, customer_id),
    check (churn_time >= acquire_time)
);
