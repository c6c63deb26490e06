-- Whoever fills a building generation (a server upgrading a projection, or
-- `gatehouse-replay rebuild`) renews its lease after every batch and while
-- it waits to retry; a rebuild clears away only building generations whose
-- lease has lapsed (their filler died), never one a live process is filling
-- between two batches.
ALTER TABLE projection_generations
    ADD COLUMN lease_until TIMESTAMPTZ NOT NULL DEFAULT now() + interval '30 seconds';
