-- 2: a counter bumped by every token write, from any process, so that in-process token
-- caches notice changes made elsewhere (the CLI, another server on the same file).
CREATE TABLE token_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO token_generation (id, value) VALUES (1, 0);
CREATE TRIGGER tokens_generation_insert AFTER INSERT ON tokens
    BEGIN UPDATE token_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER tokens_generation_update AFTER UPDATE ON tokens
    BEGIN UPDATE token_generation SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER tokens_generation_delete AFTER DELETE ON tokens
    BEGIN UPDATE token_generation SET value = value + 1 WHERE id = 1; END;
