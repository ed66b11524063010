/*
 * agency_day.sql - the "agency day" benchmark table (DESIGN.md §10) as a
 * Tazamun schema: `syncctl -C DIR schema apply bench/agency_day.sql`.
 * The CREATE TABLE is byte-identical to AD_CREATE_SQL in agency_day.h, so
 * every contender of bench/write_cost runs on the same table.
 */
CREATE TABLE job_seekers (
  id                TEXT NOT NULL PRIMARY KEY,
  id_doc_number     TEXT,
  last_name_lat     TEXT NOT NULL,
  first_name_lat    TEXT NOT NULL,
  last_name_ar      TEXT,
  first_name_ar     TEXT,
  birth_date        TEXT NOT NULL,
  gender            TEXT NOT NULL,
  phone             TEXT,
  email             TEXT,
  address           TEXT,
  region            TEXT NOT NULL,
  diploma           TEXT,
  skills            TEXT,
  status            TEXT NOT NULL,
  registration_date TEXT NOT NULL,
  last_contact_date TEXT,
  owner_branch      TEXT NOT NULL
);

INSERT INTO tz_track(tbl, scope, owner_column)
  VALUES ('job_seekers', 'owned', 'owner_branch');
