-- tools/agency/schema.sql - the public-employment-agency schema of the demo and the generator
-- (`syncctl generate`), with its sync declarations.  Apply at HQ before enrolling branches:
--     syncctl -C hq schema apply tools/agency/schema.sql
-- Based on /work/shared/agency-schema.sql (domain.md §1.4), with these differences, and why:
--   * no UNIQUE index on a national natural key (CIN, ICE, application pair...): HQ holds every
--     branch's rows, and two branches that register the same person offline (conflict C1) must
--     both reach HQ; a local UNIQUE index would make HQ refuse to write the second row.  National
--     uniqueness is declared with tz_unique (tools/agency/integrity.sql, DESIGN §11);
--   * the tables the demo does not use yet are left out (branch, staff, training_*,
--     self_employment_project, audit_log, erasure_order), and the references to them with them;
--   * no view: views do not travel in the history (a branch gets tables, indexes, triggers).
-- Ownership (domain.md §1.1): 'owned' rows are partitioned by owner_branch (a branch holds and
-- writes its own), 'shared' rows every branch holds and may write, 'hq' rows only HQ writes.

-- Reference data [HQ]
CREATE TABLE territory (
  code TEXT PRIMARY KEY, country TEXT NOT NULL CHECK (country IN ('MA','TN')),
  level TEXT NOT NULL CHECK (level IN ('region','province','commune')),
  parent_code TEXT REFERENCES territory(code), label_fr TEXT NOT NULL, label_ar TEXT NOT NULL,
  is_rural INTEGER NOT NULL DEFAULT 0 CHECK (is_rural IN (0,1)),
  valid_from TEXT NOT NULL, valid_to TEXT, replaced_by TEXT REFERENCES territory(code),
  ref_version INTEGER NOT NULL) STRICT;

CREATE TABLE occupation (
  code TEXT PRIMARY KEY, scheme TEXT NOT NULL CHECK (scheme IN ('REM','ROME','ISCO08')),
  isco08_code TEXT, label_fr TEXT NOT NULL, label_ar TEXT NOT NULL,
  valid_from TEXT NOT NULL, valid_to TEXT, replaced_by TEXT REFERENCES occupation(code),
  ref_version INTEGER NOT NULL) STRICT;

CREATE TABLE programme (
  code TEXT PRIMARY KEY, country TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('contract','subsidised_contract','training','self_employment','public_works')),
  label_fr TEXT NOT NULL, label_ar TEXT NOT NULL, rules_json TEXT,
  valid_from TEXT NOT NULL, valid_to TEXT, ref_version INTEGER NOT NULL) STRICT;

-- Job seekers [owned]: owner = branch of residence / follow-up
CREATE TABLE job_seeker (
  id TEXT PRIMARY KEY, dossier_no TEXT NOT NULL,
  id_doc_type TEXT NOT NULL CHECK (id_doc_type IN ('CNIE','CIN_TN','PASSPORT','RESIDENCE_CARD','NONE')),
  id_doc_number TEXT,
  last_name_lat TEXT NOT NULL, first_name_lat TEXT NOT NULL, last_name_ar TEXT, first_name_ar TEXT,
  birth_date TEXT NOT NULL, gender TEXT NOT NULL CHECK (gender IN ('F','M')),
  phone TEXT, email TEXT, address TEXT, territory_code TEXT NOT NULL REFERENCES territory(code),
  education_level TEXT NOT NULL, diploma TEXT, skills_json TEXT,
  experience_months INTEGER NOT NULL DEFAULT 0, sought_occupation TEXT REFERENCES occupation(code),
  mobility TEXT CHECK (mobility IN ('commune','province','region','national','international')),
  registration_date TEXT NOT NULL, last_contact_date TEXT,
  status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active','in_training','placed','self_employed','inactive','deregistered','merged')),
  status_reason TEXT, merged_into TEXT REFERENCES job_seeker(id),
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;
CREATE INDEX ix_job_seeker_doc ON job_seeker(id_doc_type, id_doc_number);
CREATE INDEX ix_job_seeker_owner ON job_seeker(owner_branch, status);

-- Employers [shared]: owner_branch = the account-manager branch (not a partition)
CREATE TABLE employer (
  id TEXT PRIMARY KEY, country TEXT NOT NULL CHECK (country IN ('MA','TN')),
  ice TEXT, rc_number TEXT, legal_name TEXT NOT NULL, trade_name TEXT, legal_name_ar TEXT,
  sector_code TEXT, size_band TEXT CHECK (size_band IN ('1-9','10-49','50-249','250+','unknown')),
  territory_code TEXT NOT NULL REFERENCES territory(code), address TEXT,
  contact_name TEXT, contact_phone TEXT, contact_email TEXT,
  status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','inactive','blacklisted','merged')),
  merged_into TEXT REFERENCES employer(id),
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;
CREATE INDEX ix_employer_ice ON employer(ice);

-- Job offers [shared]: owner_branch = the collecting branch; positions filled are derived
-- from placement (no stored counter to conflict on)
CREATE TABLE job_offer (
  id TEXT PRIMARY KEY, offer_no TEXT NOT NULL, employer_id TEXT NOT NULL REFERENCES employer(id),
  occupation_code TEXT NOT NULL REFERENCES occupation(code), title_fr TEXT, title_ar TEXT,
  description TEXT, programme_code TEXT NOT NULL REFERENCES programme(code),
  contract_months INTEGER, positions_total INTEGER NOT NULL CHECK (positions_total > 0),
  territory_code TEXT NOT NULL REFERENCES territory(code),
  salary_min INTEGER, salary_max INTEGER, currency TEXT CHECK (currency IN ('MAD','TND','EUR')),
  required_education TEXT,
  diffusion TEXT NOT NULL DEFAULT 'local' CHECK (diffusion IN ('local','regional','national','international')),
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('draft','open','suspended','filled','cancelled','expired')),
  opened_at TEXT, closes_at TEXT,
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;
CREATE INDEX ix_offer_employer ON job_offer(employer_id);

-- Applications ("mises en relation") [owned]: owner = the proposing branch
CREATE TABLE application (
  id TEXT PRIMARY KEY, job_seeker_id TEXT NOT NULL REFERENCES job_seeker(id),
  job_offer_id TEXT NOT NULL REFERENCES job_offer(id),
  channel TEXT NOT NULL CHECK (channel IN ('counsellor','portal','employer_direct','job_fair','mobile_unit')),
  status TEXT NOT NULL DEFAULT 'proposed'
    CHECK (status IN ('proposed','sent_to_employer','interview_scheduled','accepted','rejected','withdrawn','offer_closed')),
  status_at TEXT NOT NULL,
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;
CREATE INDEX ix_application_offer ON application(job_offer_id);

-- Interviews (reception, diagnostic, follow-up) [owned]: owner = where it takes place
CREATE TABLE interview (
  id TEXT PRIMARY KEY, job_seeker_id TEXT NOT NULL REFERENCES job_seeker(id),
  kind TEXT NOT NULL CHECK (kind IN ('reception','diagnostic','follow_up','project_coaching','employer_interview_prep')),
  scheduled_at TEXT NOT NULL, duration_min INTEGER,
  outcome TEXT CHECK (outcome IN ('held','no_show','cancelled','rescheduled')),
  action_plan TEXT, next_step TEXT,
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;
CREATE INDEX ix_interview_seeker ON interview(job_seeker_id, scheduled_at);

-- Job-search workshops and attendance [owned]: owner = the organising branch
CREATE TABLE workshop (
  id TEXT PRIMARY KEY,
  theme TEXT NOT NULL CHECK (theme IN ('cv','cover_letter','job_interview','active_search','self_employment','digital','other')),
  held_on TEXT NOT NULL, territory_code TEXT NOT NULL REFERENCES territory(code),
  capacity INTEGER NOT NULL CHECK (capacity > 0),
  status TEXT NOT NULL DEFAULT 'planned' CHECK (status IN ('planned','held','cancelled')),
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;

CREATE TABLE workshop_attendance (
  id TEXT PRIMARY KEY, workshop_id TEXT NOT NULL REFERENCES workshop(id),
  job_seeker_id TEXT NOT NULL REFERENCES job_seeker(id),
  status TEXT NOT NULL DEFAULT 'registered' CHECK (status IN ('registered','present','absent','excused')),
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;

-- Placements [owned]: owner = the recording branch; they fill a shared offer's positions (C4)
CREATE TABLE placement (
  id TEXT PRIMARY KEY, job_seeker_id TEXT NOT NULL REFERENCES job_seeker(id),
  job_offer_id TEXT REFERENCES job_offer(id), employer_id TEXT NOT NULL REFERENCES employer(id),
  application_id TEXT REFERENCES application(id),
  programme_code TEXT NOT NULL REFERENCES programme(code), contract_ref TEXT,
  start_date TEXT NOT NULL, end_date TEXT, monthly_salary INTEGER,
  status TEXT NOT NULL DEFAULT 'signed' CHECK (status IN ('signed','started','ended','cancelled','over_quota')),
  owner_branch TEXT NOT NULL, origin_branch TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL,
  row_version INTEGER NOT NULL DEFAULT 1, deleted_at TEXT) STRICT;
CREATE INDEX ix_placement_offer ON placement(job_offer_id, status);

-- What Tazamun tracks, and how
INSERT INTO tz_track(tbl, scope, owner_column) VALUES
  ('territory', 'hq', NULL), ('occupation', 'hq', NULL), ('programme', 'hq', NULL),
  ('employer', 'shared', NULL), ('job_offer', 'shared', NULL),
  ('job_seeker', 'owned', 'owner_branch'), ('interview', 'owned', 'owner_branch'),
  ('application', 'owned', 'owner_branch'), ('placement', 'owned', 'owner_branch'),
  ('workshop', 'owned', 'owner_branch'), ('workshop_attendance', 'owned', 'owner_branch');

-- Column groups: columns that merge as one unit (docs/merge.md)
INSERT INTO tz_group(tbl, grp, col) VALUES
  ('job_seeker', 'id_doc', 'id_doc_type'), ('job_seeker', 'id_doc', 'id_doc_number'),
  ('job_seeker', 'name_lat', 'last_name_lat'), ('job_seeker', 'name_lat', 'first_name_lat'),
  ('job_seeker', 'name_ar', 'last_name_ar'), ('job_seeker', 'name_ar', 'first_name_ar'),
  ('job_seeker', 'contact', 'phone'), ('job_seeker', 'contact', 'email'),
  ('job_seeker', 'contact', 'address'),
  ('job_seeker', 'state', 'status'), ('job_seeker', 'state', 'status_reason'),
  ('employer', 'contact', 'contact_name'), ('employer', 'contact', 'contact_phone'),
  ('employer', 'contact', 'contact_email');

-- Policies (C3: HQ decides identity, the owning branch its operational columns; C12: a
-- person decides a status both sides changed)
INSERT INTO tz_policy(tbl, col, policy) VALUES
  ('job_seeker', '*', 'owner'),
  ('job_seeker', 'id_doc', 'hq'), ('job_seeker', 'name_lat', 'hq'), ('job_seeker', 'name_ar', 'hq'),
  ('job_seeker', 'birth_date', 'hq'), ('job_seeker', 'gender', 'hq'),
  ('job_seeker', 'merged_into', 'hq'),
  ('job_seeker', 'contact', 'owner'), ('job_seeker', 'last_contact_date', 'lww'),
  ('job_seeker', 'state', 'manual'), ('job_seeker', '@delete', 'manual'),
  ('employer', '*', 'lww'), ('employer', 'ice', 'hq'), ('employer', 'legal_name', 'hq'),
  ('employer', 'status', 'manual'), ('employer', '@delete', 'manual'),
  ('job_offer', '*', 'lww'), ('job_offer', 'positions_total', 'manual'),
  ('job_offer', '@delete', 'manual'),
  ('interview', '*', 'owner'), ('application', '*', 'owner'), ('placement', '*', 'owner'),
  ('workshop', '*', 'owner'), ('workshop_attendance', '*', 'owner'),
  ('interview', '@delete', 'manual'), ('application', '@delete', 'manual'),
  ('placement', '@delete', 'manual'), ('workshop', '@delete', 'manual'),
  ('workshop_attendance', '@delete', 'manual');
