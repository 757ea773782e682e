-- Comment themes (design section 2, "What customers say"): the terms of every comment,
-- counted per side and per UTC day and month as responses arrive, so that a year of themes
-- reads a few hundred thousand rows whatever the number of comments.
--
-- A comment's words go through PostgreSQL's own text search: `to_tsvector` with the
-- snowball configuration of its language (stems, stop words removed, positions kept). Its
-- terms are its distinct stems and the pairs of stems that follow each other once stop
-- words are removed ("delivery was slow" gives 'deliveri', 'slow' and 'deliveri slow').
-- A term is counted once per comment: its mentions are the comments that contain it.

-- The text search configuration of a comment: the response's `language` attribute when
-- it names a configuration this server has (`en`, `ru`, `de`, ..., a region suffix such
-- as `en-GB` ignored), else Russian for text with a Cyrillic letter, else English.
create function comment_config(comment text, language text) returns regconfig
language sql immutable parallel safe as $$
    select coalesce(
        (select c.oid::regconfig from pg_ts_config c
         where c.cfgnamespace = 'pg_catalog'::regnamespace and c.cfgname = case lower(split_part(split_part(coalesce(language, ''), '-', 1), '_', 1))
            when 'ar' then 'arabic' when 'hy' then 'armenian' when 'eu' then 'basque'
            when 'ca' then 'catalan' when 'da' then 'danish' when 'nl' then 'dutch'
            when 'en' then 'english' when 'fi' then 'finnish' when 'fr' then 'french'
            when 'de' then 'german' when 'el' then 'greek' when 'hi' then 'hindi'
            when 'hu' then 'hungarian' when 'id' then 'indonesian' when 'ga' then 'irish'
            when 'it' then 'italian' when 'lt' then 'lithuanian' when 'ne' then 'nepali'
            when 'no' then 'norwegian' when 'nb' then 'norwegian' when 'nn' then 'norwegian'
            when 'pt' then 'portuguese' when 'ro' then 'romanian' when 'ru' then 'russian'
            when 'sr' then 'serbian' when 'es' then 'spanish' when 'sv' then 'swedish'
            when 'ta' then 'tamil' when 'tr' then 'turkish' when 'yi' then 'yiddish'
        end),
        case when coalesce(comment, '') ~ '[Ѐ-ӿ]' then 'pg_catalog.russian'::regconfig
             else 'pg_catalog.english'::regconfig end)
$$;

-- Whether a comment counts as one: it has a character other than white space.
create function comment_present(comment text) returns boolean
language sql immutable parallel safe as $$
    select coalesce(comment, '') ~ '[^[:space:]]'
$$;

-- The side of an answer: 1 negative (NPS detractors 0-6, CSAT below the top two points,
-- CES below the top three), 2 positive (promoters 9-10, the top two, the top three),
-- 0 neither (NPS passives).
create function comment_side(kind smallint, score smallint, scale_max smallint)
returns smallint language sql immutable parallel safe as $$
    select (case kind
        when 1 then case when score <= 6 then 1 when score >= 9 then 2 else 0 end
        when 2 then case when score >= scale_max - 1 then 2 else 1 end
        else case when score >= scale_max - 2 then 2 else 1 end
    end)::smallint
$$;

alter table survey_responses add column comment_tsv tsvector generated always as
    (to_tsvector(comment_config(comment, attributes ->> 'language'), coalesce(comment, ''))) stored;
-- `ListSurveyResponses.comment_query` matches it.
create index survey_responses_comment on survey_responses using gin (comment_tsv);

-- The terms of one comment and the written form each is shown in: the word most often
-- written for each stem in this comment (lower case; ties to the first in collation
-- order), a pair as its two stems' forms. The forms come from the parser's tokens, each
-- through the dictionaries `config` maps its token type to, as `to_tsvector` does, so
-- that no stemming happens outside PostgreSQL. PL/pgSQL keeps the plan across calls, and
-- the materialized CTEs run once per comment, not once per term.
create function comment_terms_of(config regconfig, body text, tsv tsvector)
returns table (term text, form text)
language plpgsql immutable parallel safe set jit = off as $$
begin
    return query
    with lexemes as materialized (
        select u.lexeme, p.pos
        from unnest(tsv) u cross join lateral unnest(u.positions) p (pos)
    ), words as (
        select v.lexeme, lower(t.token) as word, count(*) as n
        from ts_parse('default', body) t
        cross join lateral (
            select ts_lexize(m.mapdict::regdictionary, t.token) as lexemes
            from pg_catalog.pg_ts_config_map m
            where m.mapcfg = config and m.maptokentype = t.tokid
              and ts_lexize(m.mapdict::regdictionary, t.token) is not null
            order by m.mapseqno limit 1
        ) d
        cross join lateral unnest(d.lexemes) v (lexeme)
        group by 1, 2
    ), forms as materialized (
        select distinct on (w.lexeme) w.lexeme, w.word from words w order by w.lexeme, w.n desc, w.word
    ), pairs as (
        select x.lexeme, lead(x.lexeme) over (order by x.pos) as next from lexemes x
    )
    select l.lexeme, coalesce(f.word, l.lexeme)
    from (select distinct x.lexeme from lexemes x) l left join forms f on f.lexeme = l.lexeme
    union
    select p.lexeme || ' ' || p.next, coalesce(f1.word, p.lexeme) || ' ' || coalesce(f2.word, p.next)
    from pairs p
    left join forms f1 on f1.lexeme = p.lexeme
    left join forms f2 on f2.lexeme = p.next
    where p.next is not null;
end;
$$;

-- The terms of every comment on a side (passives have none), for the reads that cannot
-- use the counts below (filters, the edges of a range) and for example responses.
create table comment_terms (
    tenant_id    text not null,
    response_id  text not null,
    kind         smallint not null,
    side         smallint not null,
    respond_time timestamptz not null,
    term         text not null,
    form         text not null
);
create index comment_terms_response on comment_terms (tenant_id, response_id);
-- Examples: the newest comments of a side with a term.
create index comment_terms_term on comment_terms (tenant_id, kind, side, term, respond_time);

-- Comments and terms counted per UTC day (grain 1) and month (grain 2) starting at
-- `slot`, per side: `n` comments of that side contain `term` written as `form`. The term
-- '' (form '') counts the comments themselves, of every side (0 for passives).
--
-- As in survey_rollups, the rows are deltas that triggers append (negative for a
-- retraction) and a key's count is the sum of its rows; `compact_comment_term_counts`
-- folds them.
create table comment_term_counts (
    tenant_id text not null,
    kind      smallint not null,
    grain     smallint not null,
    slot      timestamptz not null,
    side      smallint not null,
    term      text not null,
    form      text not null,
    n         bigint not null,
    fresh     boolean not null default true,
    check (grain in (1, 2))
);
create index comment_term_counts_key on comment_term_counts
    (tenant_id, kind, grain, slot, side, term, form) include (n);
create index comment_term_counts_fresh on comment_term_counts (tenant_id) where fresh;
alter table comment_term_counts set (autovacuum_vacuum_scale_factor = 0.01,
                                     autovacuum_vacuum_insert_scale_factor = 0.01);

-- The slots one response counts in: its UTC day and its UTC month.
create function comment_term_slots(respond_time timestamptz)
returns table (grain smallint, slot timestamptz)
language sql immutable parallel safe as $$
    select 1::smallint, date_bin(interval '1 day', $1, timestamptz '1970-01-01 00:00:00+00')
    union all
    select 2::smallint, date_trunc('month', $1 at time zone 'UTC') at time zone 'UTC'
$$;

-- The query of the comment_terms rows of some responses (`source`: rows of
-- survey_responses), for the trigger below.
create function comment_term_rows(source text) returns text
language sql immutable as $$
    select format(
        'select s.tenant_id, s.response_id, s.kind, comment_side(s.kind, s.score, s.scale_max) as side,
                s.respond_time, t.term, t.form
         from %1$s s
         cross join lateral comment_terms_of(comment_config(s.comment, s.attributes ->> %2$L),
                                             coalesce(s.comment, %3$L), s.comment_tsv) t
         where comment_present(s.comment) and comment_side(s.kind, s.score, s.scale_max) > 0',
        source, 'language', '')
$$;

-- Keeps comment_terms and comment_term_counts in step with one statement on
-- survey_responses: the terms of the rows it replaced or deleted (`old_rows`) are deleted
-- and counted -1, the terms of the rows it wrote (`new_rows`) inserted and counted +1,
-- summed per key, so an update that changes no term, side or day adds no count.
-- Without JIT: the estimates of the per-comment functions are high enough to trigger a
-- compilation that costs more than the statement.
create function comment_terms_apply() returns trigger language plpgsql set jit = off as $$
declare
    old_source text := case when tg_op = 'INSERT' then '(select * from new_rows limit 0)'
                            else 'old_rows' end;
    new_source text := case when tg_op = 'DELETE' then '(select * from old_rows limit 0)'
                            else 'new_rows' end;
begin
    execute format(
        'with gone as (
             delete from comment_terms c using %1$s o
             where c.tenant_id = o.tenant_id and c.response_id = o.response_id
             returning c.*
         ), added as (
             insert into comment_terms (tenant_id, response_id, kind, side, respond_time, term, form)
             %3$s
             returning *
         ), deltas as (
             select tenant_id, kind, side, respond_time, term, form, -1 as delta from gone
             union all
             select tenant_id, kind, side, respond_time, term, form, 1 from added
             union all
             select tenant_id, kind, comment_side(kind, score, scale_max), respond_time, %4$L, %4$L, -1
             from %1$s x where comment_present(x.comment)
             union all
             select tenant_id, kind, comment_side(kind, score, scale_max), respond_time, %4$L, %4$L, 1
             from %2$s x where comment_present(x.comment)
         )
         insert into comment_term_counts (tenant_id, kind, grain, slot, side, term, form, n)
         select d.tenant_id, d.kind, s.grain, s.slot, d.side, d.term, d.form, sum(d.delta)
         from deltas d cross join lateral comment_term_slots(d.respond_time) s
         group by 1, 2, 3, 4, 5, 6, 7
         having sum(d.delta) <> 0',
        old_source, new_source, comment_term_rows(new_source), '');
    return null;
end;
$$;

create trigger comment_terms_insert after insert on survey_responses
    referencing new table as new_rows
    for each statement execute function comment_terms_apply();
create trigger comment_terms_update after update on survey_responses
    referencing old table as old_rows new table as new_rows
    for each statement execute function comment_terms_apply();
create trigger comment_terms_delete after delete on survey_responses
    referencing old table as old_rows
    for each statement execute function comment_terms_apply();

-- Folds the deltas of up to `max_rows` fresh rows' keys into one row per key, returning how
-- many rows it removed; exact alongside writers and other compactors, as
-- `compact_survey_rollups`.
create function compact_comment_term_counts(max_rows integer) returns bigint
language sql as $$
    with keys as (
        select distinct tenant_id, kind, grain, slot, side, term, form
        from (select * from comment_term_counts where fresh limit max_rows) f
        order by 1, 2, 3, 4, 5, 6, 7
    ), gone as (
        delete from comment_term_counts r using keys k
        where r.tenant_id = k.tenant_id and r.kind = k.kind and r.grain = k.grain
          and r.slot = k.slot and r.side = k.side and r.term = k.term and r.form = k.form
        returning r.*
    ), merged as (
        insert into comment_term_counts (tenant_id, kind, grain, slot, side, term, form, n, fresh)
        select tenant_id, kind, grain, slot, side, term, form, sum(n), false
        from gone
        group by 1, 2, 3, 4, 5, 6, 7
        having sum(n) <> 0
        returning 1
    )
    select count(*) from gone
$$;

-- The counts comment_term_counts must hold, computed from the raw responses of `tenant`
-- (every tenant when null), terms recomputed: for the backfill below,
-- `cxmetrics rollups rebuild` and `verify`.
create function comment_term_count_rows(tenant text)
returns table (tenant_id text, kind smallint, grain smallint, slot timestamptz,
               side smallint, term text, form text, n bigint)
language sql stable as $$
    with terms as (
        select r.tenant_id, r.kind, r.respond_time, comment_side(r.kind, r.score, r.scale_max) as side,
               x.term, x.form
        from survey_responses r
        cross join lateral comment_terms_of(comment_config(r.comment, r.attributes ->> 'language'),
                                            r.comment, r.comment_tsv) x
        where ($1 is null or r.tenant_id = $1) and comment_present(r.comment)
          and comment_side(r.kind, r.score, r.scale_max) > 0
        union all
        select r.tenant_id, r.kind, r.respond_time, comment_side(r.kind, r.score, r.scale_max), '', ''
        from survey_responses r
        where ($1 is null or r.tenant_id = $1) and comment_present(r.comment)
    )
    select t.tenant_id, t.kind, s.grain, s.slot, t.side, t.term, t.form, count(*)
    from terms t cross join lateral comment_term_slots(t.respond_time) s
    group by 1, 2, 3, 4, 5, 6, 7
$$;

-- The rows comment_terms must hold for the raw responses of `tenant` (every tenant when
-- null): for the backfill below, `cxmetrics rollups rebuild` and `verify`.
create function comment_terms_rows(tenant text)
returns table (tenant_id text, response_id text, kind smallint, side smallint,
               respond_time timestamptz, term text, form text)
language sql stable as $$
    select s.tenant_id, s.response_id, s.kind, comment_side(s.kind, s.score, s.scale_max),
           s.respond_time, t.term, t.form
    from survey_responses s
    cross join lateral comment_terms_of(comment_config(s.comment, s.attributes ->> 'language'),
                                        s.comment, s.comment_tsv) t
    where ($1 is null or s.tenant_id = $1) and comment_present(s.comment)
      and comment_side(s.kind, s.score, s.scale_max) > 0
$$;

insert into comment_terms (tenant_id, response_id, kind, side, respond_time, term, form)
select * from comment_terms_rows(null);

insert into comment_term_counts (tenant_id, kind, grain, slot, side, term, form, n, fresh)
select c.*, false from comment_term_count_rows(null) c;
