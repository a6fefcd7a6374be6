-- a comment; with a semicolon
SELECT 'it''s; here', E'a\'b;', $$ dollar ; quoted $$, $tag$ x $$ y $tag$ FROM t;
/* block /* nested */ comment; */ SELECT "odd;name" FROM "T";
\set x 1
SELECT :x \g
COPY t FROM stdin;
1	a
\.
DO $body$ BEGIN PERFORM 1; END $body$;
SELECT 1
