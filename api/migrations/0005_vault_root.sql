-- The index key (emails, fingerprints), sealed under the KEK: it was
-- derived from the first KEK and must outlive a rotation of it.
CREATE TABLE vault_root (
    id INT PRIMARY KEY CHECK (id = 1),
    sealed_index_key BYTEA NOT NULL
);
