-- tools/agency/integrity.sql - the agency's national rules (DESIGN §11, the integrity issue):
-- uniqueness of natural keys, the over-filled offer, the identity columns only HQ may change.
-- Applied after tools/agency/schema.sql, on stores whose engine has the tz_unique, tz_invariant
-- and tz_access tables (tools/demo.sh checks for them and skips this file otherwise).

-- C1: one live record per identity document; C5: one employer per ICE (default normalisation:
-- trim, no inner spaces, upper case, Arabic-Indic digits to ASCII)
INSERT INTO tz_unique(name, tbl, cols, normalize) VALUES
  ('job_seeker_national_id', 'job_seeker', 'id_doc_type,id_doc_number', NULL),
  ('employer_ice', 'employer', 'ice', NULL);

-- C4: an offer with more live placements than positions (first column: the offer's key)
INSERT INTO tz_invariant(name, sql) VALUES
  ('job_offer_not_overfilled',
   'SELECT o.id FROM job_offer o JOIN placement p ON p.job_offer_id = o.id
      AND p.status IN (''signed'', ''started'', ''ended'') AND p.deleted_at IS NULL
    GROUP BY o.id HAVING count(*) > o.positions_total');

-- C3/C14: a branch creates its job seekers whole, but only HQ changes their identity
INSERT INTO tz_access(tbl, col, writer) VALUES
  ('job_seeker', 'id_doc_type', 'hq'), ('job_seeker', 'id_doc_number', 'hq'),
  ('job_seeker', 'birth_date', 'hq');
