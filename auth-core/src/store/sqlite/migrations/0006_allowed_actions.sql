-- 6: what each token allows (play, publish); tokens made before it could only play.
ALTER TABLE tokens ADD COLUMN allowed_actions TEXT NOT NULL DEFAULT '["play"]';
